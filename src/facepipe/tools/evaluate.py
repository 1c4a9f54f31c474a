"""Scoring clusters against labels: BCubed, Weighted Clustering Purity, NMI.

Labels come as a JSON file with any of:
- "shots": [{"t0", "t1", "name"}]: each shot's labelled face is its largest, as in a slideshow;
- "regions": [{"t0", "t1", "box": [x1, y1, x2, y2], "name"}]: who is where when several faces
  share the screen; a track belongs to the first region that holds its first detection (time
  within t0..t1 and box centre inside the region's box); tracks in no region are not scored;
- "tracks": {"<track_id>": "<name>"}: for one particular run.
Each labelled item is a track; a track the pipeline left unassigned, or a labelled shot with no
face found, counts as a cluster of its own, so misses cost recall.

A season is scored against a labels file {"kind": "season", "episodes": {episode: labels}} (each
episode's labels as above; `facepipe make-season` writes one). Each item is an (episode, cluster)
whose labelled tracks name a person (the one most of them show); the season's prediction is its
cast member, or a group of its own when it was left unlinked. Beside BCubed: for each person, the
episodes they appear in (by the labels) and whether one cast member holds them in all of those
episodes, and the cast members that hold two or more people.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..base.errors import FacepipeError


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def labelled_items(labels: dict, tracks: dict) -> list[tuple[str, int | None]]:
    """(person, track_id or None) for every labelled item."""
    items: list[tuple[str, int | None]] = []
    for tid, name in labels.get("tracks", {}).items():
        items.append((name, int(tid)))
    for shot in labels.get("shots", []):
        best, best_area = None, 0.0
        for tr in tracks["tracks"]:
            inside = [d for d in tr["detections"] if shot["t0"] <= d["t"] < shot["t1"]]
            if inside:
                area = sum(_area(d["box"]) for d in inside) / len(inside)
                if area > best_area:
                    best, best_area = tr["track_id"], area
        items.append((shot["name"], best))
    for tr in tracks["tracks"]:
        region = _region_of(tr["detections"][0], labels.get("regions", []))
        if region:
            items.append((region["name"], tr["track_id"]))
    return items


def _region_of(det: dict, regions: list[dict]) -> dict | None:
    x1, y1, x2, y2 = det["box"]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    for r in regions:
        rx1, ry1, rx2, ry2 = r["box"]
        if r["t0"] <= det["t"] <= r["t1"] and rx1 <= cx <= rx2 and ry1 <= cy <= ry2:
            return r
    return None


def bcubed(truth: list, pred: list) -> tuple[float, float, float]:
    n = len(truth)
    if n == 0:
        return 0.0, 0.0, 0.0
    p_sum = r_sum = 0.0
    for i in range(n):
        same_pred = [j for j in range(n) if pred[j] == pred[i]]
        same_true = [j for j in range(n) if truth[j] == truth[i]]
        both = sum(1 for j in same_pred if truth[j] == truth[i])
        p_sum += both / len(same_pred)
        r_sum += both / len(same_true)
    p, r = p_sum / n, r_sum / n
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def corrections_to_truth(truth: list, pred: list) -> dict:
    """How many corrections (facepipe correct) a perfect user makes to turn `pred` into `truth`.

    Each predicted group keeps one of its people; every other person leaves it with one split
    (into the group that keeps them, or to a new person). The splits are as many whichever person
    a group keeps; a person kept by two or more groups then needs one merge of them. Groups keep
    distinct people where they can (a maximum matching of groups to their people, larger shares
    first), the rest keep the person most of them share. A labelled item in no group (a missed
    face) is a group of its own, as in the scores."""
    from scipy.optimize import linear_sum_assignment

    people_in: dict = defaultdict(Counter)
    for t, p in zip(truth, pred):
        people_in[p][t] += 1
    groups = sorted(people_in, key=str)
    people = sorted({t for t in truth}, key=str)
    splits = sum(len(people_in[g]) - 1 for g in groups)
    share = np.array([[people_in[g].get(person, 0) for person in people] for g in groups], dtype=float)
    rows, cols = linear_sum_assignment(-(np.where(share > 0, 1e6, 0) + share))
    kept = {r for r, c in zip(rows, cols) if share[r, c] > 0}
    left = [r for r in range(len(groups)) if r not in kept]
    merged = set()
    while left:  # a person kept twice costs one merge however many groups keep them
        best = max(range(len(people)), key=lambda c: (sum(share[r, c] > 0 for r in left), -c))
        merged.add(best)
        left = [r for r in left if share[r, best] == 0]
    return {"total": splits + len(merged), "splits": splits, "merges": len(merged)}


def weighted_purity(truth: list, pred: list) -> float:
    groups: dict = defaultdict(list)
    for t, p in zip(truth, pred):
        groups[p].append(t)
    return sum(Counter(g).most_common(1)[0][1] for g in groups.values()) / max(1, len(truth))


def score(clusters: dict, tracks: dict, labels: dict) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    cluster_of = {tid: c["cluster_id"] for c in clusters["clusters"] for tid in c["track_ids"]}
    truth, pred = [], []
    for k, (name, tid) in enumerate(labelled_items(labels, tracks)):
        truth.append(name)
        pred.append(cluster_of[tid] if tid in cluster_of else f"alone-{k}")
    if not truth:
        raise FacepipeError("labels file has no shots or tracks; nothing to score")
    p, r, f = bcubed(truth, pred)
    people = sorted(set(truth))
    per_person_clusters = {n: len({pr for t, pr in zip(truth, pred) if t == n}) for n in people}
    per_cluster_people: dict = defaultdict(set)
    for t, pr in zip(truth, pred):
        per_cluster_people[pr].add(t)
    merged = sorted(((len(v), sorted(v)) for v in per_cluster_people.values() if len(v) > 1), reverse=True)
    return {
        "episode": clusters["episode"],
        "embedder": clusters["embedder"],
        "items": len(truth),
        "people": len(people),
        "clusters": len({p for p in pred if not str(p).startswith("alone-")}),
        "missed_items": sum(1 for p in pred if str(p).startswith("alone-")),
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f": round(f, 4),
        "wcp": round(weighted_purity(truth, pred), 4),
        "nmi": round(float(normalized_mutual_info_score(truth, [str(x) for x in pred])), 4),
        "corrections_to_truth": corrections_to_truth(truth, pred),
        "worst_split": sorted(per_person_clusters.items(), key=lambda kv: -kv[1])[:3],
        "worst_merged": [people for _, people in merged[:3]],
    }


def load_json(path: str | Path, what: str) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FacepipeError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as exc:
        raise FacepipeError(f"{path}: {what} is not valid JSON ({exc.msg})") from None


def season_items(cast: dict, episodes: dict[str, tuple[dict, dict]], labels: dict) -> list[tuple[str, str, str]]:
    """(person, predicted group, episode) for every (episode, cluster) with labelled tracks;
    `episodes` maps each episode to its (clusters.json, tracks.json)."""
    member_of = {(a["episode"], cid): m["cast_id"] for m in cast["cast"] for a in m["appearances"]
                 for cid in a["cluster_ids"]}
    items = []
    for ep, ep_labels in labels["episodes"].items():
        if ep not in episodes:
            continue
        clusters, tracks = episodes[ep]
        person_of = {tid: name for name, tid in labelled_items(ep_labels, tracks) if tid is not None}
        for c in clusters["clusters"]:
            named = [person_of[t] for t in c["track_ids"] if t in person_of]
            if named:
                group = member_of.get((ep, c["cluster_id"]), f"unlinked-{ep}-{c['cluster_id']}")
                items.append((Counter(named).most_common(1)[0][0], str(group), ep))
    return items


def score_season(cast: dict, episodes: dict[str, tuple[dict, dict]], labels: dict) -> dict:
    items = season_items(cast, episodes, labels)
    if not items:
        raise FacepipeError("season labels match no cluster of the season's episodes; nothing to score")
    truth, pred = [p for p, _g, _e in items], [g for _p, g, _e in items]
    p, r, f = bcubed(truth, pred)
    people = sorted(set(truth))
    present = {n: sorted({e for name, _g, e in items if name == n}) for n in people}
    whole = {}
    for n in people:
        groups = {g for name, g, _e in items if name == n}
        whole[n] = any(sorted({e for name, g2, e in items if name == n and g2 == g}) == present[n] for g in groups)
    holders = defaultdict(set)
    for name, g, _e in items:
        holders[g].add(name)
    return {
        "season": cast["season"],
        "items": len(items),
        "people": len(people),
        "cast_members": len(cast["cast"]),
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f": round(f, 4),
        "corrections_to_truth": corrections_to_truth(truth, pred),
        "people_found_whole": sum(whole.values()),
        "people_split": sorted(n for n, ok in whole.items() if not ok),
        "episodes_of_person": present,
        "merged_cast": sorted(sorted(v) for g, v in holders.items() if len(v) > 1),
    }
