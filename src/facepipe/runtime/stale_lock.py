"""Releasing Snakemake's working-folder lock, and the queue, when the run that took them was killed.

A run killed with SIGKILL (or whose machine died) leaves `.snakemake/locks/` behind, and the next
`snakemake` refuses to start until someone runs `snakemake --unlock`. facepipe knows better: every
head of a real run records itself in the folder (runtime.heads), and registers in the episodes'
runtime.json (pid, host, start time, working folder). When no head recorded or registered from this
folder is alive and at least one of them died, the lock is stale and is removed, with a note
saying so.

On SLURM the dead head's jobs live on: those running go on, and those queued still start, on their
nodes. Nobody will collect what they make, and the rerun would submit its own job for the same
outputs beside them. So the rerun first cancels every job of this user that the queue holds from
this folder (scancel) and waits until they have left it; finished outputs stay, and only the work
those jobs were doing is redone (docs/slurm.md).

Only the head of a real run may do this (the workflow calls `release_once` while Snakemake
builds its DAG, after it knows it is one, before it takes the lock): never a job, a compute node
parsing the workflow, a dry run, or `facepipe plan`. A head on another host is taken for dead only
after a long silence (registry.OTHER_HOST_STALE_HEARTBEATS), since a shared file system can show
a live head's heartbeat late.
"""

from __future__ import annotations

from pathlib import Path

from ..base.layout import registry_files
from . import heads, slurm
from .registry import Registry, is_stale

_done: set[str] = set()


def _registered_runs(workdir: Path, data_root: str | Path, heartbeat_s: float):
    """(dead, alive) run entries of every registry that were registered from `workdir`, and the
    registries holding jobs (for clearing the entries of cancelled jobs)."""
    dead, alive, registries = [], [], []
    for runtime in registry_files(data_root):
        registry = Registry.from_file(runtime, heartbeat_s)
        reg, _ = registry.read()
        registries.append(registry)
        for entry in reg["runs"].values():
            if Path(entry.get("workdir", "")).resolve() == workdir:
                (dead if is_stale(entry, heartbeat_s) else alive).append(entry)
    return dead, alive, registries


def release_if_stale(workdir: str | Path, data_root: str | Path, heartbeat_s: float) -> str | None:
    """Remove a stale Snakemake lock in `workdir`, and cancel the jobs its dead head left in the
    SLURM queue; returns a note for the user if it did either."""
    workdir = Path(workdir).resolve()
    dead_heads, alive_heads = heads.others(workdir, heartbeat_s)
    dead_runs, alive_runs, registries = _registered_runs(workdir, data_root, heartbeat_s)
    if alive_heads or alive_runs or not (dead_heads or dead_runs):
        return None
    dead = dead_heads + dead_runs
    who = f"pid {', '.join(sorted({str(e.get('pid')) for e in dead}))} on {dead[0].get('host')}"
    notes = []
    locks = workdir / ".snakemake" / "locks"
    lock_files = list(locks.iterdir()) if locks.is_dir() else []
    for path in lock_files:
        path.unlink(missing_ok=True)
    if lock_files:
        notes.append(f"facepipe: removed Snakemake's lock on {workdir}, left by a run that is no longer alive ({who})")
    orphans = slurm.queued_in(workdir)
    if orphans:
        left = slurm.cancel_and_wait(orphans)
        orphans = sorted(orphans, key=lambda j: (len(j), j))
        notes.append(f"facepipe: cancelled SLURM job(s) {', '.join(orphans)}, left in the queue by the run that "
                     f"is no longer alive ({who}); this run redoes what they had not finished"
                     + (f" (still leaving the queue: {', '.join(left)})" if left else ""))
        for registry in registries:
            registry.clear_slurm_jobs(set(orphans) - set(left))
    heads.clear(dead_heads)
    return "\n".join(notes) or None


def is_head_of_a_real_run(workflow) -> bool:
    """True in the Snakemake process that will run jobs: not a job (--mode subprocess/remote, as on
    a cluster node), not a dry run (`-n`, `facepipe plan`), not a report, list or summary (those
    never get an executor)."""
    return bool(workflow.is_main_process and workflow.executor_plugin is not None and not workflow.dryrun)


def release_once(workflow, data_root: str | Path, heartbeat_s: float) -> str | None:
    """release_if_stale() for this process's working folder, at most once per process, and only
    in the head of a real run, which then records itself as a head of the folder (runtime.heads).
    Returns the note for the user, if any."""
    key = str(Path.cwd().resolve())
    if key in _done or not is_head_of_a_real_run(workflow):
        return None
    _done.add(key)
    note = release_if_stale(key, data_root, heartbeat_s)
    heads.record(key, heartbeat_s)
    return note
