"""Face detectors: a whole RGB frame in, faces out as {"box", "score", "landmarks"} in the frame's
pixels (landmarks: eyes, nose, mouth corners, as MTCNN reports them).

Backends: `facenet` (facenet-pytorch's MTCNN, in process), `mtcnn` (the TensorFlow package,
always in its own process, since TensorFlow and torch in one process can crash) and `blazeface`
(MediaPipe's BlazeFace on the LiteRT runtime, blazeface.py).

The frame shrink depends on the source (`source_scale`): a face at least `detect.min_face_px` high
on a 720p frame is kept on any source, so the smallest face sought scales with the frame's short
side, but never below the 20 px MTCNN finds at native size. A frame is shrunk so that this
smallest face just meets the detector's 20 px minimum: on 720p with 40 px, half size (the shrink
every video had before it followed the source, and the one reference photos keep); on 1080p a
third; on 360p and smaller, not at all.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from ...base.errors import FacepipeError

MTCNN_MIN_FACE = 20  # smallest face MTCNN's first network finds, in pixels
REFERENCE_SHORT_SIDE = 720  # detect.min_face_px is a face height on a frame this high (720p)
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


def source_scale(min_face_px: float, width: int, height: int) -> float:
    """How much a width x height frame is shrunk for detection (see the module's docstring)."""
    smallest = max(MTCNN_MIN_FACE, float(min_face_px) * min(width, height) / REFERENCE_SHORT_SIDE)
    return min(1.0, MTCNN_MIN_FACE / smallest)


class Downscaling:
    """Detect on a frame shrunk by `scale` (source_scale); faces are returned in source pixels."""

    def __init__(self, scale: float):
        self.scale = float(scale)

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
    def __init__(self, device: str, scale: float, min_score: float, cascade: str):
        """device, min_score, cascade: as detect.device, detect.min_score and detect.cascade; scale:
        source_scale. cascade: `facenet` (facenet-pytorch's steps on the shrunk frame), `opencv`
        (facepipe's own: P-Net on the shrunk frame, R-Net and O-Net on crops of the full frame; CPU
        only) or `auto` (facepipe's when the frame is shrunk, facenet-pytorch's when it is not)."""
        super().__init__(scale)
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
        self.follower = None  # the cascade that finds the previous frame's faces again (follow)
        if device == "cpu":
            # Channels-last weights let oneDNN run the three networks' convolutions and poolings
            # about 30 % faster per frame on a CPU, with identical boxes (bench/detect_throughput.py).
            self.model.to(memory_format=torch.channels_last)
            self.follower = MTCNNCascade(self.model.pnet, self.model.rnet, self.model.onet,
                                         MTCNN_MIN_FACE, MTCNN_THRESHOLDS)
            if cascade == "opencv" or cascade == "auto" and self.scale < 1.0:  # docs/speed.md
                self.opencv_cascade = self.follower

    def detect(self, rgb: np.ndarray) -> list[dict]:
        """Faces, in source-frame pixels, on a full-size RGB frame."""
        if self.opencv_cascade is not None:  # shrinks for P-Net only: see MTCNNCascade.detect
            boxes, scores, marks = self.opencv_cascade.detect(rgb, self.scale)
            return _faces(boxes, scores, marks, 1.0, self.min_score)
        return self.detect_shrunk(self.shrink(rgb))

    def detect_live(self, rgb: np.ndarray) -> tuple[list[dict], np.ndarray]:
        """detect(), and the boxes to follow on the next frame (follow): every face the cascade
        passed, also those under detect.min_score, which may score higher on the next frame."""
        if self.opencv_cascade is not None:
            boxes, scores, marks = self.opencv_cascade.detect(rgb, self.scale)
            return _faces(boxes, scores, marks, 1.0, self.min_score), boxes
        boxes, scores, marks = self.model.detect(self.shrink(rgb), landmarks=True)
        live = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, dtype=float) / self.scale
        return _faces(boxes, scores, marks, self.scale, self.min_score), live

    def follow(self, rgb: np.ndarray, live: np.ndarray) -> tuple[list[dict], np.ndarray]:
        """The faces near `live` (the previous frame's boxes from detect_live or follow) on a full-size
        RGB frame, and the boxes to follow next; a face that fades below the cascade's thresholds
        is dropped. CPU only (follower is None on a GPU)."""
        boxes, scores, marks = self.follower.follow(rgb, live)
        return _faces(boxes, scores, marks, 1.0, self.min_score), boxes

    def detect_shrunk(self, small: np.ndarray) -> list[dict]:
        """Faces, in source-frame pixels, on a frame already passed through shrink() (facenet-pytorch's
        own cascade: detect.cascade facenet, auto on a frame not shrunk, and always on a GPU)."""
        boxes, scores, marks = self.model.detect(small, landmarks=True)
        return _faces(boxes, scores, marks, self.scale, self.min_score)


class TensorflowMTCNNDetector(Downscaling):
    """The `mtcnn` package. Only ever constructed inside its own process (mtcnn_worker)."""

    _ORDER = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    def __init__(self, scale: float, min_score: float):
        super().__init__(scale)
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


class BlazeFaceBackend(Downscaling):
    """BlazeFace's short-range model over a pyramid of the shrunk frame (blazeface.py)."""

    def __init__(self, scale: float, min_score: float):
        super().__init__(scale)
        from .blazeface import BlazeFaceDetector

        self.model = BlazeFaceDetector("short", min_score=min_score, min_face_px=MTCNN_MIN_FACE, tiling="pyramid")

    def detect_shrunk(self, small: np.ndarray) -> list[dict]:
        faces = self.model.detect(small)
        boxes = [f["box"] for f in faces]
        return _faces(boxes or None, [f["score"] for f in faces], [f["landmarks"] for f in faces], self.scale, 0.0)


def make_detector(cfg: dict, width: int, height: int) -> FaceDetector:
    """The in-process detector of detect.backend `facenet` or `blazeface` for frames of width x
    height (`mtcnn` runs in its own process: frames.detect_frames hands it to mtcnn_worker)."""
    scale = source_scale(cfg["min_face_px"], width, height)
    if cfg["backend"] == "facenet":
        return FacenetDetector(cfg["device"], scale, cfg["min_score"], cfg["cascade"])
    if cfg["backend"] == "blazeface":
        if str(cfg["device"]) != "cpu":
            raise FacepipeError(f"detect.backend blazeface runs on the CPU only; set detect.device: cpu "
                                f"(or detect.backend: facenet for {cfg['device']})")
        return BlazeFaceBackend(scale, cfg["min_score"])
    raise FacepipeError(f"detect.backend {cfg['backend']!r} is unknown; use 'facenet', 'blazeface' or 'mtcnn'")


def photo_detector(device: str) -> FacenetDetector:
    """The detector of reference photos (cluster.references), whatever the episode's detect settings:
    facenet-pytorch's MTCNN with its own cascade on `device`, a photo shrunk as a 720p frame is at the
    schema's default detect.min_face_px, faces kept from the default detect.min_score."""
    from ...base.config import defaults

    detect = defaults()["detect"]
    scale = source_scale(detect["min_face_px"], REFERENCE_SHORT_SIDE, REFERENCE_SHORT_SIDE)
    return FacenetDetector(device, scale, detect["min_score"], "facenet")


