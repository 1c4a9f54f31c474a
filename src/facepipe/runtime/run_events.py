"""Workflow-level progress, written by the Snakemake head process.

The Snakefile's onstart/onsuccess/onerror hooks call `on_start` and `on_end`; the facepipe logger
plugin (snakemake_logger_plugin_facepipe, `--logger facepipe`) calls `job_started` and
`job_failed` as Snakemake reports jobs. Together they write the plan, the start, the end and the
failures of jobs, including jobs that die without reporting themselves (killed, out of memory,
failed on a cluster node).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..base import clock
from ..base.layout import job_name
from ..base.unit import Unit
from . import messages, procinfo
from .progress import Heartbeat, PipelineState, is_active
from .registry import Registry, RegistryBusy
from .steps import BY_NAME, RULES, STEP_OF_RULE, STEPS_OF_KIND, kind_of_rule, ordered


def unit_of(rule: str, wildcards: dict) -> Unit | None:
    """The unit a job of `rule` with these wildcards works on (None for other jobs)."""
    return Unit.from_wildcards(kind_of_rule(rule), wildcards) if rule in RULES else None


@dataclass
class Run:
    data_root: Path
    heartbeat_s: float
    run_id: str
    plans: dict[Unit, list[str]]  # unit -> steps this run builds
    season_members: dict[str, list[str]] = field(default_factory=dict)  # season -> its episodes
    retries: dict[str, int] = field(default_factory=dict)  # rule -> how often Snakemake restarts a failed job
    heartbeat: Heartbeat | None = None
    interrupted: bool = False  # Ctrl-C or SIGTERM

    def target(self, unit: Unit) -> str:
        return self.plans[unit][-1]

    def state(self, unit: Unit) -> PipelineState:
        return PipelineState(self.data_root, unit)

    def registry(self, unit: Unit) -> Registry:
        return Registry(self.data_root, unit, self.heartbeat_s)


_current: Run | None = None


def planned_rules(jobs) -> dict[Unit, set[str]]:
    """unit -> rules to run, from Snakemake jobs (anything with .rule.name and .wildcards_dict)."""
    rules: dict[Unit, set[str]] = {}
    for job in jobs:
        unit = unit_of(job.rule.name, job.wildcards_dict)
        if unit:
            rules.setdefault(unit, set()).add(job.rule.name)
    return rules


def initial_fields(plan: list[str]) -> dict:
    first = BY_NAME[plan[0]]
    step, message = messages.plan_start(plan)
    return {"target": plan[-1], "plan": plan, "current_step": step, "message": message, "status": "pending",
            "step_index": first.index, "pct": first.band[0], "stage_pct": 0.0, "done": None, "total": None,
            "eta_s": None, "log": None, "attempts": None}


def on_start(workflow, config, season_members: dict[str, list[str]] | None = None) -> None:
    """Register the run on every episode and season it builds and publish each one's plan.

    Refuses (raising FacepipeError) if another live run holds one of them; the registrations
    already made are taken back, so nothing is left behind. `season_members` (season -> its
    episodes) lets a season that cannot run say which episode blocked it.
    """
    global _current
    rules = planned_rules(workflow.dag.needrun_jobs())
    if not rules:
        return
    run = Run(Path(config["data_root"]), float(config["progress"]["heartbeat_s"]), uuid.uuid4().hex,
              {unit: ordered(STEP_OF_RULE[r].name for r in rs) for unit, rs in rules.items()},
              season_members, {rule.name: int(rule.restart_times or 0) for rule in workflow.rules})
    registered = []
    try:
        for unit in sorted(run.plans):
            run.registry(unit).register_run(run.target(unit), f"{run.target(unit)}_{unit.name}", run_id=run.run_id)
            registered.append(unit)
    except RegistryBusy:
        for unit in registered:
            run.registry(unit).clear_run(run.target(unit))
        raise
    for unit, plan in run.plans.items():
        run.state(unit).update(**initial_fields(plan), run_id=run.run_id, job_id=f"{run.target(unit)}_{unit.name}")
    run.heartbeat = Heartbeat(run.heartbeat_s / 2, lambda: _beat(run)).start()
    _current = run
    # Ctrl-C or SIGTERM: Snakemake stops its jobs; the episodes then read "cancelled", not
    # "error", whether Snakemake ends through onerror or not at all (atexit).
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)


def _interrupt(signum, frame):
    run = _current
    if run is not None and not run.interrupted:
        run.interrupted = True
        _stop_local_jobs(run)
    raise KeyboardInterrupt  # Snakemake stops its jobs as for Ctrl-C


def _stop_local_jobs(run: Run) -> None:
    """Ask this run's jobs on this machine to stop (they clean up and report "cancelled")."""
    mine = set(procinfo.children(os.getpid()))
    for unit in run.plans:
        for entry in run.registry(unit).read()[0]["jobs"].values():
            if entry.get("pid") in mine:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry["pid"], signal.SIGTERM)


def _at_exit() -> None:
    if _current is not None:
        on_end(False)


def _beat(run: Run) -> None:
    """Keep the run's registry entries fresh, and the state of episodes between jobs (waiting
    their turn, or for the cluster to start their next job): while a job runs, it beats itself."""
    for unit in run.plans:
        registry = run.registry(unit)
        registry.heartbeat(target=run.target(unit))
        if registry.read()[0]["jobs"]:
            continue
        run.state(unit).update(only_if=lambda cur: is_active(cur) and cur.get("run_id") == run.run_id
                             and (clock.age_s(cur.get("updated_at")) or 0.0) >= run.heartbeat_s / 2)


def job_started(rule: str, wildcards: dict) -> None:
    run, unit = _current, unit_of(rule, wildcards)
    if run is None or unit not in run.plans:
        return
    run.state(unit).update(status="running", job_id=f"{rule}_{unit.name}", run_id=run.run_id, only_if=is_active)


def job_failed(rule: str, wildcards: dict, log: str | None = None, attempt: int = 1) -> None:
    """A job failed (on its `attempt`-th try). If Snakemake starts it again (its rule's retries),
    the unit stays running and its state says so; otherwise, if the job did not say why it failed
    itself (killed, out of memory...), say so now, naming its log file."""
    log = os.path.abspath(log) if log else None
    run, unit = _current, unit_of(rule, wildcards)
    if run is None or unit not in run.plans:
        return
    state = run.state(unit)
    chunk = (wildcards or {}).get("chunk")
    retries = run.retries.get(rule, 0)
    if not run.interrupted and attempt <= retries:
        step = STEP_OF_RULE[rule]
        line = messages.retrying(messages.job_title(step, chunk), attempt + 1, retries + 1, log)
        state.note_attempt(run.run_id, job_name(rule, chunk), line, status="running", message=line, eta_s=None,
                           only_if=lambda cur: cur.get("run_id") == run.run_id
                           and cur.get("status") in ("pending", "running", "error"))
        run.registry(unit).clear_job(job_name(rule, chunk), only_mine=False)
        return
    if retries and not run.interrupted:
        step = STEP_OF_RULE[rule]
        state.note_attempt(run.run_id, job_name(rule, chunk),
                           messages.failed_every_attempt(messages.job_title(step, chunk), attempt, log))
    if run.interrupted:  # jobs stopped because the user interrupted the run did not fail
        state.update(status="cancelled", eta_s=None, run_id=run.run_id, message=messages.INTERRUPTED,
                     only_if=is_active)
    else:
        step = STEP_OF_RULE[rule]
        state.update(status="error", current_step=step.title, step_index=step.index, eta_s=None, run_id=run.run_id,
                     message=messages.failed(step, run.target(unit), messages.died(rule, log)), log=log,
                     only_if=is_active)
    run.registry(unit).clear_job(job_name(rule, (wildcards or {}).get("chunk")), only_mine=False)


def _blocked_by(run: Run, unit: Unit) -> str | None:
    """For a season that did not run: the message naming the episodes of it that failed."""
    if unit.kind != "season":
        return None
    failed = []
    for ep in run.season_members.get(unit.name, []):
        state, _ = PipelineState(run.data_root, Unit.episode(ep)).read()
        if state and state.get("status") in ("error", "cancelled"):
            failed.append(f"{ep} ({state['status']}: {state.get('message', '')})")
    return messages.season_blocked(unit.name, failed) if failed else None


def on_end(success: bool, log: str | None = None) -> None:
    """The run is over: settle every unit's state and take the run out of the registry."""
    global _current
    run = _current
    if run is None:
        return
    if run.heartbeat:
        run.heartbeat.stop()
    for unit in run.plans:
        state = run.state(unit)
        if run.interrupted:
            state.update(status="cancelled", eta_s=None, message=messages.INTERRUPTED,
                         only_if=lambda cur: is_active(cur) and cur.get("run_id") == run.run_id)
        elif not success:
            hint = f"; see {log}" if log else ""
            state.update(status="error", eta_s=None,
                         message=f"Auto-run failed: a job ended without reporting (killed or crashed){hint}",
                         only_if=lambda cur: cur.get("status") == "running" and cur.get("run_id") == run.run_id)
            blocked = _blocked_by(run, unit)
            state.update(status="error" if blocked else "cancelled", eta_s=None,
                         message=blocked or messages.NOT_STARTED,
                         only_if=lambda cur: cur.get("status") == "pending" and cur.get("run_id") == run.run_id)
        registry = run.registry(unit)
        registry.clear_run(run.target(unit))
        if not success:
            registry.clear_stale()
    _current = None


def head_died(data_root: str | Path, unit: Unit, pid: int, how: str, heartbeat_s: float,
              log: str | None = None) -> bool:
    """The snakemake process `pid` (on this host) ended without settling `unit` (e.g. killed
    with SIGKILL) and its jobs have stopped: mark the unit `error`, saying so and naming `log`.
    The run's registry entry stays, stale, for the next run to clear along with Snakemake's lock
    (runtime.stale_lock), as after any killed run. False if no such run was registered (it settled
    itself, or the user cancelled it)."""
    registry = Registry(data_root, unit, heartbeat_s)
    entry = next((e for e in registry.read()[0]["runs"].values()
                  if e.get("pid") == pid and e.get("host") == procinfo.hostname()), None)
    if entry is None:
        return False
    reason = messages.head_died(pid, how)
    steps = STEPS_OF_KIND[unit.kind]

    def settle(current: dict) -> dict:
        if current.get("run_id") != entry.get("run_id") or current.get("status") not in ("pending", "running",
                                                                                          "cancelled"):
            return {"only_if": lambda _cur: False}
        step = steps[min(max(int(current.get("step_index") or 1), 1), len(steps)) - 1]
        return {"status": "error", "eta_s": None, "log": log, "current_step": step.title,
                "message": messages.failed(step, current.get("target") or step.name, reason)}

    PipelineState(data_root, unit).update_with(settle)
    return True
