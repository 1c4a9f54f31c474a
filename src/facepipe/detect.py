"""Detect: MTCNN faces on frames sampled at detect.fps, one JSON line per sampled frame.

Backends: `facenet` (facenet-pytorch, in process) and `mtcnn` (the TensorFlow package, always
in its own process, since TensorFlow and torch in one process can crash).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from . import atomic
from .errors import FacepipeError
from .shots import colour_signature, cut_score
from .video import FrameReader, previous_sample, probe
from .workers import ordered_map

MTCNN_MIN_FACE = 20  # smallest face MTCNN's first network finds, in pixels
# Stage thresholds of facenet-pytorch's MTCNN (its defaults: 0.6, 0.7, 0.7). A first stage at 0.7
# hands fewer candidate boxes to the later networks: about 12 % faster at the same recall of
# faces over 40 px (bench/detect_throughput.py). 0.8 gains 3 % more but drops recall to 0.971.
MTCNN_THRESHOLDS = [0.7, 0.7, 0.7]

Progress = Callable[..., None]


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[dict]: ...

    def shrink(self, rgb: np.ndarray) -> np.ndarray: ...

    def detect_shrunk(self, small: np.ndarray) -> list[dict]: ...


def _round(values, nd: int = 1) -> list:
    return [round(float(v), nd) for v in values]


def _faces(boxes, scores, landmarks, scale: float, min_score: float) -> list[dict]:
    faces = []
    if boxes is None:
        return faces
    for box, score, marks in zip(boxes, scores, landmarks):
        if score is None or float(score) < min_score:
            continue
        box = np.asarray(box, dtype=float) / scale
        marks = np.asarray(marks, dtype=float).reshape(5, 2) / scale
        faces.append(
            {
                "box": _round(box),
                "score": round(float(score), 4),
                "landmarks": [_round(p) for p in marks],
            }
        )
    return faces


class _Downscaling:
    """Detect on a frame shrunk so that a face of min_face_px still meets MTCNN's minimum."""

    def __init__(self, min_face_px: float):
        self.scale = min(1.0, MTCNN_MIN_FACE / float(min_face_px))

    def detect(self, rgb: np.ndarray) -> list[dict]:
        """Faces, in source-frame pixels, on a full-size RGB frame."""
        return self.detect_shrunk(self.shrink(rgb))

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        if self.scale >= 1.0:
            return rgb
        h, w = rgb.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class FacenetDetector(_Downscaling):
    def __init__(self, device: str = "cpu", min_face_px: float = 40, min_score: float = 0.9,
                 cascade: str = "facenet"):
        super().__init__(min_face_px)
        import torch
        from facenet_pytorch import MTCNN

        from .mtcnn_cascade import MTCNNCascade

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise FacepipeError(
                f"detect.device is {device!r} but no CUDA device is available; set detect.device: cpu"
            )
        self.min_score = min_score
        self.model = MTCNN(keep_all=True, device=device, min_face_size=MTCNN_MIN_FACE, thresholds=MTCNN_THRESHOLDS)
        self.opencv_cascade = None
        if device == "cpu":
            # Channels-last weights let oneDNN run the three networks' convolutions and poolings
            # about 30 % faster per frame on a CPU, with identical boxes (bench/detect_throughput.py).
            self.model.to(memory_format=torch.channels_last)
            if cascade == "opencv":  # about a quarter faster again; boxes differ by a few pixels
                self.opencv_cascade = MTCNNCascade(self.model.pnet, self.model.rnet, self.model.onet,
                                            MTCNN_MIN_FACE, MTCNN_THRESHOLDS)

    def detect_shrunk(self, small: np.ndarray) -> list[dict]:
        """Faces, in source-frame pixels, on a frame already passed through shrink()."""
        if self.opencv_cascade is not None:
            boxes, scores, marks = self.opencv_cascade.detect(small)
        else:  # facenet-pytorch's own cascade (the default, and always on a GPU)
            boxes, scores, marks = self.model.detect(small, landmarks=True)
        return _faces(boxes, scores, marks, self.scale, self.min_score)


class TensorflowMTCNNDetector(_Downscaling):
    """The `mtcnn` package. Only ever constructed inside the worker process (facepipe.mtcnn_worker)."""

    _ORDER = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    def __init__(self, min_face_px: float = 40, min_score: float = 0.9):
        super().__init__(min_face_px)
        try:
            from mtcnn import MTCNN
        except ImportError as exc:
            raise FacepipeError(
                "detect.backend is 'mtcnn' but the mtcnn package is not installed; "
                "run pip install 'facepipe[mtcnn]' or set detect.backend: facenet"
            ) from exc
        self.min_score = min_score
        self.model = MTCNN()

    def detect_shrunk(self, small: np.ndarray) -> list[dict]:
        found = self.model.detect_faces(small)
        boxes, scores, marks = [], [], []
        for f in found:
            x, y, w, h = f["box"]
            boxes.append([x, y, x + w, y + h])
            scores.append(f["confidence"])
            marks.append([f["keypoints"][k] for k in self._ORDER])
        return _faces(boxes, scores, marks, self.scale, self.min_score)


def make_detector(cfg: dict) -> FaceDetector:
    if cfg["backend"] == "facenet":
        return FacenetDetector(cfg.get("device", "cpu"), cfg["min_face_px"], cfg["min_score"],
                               cfg.get("cascade", "facenet"))
    if cfg["backend"] == "mtcnn-inprocess":
        return TensorflowMTCNNDetector(cfg["min_face_px"], cfg["min_score"])
    raise FacepipeError(f"detect.backend {cfg['backend']!r} is unknown; use 'facenet' or 'mtcnn'")


def expected_samples(frame_count: int, fps: float, sample_fps: float, start: int = 0, stop: int | None = None) -> int:
    """How many frames of [start, stop) video.is_sampled() picks: one per 1/sample_fps slot begun."""
    stop = frame_count if stop is None else min(stop, frame_count)
    if stop <= start:
        return 0
    if sample_fps >= fps:
        return stop - start

    def slot(i: int) -> int:
        return math.floor(i * sample_fps / fps + 1e-9)

    return slot(stop - 1) - slot(start - 1)


def _worker_detector(cfg: dict) -> FaceDetector:
    import torch

    torch.set_num_threads(1)  # one thread per worker process: see facepipe.workers
    return make_detector(cfg)


def _detect_one(detector: FaceDetector, item):
    index, t, cut, small = item
    return index, t, cut, detector.detect_shrunk(small)


def detect_frames(
    video: str | Path,
    out_jsonl: str | Path,
    cfg: dict,
    progress: Progress | None = None,
    start: int = 0,
    stop: int | None = None,
    workers: int = 1,
) -> dict:
    """Run the detector on the sampled frames in [start, stop) and write JSON lines atomically.

    `workers` > 1 spreads detection over that many processes (facenet backend). Returns the
    video facts the later stages need (fps, decoded frame count, size).
    """
    if cfg["backend"] == "mtcnn":
        return _detect_in_worker(video, out_jsonl, cfg, start, stop)
    info = probe(video)
    total = expected_samples(info.frame_count, info.fps, cfg["fps"], start, stop)
    if progress:
        progress(0, total, "Loading face detector")
    shrinker = _Downscaling(cfg["min_face_px"])
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
                yield index, reader.t, cut, shrinker.shrink(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))

    done = 0
    with atomic.atomic_path(out_jsonl) as tmp, open(tmp, "w", encoding="utf-8") as out:
        workers = workers if cfg["backend"] == "facenet" else 1
        for index, t, cut, faces in ordered_map(_worker_detector, (cfg,), _detect_one, shrunk_frames(), workers):
            record = {"frame": index, "t": round(t, 4), "faces": faces, "cut_score": round(cut, 4)}
            out.write(json.dumps(record) + "\n")
            done += 1
            if progress:
                progress(done, max(total, done), f"Detecting faces: frame {index}")
    return {**info.to_dict(), "frame_count": max(reader.decoded, start), "sampled_frames": done,
            "sample_fps": cfg["fps"], "start": start, "stop": stop}


def _detect_in_worker(video, out_jsonl, cfg, start, stop) -> dict:
    """Run the TensorFlow backend in a separate Python process and return its video facts."""
    request = {"video": str(video), "out": str(out_jsonl), "cfg": {**cfg, "backend": "mtcnn-inprocess"},
               "start": start, "stop": stop}
    proc = subprocess.run(
        [sys.executable, "-m", "facepipe.mtcnn_worker"],
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
