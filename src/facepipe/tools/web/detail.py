"""An episode's page: its clusters as stills (each track's best still, for picking single tracks),
the clusters nearest each one (merge suggestions), its unassigned tracks, its progress history
and, for a failed job, the end of its log. Everything is read from the episode's own output files."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.layout import EpisodePaths
from ...runtime.snapshot import log_tail
from ...runtime.steps import STEPS
from .. import corrections as recording
from .security import contained_file

STILLS_PER_CLUSTER = 8
MAX_UNASSIGNED = 200
# A cluster's tracks sent to the page, one still each, to pick single tracks from.
MAX_TRACKS = 400
# Merge suggestions per cluster (the nearest other clusters by embedding).
SIMILAR = 3
# progress.jsonl only grows; the chart reads its end (the last run fits many times over).
HISTORY_BYTES = 4 * 2**20
HISTORY_POINTS = 2000


class Manifests:
    """stills/manifest.json of each episode, read again only when it changes."""

    def __init__(self):
        self._cache: dict[str, tuple[tuple, dict]] = {}

    def get(self, paths: EpisodePaths) -> dict:
        """{file name: its manifest entry}; empty if there is no (readable) manifest."""
        try:
            st = os.stat(paths.stills_manifest)
        except OSError:
            return {}
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cache.get(paths.episode)
        if cached and cached[0] == key:
            return cached[1]
        data, _problem = atomic.read_json(paths.stills_manifest)
        stills = (data or {}).get("stills")
        entries = {s["file"]: s for s in stills if isinstance(s, dict) and isinstance(s.get("file"), str)} \
            if isinstance(stills, list) else {}
        self._cache[paths.episode] = (key, entries)
        return entries


class Similar:
    """Each episode's merge suggestions (tools.corrections.similar_clusters), computed again only
    when its clusters.json or embeddings.npz changes."""

    def __init__(self):
        self._cache: dict[str, tuple[tuple, dict]] = {}

    def get(self, paths: EpisodePaths, built: dict) -> dict:
        """{cluster id: [{cluster_id, distance}, ...]}; empty without (readable) embeddings."""
        key = (_sig(paths.clusters), _sig(paths.embeddings))
        cached = self._cache.get(paths.episode)
        if cached and cached[0] == key:
            return cached[1]
        try:
            from ...stages.cluster import load_embeddings  # numpy's npz reader, with the stage's keys

            found = recording.similar_clusters(built, load_embeddings(paths.embeddings), SIMILAR)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # none yet, or half-written
            found = {}
        self._cache[paths.episode] = (key, found)
        return found


def _sig(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def file_stamp(path: Path) -> dict | None:
    """When a file last changed (UTC, to the microsecond) and its size, or None: a row carries its
    corrections file's, so a new record changes the row and every page hears of it."""
    sig = _sig(path)
    if sig is None:
        return None
    when = datetime.fromtimestamp(sig[0] / 1e9, timezone.utc).isoformat(timespec="microseconds")
    return {"updated_at": when.replace("+00:00", "Z"), "size": sig[1]}


def version(path: Path) -> str | None:
    """A built file's version (clusters.json, cast.json) as a page sends it back with an action."""
    sig = _sig(path)
    return f"{sig[0]}:{sig[1]}" if sig else None


def still_url(episode: str, name: str) -> str:
    """The dashboard's address of a still of an episode (an episode's page, a season's cast)."""
    return f"/files/{quote(episode)}/stills/{quote(name)}"


def sheet_url(paths: EpisodePaths) -> str | None:
    try:
        version = os.stat(paths.contact_sheet).st_mtime_ns
    except OSError:
        return None
    return f"/files/{quote(paths.episode)}/clusters.jpg?v={version}"


def _best_stills(stills: dict, track_ids) -> dict[int, list[dict]]:
    """track id -> its stills, best quality first."""
    wanted = set(track_ids)
    by_track: dict[int, list[dict]] = {}
    for entry in stills.values():
        if entry.get("track_id") in wanted:
            by_track.setdefault(entry["track_id"], []).append(entry)
    for entries in by_track.values():
        entries.sort(key=lambda e: -(e.get("quality") or 0))
    return by_track


def clusters(paths: EpisodePaths, stills: dict, loaded: tuple[dict | None, str | None] | None = None) -> dict:
    """The clusters (name, screen time, track count, best stills, each track with its best still,
    hidden or not) and the unassigned tracks; `loaded`: clusters.json as atomic.read_json read it."""
    data, problem = loaded or atomic.read_json(paths.clusters)
    if data is None:
        return {"clusters": [], "unassigned": [], "problem": problem, "built": False}
    groups = [c for c in data.get("clusters") or [] if isinstance(c, dict)]
    unassigned = [t for t in data.get("unassigned_track_ids") or [] if isinstance(t, int)]
    by_track = _best_stills(stills, [t for c in groups for t in c.get("track_ids") or []] + unassigned)
    out = []
    for c in groups:
        tracks = [t for t in c.get("track_ids") or [] if isinstance(t, int)]
        best = sorted((e for t in tracks for e in by_track.get(t, [])[:1]), key=lambda e: -(e.get("quality") or 0))
        pickable = [{"track_id": e["track_id"], "still": still_url(paths.episode, e["file"])} for e in best]
        pickable += [{"track_id": t, "still": None} for t in tracks if not by_track.get(t)]
        out.append({"cluster_id": c.get("cluster_id"), "name": c.get("name"), "named_by": c.get("named_by"),
                    "screen_time_s": c.get("screen_time_s"), "tracks": len(tracks),
                    "stills": [still_url(paths.episode, e["file"]) for e in best[:STILLS_PER_CLUSTER]],
                    "track_stills": pickable[:MAX_TRACKS], "hidden": bool(c.get("hidden")),
                    "person_id": c.get("person_id"), "corrected_by": c.get("corrected_by") or []})
    lonely = [{"track_id": t, "still": still_url(paths.episode, by_track[t][0]["file"]) if by_track.get(t) else None}
              for t in unassigned[:MAX_UNASSIGNED]]
    return {"clusters": out, "unassigned": lonely, "unassigned_total": len(unassigned), "problem": problem,
            "built": True, "embedder": data.get("embedder"), "method": data.get("method")}


def history(paths: EpisodePaths) -> dict:
    """The last run's progress (from progress.jsonl): [{t, pct, step, status, message}], the step
    being the one at work (its index), so the chart can colour each stretch by step."""
    try:
        with open(paths.progress_log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - HISTORY_BYTES))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return {"run_id": None, "points": []}
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the cut first line, or a torn one
        if isinstance(entry, dict):
            entries.append(entry)
    run_id = entries[-1].get("run_id") if entries else None
    names = {s.index: s.name for s in STEPS}
    points = [{"t": e.get("updated_at"), "pct": e.get("pct"), "status": e.get("status"),
               "step": names.get(e.get("step_index")), "message": e.get("message")}
              for e in entries if e.get("run_id") == run_id and isinstance(e.get("pct"), (int, float))]
    if len(points) > HISTORY_POINTS:  # keep the shape: every n-th point, and the last
        points = points[:: len(points) // HISTORY_POINTS + 1] + points[-1:]
    return {"run_id": run_id, "points": points}


def episode_detail(data_root: Path, row: dict, plan_entry: dict | None, manifests: Manifests,
                   similar: Similar | None = None) -> dict:
    paths = EpisodePaths(data_root, row["episode"])
    stills = manifests.get(paths)
    launch = row.get("launch") or {}
    # A failed job names its log in the state; a launch that failed before its run started, its own.
    named = row.get("log") or (launch.get("log") if launch.get("error") else None)
    log = own_log(data_root, paths, named)
    clusters_version = version(paths.clusters)  # before reading it: a newer file is refused, never mistaken
    loaded = atomic.read_json(paths.clusters)
    shown = clusters(paths, stills, loaded)
    near = similar.get(paths, loaded[0]) if similar is not None and loaded[0] is not None else {}
    by_id = {c["cluster_id"]: c for c in shown["clusters"]}
    for c in shown["clusters"]:
        c["similar"] = [{**s, "name": by_id.get(s["cluster_id"], {}).get("name")}
                        for s in near.get(c["cluster_id"], [])]
    return {"episode": row["episode"], "row": row, "plan": plan_entry, "contact_sheet": sheet_url(paths),
            "stills": len(stills), **shown, "clusters_version": clusters_version,
            "corrections": corrections_of(paths.corrections, False, loaded[0]),
            "log": named, "log_tail": log_tail(log, 40)}


def corrections_of(path: Path, season: bool, built: dict | None) -> dict:
    """The corrections file's records, oldest first, each with its state against the built
    clusters.json or cast.json `built` (tools.corrections.history), or the one-line reason the
    file cannot be read."""
    try:
        rows = recording.history(path, season, built)
    except FacepipeError as exc:
        return {"file": str(path), "history": [], "problem": str(exc)}
    return {"file": str(path), "history": rows, "problem": None}


def own_log(data_root: Path, paths: EpisodePaths, named: str | None) -> Path | None:
    """The log a state names, read only from the episode's own logs/ folder: the state may spell it
    relative to the folder its run was started in, and a state file must never make the server
    read any other file."""
    return contained_file(data_root, paths.logs_dir, Path(named).name) if named else None
