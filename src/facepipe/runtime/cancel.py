"""Stopping a unit's (an episode's or a season's) registered jobs, without ever signalling a
process that is not one of them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from ..base.errors import FacepipeError
from ..base.unit import Unit
from . import messages, procinfo
from .progress import PipelineState
from .registry import Registry, describe
from .steps import STEP_OF_RULE


def stage_names() -> list[str]:
    """What `--stage` takes: a rule (detect_chunk, embed, ...) or a step (detect, cluster, ...)."""
    return list(dict.fromkeys([*STEP_OF_RULE, *(s.name for s in STEP_OF_RULE.values())]))


def _matches(stage: str | None, rule: str | None) -> bool:
    return stage is None or rule == stage or rule in STEP_OF_RULE and STEP_OF_RULE[rule].name == stage


def _stop_local(entry: dict, stage: str) -> str:
    pid = int(entry["pid"])
    if entry.get("host") != procinfo.hostname():
        raise FacepipeError(
            f"{describe(entry)} runs on another host; run facepipe cancel there (or use SLURM, which records a job id)"
        )
    if not procinfo.is_alive(pid, entry.get("pid_start_time")):
        return f"{stage}: process {pid} had already ended; entry cleared"
    cmd = procinfo.cmdline(pid)
    if not (entry.get("rule") and f"{entry['rule']}.py" in cmd or "facepipe" in cmd or "snakemake" in cmd):
        raise FacepipeError(
            f"pid {pid} now runs {cmd[:80]!r}, not the registered {stage} job; nothing was signalled. "
            "Clear the stale entry by running the pipeline again"
        )
    targets = procinfo.children(pid) + [pid]
    for p in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and procinfo.is_alive(pid, entry.get("pid_start_time")):
        time.sleep(0.1)
    if procinfo.is_alive(pid, entry.get("pid_start_time")):
        for p in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    return f"{stage}: stopped pid {pid}"


def _stop_slurm(entry: dict, stage: str) -> str:
    job = str(entry["slurm_job_id"])
    proc = subprocess.run(["scancel", job], capture_output=True, text=True)
    if proc.returncode != 0:
        raise FacepipeError(f"scancel {job} failed: {proc.stderr.strip() or proc.returncode}")
    return f"{stage}: scancel {job}"


def cancel(data_root: str | Path, unit: Unit, stage: str | None, heartbeat_s: float) -> list[str]:
    """Stop the unit's registered jobs (or only those of `stage`, a rule or a step), mark it
    cancelled, clear the registry."""
    registry = Registry(data_root, unit, heartbeat_s)
    reg, _ = registry.read()
    jobs = {k: v for k, v in reg["jobs"].items() if _matches(stage, v.get("rule"))}
    if not jobs and not reg["runs"]:
        raise FacepipeError(f"{registry.path}: nothing registered for {unit}; nothing to cancel")
    if stage and not jobs:
        raise FacepipeError(f"{registry.path}: no {stage} job registered for {unit}")
    state = PipelineState(data_root, unit)
    run_id = (state.read()[0] or {}).get("run_id")
    # Mark first, so the stopping job and the workflow see a cancellation, not a failure.
    state.update(status="cancelled", eta_s=None, message=messages.cancelled_by_user(list(jobs)))
    report = []
    for name, entry in jobs.items():
        report.append(_stop_slurm(entry, name) if entry.get("slurm_job_id") else _stop_local(entry, name))
    if stage is None:
        registry.clear_all(cancelled_run=run_id)
    else:
        for name in jobs:
            registry.clear_job(name, only_mine=False)
    return report
