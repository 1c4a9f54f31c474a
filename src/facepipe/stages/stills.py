"""Stills: the best face crops of every track, by a quality score, listed in manifest.json.

The quality of a detection (0-1) weighs face size, sharpness (variance of the Laplacian),
detection score and how frontal the face is (nose between the eyes). Crops keep a margin around
the box, and the manifest gives the box and landmarks inside the crop for the embedders.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..base import atomic, layout
from ..base.images import face_crop
from ..base.video import FrameReader

MANIFEST = Path(layout.STILLS_MANIFEST).name


def frontal_score(landmarks) -> float:
    if not landmarks:
        return 0.5
    (lx, ly), (rx, ry), (nx, _ny) = landmarks[0], landmarks[1], landmarks[2]
    eye_dist = float(np.hypot(rx - lx, ry - ly))
    if eye_dist < 1e-6:
        return 0.0
    yaw = abs(nx - (lx + rx) / 2) / eye_dist
    return float(max(0.0, 1.0 - 2.0 * yaw))


def sharpness(gray_face: np.ndarray) -> float:
    face = cv2.resize(gray_face, (64, 64), interpolation=cv2.INTER_AREA)
    var = float(cv2.Laplacian(face, cv2.CV_64F).var())
    return var / (var + 100.0)


def quality(frame_bgr: np.ndarray, det: dict) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in det["box"])
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    gray = cv2.cvtColor(frame_bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    size = min(1.0, (y2 - y1) / 120.0)
    score = float(np.clip((det["score"] - 0.9) / 0.1, 0.0, 1.0))
    return round(0.3 * size + 0.3 * sharpness(gray) + 0.1 * score + 0.3 * frontal_score(det.get("landmarks")), 4)


def select_stills(
    video: str | Path,
    tracks: dict,
    out_dir: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Write the best cfg['per_track'] crops of every track into out_dir (atomically) + manifest."""
    by_frame: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for track in tracks["tracks"]:
        for det in track["detections"]:
            by_frame[det["frame"]].append((track["track_id"], det))
    best: dict[int, list] = defaultdict(list)  # track_id -> min-heap of (quality, frame, crop, entry)
    total = len(by_frame)
    done = 0
    for index, frame in FrameReader(video, wanted=by_frame.keys()):
        for track_id, det in by_frame[index]:
            q = quality(frame, det)
            heap = best[track_id]
            if len(heap) < cfg["per_track"] or q > heap[0][0]:
                crop, box_in_crop, landmarks_in_crop = face_crop(frame, det, cfg["margin"])
                entry = {
                    "track_id": track_id,
                    "frame": index,
                    "t": det["t"],
                    "quality": q,
                    "score": det["score"],
                    "box": det["box"],
                    "box_in_crop": box_in_crop,
                    "landmarks_in_crop": landmarks_in_crop,
                }
                item = (q, index, crop, entry)
                if len(heap) < cfg["per_track"]:
                    heapq.heappush(heap, item)
                else:
                    heapq.heapreplace(heap, item)
        done += 1
        if progress:
            progress(done, total, f"Scoring stills: frame {index}")
    stills = []
    with atomic.atomic_dir(out_dir) as tmp:
        for track_id in sorted(best):
            for rank, (q, index, crop, entry) in enumerate(sorted(best[track_id], key=lambda it: (-it[0], it[1]))):
                name = f"track{track_id:05d}_{rank}_f{index:06d}.jpg"
                atomic.write_image(tmp / name, crop, quality=95)
                stills.append({"file": name, "rank": rank, **entry})
        manifest = {"episode": tracks["episode"], "stills": stills}
        atomic.write_json(tmp / MANIFEST, manifest)
    return manifest


def read_manifest(stills_dir: str | Path) -> dict:
    return json.loads((Path(stills_dir) / MANIFEST).read_text(encoding="utf-8"))
