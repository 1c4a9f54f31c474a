"""Detect: faces on frames sampled at detect.fps, one JSON line per sampled frame.

Each sampled frame is decoded, scored for a shot cut against the previous sampled frame and handed
whole to the detector in a worker process (which shrinks it as detector.source_scale says); the
lines are written in frame order, atomically.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.video import FrameReader, expected_samples, previous_sample, probe
from ...base.workers import ordered_map
from .detector import FaceDetector, make_detector
from .shots import colour_signature, cut_score

Progress = Callable[..., None]


def _worker_detector(cfg: dict, make: Callable[..., FaceDetector], width: int, height: int) -> FaceDetector:
    if make is make_detector:  # torch: one thread per worker process (base.workers)
        import torch

        torch.set_num_threads(1)
    return make(cfg, width, height)


def _detect_one(detector: FaceDetector, item):
    index, t, cut, rgb = item
    return index, t, cut, detector.detect(rgb)


def detect_frames(
    video: str | Path,
    out_jsonl: str | Path,
    cfg: dict,
    progress: Progress | None = None,
    start: int = 0,
    stop: int | None = None,
    workers: int = 1,
    make: Callable[..., FaceDetector] | None = None,
) -> dict:
    """Run the detector on the sampled frames in [start, stop) and write JSON lines atomically.

    `workers` > 1 spreads detection over that many processes. `make(cfg, width, height)` builds
    the detector (default: make_detector; a module-level function). Returns the video facts the later
    stages need (fps, decoded frame count, size).
    """
    if make is None and cfg["backend"] == "mtcnn":  # TensorFlow gets a process of its own
        return _detect_in_worker(video, out_jsonl, cfg, start, stop)
    info = probe(video)
    total = expected_samples(info.frame_count, info.fps, cfg["fps"], start, stop)
    if progress:
        progress(0, total, "Loading face detector")
    # A chunk also reads the sampled frame before it, for the same first cut score as one pass.
    before = previous_sample(video, start, cfg["fps"]) if start > 0 else None
    reader = FrameReader(video, sample_fps=cfg["fps"], start=start if before is None else before, stop=stop)

    def shrunk_frames():
        previous_sig = None
        for index, frame in reader:
            sig = colour_signature(frame)
            cut = cut_score(previous_sig, sig)
            previous_sig = sig
            if index >= start:
                yield index, reader.t, cut, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # the detector shrinks it

    done = 0
    with atomic.atomic_path(out_jsonl) as tmp, open(tmp, "w", encoding="utf-8") as out:
        setup = (cfg, make or make_detector, info.width, info.height)
        for index, t, cut, faces in ordered_map(_worker_detector, setup, _detect_one, shrunk_frames(),
                                                workers if make is None else 1):
            record = {"frame": index, "t": round(t, 4), "faces": faces, "cut_score": round(cut, 4)}
            out.write(json.dumps(record) + "\n")
            done += 1
            if progress:
                progress(done, max(total, done), f"Detecting faces: frame {index}")
    return {**info.to_dict(), "frame_count": max(reader.decoded, start), "sampled_frames": done,
            "sample_fps": cfg["fps"], "start": start, "stop": stop}


def _detect_in_worker(video, out_jsonl, cfg, start, stop) -> dict:
    """Run the TensorFlow backend in a separate Python process and return its video facts."""
    request = {"video": str(video), "out": str(out_jsonl), "cfg": cfg, "start": start, "stop": stop}
    proc = subprocess.run(
        [sys.executable, "-m", "facepipe.stages.detect.mtcnn_worker"],
        input=json.dumps(request), capture_output=True, text=True,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise FacepipeError(lines[-1] if lines else f"{video}: mtcnn detector process failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_video_info(path: str | Path, facts: dict) -> None:
    atomic.write_json(path, facts)


def read_detections(path: str | Path) -> list[dict]:
    path = Path(path)
    frames = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                frames.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FacepipeError(
                    f"{path}:{n}: not valid JSON ({exc.msg}); delete the file so detect runs again"
                ) from exc
    return frames
