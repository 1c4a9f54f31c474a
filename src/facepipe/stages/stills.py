"""Stills: the best face crops of every track, by a quality score, listed in manifest.json.

The quality of a detection (0-1) weighs face size, sharpness (variance of the Laplacian),
detection score and how frontal the face is (nose between the eyes). Crops keep a margin around
the box, and the manifest gives the box and landmarks inside the crop for the embedders.
Decoding the video is most of the cost: the frames are read in segments, side by side in the
job's worker processes (its threads).
"""

from __future__ import annotations

import heapq
import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..base import atomic, layout
from ..base.config import defaults
from ..base.images import face_crop
from ..base.video import FrameReader, frame_times, probe
from ..base.workers import ordered_map

MANIFEST = Path(layout.STILLS_MANIFEST).name
# The detection score's part of the quality: 0 at the default detect.min_score, 1 at a score of 1.
SCORE_FLOOR = defaults()["detect"]["min_score"]
SCORE_SPAN = round(1.0 - SCORE_FLOOR, 6)  # 0.1, not 1.0 - 0.9's 0.09999999999999998


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
    score = float(np.clip((det["score"] - SCORE_FLOOR) / SCORE_SPAN, 0.0, 1.0))
    return round(0.3 * size + 0.3 * sharpness(gray) + 0.1 * score + 0.3 * frontal_score(det.get("landmarks")), 4)


SEGMENT_S = 120  # about this much video per worker task: one seek each, and progress as each ends


def segments(frames: list[int], fps: float, workers: int) -> list[list[int]]:
    """The wanted frames (sorted) in contiguous runs of at most about SEGMENT_S seconds of video, as
    many as a multiple of `workers`: decoding, the cost of this stage, is shared by span of video."""
    if not frames:
        return []
    first, last = frames[0], frames[-1] + 1
    rounds = max(1, math.ceil((last - first) / (SEGMENT_S * fps * workers)))
    count = rounds * workers  # the workers finish together
    bounds = np.linspace(first, last, count + 1)
    cut = np.searchsorted(frames, bounds[1:-1])
    return [part.tolist() for part in np.split(np.asarray(frames), cut) if len(part)]


def _segment_context(video, by_frame: dict, cfg: dict):
    cv2.setNumThreads(1)  # one decoder thread per worker process: the workers share the cores
    return video, by_frame, cfg


def _best_of_segment(context, frames: list[int]) -> dict[int, list]:
    """track_id -> the segment's best cfg['per_track'] (quality, frame, JPEG bytes, entry) of that
    track (encoded here, in the worker)."""
    video, by_frame, cfg = context
    best: dict[int, list] = defaultdict(list)  # min-heaps
    for index, frame in FrameReader(video, wanted=frames, start=frames[0]):
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
    return {track_id: [(q, index, atomic.encode_image(".jpg", crop, quality=95), entry)
                       for q, index, crop, entry in heap] for track_id, heap in best.items()}


def select_stills(
    video: str | Path,
    tracks: dict,
    out_dir: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
    workers: int = 1,
) -> dict:
    """Write the best cfg['per_track'] crops of every track into out_dir (atomically) + manifest.
    The frames are read in segments (segments()) spread over `workers` processes."""
    by_frame: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for track in tracks["tracks"]:
        for det in track["detections"]:
            by_frame[det["frame"]].append((track["track_id"], det))
    parts = segments(sorted(by_frame), probe(video).fps, workers)
    frame_times(video)  # read once here, where the forked workers find it (their seeks use it)
    candidates: dict[int, list] = defaultdict(list)
    total = len(by_frame)
    done = 0
    for part, found in zip(parts, ordered_map(_segment_context, (video, dict(by_frame), cfg), _best_of_segment,
                                              parts, min(workers, len(parts)))):
        for track_id, items in found.items():
            candidates[track_id] += items
        done += len(part)
        if progress:
            progress(done, total, f"Scoring stills: frame {part[-1]}")
    stills = []
    with atomic.atomic_dir(out_dir) as tmp:
        for track_id in sorted(candidates):
            ranked = sorted(candidates[track_id], key=lambda it: (-it[0], it[1]))[:cfg["per_track"]]
            for rank, (_q, index, jpeg, entry) in enumerate(ranked):
                name = f"track{track_id:05d}_{rank}_f{index:06d}.jpg"
                (tmp / name).write_bytes(jpeg)  # the folder is published whole
                stills.append({"file": name, "rank": rank, **entry})
        manifest = {"episode": tracks["episode"], "stills": stills}
        atomic.write_json(tmp / MANIFEST, manifest)
    return manifest


def read_manifest(stills_dir: str | Path) -> dict:
    return json.loads((Path(stills_dir) / MANIFEST).read_text(encoding="utf-8"))
