"""Face detectors: a whole RGB frame in, faces out as {"box", "score", "landmarks"} in the frame's
pixels (landmarks: eyes, nose, mouth corners, as MTCNN reports them).

Backends: `facenet` (facenet-pytorch's MTCNN, in process) and `mtcnn` (the TensorFlow package,
always in its own process, since TensorFlow and torch in one process can crash).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from ...base.errors import FacepipeError

MTCNN_MIN_FACE = 20  # smallest face MTCNN's first network finds, in pixels
# Stage thresholds of facenet-pytorch's MTCNN (its defaults: 0.6, 0.7, 0.7). A first stage at 0.7
# hands fewer candidate boxes to the later networks: about 12 % faster at the same recall of
# faces over 40 px (bench/detect_throughput.py). 0.8 gains 3 % more but drops recall to 0.971.
MTCNN_THRESHOLDS = [0.7, 0.7, 0.7]

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


class Downscaling:
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


class FacenetDetector(Downscaling):
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
            if cascade == "opencv":  # faster again (docs/speed.md); boxes differ by a few pixels
                self.opencv_cascade = MTCNNCascade(self.model.pnet, self.model.rnet, self.model.onet,
                                            MTCNN_MIN_FACE, MTCNN_THRESHOLDS)

    def detect_shrunk(self, small: np.ndarray) -> list[dict]:
        """Faces, in source-frame pixels, on a frame already passed through shrink()."""
        if self.opencv_cascade is not None:
            boxes, scores, marks = self.opencv_cascade.detect(small)
        else:  # facenet-pytorch's own cascade (the default, and always on a GPU)
            boxes, scores, marks = self.model.detect(small, landmarks=True)
        return _faces(boxes, scores, marks, self.scale, self.min_score)


class TensorflowMTCNNDetector(Downscaling):
    """The `mtcnn` package. Only ever constructed inside its own process (mtcnn_worker)."""

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
    """The in-process detector of detect.backend `facenet` (`mtcnn` runs in its own process:
    frames.detect_frames hands it to the mtcnn_worker module)."""
    if cfg["backend"] == "facenet":
        return FacenetDetector(cfg.get("device", "cpu"), cfg["min_face_px"], cfg["min_score"],
                               cfg.get("cascade", "facenet"))
    raise FacepipeError(f"detect.backend {cfg['backend']!r} is unknown; use 'facenet' or 'mtcnn'")


