"""Reading episode videos with OpenCV: probing, and streaming the frames a stage needs.

Frames are decoded one at a time and never all held in memory. Frames a stage does not need
are skipped with grab() (no colour conversion or copy).

Time is the decoder's presentation time of each frame, not its index divided by the frame rate,
so a variable-frame-rate video (phone footage, screen captures) is sampled evenly in real time
and every `t` facepipe writes is the time a player shows. A frame's identity is its index in
decode order; a reader that starts mid-video seeks only when the seek is proven to land on that
index (the container's packet timestamps agree), and otherwise decodes from the top.
Rotation metadata is applied by the decoder: frames and sizes are upright.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

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


def sample_slot(t: float, sample_fps: float) -> int:
    """Which 1/sample_fps slot of the video a presentation time falls in."""
    return math.floor(t * sample_fps + 1e-6)


def sampled_at(t: float, t_before: float | None, sample_fps: float) -> bool:
    """True for the first frame of each 1/sample_fps slot of presentation time: the frame at `t`
    whose previous frame was at `t_before` (None for the first frame of the video). It depends
    on the two frames only, so a chunk makes the same choice as a full pass."""
    return t_before is None or sample_slot(t, sample_fps) != sample_slot(t_before, sample_fps)


def is_sampled(frame: int, fps: float, sample_fps: float) -> bool:
    """sampled_at() for a constant-frame-rate video, by frame index: estimates sample counts
    (progress totals) without decoding."""
    if sample_fps >= fps:
        return True
    slot = math.floor(frame * sample_fps / fps + 1e-9)
    return frame == 0 or slot != math.floor((frame - 1) * sample_fps / fps + 1e-9)


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


@functools.lru_cache(maxsize=8)
def _frame_times(path: str, mtime_ns: int, size: int) -> tuple[float, ...] | None:
    try:
        import av
    except ImportError:  # without PyAV seeks are never trusted: reads start at the top
        return None
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
            if not pts or stream.time_base is None:
                return None
            base = float(stream.time_base)
            return tuple((p - pts[0]) * base for p in pts)
    except Exception:  # noqa: BLE001 - an unreadable container: decode from the top instead
        return None


@functools.lru_cache(maxsize=64)
def _stream_start(path: str, mtime_ns: int, size: int) -> float:
    try:
        import av
    except ImportError:
        return 0.0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.start_time is None or stream.time_base is None:
                return 0.0
            return float(stream.start_time * stream.time_base)
    except Exception:  # noqa: BLE001 - an unreadable container: no shift known
        return 0.0


def stream_start_s(path: str | Path) -> float:
    """Where the video stream's first frame lies on the file's own clock (s). facepipe's times (a
    detection's t, a track's start, the captions) count from that frame, a browser's player from
    the file's zero: it shows facepipe's time t at t + stream_start_s (0.85 s into the shared
    Hamilton clip, whose audio starts first). 0.0 where it cannot be read (no PyAV)."""
    st = Path(path).stat()
    return _stream_start(str(path), st.st_mtime_ns, st.st_size)


def frame_times(path: str | Path) -> tuple[float, ...] | None:
    """Presentation time (s) of every frame, in order, from the container's packet timestamps
    (demuxed, not decoded: about 0.2 s for ten minutes of 1080p); None when they cannot be read."""
    st = Path(path).stat()
    return _frame_times(str(path), st.st_mtime_ns, st.st_size)


def previous_sample(path: str | Path, frame: int, sample_fps: float) -> int | None:
    """The last sampled frame before `frame`, by presentation time (None at the start)."""
    times = frame_times(path)
    if times is None or frame > len(times):
        fps = probe(path).fps
        for i in range(frame - 1, -1, -1):
            if is_sampled(i, fps, sample_fps):
                return i
        return None
    for i in range(frame - 1, -1, -1):
        if sampled_at(times[i], times[i - 1] if i else None, sample_fps):
            return i
    return None


class FrameReader:
    """Stream (frame_index, BGR image) for the frames a stage needs, in order.

    Either `wanted` (frame indices) or `sample_fps` (frames sampled per second of video) selects
    them, or neither for every frame; `start`/`stop` bound the range. After iteration `decoded`
    holds the index one past the last frame the decoder delivered, and `t` the presentation
    time (s) of the frame last yielded.
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
        self.t = 0.0
        self._t_before: float | None = None
        self._frame_interval = 1.0 / self.info.fps

    def _take(self, index: int, t: float) -> bool:
        if index < self.start:
            return False
        if self.wanted is not None:
            return index in self.wanted
        if self.sample_fps is not None:
            return sampled_at(t, self._t_before, self.sample_fps)
        return True

    def _time(self, cap: cv2.VideoCapture) -> float:
        """The grabbed frame's presentation time; a container without usable timestamps (they
        do not increase) is timed at the probed frame rate."""
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if self._t_before is not None and not (t > self._t_before):
            t = self._t_before + self._frame_interval
        return t

    def _seek(self, cap: cv2.VideoCapture) -> int:
        """Position `cap` so the next grab() is frame `start`, reading frame start-1 for its time.
        Returns the index of the next frame (0 where the seek could not be proven exact)."""
        times = frame_times(self.path)
        before = self.start - 1
        if times is None or before >= len(times):
            return 0
        cap.set(cv2.CAP_PROP_POS_FRAMES, before)
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != before or not cap.grab():
            return 0
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if abs(t - times[before]) > 0.25 * self._frame_interval:
            return 0  # landed elsewhere (variable frame rate, inexact index): not frame start-1
        self._t_before = t
        return self.start

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        cap = _open(self.path)
        last_wanted = max(self.wanted) if self.wanted else (-1 if self.wanted is not None else None)
        index = 0
        try:
            if self.start > 0:
                index = self._seek(cap)
                if index == 0:  # not provably exact: decode from the top instead
                    cap.release()
                    cap = _open(self.path)
                    self._t_before = None
            while self.stop is None or index < self.stop:
                if last_wanted is not None and index > last_wanted:
                    break
                if not cap.grab():
                    break
                t = self._time(cap)
                if self._take(index, t):
                    ok, frame = cap.retrieve()
                    if ok and frame is not None:
                        self.t = t
                        yield index, frame
                self._t_before = t
                index += 1
                self.decoded = index
        finally:
            cap.release()
        if self.decoded == 0 and self.start == 0 and (self.wanted is None or self.wanted):
            raise FacepipeError(
                f"{self.path}: no frame could be decoded (corrupt or truncated video); "
                "replace it with a working copy"
            )
