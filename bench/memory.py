"""Bench 4: peak memory of a detect job on 1080p video, 2 minutes against 10 minutes.

Frames are streamed, never all held: the job's memory must not grow with the length of the
episode. Each run is a fresh process running `facepipe.stages.detect.detect_frames` on the whole
video as the detect job does: its worker processes (`--workers`, 2 as in both profiles), the crop
archive written too. On the 1080p episode detection is sampled at 0.5 frames/s (every frame is
still decoded); `--episode crowded` is the crowded 720p episode (a 2 x 2 mosaic of the shared
clips, 7-8 faces a frame) at the default 4 sampled frames/s, the most a detect job holds.

The job is the process and its workers, so the bench samples the whole tree every 0.1 s and
reports the peak of its summed PSS (each page counted once, shared between the forked workers:
what a cgroup, and so SLURM, charges the job) and of its summed RSS (shared pages counted once
per process: what Snakemake's benchmark files add up as `max_rss`). Goal: both peaks within
10 % of each other between 2 and 10 minutes, under 2 GB (the SLURM profile asks 3000 MB).

    python bench/memory.py [--workers 2] [--episode 1080p|crowded]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil  # installed with Snakemake (a dependency of facepipe): PSS needs smaps, which it reads

from benchlib import OUT, machine, make_video
from facepipe.tools.testmedia import make_crowded_video

CHILD = """
import sys
from facepipe.base.config import defaults
from facepipe.stages.detect import detect_frames
cfg = {**defaults()["detect"], **({"fps": float(sys.argv[4])} if sys.argv[4] != "default" else {})}
facts = detect_frames(sys.argv[1], sys.argv[2], cfg, workers=int(sys.argv[3]), crops_out=sys.argv[2] + ".crops.zip",
                      crop_margin=defaults()["stills"]["margin"])  # as the detect job runs it, crops too
print(facts["frame_count"])
"""


def _tree_mb(root: psutil.Process) -> tuple[float, float, int]:
    """Summed PSS and RSS of `root` and its descendants, MB, and how many processes."""
    pss = rss = 0
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:  # a worker that just ended
            continue
        pss += info.pss
        rss += info.rss
    return pss / 2**20, rss / 2**20, len(procs)


def peak_mb(video, workers: int, fps: str) -> tuple[float, float, int, int]:
    """The job's peak summed PSS and RSS (MB), the most processes seen, and the frames decoded."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(video), str(OUT / "bench4.jsonl"), str(workers), fps],
                            stdout=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    pss = rss = 0.0
    most = 0
    while proc.poll() is None:
        p, r, n = _tree_mb(root)
        pss, rss, most = max(pss, p), max(rss, r), max(most, n)
        time.sleep(0.1)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"detect on {video} failed (exit {proc.returncode})")
    return pss, rss, most, int(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2, help="detect worker processes (a job's threads)")
    ap.add_argument("--episode", default="1080p", choices=["1080p", "crowded"],
                    help="1080p: the shared clips upscaled, 0.5 sampled frames/s; crowded: 720p, 4 sampled frames/s")
    args = ap.parse_args()
    if args.episode == "crowded":
        short, long = (make_crowded_video(OUT / "memory-crowded" / f"crowd720_{s}s.mp4", s) for s in (120, 600))
        fps, what = "default", "crowded 720p, 4 sampled frames/s"
    else:
        short, long = (make_video(OUT / f"ep1080_{s}s.mp4", 1920, 1080, s) for s in (120, 600))
        fps, what = "0.5", "1080p, 0.5 sampled frames/s"
    a = peak_mb(short, args.workers, fps)
    b = peak_mb(long, args.workers, fps)
    print(f"machine: {machine()}")
    print(f"detect job, {what}, {args.workers} workers ({a[2]} and {b[2]} processes at most)")
    print(f"   2 min ({a[3]} frames decoded): peak PSS {a[0]:.0f} MB, peak RSS summed {a[1]:.0f} MB")
    print(f"  10 min ({b[3]} frames decoded): peak PSS {b[0]:.0f} MB, peak RSS summed {b[1]:.0f} MB")
    print(f"10 min / 2 min: PSS {b[0] / a[0]:.3f}, RSS {b[1] / a[1]:.3f}  (goal: within 10 %, under 2048 MB)")


if __name__ == "__main__":
    main()
