"""The seasons the dashboard shows: a row per season (its state, its episodes, the size of its
cast), and a season's page (its cast table, screen-time chart and cast sheet).

A season is listed once the videos folder has an episode of it (base.seasons, with the server's
season settings) or the data root has its folder (seasons/{season}); its row comes from the same
status snapshot `facepipe status` shows (runtime.snapshot, kind "season").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...base.errors import FacepipeError
from ...base.layout import SEASONS, SeasonPaths
from ...base.seasons import group
from ...base.unit import Unit
from ...runtime.snapshot import unit_status
from .detail import corrections_of, file_stamp, still_url, version
from .launcher import shown_status
from .settings import Settings

# The files of a season the pages may show, by the name they are asked for.
FILES = {"screen_time.png": "screen_time_chart", "cast.jpg": "cast_sheet"}


def seasons(settings: Settings, videos) -> dict[str, list[str]]:
    """Season -> its episodes: grouped from the videos found, and any season built before."""
    try:
        found = group(videos, settings.season) if settings.season else {}
    except FacepipeError:  # a bad season setting is the workflow's to report
        found = {}
    folder = settings.data_root / SEASONS
    try:
        built = [e.name for e in os.scandir(folder) if e.is_dir()]
    except OSError:
        built = []
    for name in built:
        if name not in found:
            found[name] = cast_of(settings, name).get("episodes", [])
    return dict(sorted(found.items()))


def cast_of(settings: Settings, season: str) -> dict:
    try:
        return json.loads(SeasonPaths(settings.data_root, season).cast.read_text())
    except (OSError, ValueError):
        return {}


def files_of(settings: Settings, season: str) -> tuple[Path, ...]:
    """The files whose change changes the season's row."""
    p = SeasonPaths(settings.data_root, season)
    return p.pipeline_state, p.runtime, p.cast, p.corrections


def make_row(settings: Settings, season: str, episodes: list[str], launch: dict | None = None) -> dict:
    status = unit_status(settings.data_root, Unit.season(season), settings.heartbeat_s)
    state = status["state"] or {}
    cast = cast_of(settings, season)
    shown, message = shown_status(state.get("status") or "new", state.get("message"), launch)
    return {"season": season, "episodes": episodes, "status": shown,
            "current_step": state.get("current_step"), "message": message, "pct": state.get("pct"),
            "updated_at": state.get("updated_at"), "eta_s": state.get("eta_s"),
            "busy": bool(launch and launch.get("alive")) or any(not a.get("stale") for a in status["active"]),
            "cast_members": len(cast.get("cast", [])) if cast else None,
            "cast_summary": cast.get("summary") if cast else None,
            "warnings": status["flags"] + status["problems"], "log_tail": status["log_tail"], "launch": launch,
            "corrections": file_stamp(SeasonPaths(settings.data_root, season).corrections)}


def detail(settings: Settings, season: str, row: dict) -> dict:
    """The season's page: its row, its cast.json, the table of seconds (cast x episode) and the
    season's corrections."""
    paths = SeasonPaths(settings.data_root, season)
    cast_version = version(paths.cast)  # before reading it: a newer file is refused, never mistaken
    cast = cast_of(settings, season)
    table = []
    for member in cast.get("cast", []):
        seconds = {a["episode"]: a["screen_time_s"] for a in member["appearances"]}
        table.append({"cast_id": member["cast_id"], "name": member.get("name"), "total_s": member["screen_time_s"],
                      "recurring": bool(member.get("recurring", len(member["appearances"]) > 1)),
                      "named_by": member.get("named_by"), "hidden": bool(member.get("hidden")),
                      "episodes": [a["episode"] for a in member["appearances"]],
                      "seconds": [seconds.get(ep, 0.0) for ep in cast.get("episodes", [])],
                      "stills": [{"episode": a["episode"], "url": still_url(a["episode"], Path(a["best_still"]).name)}
                                 for a in member["appearances"] if a.get("best_still")]})
    return {**row, "cast": cast or None, "table": table, "cast_version": cast_version,
            "corrections": corrections_of(paths.corrections, True, cast or None),
            "files": {name: getattr(paths, attr).is_file() for name, attr in FILES.items()}}
