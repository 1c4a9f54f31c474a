"""What a watcher sees of an episode or a season (the status view, the web page): its state and
registry, with stale entries and damaged files flagged, and the tail of a failed job's log."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from ..base import clock
from ..base.layout import known_episodes, known_seasons
from ..base.unit import Unit
from .progress import PipelineState, is_active
from .registry import STALE_HEARTBEATS, Registry, describe, is_stale

LOG_TAIL_LINES = 12

__all__ = ["is_running", "known_episodes", "known_seasons", "log_tail", "unit_status"]


def log_tail(path: str | Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` lines of a log file (none if there is no such file)."""
    if not path:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [ln.rstrip("\n") for ln in deque(fh, maxlen=lines)]
    except OSError:
        return []


def unit_status(data_root: Path, unit: Unit, heartbeat_s: float) -> dict:
    """An episode's or a season's status for a watcher."""
    state, state_problem = PipelineState(data_root, unit).read()
    reg, reg_problem = Registry(data_root, unit, heartbeat_s).read()
    age = clock.age_s((state or {}).get("updated_at"))
    age = None if age is None else round(age, 1)
    flags = []
    if state and state.get("status") == "running" and age is not None and age > STALE_HEARTBEATS * heartbeat_s:
        flags.append(f"stale: no heartbeat for {age:.0f} s")
    active = []
    for table in ("runs", "jobs"):
        for name, entry in reg[table].items():
            stale = is_stale(entry, heartbeat_s)
            active.append({"kind": table[:-1], "name": name, "stale": stale, **entry})
            if stale:
                flags.append(f"stale {table[:-1]} {name}: {describe(entry)}")
    flags += list(((state or {}).get("attempts") or {}).values())  # jobs this run had to start again
    problems = [p for p in (state_problem, reg_problem) if p]
    failed_log = (state or {}).get("log") if (state or {}).get("status") == "error" else None
    return {"episode": unit.name, "kind": unit.kind, "state": state, "heartbeat_age_s": age, "active": active,
            "flags": flags, "problems": problems, "log": failed_log, "log_tail": log_tail(failed_log),
            "paths": {"state": str(unit.paths(data_root).pipeline_state)}}


def is_running(status: dict) -> bool:
    """The unit is being built and its job is alive (not frozen past its heartbeat)."""
    return is_active(status["state"] or {}) and not any(f.startswith("stale: ") for f in status["flags"])
