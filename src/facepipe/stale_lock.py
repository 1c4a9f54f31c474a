"""Releasing Snakemake's working-folder lock when the run that took it was killed.

A run killed with SIGKILL (or whose machine died) leaves `.snakemake/locks/` behind, and the next
`snakemake` refuses to start until someone runs `snakemake --unlock`. facepipe knows better: every
run registers itself (pid, host, start time, working folder) in the episodes' runtime.json. When
this folder is locked, at least one run registered from it is dead, and none registered from it
is alive, the lock is stale and is removed, with a note saying so.
"""

from __future__ import annotations

from pathlib import Path

from .registry import Registry, is_stale


def release_if_stale(workdir: str | Path, data_root: str | Path, heartbeat_s: float = 5.0) -> str | None:
    """Remove a stale Snakemake lock in `workdir`; returns a note for the user if it did."""
    workdir = Path(workdir).resolve()
    locks = workdir / ".snakemake" / "locks"
    lock_files = [p for p in locks.iterdir()] if locks.is_dir() else []
    if not lock_files:
        return None
    episodes = Path(data_root) / "episodes"
    dead, alive = [], []
    for runtime in episodes.glob("*/runtime.json") if episodes.is_dir() else []:
        reg, _ = Registry(data_root, runtime.parent.name, heartbeat_s).read()
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
