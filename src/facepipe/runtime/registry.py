"""The runtime registry: which runs and stage jobs are active on a unit (an episode or a season).

`episodes/{episode_key}/runtime.json` under the data root (a season's: `seasons/{season}/runtime.json`):

    {"active_jobs": {"cluster": "cluster_EP"},            # target -> the run's job id, for each active run
     "runs": {"cluster": {"job_id", "pid", "host", "pid_start_time", "started_at", "heartbeat_at", "workdir"}},
     "jobs": {"detect_chunk.0": {"job_id", "rule", "chunk", "pid", "host", "pid_start_time", "slurm_job_id",
                                 "started_at", "heartbeat_at"}},             # job_name(rule, chunk) -> entry
     "cancelled_runs": ["<run id>", ...],     # runs the user cancelled: their queued jobs refuse to start
     "updated_at": "..."}

Every read-modify-write holds `runtime.json.lock` (filelock), and the file itself is replaced
atomically, so concurrent writers lose no update and readers never see half a file.

An entry is stale when its process is gone: on this host, when its pid + start time no longer
match a live process; on another host (a SLURM node, a second login node), when its heartbeat is
older than OTHER_HOST_STALE_HEARTBEATS intervals. That silence is long on purpose: a shared file
system can show a live process's heartbeat tens of seconds late.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import Timeout

from ..base import atomic, clock
from ..base.errors import FacepipeError
from ..base.unit import Unit, registry_unit
from . import procinfo
from .locks import lock_for

# A running job rewrites pipeline_state.json at least every heartbeat: a state older than this
# many heartbeats is shown as stale (a frozen job).
STALE_HEARTBEATS = 3
# An entry of a process on another host is taken for dead only after this many heartbeats of
# silence (60 s at the default 5 s).
OTHER_HOST_STALE_HEARTBEATS = 12


class RegistryBusy(FacepipeError):
    """Another live run or job holds what was asked for."""


def is_stale(entry: dict, heartbeat_s: float) -> bool:
    """True when the entry's process is gone (see the module's docstring)."""
    if entry.get("host") == procinfo.hostname() and entry.get("pid") and not entry.get("slurm_job_id"):
        return not procinfo.is_alive(int(entry["pid"]), entry.get("pid_start_time"))
    age = clock.age_s(entry.get("heartbeat_at") or entry.get("started_at"))
    return age is None or age > OTHER_HOST_STALE_HEARTBEATS * heartbeat_s


def describe(entry: dict) -> str:
    where = f"pid {entry.get('pid')} on {entry.get('host')}"
    if entry.get("slurm_job_id"):
        where += f", SLURM job {entry['slurm_job_id']}"
    return f"{entry.get('job_id')} ({where}, started {entry.get('started_at')})"


class Registry:
    def __init__(self, data_root: str | Path, unit: Unit, heartbeat_s: float, lock_timeout: float = 30.0,
                 path: Path | None = None):
        self.unit = unit
        self.path = path or unit.paths(data_root).runtime
        self.heartbeat_s = heartbeat_s
        self.lock_timeout = lock_timeout

    @functools.cached_property
    def _lock(self):
        """Made on first write: a reader (a watcher, many times a second) never needs it."""
        return lock_for(self.path, timeout=self.lock_timeout)

    @classmethod
    def from_file(cls, path: Path, heartbeat_s: float) -> Registry:
        """The registry in `path` (layout.registry_files), an episode's or a season's, for readers
        that have no episode id (an episode's unit is then named by its registry key)."""
        data_root, unit = registry_unit(path)
        return cls(data_root, unit, heartbeat_s, path=Path(path))

    def _cancel_command(self) -> str:
        return f"facepipe cancel {self.unit.name}" + (" --season" if self.unit.kind == "season" else "")

    # --- reading -------------------------------------------------------------------------------
    def read(self) -> tuple[dict, str | None]:
        """The registry as it is now (never raises); the second item reports a damaged file."""
        data, problem = atomic.read_json(self.path)
        return self._normal(data), problem

    @staticmethod
    def _normal(data: dict | None) -> dict:
        data = dict(data or {})
        for key in ("active_jobs", "runs", "jobs"):
            if not isinstance(data.get(key), dict):
                data[key] = {}
        if not isinstance(data.get("cancelled_runs"), list):
            data["cancelled_runs"] = []
        return data

    def holder(self) -> dict | None:
        """The live run (else the live stage job) registered on the unit, if any."""
        data, _ = self.read()
        for table in ("runs", "jobs"):
            for entry in data[table].values():
                if not is_stale(entry, self.heartbeat_s):
                    return entry
        return None

    def busy(self, holder: dict) -> RegistryBusy:
        """The refusal of a second run on the unit, naming the live `holder`."""
        return RegistryBusy(
            f"{self.path}: {self.unit} is already being built by {describe(holder)}; "
            f"wait for it, or stop it with: {self._cancel_command()}"
        )

    def stale(self) -> dict[str, list[str]]:
        data, _ = self.read()
        return {
            kind: [name for name, entry in data[kind].items() if is_stale(entry, self.heartbeat_s)]
            for kind in ("runs", "jobs")
        }

    # --- writing -------------------------------------------------------------------------------
    @contextmanager
    def edit(self) -> Iterator[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                data, _problem = self.read()  # a damaged file is replaced by this write
                yield data
                data["updated_at"] = clock.utc_now()
                atomic.write_json(self.path, data)
        except Timeout as exc:
            raise FacepipeError(
                f"{self.path}.lock: held by another process for {self._lock.timeout:.0f} s; "
                "if no facepipe process is running, delete the lock file"
            ) from exc

    def _drop_stale(self, data: dict) -> list[str]:
        dropped = []
        for kind in ("runs", "jobs"):
            for name, entry in list(data[kind].items()):
                if is_stale(entry, self.heartbeat_s):
                    dropped.append(f"{kind[:-1]} {name}: {describe(entry)}")
                    del data[kind][name]
                    if kind == "runs":
                        data["active_jobs"].pop(name, None)
        for target in list(data["active_jobs"]):
            if target not in data["runs"]:
                del data["active_jobs"][target]
        return dropped

    def clear_stale(self) -> list[str]:
        with self.edit() as data:
            return self._drop_stale(data)

    def _entry(self, job_id: str, **extra) -> dict:
        now = clock.utc_now()
        return {"job_id": job_id, **procinfo.self_identity(), "started_at": now, "heartbeat_at": now, **extra}

    def register_run(self, target: str, job_id: str, **extra) -> list[str]:
        """Record this process as the run building `target`; refuse if another live run holds the unit.

        Returns the stale entries it cleared on the way.
        """
        with self.edit() as data:
            dropped = self._drop_stale(data)
            me = procinfo.self_identity()
            for entry in data["runs"].values():
                if (entry.get("pid"), entry.get("host")) != (me["pid"], me["host"]):
                    raise self.busy(entry)
            data["runs"][target] = self._entry(job_id, workdir=os.getcwd(), **extra)
            data["active_jobs"][target] = job_id
        return dropped

    def register_job(self, name: str, job_id: str, rule: str, chunk: str | None = None,
                     slurm_job_id: str | None = None) -> None:
        """Record this process as the job `name` (layout.job_name of its rule and chunk)."""
        with self.edit() as data:
            self._drop_stale(data)
            holder = data["jobs"].get(name)
            if holder and slurm_job_id and holder.get("slurm_job_id") == slurm_job_id:
                holder = None  # this very SLURM job's earlier run, on a node that died: it was requeued
            if holder:
                raise RegistryBusy(
                    f"{self.path}: {name} of {self.unit} is already running as {describe(holder)}; "
                    f"wait for it, or stop it with: {self._cancel_command()} --stage {rule}"
                )
            data["jobs"][name] = self._entry(job_id, rule=rule, chunk=chunk, slurm_job_id=slurm_job_id)

    def clear_run(self, target: str, only_mine: bool = True) -> None:
        with self.edit() as data:
            entry = data["runs"].get(target)
            if entry and (not only_mine or entry.get("pid") == os.getpid()):
                del data["runs"][target]
                data["active_jobs"].pop(target, None)

    def clear_job(self, name: str, only_mine: bool = True) -> None:
        with self.edit() as data:
            entry = data["jobs"].get(name)
            if entry and (not only_mine or entry.get("pid") == os.getpid()):
                del data["jobs"][name]

    def clear_slurm_jobs(self, slurm_job_ids: set[str]) -> None:
        """Take out the entries of these SLURM jobs (cancelled, so they will never clear their own)."""
        jobs = self.read()[0]["jobs"].values()
        if not any(e.get("slurm_job_id") in slurm_job_ids for e in jobs):
            return
        with self.edit() as data:
            for name, entry in list(data["jobs"].items()):
                if entry.get("slurm_job_id") in slurm_job_ids:
                    del data["jobs"][name]

    def clear_all(self, cancelled_run: str | None = None) -> dict:
        """Remove every entry (cancel); returns what was there.

        `cancelled_run` is remembered, so jobs that run queued for it refuse to start.
        """
        with self.edit() as data:
            before = {"runs": dict(data["runs"]), "jobs": dict(data["jobs"])}
            data["runs"].clear()
            data["jobs"].clear()
            data["active_jobs"].clear()
            if cancelled_run:
                data["cancelled_runs"] = (data["cancelled_runs"] + [cancelled_run])[-20:]
        return before

    def was_cancelled(self, run_id: str | None) -> bool:
        return bool(run_id) and run_id in self.read()[0]["cancelled_runs"]

    def heartbeat(self, job: str | None = None, target: str | None = None) -> None:
        with self.edit() as data:
            now = clock.utc_now()
            for kind, name in (("jobs", job), ("runs", target)):
                entry = data[kind].get(name) if name else None
                if entry and entry.get("pid") == os.getpid():
                    entry["heartbeat_at"] = now
