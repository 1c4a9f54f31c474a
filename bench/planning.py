"""Bench 3: planning 500 episodes, and what facepipe's logger costs.

Makes 500 small stand-in videos and times `snakemake cluster_target -n` (nothing built yet),
`facepipe plan --json`, and a no-op `snakemake cluster_target` once every output exists, each
with the workstation profile (facepipe logger on) and with `--workflow-profile none` (off).
Goal: each under 10 s; the logger's overhead under 10 %.

    python bench/planning.py [--episodes 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import cv2
import numpy as np

from benchlib import BIN, OUT, REPO, episode, machine, snakemake_cmd, timed, write_config

# Every output of an episode, in the order the stages write them (stills: its manifest).
OUTPUTS = ["detect_chunk", "detect_chunk_info", "detections", "video_info", "tracks", "stills_manifest", "embeddings",
           "clusters", "contact_sheet"]


def output_path(paths, name: str):
    if name == "detect_chunk":
        return paths.detect_chunk(0)
    if name == "detect_chunk_info":
        return paths.detect_chunk_info(0)
    if name == "stills_manifest":
        return paths.stills_manifest
    return getattr(paths, name)


def stand_in_videos(folder, n: int):
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "Show_S01_E0000.mp4"
    if not first.exists():
        writer = cv2.VideoWriter(str(first), cv2.VideoWriter_fourcc(*"mp4v"), 4, (64, 48))
        for k in range(4):
            writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
        writer.release()
    for i in range(1, n):
        dst = folder / f"Show_S01_E{i:04d}.mp4"
        if not dst.exists():
            shutil.copy(first, dst)


def stand_in_outputs(workdir, videos):
    # Every output newer than its video and than the rule scripts (Snakemake reruns a job whose
    # script is newer than its outputs, as Make does).
    sources = [*videos.iterdir(), *(REPO / "scripts").glob("*.py")]
    stamp = max(p.stat().st_mtime for p in sources) + 1
    for video in sorted(videos.iterdir()):
        paths = episode(workdir, video.stem)
        for k, name in enumerate(OUTPUTS):
            path = output_path(paths, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            os.utime(path, (stamp + k, stamp + k))
        os.utime(paths.stills_dir, (stamp + 5, stamp + 5))


def best_of(n: int, cmd):
    return min(timed(cmd)[0] for _ in range(n))


def assert_no_op(workdir):
    proc = timed(snakemake_cmd(workdir, "cluster_target", "-n"))[1]
    if "Nothing to be done" not in proc.stdout + proc.stderr:
        raise SystemExit("stand-in outputs are not taken as up to date; the no-op timing would run real jobs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    videos = OUT / f"standin-{args.episodes}"
    stand_in_videos(videos, args.episodes)
    fresh, built = OUT / "bench3-fresh", OUT / "bench3-built"
    for wd in (fresh, built):
        shutil.rmtree(wd, ignore_errors=True)
        write_config(wd, videos)
    stand_in_outputs(built, videos)
    assert_no_op(built)
    off = ("--workflow-profile", "none")
    rows = []
    for label, wd, extra in (("dry run, nothing built", fresh, ("-n",)), ("no-op run, all built", built, ())):
        on = best_of(args.repeat, snakemake_cmd(wd, "cluster_target", *extra))
        without = best_of(args.repeat, snakemake_cmd(wd, "cluster_target", *extra, *off))
        rows.append((f"snakemake cluster_target {' '.join(extra)}".strip() + f" ({label})", on, without))
    plan_cmd = [str(BIN / "facepipe"), "plan", "--json", "-d", str(fresh),
                "--configfile", str(fresh / "bench-config.yaml")]
    plan_s = best_of(args.repeat, plan_cmd)
    planned = json.loads(timed(plan_cmd)[1].stdout)
    print(f"machine: {machine()}; {args.episodes} episodes; best of {args.repeat}")
    for name, on, without in rows:
        print(f"{name}: {on:.2f} s (goal < 10); without facepipe logger: {without:.2f} s; "
              f"overhead {100 * (on / without - 1):+.1f} % (goal < 10 %)")
    print(f"facepipe plan --json (nothing built): {plan_s:.2f} s (goal < 10), {len(planned)} episodes planned")


if __name__ == "__main__":
    main()
