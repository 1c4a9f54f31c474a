"""Corrections: from a correction to the rebuilt clusters, for a 300 s episode and for a season of
20 stand-in episodes, and where the time goes.

Every episode's upstream outputs are stand-ins written here (tracks.json, embeddings.npz, stills/
with one small still per track), newer than the stand-in videos and the rule scripts, so that
Snakemake takes them as built and a correction reruns only cluster and season, as on a real
build. The 300 s episode has 30 people in 240 tracks of 1-4 s (a talk show's count), its
embeddings a person's direction plus noise at the spread real runs measure.

For each case the bench records a correction with `facepipe correct` (the CLI the page shares),
then runs the snakemake a page's action runs (`snakemake season_target`), and reports when the
corrected clusters.json (for a cast correction: cast.json) is replaced, which is when the page
shows the new clusters (it reloads them on the file's change; its notice of a change takes
under 0.3 s, bench/web.py), when cast.json is, and when the whole rebuild ends (charts,
timelines), with the jobs' times (Snakemake's benchmark files). The baseline, in the same run:
a no-op `snakemake season_target` (everything up to date) on the same folder.
Goals: under 5 s for the episode, under 10 s for the season of 20 episodes.

    python bench/corrections.py
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np

from benchlib import BIN, OUT, machine, snakemake_cmd, timed, write_config
from facepipe.base.layout import EpisodePaths, SeasonPaths
from planning import stand_in_videos

PEOPLE, TRACKS, EPISODE_S, SAMPLE_FPS = 30, 240, 300.0, 4


def stand_in(work, ep: str, rng, centres, stamp: float, tracks_n: int = TRACKS) -> None:
    """An episode's upstream outputs and a first clusters.json, taken as built."""
    paths = EpisodePaths(work / "data", ep)
    paths.stills_dir.mkdir(parents=True, exist_ok=True)
    still = np.full((48, 40, 3), 128, np.uint8)
    tracks, vectors, tids, files, quality, stills = [], [], [], [], [], []
    starts = np.sort(rng.uniform(0, EPISODE_S - 5, size=tracks_n))
    for k, t0 in enumerate(starts):
        person = int(rng.integers(len(centres)))
        n = int(rng.integers(4, 17))  # 1-4 s at 4 samples a second
        x = float(rng.uniform(0, 560))
        dets = [{"frame": int((t0 + f / SAMPLE_FPS) * 25), "t": round(float(t0 + f / SAMPLE_FPS), 3),
                 "box": [x, 40.0, x + 70, 120.0], "score": 0.99, "landmarks": None} for f in range(n)]
        tracks.append({"track_id": k, "detections": dets})
        for rank in range(3):
            v = centres[person] + rng.normal(scale=0.012, size=centres.shape[1])
            vectors.append(v / np.linalg.norm(v))
            tids.append(k)
            files.append(f"track{k:05d}_{rank}_f{dets[0]['frame']:06d}.jpg")
            quality.append(0.8)
            stills.append({"file": files[-1], "track_id": k, "rank": rank, "frame": dets[0]["frame"], "t": dets[0]["t"],
                           "quality": 0.8, "score": 0.99, "box": dets[0]["box"], "box_in_crop": [4, 4, 36, 44],
                           "landmarks_in_crop": None})
            cv2.imwrite(str(paths.stills_dir / files[-1]), still)
    (paths.stills_dir / "manifest.json").write_text(json.dumps({"episode": ep, "stills": stills}))
    paths.tracks.write_text(json.dumps({"episode": ep, "fps": 25, "frame_count": int(EPISODE_S * 25),
                                        "sample_fps": SAMPLE_FPS, "tracks": tracks}))
    with open(paths.embeddings, "wb") as fh:
        np.savez(fh, vectors=np.asarray(vectors, np.float32), track_ids=np.asarray(tids), files=np.asarray(files),
                 quality=np.asarray(quality, np.float32), embedder=np.array("dlib"))
    for k, path in enumerate([paths.detect_chunk(0), paths.detect_chunk_info(0), paths.detections, paths.video_info,
                              paths.tracks, paths.stills_manifest, paths.embeddings]):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        os.utime(path, (stamp + k, stamp + k))
    os.utime(paths.stills_dir, (stamp + 5, stamp + 5))


def job_seconds(path) -> float:
    with open(path, newline="") as fh:
        return float(next(csv.DictReader(fh, delimiter="\t"))["s"])


def rebuilt_after(cmd: list[str], watched: list) -> tuple[float, dict]:
    """Run `cmd`; seconds until it ends, and until each watched file was replaced (polled)."""
    before = {p: p.stat().st_mtime_ns for p in watched}
    seen: dict = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while proc.poll() is None:
        for p in watched:
            if p not in seen and p.exists() and p.stat().st_mtime_ns != before[p]:
                seen[p] = time.perf_counter() - t0
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:2]} failed:\n{out[-3000:]}")
    return wall, {p: seen.get(p, wall) for p in watched}


def case(title: str, work, correct: list[str], episode: str | None, season: str) -> dict:
    noop, _ = timed(snakemake_cmd(work, "season_target"))
    t0 = time.perf_counter()
    timed([str(BIN / "facepipe"), "correct", *correct, "--data-root", str(work / "data")])
    record = time.perf_counter() - t0
    plan = timed(snakemake_cmd(work, "season_target", "-n"))[1].stdout
    rules = sorted({ln.split()[-1].rstrip(":") for ln in plan.splitlines() if ln.startswith(("rule ", "localrule "))})
    cast = SeasonPaths(work / "data", season).cast
    shown = EpisodePaths(work / "data", episode).clusters if episode else cast
    wall, at = rebuilt_after(snakemake_cmd(work, "season_target"), [shown, cast])
    jobs = {}
    if episode:
        jobs["cluster"] = job_seconds(EpisodePaths(work / "data", episode).benchmark("cluster"))
        jobs["appearances"] = job_seconds(EpisodePaths(work / "data", episode).benchmark("appearances"))
    jobs["season"] = job_seconds(SeasonPaths(work / "data", season).benchmark())
    what = "clusters.json" if episode else "cast.json"
    total = record + at[shown]
    print(f"{title}: {total:.1f} s from the correction to the new {what} (record {record:.2f} s, then "
          f"{at[shown]:.1f} s into snakemake); cast.json new at {record + at[cast]:.1f} s; the whole rebuild "
          f"{record + wall:.1f} s (" + ", ".join(f"{k} job {v:.1f} s" for k, v in jobs.items())
          + f"); planned {', '.join(rules)}")
    print(f"  baseline: a no-op snakemake season_target {noop:.1f} s; ratio {at[shown] / noop:.2f} "
          f"(to the new {what}), {wall / noop:.2f} (the whole rebuild)")
    return {"total": total, "rules": rules}


def main() -> int:
    print(f"machine: {machine()}")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(PEOPLE, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    failures = 0
    for title, count, season_corrections in (("300 s episode", 1, False), ("season of 20 episodes", 20, True)):
        videos = OUT / f"corrections-videos-{count}"
        stand_in_videos(videos, count)
        work = OUT / f"bench-corrections-{count}"
        shutil.rmtree(work, ignore_errors=True)
        write_config(work, videos)
        # The videos, then the stand-in outputs in the order the stages write them, all in the past.
        stamp = time.time() - 120
        for video in videos.iterdir():
            os.utime(video, (stamp - 10, stamp - 10))
        eps = sorted(v.stem for v in videos.iterdir())
        for ep in eps:
            stand_in(work, ep, rng, centres, stamp)
        timed(snakemake_cmd(work, "season_target"))  # the first, machine-made clusters and cast
        season = json.loads(SeasonPaths(work / "data", "Show_S01").cast.read_text())
        clusters = json.loads(EpisodePaths(work / "data", eps[0]).clusters.read_text())["clusters"]
        print(f"{title}: {len(eps)} episode(s), {TRACKS} tracks each, {len(clusters)} clusters in {eps[0]}, "
              f"{len(season['cast'])} cast members")
        result = case(f"{title}, episode merge", work, [eps[0], "merge", "0", "1"], eps[0], "Show_S01")
        # cluster and what follows it (the episode's appearances, the season), nothing upstream
        failures += not {"cluster", "season"} <= set(result["rules"]) <= {"cluster", "appearances", "season",
                                                                            "season_target"}
        goal = 5.0 if count == 1 else 10.0
        failures += result["total"] > goal
        if season_corrections and len(season["cast"]) >= 2:
            result = case(f"{title}, cast merge", work, ["--season", "Show_S01", "merge", "0", "1"], None, "Show_S01")
            failures += result["rules"] != ["season", "season_target"] or result["total"] > goal
    print("goals: under 5 s (episode), under 10 s (season of 20)" + ("" if not failures else f"; {failures} missed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
