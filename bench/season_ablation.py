"""Season linking ablation: the linking threshold, and whether two clusters of one episode may be
one cast member, on seasons whose cast is known.

Builds four seasons of slideshow episodes from the shared photo sets (facepipe.tools.slideshow
make_season: casts overlap, each episode shows different photos of a person): LFW (lfw10, 10
people, 3 episodes) and JOHNS (johns, 5, 3 episodes), on which the threshold was first chosen,
and two held out: MIX (13 people: lfw10 and three of johns, 3 episodes) and ALL (15 people, 4
episodes). It runs the real pipeline once (`snakemake cluster_target`), then links each season's
clusters in-process (facepipe.stages.season.build_cast) at every threshold under two rules: `never`
(two clusters of one episode are never one cast member: the default) and `split` (they are joined
when they never share a frame and are near: the rule before). Each cast is scored against the
labels (facepipe.tools.evaluate.score_season): BCubed F over (episode, cluster) items, people
found as one cast member in all their episodes, cast members holding two people, cast members.

It also prints, per season, the people that an episode split into two clusters or more, and the
cosine distances between the means of two clusters of one episode: of one person (a split) and
of two people; no threshold can join the first without the second where they overlap.

    python bench/season_ablation.py [--workdir DIR]

The default threshold (SEASON_THRESHOLDS in stages/season/cast.py) is the middle of the widest run
of thresholds where, under the default rule, every person of every season is found whole and no
cast member holds two people (the higher of two middles): as far as the sets allow from a person
split across episodes and from two people merged; docs/seasons.md holds the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from benchlib import SHARED, episode, machine, snakemake_cmd, timed
from facepipe.stages.season import build_cast, load_episode
from facepipe.tools.evaluate import labelled_items, score_season
from facepipe.tools.slideshow import make_season

# show -> (its people: (photo set, how many of its people, sorted by name; None: all), episodes)
SETS = {"LFW": ([("lfw10", None)], 3), "JOHNS": ([("johns", None)], 3),
        "MIX": ([("lfw10", None), ("johns", 3)], 3), "ALL": ([("lfw10", None), ("johns", None)], 4)}
SWEEP = [round(0.03 + 0.01 * k, 2) for k in range(12)]
RULES = {"never": False, "split": True}  # build_cast's within_episode


def photos_of(work: Path, show: str) -> Path:
    """A <person>/<photo> folder of the show's people (links to the shared photos)."""
    people, _episodes = SETS[show]
    if len(people) == 1 and people[0][1] is None:
        return SHARED / "faces" / people[0][0]
    folder = work / "photos" / show
    folder.mkdir(parents=True, exist_ok=True)
    for photos, count in people:
        for person in sorted(p for p in (SHARED / "faces" / photos).iterdir() if p.is_dir())[:count]:
            if not (folder / person.name).exists():
                (folder / person.name).symlink_to(person)
    return folder


def build(work: Path) -> dict[str, dict]:
    videos = work / "videos"
    labels = {}
    for show, (_people, episodes) in SETS.items():
        path = work / f"{show}.labels.json"
        if not path.exists():
            _made, season_labels = make_season(photos_of(work, show), videos, show, episodes=episodes)
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
        truth = {ep: (json.loads(episode(work, ep).clusters.read_text()),
                      json.loads(episode(work, ep).tracks.read_text())) for ep in eps}
        data[season] = (loaded, truth, season_labels)
    print(f"machine: {machine()}; work folder: {work}\n")
    for season, (loaded, truth, season_labels) in data.items():
        print(f"{season}: {within_episode(loaded, truth, season_labels)}")
    defaults = {}
    for rule, joined in RULES.items():
        print(f"\nrule {rule}:\n")
        print("| threshold | " + " | ".join(f"{s} F / whole / merged / cast" for s in data) + " |")
        print("|" + " --- |" * (1 + len(data)))
        good = []
        for t in SWEEP:
            cells, ok = [], True
            for season, (loaded, truth, season_labels) in data.items():
                result = score_season(build_cast(season, loaded, t, within_episode=joined), truth, season_labels)
                cells.append(f"{result['bcubed_f']:.3f} / {result['people_found_whole']} of {result['people']} / "
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
            middle = widest[len(widest) // 2]
            print(f"\nthresholds with every person whole and no merge: {widest[0]} .. {widest[-1]}; "
                  f"the highest: {widest[-1]}; the middle (as far as can be from a split and from a merge): {middle}")
            defaults[rule] = middle
        else:
            print("\nno threshold finds every person whole without a merge")
    print(f"\nchosen thresholds by rule: {defaults}")
    return 0


def within_episode(loaded, truth, season_labels) -> str:
    """The people an episode split, and the distances between two clusters' means of one episode."""
    same, other, split = [], [], []
    for e in loaded:
        clusters, tracks = truth[e.episode]
        person_of = {tid: name for name, tid in labelled_items(season_labels["episodes"][e.episode], tracks)
                     if tid is not None}
        who = []
        for c in clusters["clusters"]:
            named = [person_of[t] for t in c["track_ids"] if t in person_of]
            who.append(Counter(named).most_common(1)[0][0] if named else None)
        split += [f"{e.episode[-3:]} {p} ({n})" for p, n in Counter(w for w in who if w).items() if n > 1]
        for a in range(len(who)):
            for b in range(a + 1, len(who)):
                if who[a] and who[b]:
                    d = float(1.0 - e.points[a] @ e.points[b])
                    (same if who[a] == who[b] else other).append(d)
    same_text = ", ".join(f"{d:.3f}" for d in sorted(same)) or "none"
    return (f"split in an episode: {', '.join(split) or 'nobody'}; one person's two clusters of one episode "
            f"{same_text}; two people's, nearest {min(other):.3f} (under 0.12: "
            f"{sum(d < 0.12 for d in other)} of {len(other)})")


if __name__ == "__main__":
    sys.exit(main())
