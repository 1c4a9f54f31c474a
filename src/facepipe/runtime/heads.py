"""The snakemake heads of a working folder: each head of a real run records itself (pid, host,
start time, heartbeat) in `.snakemake/facepipe-heads/`, next to the lock Snakemake takes there.

The registry's run entries cannot tell on their own whether the lock's owner is dead: on SLURM a
job that a killed head had queued still starts on its node after the head is gone, and a job's
registration clears the dead run's entry on the way. This record is never cleared by anyone but its
head (at its end) or the next head (after that head has decided it is dead), so a stale lock can
always be told from a live one (runtime.stale_lock).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from pathlib import Path

from ..base import atomic, clock
from . import procinfo
from .progress import Heartbeat
from .registry import is_stale

FOLDER = Path(".snakemake") / "facepipe-heads"


def _path(workdir: Path) -> Path:
    return Path(workdir) / FOLDER / f"{procinfo.hostname()}-{os.getpid()}.json"


def record(workdir: str | Path, heartbeat_s: float) -> Path:
    """Record this process as a head working in `workdir`, with a heartbeat every heartbeat_s / 2
    (a head on another login node is taken for dead only after a long silence, registry.is_stale);
    the record goes when the process ends, unless it is killed."""
    path = _path(Path(workdir))
    path.parent.mkdir(parents=True, exist_ok=True)
    now = clock.utc_now()
    atomic.write_json(path, {**procinfo.self_identity(), "workdir": str(Path(workdir).resolve()),
                             "started_at": now, "heartbeat_at": now})
    beat = Heartbeat(heartbeat_s / 2, lambda: _beat(path)).start()

    def forget() -> None:
        beat.stop()
        path.unlink(missing_ok=True)

    atexit.register(forget)
    return path


def _beat(path: Path) -> None:
    data, _ = atomic.read_json(path)
    if data:
        atomic.write_json(path, {**data, "heartbeat_at": clock.utc_now()})


def others(workdir: str | Path, heartbeat_s: float) -> tuple[list[dict], list[dict]]:
    """(dead, alive): the heads recorded in `workdir` other than this process; each one's `path`
    is where it was read from."""
    folder = Path(workdir) / FOLDER
    mine = _path(Path(workdir))
    dead, alive = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path == mine:
            continue
        data, _ = atomic.read_json(path)
        if not data:  # unreadable: a head killed while writing it cannot hold the lock any more
            data = {"pid": path.stem.rsplit("-", 1)[-1], "host": "?"}
        data["path"] = str(path)
        (dead if is_stale(data, heartbeat_s) else alive).append(data)
    return dead, alive


def clear(heads: list[dict]) -> None:
    for head in heads:
        with contextlib.suppress(OSError):
            Path(head["path"]).unlink()
