"""Bench 4: peak memory of detect on 1080p video, 2 minutes against 10 minutes.

Frames are streamed, never all held: peak RSS must not grow with the length of the episode.
Each run is a fresh process (`facepipe.stages.detect.detect_frames` on the whole video); detection is
sampled at 0.5 frames/s here, since memory does not depend on how many frames are detected
and every frame is still decoded. Goal: the two peaks within 10 % of each other, under 2 GB.

    python bench/memory.py
"""

from __future__ import annotations

import subprocess
import sys

from benchlib import OUT, machine, make_video

CHILD = """
import resource, sys
from facepipe.base.config import defaults
from facepipe.stages.detect import detect_frames
cfg = {**defaults()["detect"], "fps": 0.5}
facts = detect_frames(sys.argv[1], sys.argv[2], cfg, crops_out=sys.argv[2] + ".crops.zip",
                      crop_margin=defaults()["stills"]["margin"])  # as the detect job runs it, crops too
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, facts["frame_count"])
"""


def peak_mb(video) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(video), str(OUT / "bench4.jsonl")],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    short = make_video(OUT / "ep1080_120s.mp4", 1920, 1080, 120)
    long = make_video(OUT / "ep1080_600s.mp4", 1920, 1080, 600)
    a, fa = peak_mb(short)
    b, fb = peak_mb(long)
    print(f"machine: {machine()}")
    print(f"detect peak RSS, 1080p  2 min ({fa} frames): {a:.0f} MB")
    print(f"detect peak RSS, 1080p 10 min ({fb} frames): {b:.0f} MB")
    print(f"10 min / 2 min: {b / a:.3f}  (goal: within 10 %, both under 2048 MB)")


if __name__ == "__main__":
    main()
