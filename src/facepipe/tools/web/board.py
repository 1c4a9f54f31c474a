"""What the episodes page shows: one row per episode, and the plan its step chips come from.

A row joins what runtime.snapshot.unit_status reads (the state, the registry, stale entries,
damaged files) with the step chips and the page's own launch of the episode. The chips come from
the plan `facepipe plan` makes (Snakemake's dry run of cluster_target): a step with no planned
job is built, a job planned for "Missing output files" makes it missing, any other reason out of
date; the live state overrides them while a run goes (running) or after it failed (failed).

The plan is never made for a request: Planner refreshes it in the background at start-up, after a
run ends and when the videos folder changes, in a separate process (`facepipe plan --json`), so a
dry run of 500 episodes neither blocks the server nor shares Snakemake's globals with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...base import clock
from ...base.layout import STEP_OUTPUTS, EpisodePaths
from ...base.unit import Unit
from ...runtime.progress import ACTIVE
from ...runtime.snapshot import is_running, unit_status
from ...runtime.steps import STEP_OF_RULE, STEPS
from .detail import file_stamp
from .launcher import shown_status
from .settings import Settings, niced

MISSING = "Missing output files"
# Chip states, in the order a person reads them.
CHIPS = ("built", "missing", "out of date", "running", "failed", "unknown")
# A refresh waits this long for other requests (several episodes ending together) to join it.
DEBOUNCE_S = 0.3
# An episode's steps as the pages use them (buttons, chart colours, legend), sent in the board's
# meta: the pages' scripts restate nothing of runtime/steps.py.
PAGE_STEPS = [{"name": s.name, "title": s.title, "index": s.index, "band": list(s.band)} for s in STEPS]


@dataclass(frozen=True)
class Plan:
    """The latest dry run: episode -> {"steps", "jobs": [{"rule", "reason"}]} (episodes with nothing
    to do are absent), or the one-line reason it failed."""
    episodes: dict | None = None
    error: str | None = None
    planned_at: str | None = None
    seconds: float | None = None
    refreshing: bool = False

    @property
    def ready(self) -> bool:
        return self.episodes is not None and self.error is None

    def public(self) -> dict:
        return {"state": "error" if self.error else "ready" if self.ready else "planning",
                "refreshing": self.refreshing, "planned_at": self.planned_at, "seconds": self.seconds,
                "error": self.error}


def own_outputs(step_name: str) -> tuple[str, ...]:
    """The outputs a step adds to those of the steps before it."""
    names = [s.name for s in STEPS]
    before = STEP_OUTPUTS[names[names.index(step_name) - 1]] if names.index(step_name) else ()
    return tuple(p for p in STEP_OUTPUTS[step_name] if p not in before)


def chips(paths: EpisodePaths, has_video: bool, plan: Plan, state: dict) -> list[dict]:
    """Each step's chip: {"step", "title", "status" (CHIPS), "reason"}."""
    entry = (plan.episodes or {}).get(paths.episode) or {}
    jobs = entry.get("jobs", [])
    # the plan's reason in the pages' words (runtime.planning.step_reasons), without the step's title
    words = {r["step"]: r["text"].split(": ", 1)[-1] for r in entry.get("reasons", [])}
    live = state.get("status") in ACTIVE or state.get("status") == "error"
    index = state.get("step_index") if isinstance(state.get("step_index"), int) else None
    out = []
    for step in STEPS:
        reasons = [j["reason"] for j in jobs if STEP_OF_RULE.get(j["rule"]) is step]
        if not has_video:  # no dry run can plan it: say what is on disk
            exists = all(Path(paths.data_root, p.format(ep=paths.episode)).exists() for p in own_outputs(step.name))
            status = "built" if exists else "missing"
        elif not plan.ready:
            status = "unknown"
        elif not reasons:
            status = "built"
        else:
            status = "missing" if any(r.startswith(MISSING) for r in reasons) else "out of date"
        if live and index is not None and step.name in (state.get("plan") or []):
            if state["status"] == "error" and step.index == index:
                status = "failed"
            elif state["status"] == "running" and step.index == index:
                status = "running"
            elif state["status"] == "running" and step.index < index:
                status = "built"  # built by this run, since the plan was made
        reason = words.get(step.name) or (reasons[0] if reasons else "")
        out.append({"step": step.name, "title": step.title, "status": status, "reason": reason})
    return out


def make_row(settings: Settings, episode: str, has_video: bool, plan: Plan, launch: dict | None) -> dict:
    """The episode's row (what the page and GET /api/episodes show). It holds no clock reading, so
    it changes only when something about the episode does; the page computes ages from
    `updated_at` and the server's `now` sent with every event."""
    st = unit_status(settings.data_root, Unit.episode(episode), settings.heartbeat_s)
    state = st["state"] or {}
    paths = EpisodePaths(settings.data_root, episode)
    # No state: never built here ("new"); a state file that cannot be read: "unknown" (and a warning).
    status = state.get("status") or ("unknown" if paths.pipeline_state.exists() else "new")
    active = [{k: a.get(k) for k in ("kind", "name", "pid", "host", "slurm_job_id", "started_at", "stale")}
              for a in st["active"]]
    alive = bool(launch and launch.get("alive"))
    shown, message = shown_status(status, state.get("message"), launch)
    return {
        "episode": episode, "video": has_video, "status": shown, "running": is_running(st),
        **{k: state.get(k) for k in ("current_step", "step_index", "pct", "eta_s", "done", "total",
                                     "target", "updated_at", "run_id")}, "message": message,
        "chips": chips(paths, has_video, plan, state),
        "active": active, "warnings": st["flags"] + st["problems"], "log": st["log"], "launch": launch,
        "busy": alive or any(not a["stale"] for a in active),
        "corrections": file_stamp(paths.corrections),
    }


def encode(row: dict) -> str:
    return json.dumps(row, separators=(",", ":"))


@dataclass
class Planner:
    """Keeps `plan` fresh in the background (see the module's docstring)."""

    settings: Settings
    on_change: Callable[[bool], None]  # called with True when the plan itself changed
    plan: Plan = field(default_factory=Plan)
    _wanted: asyncio.Event | None = None
    _proc: subprocess.Popen | None = None
    _stopped: bool = False

    def argv(self) -> list[str]:
        s = self.settings
        argv = [sys.executable, "-m", "facepipe.tools.cli", "plan", "cluster_target", "--json", "-d", str(s.workdir),
                "--data-root", s.data_root_arg, "--videos-dir", s.videos_dir_arg]
        return argv + (["--config", str(s.config_file)] if s.config_file else [])

    def request(self) -> None:
        """Ask for a refresh (on the event loop's thread)."""
        if self._wanted is not None:
            self._wanted.set()

    async def run(self) -> None:
        self._wanted = asyncio.Event()
        self._wanted.set()  # the first plan, at start-up
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            await asyncio.sleep(DEBOUNCE_S)
            if self._stopped:
                return
            self._wanted.clear()
            self.plan = Plan(self.plan.episodes, self.plan.error, self.plan.planned_at, self.plan.seconds, True)
            self.on_change(False)
            done: asyncio.Future = loop.create_future()
            threading.Thread(target=self._plan_into, args=(done,), name="facepipe-plan", daemon=True).start()
            self.plan = await done
            self.on_change(True)

    def _plan_into(self, done: asyncio.Future) -> None:
        plan = self._dry_run()
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server stopped meanwhile
            done.get_loop().call_soon_threadsafe(lambda: done.done() or done.set_result(plan))

    def _dry_run(self) -> Plan:
        t0 = time.monotonic()
        try:
            self._proc = subprocess.Popen(niced(self.argv()), cwd=self.settings.workdir, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            out, err = self._proc.communicate()
            code = self._proc.returncode
        except OSError as exc:
            out, err, code = "", f"facepipe plan could not start: {exc}", 1
        seconds = round(time.monotonic() - t0, 2)
        if code == 0:
            try:
                return Plan(json.loads(out), None, clock.utc_now(), seconds)
            except ValueError:
                err = "facepipe plan printed no JSON"
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        reason = lines[-1].removeprefix("facepipe: ") if lines else f"facepipe plan ended with code {code}"
        return Plan(self.plan.episodes, reason, clock.utc_now(), seconds)

    def stop(self) -> None:
        self._stopped = True
        if self._wanted is not None:
            self._wanted.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
