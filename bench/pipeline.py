"""Bench 2: the whole pipeline against its own detect stage, and the real-time factor at 720p.

Runs `snakemake cluster_target` on a fresh data root for a 720p test episode, then reads each
stage's own time from the benchmark files Snakemake writes for every job
(harvest/{ep}/benchmarks/*.tsv; detect: its chunks and the gather job). Reports wall / detect and
video seconds per wall second at 4 sampled frames a second.

    python bench/pipeline.py [--seconds 300] [--episode bench|crowded] [--set SECTION.KEY=VALUE ...]

Goal: wall / detect <= 1.25 on both episodes, and >= 4x real time on the bench episode.
"""

from __future__ import annotations

import argparse
import shutil

import yaml

from benchlib import OUT, machine, make_video, snakemake_cmd, stage_seconds, timed, write_config
from facepipe.tools.testmedia import make_crowded_video


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--episode", default="bench", choices=["bench", "crowded"],
                    help="bench: the shared clips upscaled to 720p; crowded: a 2 x 2 mosaic of them")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a config setting to measure instead of its default, e.g. stills.per_track=1")
    args = ap.parse_args()
    sections: dict = {}
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = yaml.safe_load(value)
    # one video per folder: the folder is the run's videos_dir, and every video in it is built
    folder = OUT / f"pipeline-{args.episode}-{int(args.seconds)}s"
    if args.episode == "crowded":
        video = make_crowded_video(folder / f"crowd720_{int(args.seconds)}s.mp4", args.seconds)
    else:
        video = make_video(folder / f"ep720_{int(args.seconds)}s.mp4", 1280, 720, args.seconds)
    workdir = OUT / f"bench2-{args.episode}"
    shutil.rmtree(workdir, ignore_errors=True)
    write_config(workdir, video.parent, **sections)
    wall, _ = timed(snakemake_cmd(workdir, "cluster_target"))
    stages = stage_seconds(workdir, video.stem)
    detect = stages["detect_chunk"] + stages["detect"]
    print(f"machine: {machine()}")
    print(f"video: {args.episode}, 1280x720, {args.seconds:.0f} s, 4 sampled frames/s; "
          f"settings: {args.set or 'defaults'}")
    print(f"snakemake cluster_target wall: {wall:.1f} s; detect stage: {detect:.1f} s")
    print("stage seconds (Snakemake's benchmark files): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"wall / detect: {wall / detect:.2f}  (goal <= 1.25)")
    print(f"real-time factor: {args.seconds / wall:.2f}x video seconds per wall second  "
          "(goal >= 4 on the bench episode)")


if __name__ == "__main__":
    main()
