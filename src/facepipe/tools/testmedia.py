"""Test episodes built from the shared test media (../shared/data, or $FACEPIPE_SHARED_DATA), for
the tests and the benchmarks: nothing is copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from ..base.images import letterbox
from ..base.project import ROOT

SHARED = Path(os.environ.get("FACEPIPE_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
SHARED_VIDEOS = SHARED / "videos"
SHARED_FACES = SHARED / "faces"
CLIPS = ("hamilton_clip.mp4", "walking_and_pause.gif")


def source_frames():
    """Frames of the shared clips in turn (hamilton, then the gif): real faces, real cuts."""
    for name in CLIPS:
        cap = cv2.VideoCapture(str(SHARED_VIDEOS / name))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
        cap.release()


def make_video(path: Path, width: int, height: int, seconds: float, fps: float = 29.97) -> Path:
    """A test episode: the shared clips letterboxed to width x height and looped for `seconds`
    (built once: an existing file is kept)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp-" + path.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    need, written = int(seconds * fps), 0
    while written < need:
        for frame in source_frames():
            writer.write(letterbox(frame, width, height))
            written += 1
            if written >= need:
                break
    writer.release()
    tmp.rename(path)
    return path
