"""pipeline_state.json: what an episode's (or a season's) build is doing now, for any reader at
any time.

`harvest/{ep}/diagnostics/pipeline_state.json` (a season's: `seasons/{season}/diagnostics/`) holds

    {"episode" (or "season"), "target", "current_step", "step_index", "total_steps", "status",
     "message", "pct", "stage_pct", "plan", "done", "total", "eta_s", "job_id", "run_id", "updated_at"}

status is pending | running | done | error | cancelled; pct is the whole pipeline's progress (the
steps' bands are in runtime/steps.py) and never goes down within a run. Writers in different
processes (the Snakemake head and every job) take `pipeline_state.json.lock`, merge their fields
into the current state and replace the file atomically; each update is also appended to
`progress.jsonl` beside it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from pathlib import Path

from ..base import atomic, clock
from ..base.unit import Unit
from .locks import lock_for
from .steps import STEPS_OF_KIND

ACTIVE = ("pending", "running")
FIELDS = ("episode", "season", "target", "current_step", "step_index", "total_steps", "status", "message", "pct",
          "stage_pct", "plan", "done", "total", "eta_s", "job_id", "slurm_job_id", "run_id", "chunks", "log",
          "attempts", "updated_at")
# Only present when they apply: the unit (an episode or a season); the SLURM job of the current
# stage; detect chunk -> frames done; the log file of the job that failed; job -> the line saying
# that this run had to start it again (requeued by SLURM, or retried by Snakemake).
OPTIONAL = ("episode", "season", "slurm_job_id", "chunks", "log", "attempts")


class PipelineState:
    def __init__(self, data_root: str | Path, unit: Unit):
        paths = unit.paths(data_root)
        self.unit = unit
        self._identity = {unit.kind: unit.name, "total_steps": len(STEPS_OF_KIND[unit.kind])}
        self.path = paths.pipeline_state
        self.log_path = paths.progress_log

    @functools.cached_property
    def _lock(self):
        """Made on first write: a reader (a watcher, many times a second) never needs it."""
        return lock_for(self.path)

    def read(self) -> tuple[dict | None, str | None]:
        return atomic.read_json(self.path)

    def update(self, **fields) -> dict:
        """Merge `fields` into the state and publish it; returns the state written.

        Within one run (same run_id) pct never goes down. `only_if` (a callable on the current
        state) lets a writer skip the update, e.g. not to overwrite a cancellation.
        """
        return self.update_with(lambda current: fields)

    def update_with(self, derive: Callable[[dict], dict]) -> dict:
        """Like update(), with the fields computed from the current state under the lock
        (for values summed over concurrent writers, such as detect chunks)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            current, _problem = self.read()  # a damaged file is replaced by this write
            current = current or {}
            fields = dict(derive(current))
            only_if: Callable[[dict], bool] | None = fields.pop("only_if", None)
            if only_if is not None and not only_if(current):
                return current
            state = {**self._identity, **current, **fields}
            same_run = current.get("run_id") is not None and current.get("run_id") == state.get("run_id")
            if same_run and isinstance(current.get("pct"), (int, float)) and isinstance(state.get("pct"), (int, float)):
                state["pct"] = max(current["pct"], state["pct"])
            state["updated_at"] = clock.utc_now()
            state = {k: state.get(k) for k in FIELDS if k not in OPTIONAL or state.get(k) is not None}
            atomic.write_json(self.path, state)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(state) + "\n")
        return state

    def note_attempt(self, run_id: str | None, job: str, line: str, **fields) -> dict:
        """Say, for as long as run `run_id` lasts, that its job `job` had to be started again."""

        def noted(current: dict) -> dict:
            attempts = dict(current.get("attempts") or {}) if current.get("run_id") == run_id else {}
            return {**fields, "attempts": {**attempts, job: line}}

        return self.update_with(noted)

    def touch(self) -> None:
        """Rewrite the state unchanged but for updated_at: the heartbeat readers look for."""
        self.update(only_if=is_active)


def is_active(state: dict) -> bool:
    return state.get("status") in ACTIVE


def not_cancelled(state: dict) -> bool:
    """Writers skip their update once the user has cancelled: a cancellation is never overwritten."""
    return state.get("status") != "cancelled"


class Heartbeat:
    """Calls `beat` every `interval_s` seconds on a daemon thread until stopped."""

    def __init__(self, interval_s: float, beat: Callable[[], None]):
        self.interval_s = interval_s
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facepipe-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # a missed beat must never kill the job; the next one retries
                pass

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)
