"""Reading episode videos with OpenCV: probing, and streaming the frames a stage needs.

Frames are decoded one at a time and never all held in memory. Frames a stage does not need
are skipped with grab() (no colour conversion or copy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .errors import FacepipeError


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as reported by the container; may be an estimate
    width: int
    height: int

    def to_dict(self) -> dict:
        return asdict(self)


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise FacepipeError(f"{path}: video file not found; check videos_dir or restore the file")
    if path.stat().st_size == 0:
        raise FacepipeError(f"{path}: video file is empty (0 bytes); replace it with a complete copy")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise FacepipeError(
            f"{path}: cannot be decoded as a video (corrupt or not a video); replace it with a working copy"
        )
    return cap


def probe(path: str | Path) -> VideoInfo:
    path = Path(path)
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 25.0  # containers without a usable rate (some GIFs): assume PAL timing
        return VideoInfo(
            fps=float(fps),
            frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        cap.release()


def is_sampled(frame: int, fps: float, sample_fps: float) -> bool:
    """True for the first frame of each 1/sample_fps slot. Stateless, so any range of frames
    (a chunk) makes the same choice as a full pass."""
    if sample_fps >= fps:
        return True
    slot = math.floor(frame * sample_fps / fps + 1e-9)
    return frame == 0 or slot != math.floor((frame - 1) * sample_fps / fps + 1e-9)


class FrameReader:
    """Stream (frame_index, BGR image) for the frames a stage needs, in order.

    Either `wanted` (frame indices) or `sample_fps` (frames sampled per second of video) selects
    them, or neither for every frame; `start`/`stop` bound the range. After iteration `decoded`
    holds the index one past the last frame the decoder delivered.
    """

    def __init__(
        self,
        path: str | Path,
        wanted: Iterable[int] | None = None,
        sample_fps: float | None = None,
        start: int = 0,
        stop: int | None = None,
    ):
        self.path = Path(path)
        self.info = probe(self.path)
        self.wanted = set(wanted) if wanted is not None else None
        self.sample_fps = sample_fps
        self.start = start
        self.stop = stop
        self.decoded = start

    def _take(self, index: int) -> bool:
        if index < self.start:
            return False
        if self.wanted is not None:
            return index in self.wanted
        if self.sample_fps is not None:
            return is_sampled(index, self.info.fps, self.sample_fps)
        return True

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        cap = _open(self.path)
        last_wanted = max(self.wanted) if self.wanted else (-1 if self.wanted is not None else None)
        index = 0
        try:
            if self.start > 0:
                cap.set(cv2.CAP_PROP_POS_FRAMES, self.start)
                index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
                if index != self.start:  # inexact seek: read from the top instead
                    cap.release()
                    cap = _open(self.path)
                    index = 0
            while self.stop is None or index < self.stop:
                if last_wanted is not None and index > last_wanted:
                    break
                if not cap.grab():
                    break
                if self._take(index):
                    ok, frame = cap.retrieve()
                    if ok and frame is not None:
                        yield index, frame
                index += 1
                self.decoded = index
        finally:
            cap.release()
        if self.decoded == 0 and self.start == 0 and (self.wanted is None or self.wanted):
            raise FacepipeError(
                f"{self.path}: no frame could be decoded (corrupt or truncated video); "
                "replace it with a working copy"
            )
