"""Stills: the best face crops of every track, by a quality score, listed in manifest.json.

The detect job already cut and scored every face it found (base.facecrops: size, sharpness,
detection score, how frontal), so this stage reads no video: it ranks each track's faces by
quality (the earlier frame first on a tie) and copies the best stills.per_track JPEGs. Crops keep
stills.margin around the box, and the manifest gives the box and landmarks inside the crop for the
embedders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..base import atomic, layout
from ..base.facecrops import Crops

MANIFEST = Path(layout.STILLS_MANIFEST).name


def select_stills(
    tracks: dict,
    crop_archives: list[str | Path],
    out_dir: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Write the best cfg['per_track'] crops of every track into out_dir (atomically) + manifest,
    from the detect chunks' crop archives."""
    crops = Crops(crop_archives)
    stills = []
    total = len(tracks["tracks"])
    try:
        with atomic.atomic_dir(out_dir) as tmp:
            for n, track in enumerate(tracks["tracks"], 1):
                track_id = track["track_id"]
                scored = [(crops.find(det), det) for det in track["detections"]]
                ranked = sorted(scored, key=lambda it: (-it[0]["quality"], it[1]["frame"]))[:cfg["per_track"]]
                for rank, (rec, det) in enumerate(ranked):
                    name = f"track{track_id:05d}_{rank}_f{det['frame']:06d}.jpg"
                    (tmp / name).write_bytes(crops.jpeg(det))  # the folder is published whole
                    stills.append({"file": name, "rank": rank, "track_id": track_id, "frame": det["frame"],
                                   "t": det["t"], "quality": rec["quality"], "score": det["score"],
                                   "box": det["box"], "box_in_crop": rec["box_in_crop"],
                                   "landmarks_in_crop": rec["landmarks_in_crop"]})
                if progress and (n % 50 == 0 or n == total):
                    progress(n, total, f"Choosing stills: track {n} of {total}")
            manifest = {"episode": tracks["episode"], "stills": stills}
            atomic.write_json(tmp / MANIFEST, manifest)
    finally:
        crops.close()
    return manifest


def read_manifest(stills_dir: str | Path) -> dict:
    return json.loads((Path(stills_dir) / MANIFEST).read_text(encoding="utf-8"))
