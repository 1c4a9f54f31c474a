"""What facepipe asks SLURM itself: the jobs a working folder has in the queue, and how a job
that runs now got there (requeued after a node failure, or a later attempt)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

# How long the jobs of a killed head get to leave the queue after scancel (SLURM's KillWait is 30 s
# by default: SIGTERM, then SIGKILL).
CANCEL_WAIT_S = 60.0
# sacct's words for how an attempt ended, as the page says them.
_ENDED = {"NODE_FAIL": "node failed", "PREEMPTED": "preempted", "BOOT_FAIL": "node failed to boot",
          "REQUEUED": "", "FAILED": "failed", "TIMEOUT": "ran out of time", "OUT_OF_MEMORY": "out of memory"}


def available() -> bool:
    return shutil.which("squeue") is not None


def _run(argv: list[str], timeout: float = 30.0) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def queued_in(workdir: str | Path) -> list[str]:
    """Ids of this user's jobs in the queue (pending or running) that were submitted from `workdir`."""
    if not available():
        return []
    workdir = Path(workdir).resolve()
    user = os.environ.get("USER") or str(os.getuid())
    found = []
    for line in _run(["squeue", "-h", "-u", user, "-o", "%i|%Z"]).splitlines():
        job, _, folder = line.partition("|")
        if folder and Path(folder).resolve() == workdir:
            found.append(job.strip())
    return found


def cancel_and_wait(job_ids: list[str], wait_s: float = CANCEL_WAIT_S) -> list[str]:
    """scancel `job_ids` and wait until the queue no longer holds them; returns those still there."""
    if not job_ids:
        return []
    _run(["scancel", *job_ids])
    deadline = time.monotonic() + wait_s
    left = list(job_ids)
    while left and time.monotonic() < deadline:
        time.sleep(1.0)
        listed = set(_run(["squeue", "-h", "-o", "%i", "-j", ",".join(left)]).split())
        left = [j for j in left if j in listed]
    return left


def restarts(job_id: str) -> int:
    """How often SLURM has started job `job_id` again (requeued after a node failure, preempted or
    by hand). Asked of the controller: the job's own SLURM_RESTART_COUNT does not reach the job
    step that Snakemake's jobs run in."""
    out = _run(["scontrol", "show", "job", "-o", str(job_id)], timeout=10)
    found = re.search(r"\bRestarts=(\d+)", out)
    return int(found.group(1)) if found else 0


def attempt_history(job_id: str) -> list[str]:
    """How each earlier run of SLURM job `job_id` ended, oldest first, in the page's words ("" for
    a plain requeue; sacct --duplicates lists one line per time the job was started)."""
    lines = _run(["sacct", "-n", "-X", "-D", "-P", "-o", "State", "-j", str(job_id)]).splitlines()
    states = [line.split()[0] for line in lines if line.strip()]
    return [_ENDED.get(s, s.lower()) for s in states[:-1]]  # the last one is this run
