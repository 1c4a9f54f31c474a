"""Naming: put a person's name on the clusters that match a folder of named reference photos.

The folder holds `<name>.jpg|png` files and/or `<name>/*.jpg|png` subfolders (a subfolder is one
person, always). A trailing number and the separators before it are dropped from a file's name,
so `obama.jpg`, `obama2.jpg` and `obama_3.png` are all photos of "obama" - but only when their
faces agree: photos that this rule would put under one name are kept apart when the median
distance between them is above SAME_PERSON_MEDIAN (`id00.jpg` ... `id12.jpg`, thirteen people,
are thirteen references named by their full file names, not one "id"). Every name's photos, and
every group kept apart, are listed in the result's "references" and the job's log, so nothing is
merged or split without saying so. Each photo's largest face is found by facenet-pytorch's MTCNN
with its own cascade, on embed.device, as on a 720p frame at the default detect.min_face_px and
detect.min_score, whatever the episode's detect settings (detect.photo_detector); it is cropped as
Stills crops (with stills.margin) and embedded with the episode's embedder; every photo stays a
reference of its own. The distance between a cluster and a person is the smallest cosine distance
between any still of the cluster and any photo of the person: one still that matches one photo
(a face turned the same way) is the evidence. Clusters are named in two passes:

1. By distance: a cluster whose nearest person is within the naming threshold takes that name.
   One name may land on several clusters (a person split in two), which is reported.
2. By elimination: each person still without a cluster takes the unnamed cluster nearest them,
   nearest pairs first, when it is within the looser elimination threshold and nearer by the
   elimination margin than their next unnamed cluster. This names a person whom the embedder
   places nearer someone else (dlib puts Obama in profile nearer Alex Lacamoire than Obama) once
   that someone has a nearer cluster of their own; one name lands on one cluster this way.

A cluster has at most one name. A reference of someone absent can still land, by elimination,
on a stranger who stands out from the other unnamed clusters (docs/quality.md).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ...base.errors import FacepipeError
from ...base.images import face_crop
from ...base.media import is_photo
from ..embed import SPACE
from .grouping import l2_normalise

# Cosine distances (cluster to person, as above), per embedder, measured with dlib on the default
# runs of lfw10 and johns (each person's first photo the reference, its track held out) and of
# hamilton_clip with faces/reference (docs/quality.md); facenet's are placeholders until measured.
# By distance: a cluster's own person is at most 0.050 away (lfw10), the nearest other person at
# least 0.083, so 0.07 names no stranger there.
DEFAULT_NAME_THRESHOLDS = {"dlib": 0.07, "facenet": 0.4}
# By elimination (threshold, margin): on hamilton_clip Alex Lacamoire's cluster is 0.092 from him
# (next unnamed cluster 0.112) and Obama's 0.118 from him (next 0.135); biden, not in the clip,
# is 0.148 from his nearest unnamed cluster and 0.152 from the next. 0.13 leaves 0.012 over Obama;
# the margin 0.01 lies between their 0.020 and 0.017 and biden's 0.004, and cuts the names an
# absent lfw10 person leaves on strangers from 10 in 10 to 2. None: not measured, no such pass.
ELIMINATION = {"dlib": (0.13, 0.01), "facenet": None}
# Photos a trailing number would put under one name stay one person while the median distance
# between them is at most this. Measured on lfw10 (each person's 10 photos, dlib, photo to photo):
# the same person's pairs have a median of 0.047 (95 % under 0.089), different people's 0.152
# (95 % over 0.109). facenet's is a placeholder until measured.
SAME_PERSON_MEDIAN = {"dlib": 0.10, "facenet": 0.5}
_TRAILING_NUMBER = re.compile(r"[\s._-]*\d+$")


def person_name(stem: str) -> str:
    """`obama2` -> `obama`, `lin-manuel-miranda` unchanged; a name that is only digits is kept."""
    return _TRAILING_NUMBER.sub("", stem) or stem


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
        if is_photo(entry):
            photos.append((person_name(entry.stem), entry))
        elif entry.is_dir():
            photos.extend((entry.name, p) for p in sorted(entry.iterdir()) if is_photo(p))
    if not photos:
        raise FacepipeError(
            f"{folder}: no reference photos found (cluster.references); add <name>.jpg or <name>/*.jpg files"
        )
    return photos


def embed_photo(photo: Path, detector, embedder, margin: float) -> np.ndarray | None:
    """The embedding of the photo's largest face, cropped with `margin` as Stills crops, or None
    when no face is found."""
    bgr = cv2.imread(str(photo))
    if bgr is None:
        raise FacepipeError(f"{photo}: unreadable image; replace it or remove it from the reference folder")
    return embed_face(bgr, detector, embedder, margin)


def embed_face(bgr: np.ndarray, detector, embedder, margin: float) -> np.ndarray | None:
    """embed_photo on an image already read (BGR), e.g. a photo a search was given."""
    faces = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not faces:
        return None
    face = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    crop, box, marks = face_crop(bgr, face, margin)
    return embedder.embed(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), box, marks)


def _agreeing(named: list[tuple[str, Path, np.ndarray]], bound: float, warn, report: dict) -> list:
    """Keep apart the photos a trailing number put under one name when their faces disagree."""
    by_name: dict[str, list] = {}
    for item in named:
        by_name.setdefault(item[0], []).append(item)
    out = []
    for name, items in by_name.items():
        loose = [it for it in items if it[1].parent.name != name]  # not in a <name>/ folder
        if len(loose) > 1:
            vecs = np.stack([it[2] for it in loose])
            pairs = (1.0 - vecs @ vecs.T)[np.triu_indices(len(loose), 1)]
            median = float(np.median(pairs))
            if median > bound:
                files = [it[1].name for it in loose]
                warn(f"facepipe: reference photos {', '.join(files)} would all be named {name!r} by their trailing "
                     f"numbers, but their faces differ (median distance {median:.3f}); each is kept as a person of its "
                     f"own, named by its file name. To name one person's photos, put them in a folder {name}/, or "
                     "give different people distinct names")
                report.setdefault("kept_apart", []).append(
                    {"name": name, "files": files, "median_distance": round(median, 4)})
                out += [(it[1].stem, it[1], it[2]) for it in loose]
                items = [it for it in items if it not in loose]
        out += items
    return out


def load_references(
    folder: str | Path, embed_cfg: dict, margin: float, warn: Callable[[str], None] | None = None,
    report: dict | None = None,
) -> dict[str, np.ndarray]:
    """Name -> that person's photos' l2-normalised embeddings (one row per photo), with the embedder of
    `embed_cfg`, each face cropped with `margin` (stills.margin) as Stills crops.

    A photo with no face is skipped with a warning; a folder where no photo has a face is an error.
    `report`, if given, receives "photos" (name -> its photo files) and "kept_apart" (the groups a
    trailing number would have merged, kept apart because their faces differ).
    """
    from ..detect import photo_detector
    from ..embed import make_embedder

    warn = warn or (lambda line: print(line, file=sys.stderr))
    folder = Path(folder)
    photos = reference_photos(folder)
    detector = photo_detector(embed_cfg["device"])
    embedder = make_embedder(embed_cfg)
    report = {} if report is None else report
    named = []
    for name, photo in photos:
        vec = embed_photo(photo, detector, embedder, margin)
        if vec is None:
            warn(f"facepipe: {photo}: no face found, reference skipped; use a photo where the face is clear")
            continue
        named.append((name, photo, l2_normalise(vec.astype(np.float64))))
    if not named:
        raise FacepipeError(f"{folder}: no face found in any reference photo; use photos where the face is clear")
    vectors: dict[str, list[np.ndarray]] = {}
    photos_of: dict[str, list[str]] = {}
    for name, photo, vec in _agreeing(named, SAME_PERSON_MEDIAN[SPACE[embed_cfg["embedder"]]], warn, report):
        vectors.setdefault(name, []).append(vec)
        photos_of.setdefault(name, []).append(str(photo.relative_to(folder)))
    report["photos"] = {name: sorted(files) for name, files in sorted(photos_of.items())}
    return {name: np.stack(vecs) for name, vecs in vectors.items()}


def group_distances(groups: list[np.ndarray], references: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Sorted names, and per group (a cluster's, or a cast member's, l2-normalised still vectors) x name the
    smallest distance between any of its stills and any of that person's photos."""
    names = sorted(references)
    dist = np.full((len(groups), len(names)), np.inf)
    for i, stills in enumerate(groups):
        for j, name in enumerate(names):
            dist[i, j] = float((1.0 - stills @ references[name].T).min(initial=np.inf))
    return names, dist


def cluster_distances(result: dict, embeddings: dict,
                      references: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Sorted names, and per cluster x name the smallest distance between its stills and their photos."""
    vectors = l2_normalise(np.asarray(embeddings["vectors"], dtype=np.float64))
    still_tids = np.asarray(embeddings["track_ids"])
    return group_distances([vectors[np.isin(still_tids, c["track_ids"])] for c in result["clusters"]], references)


def naming_threshold(embedder: str, threshold: float | None = None) -> float:
    """The distance within which a cluster takes a name by distance: cluster.name_threshold
    (`threshold`) or, where it is null, the measured default for the embedder's space."""
    return threshold or DEFAULT_NAME_THRESHOLDS[SPACE.get(embedder, embedder)]


def name_groups(dist: np.ndarray, names: list[str], embedder: str,
                threshold: float | None) -> tuple[dict[int, tuple[str, float, str]], dict]:
    """The two passes (by distance, then by elimination) over groups x names: group index ->
    (name, distance, pass), and the summary clusters.json and cast.json give as "references"."""
    embedder = SPACE.get(embedder, embedder)
    threshold = naming_threshold(embedder, threshold)
    elimination = ELIMINATION.get(embedder)
    named = name_by_distance(dist, names, threshold)
    if elimination:
        named = name_by_elimination(dist, names, named, *elimination)
    used = {n for n, _d, _how in named.values()}
    return named, {"names": names, "name_threshold": threshold,
                   "elimination": dict(zip(("threshold", "margin"), elimination)) if elimination else None,
                   "unmatched": sorted(n for n in names if n not in used)}


def name_by_distance(dist: np.ndarray, names: list[str], threshold: float) -> dict[int, tuple[str, float, str]]:
    """Cluster index -> (its nearest name, distance, "distance") where that name is within `threshold`."""
    named = {}
    for i, row in enumerate(dist):
        j = int(np.argmin(row)) if row.size else -1
        if j >= 0 and row[j] < threshold:
            named[i] = (names[j], float(row[j]), "distance")
    return named


def name_by_elimination(dist: np.ndarray, names: list[str], named: dict, threshold: float,
                        margin: float) -> dict[int, tuple[str, float, str]]:
    """More of `named`: names without a cluster take their nearest unnamed cluster, nearest pairs
    first, when it is within `threshold` and `margin` nearer than any other cluster `named` left
    unnamed (so the margin does not depend on the order the names are given in)."""
    unnamed = [i for i in range(len(dist)) if i not in named]
    free, named = set(unnamed), dict(named)
    waiting = {j for j, n in enumerate(names) if n not in {v[0] for v in named.values()}}
    for d, i, j in sorted((dist[i, j], i, j) for i in unnamed for j in waiting if dist[i, j] < threshold):
        if i not in free or j not in waiting:
            continue
        waiting.discard(j)  # a name gets one try: its nearest cluster still free
        runner_up = min((dist[k, j] for k in unnamed if k != i), default=np.inf)
        if runner_up - d >= margin:
            named[i] = (names[j], float(d), "elimination")
            free.discard(i)
    return named


def name_clusters(result: dict, embeddings: dict, references: dict[str, np.ndarray], threshold: float | None,
                  report: dict | None = None) -> dict:
    """Add "name" to matching clusters of a clusters.json result, and a "references" summary
    (with `report` from load_references: each name's photos, and any kept apart).

    A name the user gave (named_by "user", stages.cluster.corrections) stays, and is no
    reference's to give again; hidden clusters are not named."""
    clusters = result["clusters"]
    given = {c["name"] for c in clusters if c.get("named_by") == "user"}
    rest = [i for i, c in enumerate(clusters) if c.get("named_by") != "user" and not c.get("hidden")]
    pool = {n: v for n, v in references.items() if n not in given}
    names, dist = cluster_distances({"clusters": [clusters[i] for i in rest]}, embeddings, pool)
    by_rest, summary = name_groups(dist, names, result["embedder"], threshold)
    named = {rest[r]: v for r, v in by_rest.items()}
    clusters_of: dict[str, list[int]] = {}
    for i, c in enumerate(clusters):
        if c.get("named_by") == "user":
            clusters_of.setdefault(c["name"], []).append(c["cluster_id"])
            continue
        for key in ("name", "name_distance", "named_by"):
            c.pop(key, None)
        if i in named:
            c["name"], distance, c["named_by"] = named[i]
            c["name_distance"] = round(distance, 4)
            clusters_of.setdefault(c["name"], []).append(c["cluster_id"])
    result["references"] = {
        **summary,
        "possible_splits": [{"name": n, "cluster_ids": ids} for n, ids in sorted(clusters_of.items()) if len(ids) > 1],
        **(report or {}),
    }
    return result
