"""Face crops kept by the detect job for the stills job, so an episode is decoded once.

While a detect chunk has a sampled frame decoded, it cuts every face it found there as stills
would (stills.margin around the box, JPEG at JPEG_QUALITY) and scores it (quality()). The crops
of a chunk go into one zip archive (members stored, not compressed again: they are JPEGs) with an
index of one JSON line per face: its frame, box, quality, and box and landmarks in the crop.
The stills job then picks each track's best faces from the index and copies their JPEG bytes,
without reading the video (docs/speed.md: "Decode once").

The quality of a face (0-1) weighs its size, sharpness (variance of the Laplacian), detection
score and how frontal it is (nose between the eyes).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from . import atomic
from .config import defaults
from .errors import FacepipeError
from .images import face_crop

JPEG_QUALITY = 95  # the stills' JPEG quality
INDEX = "index.jsonl"
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


def quality(frame: np.ndarray, det: dict, rgb: bool = False) -> float:
    """A face's quality on a frame (BGR, or RGB with rgb=True: the same grey, the same score)."""
    x1, y1, x2, y2 = (int(round(v)) for v in det["box"])
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    gray = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
    size = min(1.0, (y2 - y1) / 120.0)
    score = float(np.clip((det["score"] - SCORE_FLOOR) / SCORE_SPAN, 0.0, 1.0))
    return round(0.3 * size + 0.3 * sharpness(gray) + 0.1 * score + 0.3 * frontal_score(det.get("landmarks")), 4)


def cut_faces(rgb: np.ndarray, faces: list[dict], margin: float) -> list[tuple[float, bytes, list, list | None]]:
    """(quality, JPEG bytes, box in crop, landmarks in crop) of each face on an RGB frame."""
    out = []
    for det in faces:
        crop, box_in_crop, landmarks_in_crop = face_crop(rgb, det, margin)
        jpeg = atomic.encode_image(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), quality=JPEG_QUALITY)
        out.append((quality(rgb, det, rgb=True), jpeg, box_in_crop, landmarks_in_crop))
    return out


def member(frame: int, face: int) -> str:
    return f"f{frame:07d}_{face}.jpg"


@contextmanager
def crop_archive(path: str | Path) -> Iterator:
    """A writer of a chunk's crops, published whole when the block ends: add(frame, faces, cuts)
    with a frame's faces (detections) and their cut_faces()."""
    index: list[str] = []
    with atomic.atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        def add(frame: int, faces: list[dict], cuts: list) -> None:
            for face, (det, (q, jpeg, box_in_crop, landmarks_in_crop)) in enumerate(zip(faces, cuts)):
                archive.writestr(member(frame, face), jpeg)
                index.append(json.dumps({"frame": frame, "face": face, "box": det["box"], "quality": q,
                                         "box_in_crop": box_in_crop, "landmarks_in_crop": landmarks_in_crop}))

        yield add
        archive.writestr(INDEX, "\n".join(index) + ("\n" if index else ""))


class Crops:
    """The crops of an episode's chunk archives, found by a detection's frame and box."""

    def __init__(self, paths: list[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.index: dict[tuple[int, tuple], tuple[int, dict]] = {}
        for k, path in enumerate(self.paths):
            try:
                with zipfile.ZipFile(path) as archive:
                    lines = archive.read(INDEX).decode("utf-8").splitlines()
            except (OSError, KeyError, zipfile.BadZipFile) as exc:
                raise FacepipeError(f"{path}: not a readable crop archive ({exc}); delete it so detect "
                                    "runs again") from exc
            for line in lines:
                rec = json.loads(line)
                self.index[(rec["frame"], tuple(rec["box"]))] = (k, rec)
        self._open: dict[int, zipfile.ZipFile] = {}

    def _entry(self, det: dict) -> tuple[int, dict]:
        """(archive number, index line) of a detection, found by its frame and box."""
        try:
            return self.index[(det["frame"], tuple(det["box"]))]
        except KeyError:
            raise FacepipeError(f"{self.paths[0].parent}: no crop of the face at frame {det['frame']} "
                                f"box {det['box']}; delete the folder so detect runs again") from None

    def find(self, det: dict) -> dict:
        """The index line of a detection (frame, box): its quality and its box and landmarks in the crop."""
        return self._entry(det)[1]

    def jpeg(self, det: dict) -> bytes:
        k, rec = self._entry(det)
        if k not in self._open:
            self._open[k] = zipfile.ZipFile(self.paths[k])
        return self._open[k].read(member(rec["frame"], rec["face"]))

    def close(self) -> None:
        for archive in self._open.values():
            archive.close()
        self._open.clear()
