"""Track: link per-frame detections into face tracks.

Each sampled frame's detections are matched to the open tracks by IoU with the Hungarian
algorithm (scipy). A shot cut closes every open track, so no track crosses a cut; a track left
unmatched for longer than max_gap_s is closed; tracks shorter than min_detections are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..base import atomic


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) against every box in b (M,4), boxes as x1,y1,x2,y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class _Track:
    detections: list[dict] = field(default_factory=list)

    @property
    def last(self) -> dict:
        return self.detections[-1]


def link(frames: list[dict], cfg: dict) -> list[list[dict]]:
    """Return tracks as lists of detections ({frame, t, box, score, landmarks}), in start order."""
    open_tracks: list[_Track] = []
    closed: list[_Track] = []
    for record in frames:
        t = record["t"]
        if record.get("cut_score", 0.0) > cfg["cut_threshold"]:
            closed.extend(open_tracks)
            open_tracks = []
        still_open = []
        for track in open_tracks:
            (still_open if t - track.last["t"] <= cfg["max_gap_s"] else closed).append(track)
        open_tracks = still_open
        dets = [
            {"frame": record["frame"], "t": t, "box": f["box"], "score": f["score"], "landmarks": f.get("landmarks")}
            for f in record["faces"]
        ]
        matched_dets: set[int] = set()
        if open_tracks and dets:
            iou = iou_matrix(
                np.array([tr.last["box"] for tr in open_tracks], dtype=float),
                np.array([d["box"] for d in dets], dtype=float),
            )
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= cfg["iou_min"]:
                    open_tracks[r].detections.append(dets[c])
                    matched_dets.add(c)
        for c, det in enumerate(dets):
            if c not in matched_dets:
                open_tracks.append(_Track([det]))
    closed.extend(open_tracks)
    kept = [tr.detections for tr in closed if len(tr.detections) >= cfg["min_detections"]]
    kept.sort(key=lambda dets: (dets[0]["frame"], dets[0]["box"][0]))
    return kept


def build_tracks(episode: str, frames: list[dict], video_info: dict, cfg: dict) -> dict:
    tracks = link(frames, cfg)
    return {
        "episode": episode,
        "fps": video_info["fps"],
        "frame_count": video_info["frame_count"],
        "sample_fps": video_info.get("sample_fps"),
        "tracks": [{"track_id": i, "detections": dets} for i, dets in enumerate(tracks)],
    }


def write_tracks(path: str | Path, tracks: dict) -> None:
    atomic.write_json(path, tracks, indent=None)
