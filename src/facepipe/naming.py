"""Naming: put a person's name on the clusters that match a folder of named reference photos.

The folder holds `<name>.jpg|png` files and/or `<name>/*.jpg|png` subfolders. A trailing number
and the separators before it are dropped from a file's name, so `obama.jpg`, `obama2.jpg` and
`obama_3.png` are all photos of "obama". Each photo's largest face is found with the same MTCNN
as Detect, cropped as Stills crops, and embedded with the episode's embedder; a person's reference
is the mean of their photos' unit vectors. A cluster is named after the closest reference when
that reference is within the naming threshold (cosine distance), so a cluster has at most one
name; one name may land on several clusters (a person split in two), which is reported.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .cluster import track_vectors, unit
from .errors import FacepipeError
from .slideshow import PHOTO_SUFFIXES

# Cosine distance within which a cluster takes a reference's name, per embedder: dlib's measured
# by bench/quality_ablation.py (README "Quality"), facenet's a placeholder until measured.
DEFAULT_NAME_THRESHOLDS = {"dlib": 0.07, "facenet": 0.4}
MARGIN = 0.4  # crop margin around the face, as stills.margin's default
_TRAILING_NUMBER = re.compile(r"[\s._-]*\d+$")


def person_name(stem: str) -> str:
    """`obama2` -> `obama`, `lin-manuel-miranda` unchanged; a name that is only digits is kept."""
    return _TRAILING_NUMBER.sub("", stem) or stem


def _is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith(".")


def reference_photos(folder: str | Path) -> list[tuple[str, Path]]:
    """(person name, photo path) for every photo of the folder, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FacepipeError(
            f"{folder}: reference folder not found (cluster.references); "
            "point it at a folder of <name>.jpg photos or set it to null"
        )
    photos = []
    for entry in sorted(folder.iterdir()):
        if _is_photo(entry):
            photos.append((person_name(entry.stem), entry))
        elif entry.is_dir():
            photos.extend((entry.name, p) for p in sorted(entry.iterdir()) if _is_photo(p))
    if not photos:
        raise FacepipeError(
            f"{folder}: no reference photos found (cluster.references); add <name>.jpg or <name>/*.jpg files"
        )
    return photos


def embed_photo(photo: Path, detector, embedder) -> np.ndarray | None:
    """The embedding of the photo's largest face, or None when no face is found."""
    from .stills import crop_with_margin, shift_points

    bgr = cv2.imread(str(photo))
    if bgr is None:
        raise FacepipeError(f"{photo}: unreadable image; replace it or remove it from the reference folder")
    faces = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not faces:
        return None
    face = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    crop, origin = crop_with_margin(bgr, face, MARGIN)
    box = sum(shift_points([face["box"][:2], face["box"][2:]], origin), [])
    return embedder.embed(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), box, shift_points(face["landmarks"], origin))


def load_references(
    folder: str | Path, embed_cfg: dict, warn: Callable[[str], None] | None = None
) -> dict[str, np.ndarray]:
    """Name -> unit mean embedding of that person's photos, with the embedder of `embed_cfg`.

    A photo with no face is skipped with a warning; a folder where no photo has a face is an error.
    """
    from .detect import FacenetDetector
    from .embedders import make_embedder

    warn = warn or (lambda line: print(line, file=sys.stderr))
    photos = reference_photos(folder)
    detector = FacenetDetector(embed_cfg.get("device", "cpu"))
    embedder = make_embedder(embed_cfg)
    vectors: dict[str, list[np.ndarray]] = {}
    for name, photo in photos:
        vec = embed_photo(photo, detector, embedder)
        if vec is None:
            warn(f"facepipe: {photo}: no face found, reference skipped; use a photo where the face is clear")
            continue
        vectors.setdefault(name, []).append(unit(vec.astype(np.float64)))
    if not vectors:
        raise FacepipeError(f"{folder}: no face found in any reference photo; use photos where the face is clear")
    return {name: unit(np.mean(vecs, axis=0)) for name, vecs in vectors.items()}


def closest_reference(point: np.ndarray, references: dict[str, np.ndarray]) -> tuple[str, float]:
    names = sorted(references)
    dists = [float(1.0 - point @ references[n]) for n in names]
    k = int(np.argmin(dists))
    return names[k], dists[k]


def name_clusters(result: dict, embeddings: dict, references: dict[str, np.ndarray], threshold: float | None) -> dict:
    """Add "name" to matching clusters of a clusters.json result, and a "references" summary."""
    threshold = threshold or DEFAULT_NAME_THRESHOLDS[result["embedder"]]
    vectors, still_tids = np.asarray(embeddings["vectors"]), np.asarray(embeddings["track_ids"])
    clusters_of: dict[str, list[int]] = {}
    for c in result["clusters"]:
        c.pop("name", None)
        c.pop("name_distance", None)
        mean = unit(track_vectors(vectors, still_tids, c["track_ids"]).mean(axis=0))
        name, dist = closest_reference(mean, references)
        if dist < threshold:
            c["name"] = name
            clusters_of.setdefault(name, []).append(c["cluster_id"])
            c["name_distance"] = round(dist, 4)
    result["references"] = {
        "names": sorted(references),
        "name_threshold": threshold,
        "unmatched": sorted(n for n in references if n not in clusters_of),
        "possible_splits": [{"name": n, "cluster_ids": ids} for n, ids in sorted(clusters_of.items()) if len(ids) > 1],
    }
    return result
