"""Shared pieces of facepipe's benchmarks: test media built from ../shared/data, timed runs.

Benchmarks print ratios against a baseline measured in the same run, so the figures compare
like with like on whatever machine runs them. They are never run as timed tests.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEPIPE_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
OUT = REPO / "bench" / "out"
BIN = Path(sys.executable).parent


def source_frames(limit: int | None = None):
    """Frames of the shared clips in turn (hamilton, then the gif): real faces, real cuts."""
    for name in ("hamilton_clip.mp4", "walking_and_pause.gif"):
        cap = cv2.VideoCapture(str(SHARED / "videos" / name))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
        cap.release()


def make_video(path: Path, width: int, height: int, seconds: float, fps: float = 29.97) -> Path:
    """A test episode: the shared clips upscaled to width x height and looped for `seconds`."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp-" + path.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    need = int(seconds * fps)
    written = 0
    while written < need:
        for frame in source_frames():
            h, w = frame.shape[:2]
            s = min(width / w, height / h)
            img = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
            canvas = np.zeros((height, width, 3), np.uint8)
            y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
            writer.write(canvas)
            written += 1
            if written >= need:
                break
    writer.release()
    tmp.rename(path)
    return path


def timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:3]))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def snakemake_cmd(workdir: Path, target: str, *extra: str) -> list[str]:
    return [str(BIN / "snakemake"), target, "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir),
            "--cores", str(os.cpu_count() or 2), "--configfile", str(workdir / "bench-config.yaml"), *extra]


def write_config(workdir: Path, videos: Path, **sections) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bench-config.yaml").write_text(yaml.safe_dump({"videos_dir": str(videos), "data_root": "data", **sections}))


def machine() -> str:
    import platform

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))) // 2**20
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB"
