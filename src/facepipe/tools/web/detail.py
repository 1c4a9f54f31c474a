"""An episode's page: its clusters as stills, its unassigned tracks, its progress history and,
for a failed job, the end of its log. Everything is read from the episode's own output files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from ...base import atomic
from ...base.layout import EpisodePaths
from ...runtime.snapshot import log_tail
from ...runtime.steps import STEPS
from .security import contained_file

STILLS_PER_CLUSTER = 8
MAX_UNASSIGNED = 200
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


def clusters(paths: EpisodePaths, stills: dict) -> dict:
    """The clusters (name, screen time, track count, best stills) and the unassigned tracks."""
    data, problem = atomic.read_json(paths.clusters)
    if data is None:
        return {"clusters": [], "unassigned": [], "problem": problem, "built": False}
    groups = [c for c in data.get("clusters") or [] if isinstance(c, dict)]
    unassigned = [t for t in data.get("unassigned_track_ids") or [] if isinstance(t, int)]
    by_track = _best_stills(stills, [t for c in groups for t in c.get("track_ids") or []] + unassigned)
    out = []
    for c in groups:
        tracks = [t for t in c.get("track_ids") or [] if isinstance(t, int)]
        best = sorted((e for t in tracks for e in by_track.get(t, [])[:1]), key=lambda e: -(e.get("quality") or 0))
        out.append({"cluster_id": c.get("cluster_id"), "name": c.get("name"), "named_by": c.get("named_by"),
                    "screen_time_s": c.get("screen_time_s"), "tracks": len(tracks),
                    "stills": [still_url(paths.episode, e["file"]) for e in best[:STILLS_PER_CLUSTER]]})
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


def episode_detail(data_root: Path, row: dict, plan_entry: dict | None, manifests: Manifests) -> dict:
    paths = EpisodePaths(data_root, row["episode"])
    stills = manifests.get(paths)
    launch = row.get("launch") or {}
    # A failed job names its log in the state; a launch that failed before its run started, its own.
    named = row.get("log") or (launch.get("log") if launch.get("error") else None)
    log = own_log(data_root, paths, named)
    return {"episode": row["episode"], "row": row, "plan": plan_entry, "contact_sheet": sheet_url(paths),
            "stills": len(stills), **clusters(paths, stills), "log": named, "log_tail": log_tail(log, 40)}


def own_log(data_root: Path, paths: EpisodePaths, named: str | None) -> Path | None:
    """The log a state names, read only from the episode's own logs/ folder: the state may spell it
    relative to the folder its run was started in, and a state file must never make the server
    read any other file."""
    return contained_file(data_root, paths.logs_dir, Path(named).name) if named else None
