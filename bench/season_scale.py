"""Season at scale: the season rule on 500 stand-in episodes of 30 clusters each.

Every episode's outputs are stand-ins written here (clusters.json, embeddings.npz, tracks.json,
stills/ with one small still per track), newer than the stand-in videos and the rule scripts, so
Snakemake takes them as built and runs only the season rule. Their embeddings come from a cast of
60 people (random directions in 128-d; a person's clusters within 0.02-0.04 cosine distance of
each other, as the real runs measure) and 10 one-off guests per episode. Reports the season job's
wall time and peak memory (Snakemake's benchmark file), checks the cast found, then adds a 501st
episode and checks that a dry run plans only its stages and the season rule.
Goal: under 30 s and 2 GB.

    python bench/season_scale.py [--episodes 500] [--clusters 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys

import cv2
import numpy as np

from benchlib import OUT, REPO, episode, machine, snakemake_cmd, timed, write_config
from facepipe.base.layout import SeasonPaths
from facepipe.stages.season import cast_summary
from planning import stand_in_videos

CAST, GUESTS = 60, 10


def stand_in_episode(workdir, ep: str, rng, centres: np.ndarray, clusters: int, stamp: float) -> None:
    paths = episode(workdir, ep)
    cast = rng.choice(len(centres), size=clusters - GUESTS, replace=False)
    people = [centres[c] for c in cast] + [v / np.linalg.norm(v) for v in rng.normal(size=(GUESTS, 128))]
    vectors, track_ids, files, quality, tracks, out_clusters, stills = [], [], [], [], [], [], []
    still = np.full((48, 40, 3), 128, np.uint8)
    for k, centre in enumerate(people):
        files.append(f"track{k:05d}_0_f{k:06d}.jpg")
        v = centre + rng.normal(scale=0.012, size=128)
        vectors.append(v / np.linalg.norm(v))
        track_ids.append(k)
        quality.append(0.8)
        dets = [{"frame": 1000 * k + f, "t": (1000 * k + f) / 25, "box": [10, 10, 50, 60], "score": 0.99,
                 "landmarks": None} for f in range(0, 40, 4)]
        tracks.append({"track_id": k, "detections": dets})
        out_clusters.append({"cluster_id": k, "track_ids": [k], "screen_time_s": round(10 + 30 * rng.random(), 3)})
        stills.append({"file": files[-1], "track_id": k, "rank": 0, "frame": 1000 * k, "t": 40.0 * k, "quality": 0.8,
                       "score": 0.99, "box": [10, 10, 50, 60], "box_in_crop": [4, 4, 36, 44],
                       "landmarks_in_crop": None})
    paths.stills_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        cv2.imwrite(str(paths.stills_dir / name), still)
    (paths.stills_dir / "manifest.json").write_text(json.dumps({"episode": ep, "stills": stills}))
    paths.tracks.write_text(json.dumps({"episode": ep, "fps": 25, "frame_count": 40000, "sample_fps": 4,
                                        "tracks": tracks}))
    with open(paths.embeddings, "wb") as fh:
        np.savez(fh, vectors=np.asarray(vectors, np.float32), track_ids=np.asarray(track_ids), files=np.asarray(files),
                 quality=np.asarray(quality, np.float32), embedder=np.array("dlib"))
    out_clusters.sort(key=lambda c: -c["screen_time_s"])
    paths.clusters.write_text(json.dumps({"episode": ep, "embedder": "dlib", "method": "agglomerative",
                                          "threshold": 0.08, "clusters": out_clusters, "unassigned_track_ids": []}))
    for k, path in enumerate([paths.detect_chunk(0), paths.detect_chunk_info(0), paths.detections, paths.video_info,
                              paths.tracks, paths.stills_dir / "manifest.json", paths.embeddings, paths.clusters,
                              paths.contact_sheet, paths.appearances, paths.timeline, paths.appearances_vtt]):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        os.utime(path, (stamp + k, stamp + k))
    os.utime(paths.stills_dir, (stamp + 5, stamp + 5))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--clusters", type=int, default=30)
    args = ap.parse_args()
    videos = OUT / f"season-standin-{args.episodes + 1}"
    stand_in_videos(videos, args.episodes + 1)
    spare = sorted(videos.iterdir())[-1]  # the 501st, added later
    held = OUT / "season-held-back"
    held.mkdir(parents=True, exist_ok=True)
    shutil.move(spare, held / spare.name)
    work = OUT / "bench-season"
    shutil.rmtree(work, ignore_errors=True)
    write_config(work, videos)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CAST, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    stamp = max(p.stat().st_mtime for p in [*videos.iterdir(), *(REPO / "scripts").glob("*.py")]) + 1
    for video in sorted(videos.iterdir()):
        stand_in_episode(work, video.stem, rng, centres, args.clusters, stamp)
    planned = timed(snakemake_cmd(work, "season_target", "-n"))[1].stdout
    if "season_target" not in planned or any(f"rule {r}:" in planned
                                             for r in ("detect_chunk", "embed", "cluster", "appearances")):
        raise SystemExit("stand-in episodes are not taken as built; the timing would run real jobs")
    wall, _ = timed(snakemake_cmd(work, "season_target"))
    season = "Show_S01"
    row = SeasonPaths(work / "data", season).benchmark().read_text().splitlines()
    header, values = row[0].split("\t"), row[1].split("\t")
    job = dict(zip(header, values))
    cast = json.loads(SeasonPaths(work / "data", season).cast.read_text())
    print(f"machine: {machine()}")
    print(f"{args.episodes} episodes x {args.clusters} clusters ({args.episodes * args.clusters} clusters), "
          f"cast of {CAST} + {GUESTS} guests per episode")
    print(f"season job: {float(job['s']):.1f} s (goal < 30), peak memory {float(job['max_rss']):.0f} MB (goal < 2048); "
          f"snakemake season_target wall {wall:.1f} s")
    print(f"cast found: {cast_summary(cast)} (a cast of {CAST}; guests: {args.episodes * GUESTS})")
    shutil.move(held / spare.name, videos / spare.name)
    dry = timed(snakemake_cmd(work, "season_target", "-n"))[1].stdout
    rules = sorted({line.split()[-1].rstrip(":") for line in dry.splitlines()
                    if line.startswith(("rule ", "localrule "))})
    eps = sorted(set(re.findall(r"wildcards: .*?ep=([\w-]+)", dry)))
    print(f"after adding {spare.stem}: the dry run plans {', '.join(rules)}, for the episodes {', '.join(eps)}")
    if eps != [spare.stem] or "season" not in rules:
        print("FAILED: the dry run plans more than the new episode's stages and the season rule")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
