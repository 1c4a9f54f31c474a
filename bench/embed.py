"""Bench 5: embedding stills per second, dlib (the network read by facepipe, on the default
embed.engine: ONNX Runtime on a CPU) against dlib-native (dlib's own C++ code), on 2 cores, and
the embed job's peak memory.

Both run facepipe's embed stage as the embed job does (embed_stills with the job's two worker
processes) in a fresh process each, on the same stills: those of the crowded 720p bench episode
(built by a default run of `snakemake cluster_target`). Reports stills/s of each over the whole
call (the workers' start, the engine's import and the model load included: a fixed 3-5 s with
torch, under a second with ONNX Runtime, that a longer episode spreads over more stills) and
once the first batch is back, the ratios, the cosine similarity of their vectors, and the peak
memory of that run's embed job (Snakemake's benchmark file: the job and its workers together).
Goal: dlib at least 8 times dlib-native; peak memory under 1.5 GB.

    python bench/embed.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchlib import OUT, embed_in_child, episode, job_benchmarks, machine, snakemake_cmd, timed, write_config
from facepipe.tools.testmedia import make_crowded_video


def run(stills, embedder: str) -> dict:
    out = OUT / f"bench5-{embedder}.npz"
    return {**embed_in_child(stills, out, "embedder", embedder), "npz": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    video = make_crowded_video(OUT / "crowded-videos" / f"crowd720_{int(args.seconds)}s.mp4", args.seconds)
    work = OUT / "bench5"
    write_config(work, video.parent)
    timed(snakemake_cmd(work, "cluster_target"))
    stills = episode(work, video.stem).stills_dir
    run(stills, "dlib")  # warm: the parsed weights' cache, the page cache
    fast, slow = run(stills, "dlib"), run(stills, "dlib-native")
    a, b = np.load(fast["npz"])["vectors"], np.load(slow["npz"])["vectors"]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"machine: {machine()}")
    print(f"stills: {fast['stills']} of the crowded 720p episode ({args.seconds:.0f} s)")
    for name, r in (("dlib", fast), ("dlib-native", slow)):
        print(f"{name}: {r['stills'] / r['seconds']:.1f} stills/s over the whole call ({r['seconds']:.1f} s, 2 worker "
              f"processes, their start and model load included); {r['steady']:.1f} stills/s once the first batch "
              f"is back ({r['start']:.1f} s in)")
    job = job_benchmarks(work, video.stem)["embed"]
    print(f"embed job of the run (dlib): {job['s']:.1f} s, peak memory {job['max_rss']:.0f} MB (goal < 1536)")
    print(f"ratio dlib / dlib-native: {slow['seconds'] / fast['seconds']:.2f} over the whole call; "
          f"{fast['steady'] / slow['steady']:.2f} once running  (goal >= 8)")
    print(f"vectors: min cosine similarity {cos.min():.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
