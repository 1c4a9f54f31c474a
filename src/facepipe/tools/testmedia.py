"""Test episodes built from the shared test media (../shared/data, or $FACEPIPE_SHARED_DATA), for
the tests and the benchmarks: nothing is copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

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


def make_crowded_video(path: Path, seconds: float, fps: float = 29.97, grid: int = 2) -> Path:
    """A crowded 720p test episode: each frame a grid x grid mosaic of the shared clips at their
    own size (1280x720 for 2 x 2), each tile a different moment of them, so a frame shows several
    people and many faces 40-60 px high (built once: an existing file is kept)."""
    if path.exists():
        return path
    width, height = 1280, 720
    tile_w, tile_h = width // grid, height // grid
    frames = [letterbox(f, tile_w, tile_h) for f in source_frames()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp-" + path.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    offsets = [k * len(frames) // (grid * grid) for k in range(grid * grid)]
    for n in range(int(seconds * fps)):
        rows = []
        for r in range(grid):
            rows.append(np.hstack([frames[(n + offsets[r * grid + c]) % len(frames)] for c in range(grid)]))
        writer.write(np.vstack(rows))
    writer.release()
    tmp.rename(path)
    return path
