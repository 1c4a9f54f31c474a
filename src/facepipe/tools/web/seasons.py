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
from .detail import still_url
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
    return p.pipeline_state, p.runtime, p.cast


def make_row(settings: Settings, season: str, episodes: list[str]) -> dict:
    status = unit_status(settings.data_root, Unit.season(season), settings.heartbeat_s)
    state = status["state"] or {}
    cast = cast_of(settings, season)
    return {"season": season, "episodes": episodes, "status": state.get("status") or "new",
            "current_step": state.get("current_step"), "message": state.get("message"), "pct": state.get("pct"),
            "updated_at": state.get("updated_at"), "eta_s": state.get("eta_s"), "busy": bool(status["active"]),
            "cast_members": len(cast.get("cast", [])) if cast else None,
            "warnings": status["flags"] + status["problems"], "log_tail": status["log_tail"]}


def detail(settings: Settings, season: str, row: dict) -> dict:
    """The season's page: its row, its cast.json, and the table of seconds (cast x episode)."""
    cast = cast_of(settings, season)
    table = []
    for member in cast.get("cast", []):
        seconds = {a["episode"]: a["screen_time_s"] for a in member["appearances"]}
        table.append({"cast_id": member["cast_id"], "name": member.get("name"), "total_s": member["screen_time_s"],
                      "seconds": [seconds.get(ep, 0.0) for ep in cast.get("episodes", [])],
                      "stills": [{"episode": a["episode"], "url": still_url(a["episode"], Path(a["best_still"]).name)}
                                 for a in member["appearances"] if a.get("best_still")]})
    paths = SeasonPaths(settings.data_root, season)
    return {**row, "cast": cast or None, "table": table,
            "files": {name: getattr(paths, attr).is_file() for name, attr in FILES.items()}}
