"""facepipe find over 500 stand-in episodes: what a cold start costs, and a warm query.

Writes 500 stand-in episodes (clusters.json, embeddings.npz, appearances.csv; 30 clusters of 3
stills each: 45,000 stills) in 5 seasons (cast.json), from a cast of 60 people (random directions
in 128-d) and guests, as bench/season_scale.py does. One more person is the real face of a shared
photo (lfw10, embedded here with the real models) planted in every fifth episode at 0.01-0.05
from it; the query, that photo, must find exactly those episodes. Then, in this one process
(started cold, so the imports are measured too):

- cold: importing torch and facepipe's models, loading the photo detector and the embedder, the
  first photo embedded, the index loaded (every episode's files read), the first query;
- warm: the query again (photo embedded and searched; the index only checks the files' mtimes),
  its parts (the photo, the refresh, the search), and the baseline: the cold index load over one
  warm query;
- after touching one episode's clusters.json: the refresh reads that episode only.

Also times `facepipe find PHOTO --json` as a fresh process (the terminal's cold start), and the
same on an empty data root (Python, facepipe and the settings only: no model is loaded there).
Goal: a warm query under 1 s.

    python bench/find.py [--episodes 500] [--clusters 30]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from benchlib import BIN, OUT, SHARED, machine
from facepipe.base.config import defaults
from facepipe.base.layout import EpisodePaths, SeasonPaths
from facepipe.tools import find as F

CAST, GUESTS, SEASONS, STILLS = 60, 10, 5, 3
PHOTO = SHARED / "faces" / "lfw10" / "Ariel_Sharon" / "Ariel_Sharon_0001.jpg"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def near(rng, centre: np.ndarray, distance: float) -> np.ndarray:
    """A unit vector at about `distance` (cosine) from `centre`."""
    noise = rng.normal(size=centre.shape)
    noise -= (noise @ centre) * centre
    noise /= np.linalg.norm(noise)
    angle = np.arccos(1.0 - distance)
    return np.cos(angle) * centre + np.sin(angle) * noise


def stand_in(root, ep: str, rng, centres, clusters: int, planted: np.ndarray | None) -> list[int]:
    """One episode's clusters.json, embeddings.npz and appearances.csv; the planted person's
    cluster id (or none)."""
    paths = EpisodePaths(root, ep)
    paths.harvest.mkdir(parents=True, exist_ok=True)
    people = [centres[c] for c in rng.choice(len(centres), size=clusters - GUESTS, replace=False)]
    people += [v / np.linalg.norm(v) for v in rng.normal(size=(GUESTS, centres.shape[1]))]
    if planted is not None:
        people[-1] = planted
    vectors, track_ids, files, quality, out, rows = [], [], [], [], [], ["cluster_id,person_id,name,track_id,"
                                                                          "start_s,end_s,seconds,hidden"]
    for k, centre in enumerate(people):
        start = 40.0 * k
        for s in range(STILLS):
            target = near(rng, centre, 0.01 + 0.04 * rng.random()) if planted is not None and k == len(people) - 1 \
                else centre + rng.normal(scale=0.012, size=centre.shape)
            vectors.append(target / np.linalg.norm(target))
            track_ids.append(k)
            files.append(f"track{k:05d}_{s}_f{1000 * k + s:06d}.jpg")
            quality.append(0.5 + 0.1 * s)
        out.append({"cluster_id": k, "track_ids": [k], "screen_time_s": 10.0, "person_id": f"p{k:06x}"})
        rows.append(f"{k},p{k:06x},,{k},{start:.3f},{start + 10:.3f},10.000,false")
    with open(paths.embeddings, "wb") as fh:
        np.savez(fh, vectors=np.asarray(vectors, np.float32), track_ids=np.asarray(track_ids), files=np.asarray(files),
                 quality=np.asarray(quality, np.float32), embedder=np.array("dlib"))
    paths.clusters.write_text(json.dumps({"episode": ep, "embedder": "dlib", "method": "agglomerative",
                                          "threshold": 0.08, "clusters": out, "unassigned_track_ids": []}))
    paths.appearances.write_text("\n".join(rows) + "\n")
    return [len(people) - 1] if planted is not None else []


def write_seasons(root, episodes: list[str], planted: dict[str, list[int]], clusters: int) -> None:
    per = len(episodes) // SEASONS
    for s in range(SEASONS):
        season = f"Show{s}_S01"
        eps = episodes[s * per:(s + 1) * per]
        cast = [{"cast_id": 0, "name": "Ariel", "hidden": False,
                 "appearances": [{"episode": ep, "cluster_ids": planted[ep]} for ep in eps if planted[ep]]}]
        cast += [{"cast_id": len(cast) + i, "hidden": False, "appearances": [{"episode": ep, "cluster_ids": [k]}]}
                 for i, (ep, k) in enumerate((ep, k) for ep in eps for k in range(clusters) if k not in planted[ep])]
        path = SeasonPaths(root, season).cast
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"season": season, "episodes": eps, "cast": cast}))


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--clusters", type=int, default=30)
    args = ap.parse_args()
    cfg = defaults()
    work = OUT / "bench-find"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "data"

    # the cold start, in this fresh process: torch, the models, then the first photo
    if "torch" in sys.modules:
        raise SystemExit("torch was imported before its import is timed")
    t_torch, _ = timed(importlib.import_module, "torch")
    t_models, (detector, embedder) = timed(F._models, cfg["embed"], cfg["embed"]["embedder"])
    image = F.read_photo(PHOTO)
    t_first, query = timed(F.embed_query, [(str(PHOTO), image)], cfg["embed"], "dlib", cfg["stills"]["margin"])

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CAST, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    episodes = [f"Show{e * SEASONS // args.episodes}_S01_E{e:03d}" for e in range(args.episodes)]
    planted = {ep: stand_in(root, ep, rng, centres, args.clusters, query[0].astype(np.float64) if e % 5 == 0 else None)
               for e, ep in enumerate(episodes)}
    write_seasons(root, episodes, planted, args.clusters)
    expected = sorted(ep for ep, ks in planted.items() if ks)

    rss0 = rss_mb()
    index = F.index_for(root)
    t_load, _ = timed(index.refresh)
    rss_index = rss_mb() - rss0
    t_query0, found = timed(F.find, [PHOTO], root, cfg)
    got = sorted(m["episode"] for m in found.matches)
    warm = [timed(F.find, [PHOTO], root, cfg)[0] for _ in range(10)]
    t_photo = statistics.median(timed(F.embed_query, [(str(PHOTO), image)], cfg["embed"], "dlib",
                                      cfg["stills"]["margin"])[0] for _ in range(5))
    t_refresh = statistics.median(timed(index.refresh)[0] for _ in range(5))
    thresholds = {"dlib": found.thresholds["dlib"]}
    t_search = statistics.median(timed(index.search, {"dlib": query}, thresholds)[0] for _ in range(5))
    reads = index.reads
    touched = EpisodePaths(root, episodes[7]).clusters
    os.utime(touched, ns=(touched.stat().st_mtime_ns + 10**9,) * 2)
    t_touch, _ = timed(index.refresh)

    t_cli = time.perf_counter()
    proc = subprocess.run([str(BIN / "facepipe"), "find", str(PHOTO), "--json", "--data-root", str(root)],
                          capture_output=True, text=True)
    t_cli = time.perf_counter() - t_cli
    cli_ok = proc.returncode == 0 and sorted(m["episode"] for m in json.loads(proc.stdout)) == expected
    # the same command on a data root with no episode: Python, facepipe and the settings, no model
    (work / "empty").mkdir()
    t_bare = time.perf_counter()
    subprocess.run([str(BIN / "facepipe"), "find", str(PHOTO), "--json", "--data-root", str(work / "empty")],
                   capture_output=True, text=True, check=True)
    t_bare = time.perf_counter() - t_bare

    stills = args.episodes * args.clusters * STILLS
    w = statistics.median(warm)
    print(f"machine: {machine()}")
    print(f"{args.episodes} episodes x {args.clusters} clusters x {STILLS} stills ({stills} stills), "
          f"{SEASONS} seasons; the query's person planted in {len(expected)} episodes")
    print(f"cold: import torch {t_torch:.2f} s; photo detector + embedder loaded {t_models:.2f} s; first photo "
          f"embedded {t_first:.2f} s; index loaded {t_load:.2f} s ({args.episodes} episodes read, "
          f"+{rss_index:.0f} MB peak RSS); first query {t_query0:.2f} s")
    print(f"cold CLI (facepipe find PHOTO --json, a fresh process): {t_cli:.2f} s; the same on an empty data root "
          f"(no model loaded, no index) {t_bare:.2f} s")
    print(f"warm query: median {w:.3f} s (min {min(warm):.3f}, max {max(warm):.3f}, 10 runs; goal < 1 s): "
          f"photo embedded {t_photo:.3f} s, refresh (mtimes only) {t_refresh:.3f} s, search {t_search * 1000:.1f} ms")
    print(f"warm runs: {', '.join(f'{x:.3f}' for x in warm)} s")
    print(f"baseline: the cold index load / one warm query = {t_load / w:.1f}")
    print(f"one episode's clusters.json touched: refresh {t_touch:.3f} s, "
          f"{index.reads - reads} episode read again")
    print(f"found {len(got)} episodes, expected {len(expected)}: {'exact' if got == expected else 'DIFFERENT'}; "
          f"matches carry a season: {all(m['season'] and m['season']['name'] == 'Ariel' for m in found.matches)}; "
          f"CLI the same: {cli_ok}")
    return 0 if got == expected and cli_ok and w < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
