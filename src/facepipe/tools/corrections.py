"""Recording corrections: from the ids a user sees (the current clusters.json and cast.json) to
records anchored on tracks (base.corrections), for `facepipe correct` and the web page alike.

Recording never builds: the next `snakemake` (or `facepipe correct --run`) reruns cluster and
season for what changed, and nothing upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..base import corrections as records
from ..base.errors import FacepipeError
from ..base.layout import EpisodePaths, SeasonPaths

EPISODE_OPS = ("merge", "split", "name", "hide", "unhide", "not", "undo")
SEASON_OPS = ("merge", "split", "name", "hide", "unhide", "undo")
# A record of a whole cluster keeps this many of its longest tracks: enough to find the cluster
# again (the one holding most of them), small enough to keep a line readable.
TRACKS_PER_CLUSTER = 8


def _load(path: Path, what: str, fix: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FacepipeError(f"{path}: no {what} yet; {fix}") from None
    except (OSError, ValueError) as exc:
        raise FacepipeError(f"{path}: cannot read the {what} ({exc}); {fix}") from None


def _one(by_id: dict[int, dict], given, missing: str, known: str) -> dict:
    """by_id[given] for an id typed by a user, or the one-line refusal listing the ids there are."""
    try:
        return by_id[int(given)]
    except (KeyError, ValueError):
        ids = ", ".join(str(k) for k in by_id) or "none"
        raise FacepipeError(f"{missing} {given!r}; {known} {ids}") from None


class EpisodeView:
    """An episode as its user sees it now: clusters.json and the tracks behind it."""

    def __init__(self, data_root: str | Path, episode: str):
        self.paths = EpisodePaths(Path(data_root), episode)
        self.episode = episode
        fix = f"run snakemake cluster_target (or build {episode} from the dashboard) first"
        self.clusters = _load(self.paths.clusters, "clusters", fix)
        self.tracks = _load(self.paths.tracks, "tracks", fix)
        self.by_track = {t["track_id"]: t for t in self.tracks["tracks"]}
        self.by_cluster = {c["cluster_id"]: c for c in self.clusters["clusters"]}

    def cluster(self, cid) -> dict:
        return _one(self.by_cluster, cid, f"{self.paths.clusters}: episode {self.episode} has no cluster",
                    "its clusters are")

    def track(self, tid, cluster: dict | None = None) -> dict:
        pool = cluster["track_ids"] if cluster is not None else list(self.by_track)
        try:
            if int(tid) in pool:
                return self.by_track[int(tid)]
        except ValueError:
            pass
        where = f"cluster {cluster['cluster_id']}" if cluster is not None else f"episode {self.episode}"
        raise FacepipeError(f"{self.paths.tracks}: {where} has no track {tid!r}; its tracks are "
                            f"{', '.join(str(t) for t in pool) or 'none'}")

    def anchors(self, track_ids, episode: str | None = None, limit: int | None = None) -> list[dict]:
        tracks = [self.by_track[t] for t in track_ids if t in self.by_track]
        if limit:
            tracks = sorted(tracks, key=lambda t: (-len(t["detections"]), t["track_id"]))[:limit]
        return [records.anchor(t, episode) for t in sorted(tracks, key=lambda t: t["track_id"])]

    def cluster_anchors(self, cid, episode: str | None = None) -> list[dict]:
        return self.anchors(self.cluster(cid)["track_ids"], episode, TRACKS_PER_CLUSTER)


def _label(c: dict) -> str:
    return f"cluster {c['cluster_id']}" + (f" ({c['name']})" if c.get("name") else "")


def _undo_record(path: Path, season: bool, target: str | None) -> dict:
    existing = records.parse(path, season)
    live = records.effective(existing)
    if target is None:
        if not live:
            raise FacepipeError(f"{path}: no correction to undo")
        chosen = live[-1]
    else:
        chosen = next((r for r in existing if r.id == target), None)
        if chosen is None:
            ids = ", ".join(r.id for r in existing) or "none"
            raise FacepipeError(f"{path}: no record {target!r}; the records are {ids}")
    return records.new_record("undo", record=chosen.id, note=f"undo {chosen.id} ({chosen.data.get('note', chosen.op)})")


def correct_episode(data_root: str | Path, episode: str, op: str, clusters=(), tracks=(), into=None,
                    name: str | None = None, record: str | None = None) -> dict:
    """Append one correction of `episode`, given in the ids of its current clusters.json, and
    return the record.

    merge: clusters (two or more); split: clusters[0] and the tracks to move out of it (into the
    cluster `into`, or a new person); not: clusters[0] is not the person of those tracks; name:
    clusters[0] and `name`; hide, unhide: clusters[0]; undo: `record`, or the latest in effect."""
    if op not in EPISODE_OPS:
        raise FacepipeError(f"unknown correction {op!r}; use one of {', '.join(EPISODE_OPS)}")
    path = EpisodePaths(Path(data_root), episode).corrections
    if op == "undo":
        return records.append(path, _undo_record(path, False, record))
    view = EpisodeView(data_root, episode)
    cs = [view.cluster(c) for c in clusters]
    need = 2 if op == "merge" else 1
    if len(cs) < need:
        raise FacepipeError(f"{op} needs {'two or more clusters' if need == 2 else 'a cluster'} of {episode}")
    if op == "merge":
        if len({c["cluster_id"] for c in cs}) < 2:
            raise FacepipeError(f"merge needs two different clusters of {episode}")
        rec = records.new_record("merge", groups=[view.cluster_anchors(c["cluster_id"]) for c in cs],
                                 note="merge " + ", ".join(_label(c) for c in cs))
    elif op in ("split", "not"):
        source = cs[0]
        if not tracks:
            raise FacepipeError(f"{op} needs the tracks to move out of {_label(source)}: "
                                f"its tracks are {', '.join(map(str, source['track_ids']))}")
        moved = sorted({view.track(t, source)["track_id"] for t in tracks})
        if op == "split":
            target = view.cluster(into) if into is not None else None
            if target is not None and target["cluster_id"] == source["cluster_id"]:
                raise FacepipeError(f"split: the tracks are already in {_label(source)}; move them to another cluster")
            if target is None and set(moved) == set(source["track_ids"]):
                raise FacepipeError(f"split: those are all the tracks of {_label(source)}; split off fewer, "
                                    "or name or hide the cluster instead")
            rec = records.new_record(
                "split", tracks=view.anchors(moved),
                into=view.cluster_anchors(target["cluster_id"]) if target is not None else None,
                note=f"tracks {', '.join(map(str, moved))} out of {_label(source)}"
                     + (f" into {_label(target)}" if target is not None else " to a new person"))
        else:
            rest = [t for t in source["track_ids"] if t not in moved]
            if not rest:
                raise FacepipeError(f"not: those are all the tracks of {_label(source)}; hide the cluster instead")
            rec = records.new_record("not", tracks=view.anchors(moved),
                                     person=view.anchors(rest, limit=TRACKS_PER_CLUSTER),
                                     note=f"tracks {', '.join(map(str, moved))} are not {_label(source)}")
    elif op == "name":
        if not name or not name.strip():
            raise FacepipeError("name needs the name to give, e.g. \"Full Name\"")
        rec = records.new_record("name", tracks=view.cluster_anchors(cs[0]["cluster_id"]), name=name.strip(),
                                 note=f"{_label(cs[0])} is {name.strip()}")
    else:
        rec = records.new_record(op, tracks=view.cluster_anchors(cs[0]["cluster_id"]), note=f"{op} {_label(cs[0])}")
    return records.append(path, rec)


class SeasonView:
    """A season as its user sees it now: cast.json and the episodes' clusters behind it."""

    def __init__(self, data_root: str | Path, season: str):
        self.data_root = Path(data_root)
        self.paths = SeasonPaths(self.data_root, season)
        self.season = season
        self.cast = _load(self.paths.cast, "cast", "run snakemake season_target first")
        self.by_cast = {m["cast_id"]: m for m in self.cast["cast"]}
        self._episodes: dict[str, EpisodeView] = {}

    def member(self, cid) -> dict:
        return _one(self.by_cast, cid, f"{self.paths.cast}: season {self.season} has no cast member",
                    "its cast ids are")

    def episode(self, name: str) -> EpisodeView:
        if name not in self._episodes:
            self._episodes[name] = EpisodeView(self.data_root, name)
        return self._episodes[name]

    def appearance_anchors(self, appearance: dict) -> list[dict]:
        view = self.episode(appearance["episode"])
        tids = [t for c in appearance["cluster_ids"] for t in view.cluster(c)["track_ids"]]
        return view.anchors(tids, appearance["episode"], TRACKS_PER_CLUSTER)

    def member_anchors(self, member: dict) -> list[dict]:
        return [a for app in member["appearances"] for a in self.appearance_anchors(app)]


def _member_label(m: dict) -> str:
    return f"cast member {m['cast_id']}" + (f" ({m['name']})" if m.get("name") else "")


def correct_season(data_root: str | Path, season: str, op: str, cast=(), episode: str | None = None,
                   name: str | None = None, record: str | None = None) -> dict:
    """Append one correction of `season`, given in the cast ids of its current cast.json.

    merge: cast (two or more); split: cast[0] and the `episode` whose appearance leaves it;
    name: cast[0] and `name`; hide, unhide: cast[0]; undo: `record`, or the latest in effect."""
    if op not in SEASON_OPS:
        raise FacepipeError(f"unknown season correction {op!r}; use one of {', '.join(SEASON_OPS)}")
    path = SeasonPaths(Path(data_root), season).corrections
    if op == "undo":
        return records.append(path, _undo_record(path, True, record), season=True)
    view = SeasonView(data_root, season)
    ms = [view.member(c) for c in cast]
    if len(ms) < (2 if op == "merge" else 1):
        need = "two or more cast members" if op == "merge" else "a cast member"
        raise FacepipeError(f"{op} needs {need} of {season}")
    if op == "merge":
        if len({m["cast_id"] for m in ms}) < 2:
            raise FacepipeError(f"merge needs two different cast members of {season}")
        rec = records.new_record("merge", groups=[view.member_anchors(m) for m in ms],
                                 note="merge " + ", ".join(_member_label(m) for m in ms))
    elif op == "split":
        member = ms[0]
        episodes = [a["episode"] for a in member["appearances"]]
        if episode not in episodes:
            raise FacepipeError(f"split: {_member_label(member)} appears in {', '.join(episodes)}; "
                                "name one of those episodes")
        if len(episodes) < 2:
            raise FacepipeError(f"split: {_member_label(member)} appears only in {episode}; nothing to split off")
        mine = next(a for a in member["appearances"] if a["episode"] == episode)
        rest = [a for a in member["appearances"] if a["episode"] != episode]
        rec = records.new_record("split", tracks=view.appearance_anchors(mine), into=None,
                                 person=[x for a in rest for x in view.appearance_anchors(a)],
                                 note=f"{episode} is not {_member_label(member)}")
    elif op == "name":
        if not name or not name.strip():
            raise FacepipeError("name needs the name to give, e.g. \"Full Name\"")
        rec = records.new_record("name", tracks=view.member_anchors(ms[0]), name=name.strip(),
                                 note=f"{_member_label(ms[0])} is {name.strip()}")
    else:
        rec = records.new_record(op, tracks=view.member_anchors(ms[0]), note=f"{op} {_member_label(ms[0])}")
    return records.append(path, rec, season=True)


def history(path: str | Path, season: bool, built: dict | None) -> list[dict]:
    """Every record of a corrections file, oldest first, with its state: "applied", "undone", an
    "undo", "unmatched" (with why, from the built clusters.json or cast.json `built`) or
    "pending" (recorded after the last build)."""
    every = records.parse(path, season)
    live = {r.id for r in records.effective(every)}
    report = (built or {}).get("corrections") or {}
    applied = set(report.get("applied") or [])
    unmatched = {u["id"]: u["why"] for u in report.get("unmatched") or []}
    rows = []
    for r in every:
        row = {"id": r.id, "at": r.data["at"], "op": r.op, "note": r.data.get("note", ""), "line": r.line}
        if r.op == "undo":
            row["state"] = "undo"
        elif r.id not in live:
            row["state"] = "undone"
        elif r.id in unmatched:
            row["state"], row["why"] = "unmatched", unmatched[r.id]
        elif r.id in applied:
            row["state"] = "applied"
        else:
            row["state"] = "pending"
        rows.append(row)
    return rows


def similar_clusters(clusters: dict, embeddings: dict, top: int = 3) -> dict[int, list[dict]]:
    """Merge suggestions: for each shown cluster of clusters.json, the `top` other shown clusters
    nearest by embedding (a cluster's vector: the mean of its tracks' unit vectors; cosine
    distance), closest first: {cluster id: [{"cluster_id", "distance"}, ...]}. `embeddings`:
    embeddings.npz as stages.cluster.load_embeddings reads it."""
    import numpy as np

    from ..stages.cluster import l2_normalise, track_vectors

    vectors, owners = embeddings["vectors"], embeddings["track_ids"]
    have = set(owners.tolist())
    ids, means = [], []
    for c in clusters.get("clusters") or []:
        tids = [t for t in c["track_ids"] if t in have]
        if tids and not c.get("hidden"):
            ids.append(c["cluster_id"])
            means.append(track_vectors(vectors, owners, tids).mean(axis=0))
    if len(ids) < 2:
        return {}
    points = l2_normalise(np.stack(means))
    distances = np.clip(1.0 - points @ points.T, 0.0, 2.0)
    out = {}
    for i, cid in enumerate(ids):
        nearest = [j for j in np.argsort(distances[i], kind="stable") if j != i][:top]
        out[cid] = [{"cluster_id": ids[j], "distance": round(float(distances[i, j]), 4)} for j in nearest]
    return out
