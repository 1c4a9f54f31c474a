"""Season linking ablation: the linking threshold on seasons whose cast is known.

Builds two seasons of three slideshow episodes each from the shared photo sets (lfw10: 10 people,
johns: 5; casts overlap, each episode shows different photos of a person: facepipe.tools.slideshow
make_season), runs the real pipeline once (`snakemake cluster_target`), then links each season's
clusters in-process at every threshold (facepipe.stages.season.build_cast) and scores the cast
against the labels (facepipe.tools.evaluate.score_season): BCubed F over (episode, cluster) items,
people found as one cast member in all their episodes, and cast members holding two people.

    python bench/season_ablation.py [--workdir DIR]

The default threshold (SEASON_THRESHOLDS in stages/season/cast.py) is the highest of the widest run
of thresholds where every person of both seasons is found whole and no cast member holds two
people (it links the most without a merge); docs/seasons.md holds the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from facepipe.stages.season import build_cast, load_episode
from facepipe.tools.evaluate import score_season
from facepipe.tools.slideshow import make_season

from benchlib import SHARED, episode, machine, snakemake_cmd, timed

SETS = {"LFW": "lfw10", "JOHNS": "johns"}
SWEEP = [round(0.03 + 0.01 * k, 2) for k in range(12)]


def build(work: Path) -> dict[str, dict]:
    videos = work / "videos"
    labels = {}
    for show, photos in SETS.items():
        path = work / f"{show}.labels.json"
        if not path.exists():
            _made, season_labels = make_season(SHARED / "faces" / photos, videos, show)
            path.write_text(json.dumps(season_labels))
        labels[f"{show}_S01"] = json.loads(path.read_text())
    (work / "bench-config.yaml").write_text(yaml.safe_dump({"videos_dir": str(videos), "data_root": "data"}))
    print(f"running the pipeline on {len(list(videos.iterdir()))} episodes in {work} ...", file=sys.stderr, flush=True)
    timed(snakemake_cmd(work, "cluster_target"))
    return labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="work folder (default: a new temporary folder); a finished run is reused")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="facepipe-season-")).resolve()
    labels = build(work)
    data = {}
    for season, season_labels in labels.items():
        eps = sorted(season_labels["episodes"])
        loaded = [load_episode(work / "data", ep) for ep in eps]
        truth = {ep: (json.loads(episode(work, ep).clusters.read_text()), json.loads(episode(work, ep).tracks.read_text()))
                 for ep in eps}
        data[season] = (loaded, truth, season_labels)
    print(f"machine: {machine()}; work folder: {work}\n")
    print("| threshold | " + " | ".join(f"{s} F / whole / merged / cast" for s in data) + " |")
    print("|" + " --- |" * (1 + len(data)))
    good = []
    for t in SWEEP:
        cells, ok = [], True
        for season, (loaded, truth, season_labels) in data.items():
            result = score_season(build_cast(season, loaded, t), truth, season_labels)
            cells.append(f"{result['bcubed_f']:.3f} / {result['people_found_whole']}/{result['people']} / "
                         f"{len(result['merged_cast'])} / {result['cast_members']}")
            ok &= result["people_found_whole"] == result["people"] and not result["merged_cast"]
        good.append(ok)
        print(f"| {t} | " + " | ".join(cells) + " |")
    runs, run = [], []
    for t, ok in zip(SWEEP, good):
        run = run + [t] if ok else []
        runs.append(list(run))
    widest = max(runs, key=len)
    if widest:
        print(f"\nthresholds with every person whole and no merge: {widest[0]} .. {widest[-1]}; "
              f"the highest (links the most without a merge): {widest[-1]}")
    else:
        print("\nno threshold finds every person whole without a merge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
