"""What `facepipe status` shows: each episode's state and registry, with stale entries flagged."""

from __future__ import annotations

from pathlib import Path

from . import atomic
from .progress import ACTIVE, PipelineState
from .registry import STALE_HEARTBEATS, Registry, describe, is_stale


def known_episodes(data_root: Path) -> list[str]:
    harvest = data_root / "harvest"
    if not harvest.is_dir():
        return []
    return sorted(p.name for p in harvest.iterdir() if (p / "diagnostics" / "pipeline_state.json").exists())


def episode_status(data_root: Path, episode: str, heartbeat_s: float) -> dict:
    state, state_problem = PipelineState(data_root, episode).read()
    registry = Registry(data_root, episode, heartbeat_s)
    reg, reg_problem = registry.read()
    age = atomic.age_s((state or {}).get("updated_at"))
    age = None if age is None else round(age, 1)
    flags = []
    if state and state.get("status") == "running" and age is not None and age > STALE_HEARTBEATS * heartbeat_s:
        flags.append(f"stale: no heartbeat for {age:.0f} s")
    active = []
    for kind in ("runs", "jobs"):
        for name, entry in reg[kind].items():
            stale = is_stale(entry, heartbeat_s)
            active.append({"kind": kind[:-1], "name": name, "stale": stale, **entry})
            if stale:
                flags.append(f"stale {kind[:-1]} {name}: {describe(entry)}")
    problems = [p for p in (state_problem, reg_problem) if p]
    return {"episode": episode, "state": state, "heartbeat_age_s": age, "active": active,
            "flags": flags, "problems": problems}


def is_active(status: dict) -> bool:
    state = status["state"] or {}
    return state.get("status") in ACTIVE and not any(f.startswith("stale: ") for f in status["flags"])


def render(statuses: list[dict]):
    """A rich Table of the statuses."""
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("episode", "step", "progress", "pct", "status", "message", "heartbeat", "active jobs"):
        table.add_column(col, overflow="fold")
    colours = {"done": "green", "error": "red", "cancelled": "yellow", "running": "cyan", "pending": "white"}
    for st in statuses:
        s = st["state"] or {}
        pct = s.get("pct")
        filled = int(round((pct or 0) * 10))
        bar = "#" * filled + "-" * (10 - filled)
        status = s.get("status", "-")
        message = s.get("message") or ""
        notes = st["flags"] + st["problems"]
        if notes:
            message += "\n[red]" + "\n".join(notes) + "[/red]"
        jobs = ", ".join(f"{a['name']}{' (stale)' if a['stale'] else ''}" for a in st["active"]) or "-"
        age = st["heartbeat_age_s"]
        table.add_row(st["episode"], f"{s.get('current_step', '-')}" + (f" [{s.get('step_index')}/{s.get('total_steps')}]" if s else ""),
                      bar, f"{pct * 100:.0f}%" if isinstance(pct, (int, float)) else "-",
                      f"[{colours.get(status, 'white')}]{status}[/]", message,
                      f"{age:.0f} s ago" if age is not None else "-", jobs)
    return table
