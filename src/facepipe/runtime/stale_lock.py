"""Releasing Snakemake's working-folder lock when the run that took it was killed.

A run killed with SIGKILL (or whose machine died) leaves `.snakemake/locks/` behind, and the next
`snakemake` refuses to start until someone runs `snakemake --unlock`. facepipe knows better: every
run registers itself (pid, host, start time, working folder) in the episodes' runtime.json. When
this folder is locked, at least one run registered from it is dead, and none registered from it
is alive, the lock is stale and is removed, with a note saying so.

Only the head process of a real run may do this (the workflow calls `release_once` while Snakemake
builds its DAG, after it knows it is one, before it takes the lock): never a job, a compute node
parsing the workflow, a dry run, or `facepipe plan`. A run on another host is taken for dead only
after a long silence (registry.OTHER_HOST_STALE_HEARTBEATS), since a shared file system can show
a live run's heartbeat late.
"""

from __future__ import annotations

from pathlib import Path

from ..base.layout import registry_files
from .registry import Registry, is_stale

_done: set[str] = set()


def release_if_stale(workdir: str | Path, data_root: str | Path, heartbeat_s: float) -> str | None:
    """Remove a stale Snakemake lock in `workdir`; returns a note for the user if it did."""
    workdir = Path(workdir).resolve()
    locks = workdir / ".snakemake" / "locks"
    lock_files = [p for p in locks.iterdir()] if locks.is_dir() else []
    if not lock_files:
        return None
    dead, alive = [], []
    for runtime in registry_files(data_root):
        reg, _ = Registry.from_file(runtime, heartbeat_s).read()
        for entry in reg["runs"].values():
            if Path(entry.get("workdir", "")).resolve() == workdir:
                (dead if is_stale(entry, heartbeat_s) else alive).append(entry)
    if alive or not dead:
        return None
    for path in lock_files:
        path.unlink(missing_ok=True)
    pids = sorted({str(e.get("pid")) for e in dead})
    return (f"facepipe: removed Snakemake's lock on {workdir}, left by a run that is no longer alive "
            f"(pid {', '.join(pids)} on {dead[0].get('host')})")


def is_head_of_a_real_run(workflow) -> bool:
    """True in the Snakemake process that will run jobs: not a job (--mode subprocess/remote, as on
    a cluster node), not a dry run (`-n`, `facepipe plan`), not a report, list or summary (those
    never get an executor)."""
    return bool(workflow.is_main_process and workflow.executor_plugin is not None and not workflow.dryrun)


def release_once(workflow, data_root: str | Path, heartbeat_s: float) -> str | None:
    """release_if_stale() for this process's working folder, at most once per process, and only
    in the head of a real run. Returns the note for the user, if any."""
    key = str(Path.cwd().resolve())
    if key in _done or not is_head_of_a_real_run(workflow):
        return None
    _done.add(key)
    return release_if_stale(key, data_root, heartbeat_s)
