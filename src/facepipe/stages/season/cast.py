"""A season's cast: every episode's clusters linked into cast members, with screen time per
episode, the best still of each appearance, and names from the reference photos.

Items are the clusters of the season's episodes (their tracks' mean embedding, as clustering uses
them). Two clusters of one episode are never one cast member: the episode's clustering kept them
apart (only the user's merge joins them). Every person with screen time is a cast member: the
recurring cast (seen in two episodes or more) first, then the people seen in one episode (a
guest, a face in the crowd), each by total screen time; hidden ones last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...base.corrections import effective, parse
from ...base.errors import FacepipeError
from ...base.layout import EpisodePaths
from ..cluster import cannot_link, group_distances, l2_normalise, load_embeddings, name_groups, track_vectors
from ..embed import SPACE
from ..stills import read_manifest
from .corrections import constraints
from .linking import link

# Cosine distance below which two episodes' clusters are one cast member (average linkage over
# the clusters' mean embeddings, two clusters of one episode never joined), per embedder space.
# dlib: measured by bench/season_ablation.py on four slideshow seasons (lfw10, johns, and two held
# out: 13 and 15 people; docs/seasons.md): from 0.05 to 0.10 every person is one cast member in
# all their episodes and no cast member holds two people; 0.08 is the middle of that run (BCubed F
# 0.946 / 1.000 / 0.958 / 0.962, the same from 0.06 to 0.10); 0.11 merges two people. It is
# also the episode clustering threshold, so a season continues the episodes' clustering.
# facenet's: a placeholder.
SEASON_THRESHOLDS = {"dlib": 0.08, "facenet": 0.5}


@dataclass
class EpisodeClusters:
    """What the season needs of one built episode."""

    episode: str
    clusters: dict  # clusters.json
    points: np.ndarray  # (clusters, dim): each cluster's l2-normalised mean embedding
    stills: list[np.ndarray]  # per cluster: its stills' l2-normalised embeddings
    best: list[tuple[str, float] | None]  # per cluster: (its best still's path under the data root, quality)
    forbidden: list[tuple[int, int]]  # cluster index pairs that share a frame
    tracks: dict  # tracks.json, for finding the tracks of the user's corrections


def load_episode(data_root: str | Path, episode: str) -> EpisodeClusters:
    """Read an episode's clusters, embeddings, tracks and stills (built by cluster_target)."""
    paths = EpisodePaths(Path(data_root), episode)
    try:
        clusters = json.loads(paths.clusters.read_text())
        tracks = json.loads(paths.tracks.read_text())
        emb = load_embeddings(paths.embeddings)
        manifest = read_manifest(paths.stills_dir)
    except (OSError, ValueError) as exc:
        raise FacepipeError(f"{paths.harvest}: episode {episode} is not fully built ({exc}); "
                            f"run snakemake cluster_target for it, or leave it out with season.exclude") from None
    vectors = l2_normalise(np.asarray(emb["vectors"], dtype=np.float64))
    still_tids = np.asarray(emb["track_ids"])
    quality = {s["file"]: s["quality"] for s in manifest["stills"]}
    by_id = {t["track_id"]: t for t in tracks["tracks"]}
    stills_of: dict[int, list[dict]] = {}
    for s in manifest["stills"]:
        stills_of.setdefault(s["track_id"], []).append(s)
    clustered = sorted({t for c in clusters["clusters"] for t in c["track_ids"]})
    # each track's point once (rows are normalised one by one, so this is what each cluster's own
    # call would give)
    track_point = dict(zip(clustered, track_vectors(vectors, still_tids, clustered))) if clustered else {}
    points, stills, best, pseudo = [], [], [], []
    for c in clusters["clusters"]:
        tids = c["track_ids"]
        points.append(l2_normalise(np.stack([track_point[t] for t in tids]).mean(axis=0)))
        stills.append(vectors[np.isin(still_tids, tids)])
        mine = [s for t in tids for s in stills_of.get(t, ())]
        top = max(mine, key=lambda s: s["quality"], default=None)
        # relative to the data root, as cast.json gives it
        best.append((str((paths.stills_dir / top["file"]).relative_to(Path(data_root))), quality[top["file"]])
                    if top else None)
        pseudo.append({"detections": [d for t in tids for d in by_id[t]["detections"]]})
    ban = cannot_link(pseudo)
    forbidden = [(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(ban)))]
    return EpisodeClusters(episode, clusters, np.asarray(points).reshape(len(points), -1), stills, best, forbidden,
                           tracks)


def _embedder(episodes: list[EpisodeClusters]) -> str:
    """The embedder of the season's episodes (dlib and dlib-native give the same vectors)."""
    used = {e.clusters["embedder"] for e in episodes}
    if len({SPACE[u] for u in used}) > 1:
        which = ", ".join(f"{e.episode}: {e.clusters['embedder']}" for e in episodes)
        raise FacepipeError(f"the season's episodes were embedded differently ({which}); run snakemake "
                            "cluster_target so that all of them use embed.embedder")
    return used.pop() if len(used) == 1 else SPACE[used.pop()] if used else "dlib"


def build_cast(season: str, episodes: list[EpisodeClusters], threshold: float | None,
               references: dict | None = None, name_threshold: float | None = None,
               report: dict | None = None, corrections_file: str | Path | None = None,
               within_episode: bool = False) -> dict:
    """cast.json for `season`: the episodes' clusters linked into cast members (and named, with
    `references` from cluster.load_references), under the user's corrections (the records of
    `corrections_file`, the season's, where it exists) and the names the user gave in the
    episodes. Clusters the user hid in their episode are left out.

    Two clusters of one episode are never one cast member (the episode's clustering kept them
    apart, on more evidence than their means), unless the user merged them. `within_episode`
    joins such clusters too where they never share a frame and are near: the rule before,
    measured worse by bench/season_ablation.py (docs/seasons.md)."""
    fixes = Path(corrections_file) if corrections_file and Path(corrections_file).exists() else None
    records = effective(parse(fixes, season=True)) if fixes else []
    embedder = _embedder(episodes)
    key = SPACE[embedder]
    threshold = threshold or SEASON_THRESHOLDS[key]
    items = [(e, k) for e in episodes for k, c in enumerate(e.clusters["clusters"]) if not c.get("hidden")]
    where = {(e.episode, k): i for i, (e, k) in enumerate(items)}
    points = np.stack([e.points[k] for e, k in items]) if items else np.zeros((0, 1))
    forbidden: dict[int, set[int]] = {}
    for e in episodes:
        for a, b in e.forbidden:
            i, j = where.get((e.episode, a)), where.get((e.episode, b))
            if i is not None and j is not None:
                forbidden.setdefault(i, set()).add(j)
                forbidden.setdefault(j, set()).add(i)
    user = constraints(episodes, items, records)
    for i, j in user.apart:
        forbidden.setdefault(i, set()).add(j)
        forbidden.setdefault(j, set()).add(i)
    apart = None if within_episode else np.array([e.episode for e, _k in items])
    groups = link(points, forbidden, threshold, user.together or None, apart)
    named, summary = {}, None
    for g, group in enumerate(groups):
        given = sorted({user.names[i] for i in group if i in user.names})
        if given:
            named[g] = (given[0], None, "user")
    if references:
        pool = {n: v for n, v in references.items() if n not in {v[0] for v in named.values()}}
        rest = [g for g in range(len(groups)) if g not in named]
        if pool:
            names, dist = group_distances([np.concatenate([items[i][0].stills[items[i][1]] for i in groups[g]])
                                           for g in rest], pool)
            by_refs, summary = name_groups(dist, names, key, name_threshold)
            named.update({rest[r]: v for r, v in by_refs.items()})
    members = []
    for g, group in enumerate(groups):
        appearances: dict[str, dict] = {}
        for i in group:
            e, k = items[i]
            c = e.clusters["clusters"][k]
            a = appearances.setdefault(e.episode, {"episode": e.episode, "cluster_ids": [], "screen_time_s": 0.0,
                                                   "best_still": None, "_q": -1.0})
            a["cluster_ids"].append(c["cluster_id"])
            a["screen_time_s"] += c["screen_time_s"]
            if e.best[k] and e.best[k][1] > a["_q"]:
                a["best_still"], a["_q"] = e.best[k]
        ordered = [appearances[e.episode] for e in episodes if e.episode in appearances]
        for a in ordered:
            a.pop("_q")
            a["cluster_ids"].sort()
            a["screen_time_s"] = round(a["screen_time_s"], 3)
        member = {"screen_time_s": round(sum(a["screen_time_s"] for a in ordered), 3), "recurring": len(ordered) > 1,
                  "appearances": ordered}
        if g in named:
            member["name"], distance, member["named_by"] = named[g]
            if distance is not None:
                member["name_distance"] = round(distance, 4)
        member["hidden"] = any(user.hidden.get(i, False) for i in group)
        members.append(member)
    members.sort(key=lambda m: (m["hidden"], not m["recurring"], -m["screen_time_s"], m["appearances"][0]["episode"],
                                m["appearances"][0]["cluster_ids"]))
    cast = [{"cast_id": k, **m} for k, m in enumerate(members)]
    result = {"season": season, "episodes": [e.episode for e in episodes], "embedder": embedder,
              "threshold": threshold, "cast": cast}
    if summary is not None:
        result["references"] = {**summary, **(report or {})}
    result["summary"] = cast_summary(result)
    result["corrections"] = {"file": str(fixes) if fixes else None, "applied": user.applied,
                             "unmatched": user.unmatched}
    return result


def cast_summary(cast: dict) -> str:
    """What the season found, in a line: "4 recurring cast members, 6 seen in one episode"."""
    shown = [m for m in cast["cast"] if not m.get("hidden")]
    recurring = sum(m["recurring"] for m in shown)
    once = len(shown) - recurring
    hidden = len(cast["cast"]) - len(shown)
    text = f"{recurring} recurring cast {'member' if recurring == 1 else 'members'}, {once} seen in one episode"
    return text + (f", {hidden} hidden" if hidden else "")
