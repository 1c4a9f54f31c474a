"""Running one stage inside a Snakemake job (the scripts/ entry points call this).

Wherever the job runs (this machine or a cluster node), it
- writes its stderr and its progress messages to the rule's log file
  (harvest/{ep}/logs/{rule}[.{chunk}].log),
- registers itself in its episode's (or season's) runtime registry and clears its entry when it ends,
- reports in-stage progress to pipeline_state.json, throttled to one write a second, and
  rewrites it at least every progress.heartbeat_s even while one frame or a model load takes longer,
- ends with status done, error (one line naming the file and the fix, no traceback for
  user-facing errors, and the log file named in the state) or cancelled (SIGTERM from
  `facepipe cancel`, or Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ..base import atomic, clock
from ..base.errors import FacepipeError
from ..base.layout import job_name
from ..base.unit import WILDCARD, Unit
from . import messages, procinfo, slurm
from .progress import Heartbeat, PipelineState, is_active, not_cancelled
from .registry import Registry
from .steps import is_first_rule_of_step, is_last_rule_of_step, kind_of_rule, rule_pct, step_of_rule

WRITE_EVERY_S = 1.0


class Cancelled(BaseException):
    """The job was asked to stop (SIGTERM)."""


def _snakemake_ancestor() -> tuple[int, int | None] | None:
    """(pid, start time) of the snakemake process this job runs under, if any."""
    pid = os.getppid()
    for _ in range(5):
        if pid <= 1:
            return None
        if "snakemake" in procinfo.cmdline(pid):
            return pid, procinfo.start_time(pid)
        pid = procinfo.parent(pid)
    return None


def _raise_cancelled(signum, frame):
    raise Cancelled()


class JobLog:
    """The job's log file: from here on the process's stderr (fd 2, so worker processes and
    libraries write there too) goes to it, and so do facepipe's own messages. The one-line
    reason a job failed also goes to the terminal the job was started from."""

    def __init__(self, path: str | None):
        self.path = path
        self._terminal = None
        if not path:
            return
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:  # e.g. a full disk: the job still runs, and says why it has no log
            print(f"facepipe: no log file {path} ({exc.strerror})", file=sys.stderr)
            self.path = None
            return
        sys.stderr.flush()
        self._terminal = os.fdopen(os.dup(2), "w", buffering=1)
        os.dup2(fd, 2)
        os.close(fd)

    def line(self, text: str) -> None:
        try:
            print(f"{clock.utc_now()} {text}", file=sys.stderr, flush=True)
        except OSError:  # a full disk must not turn a message into a crash
            pass

    def tell(self, text: str) -> None:
        """A line for the log and for the terminal."""
        self.line(text)
        if self._terminal is not None:
            print(text, file=self._terminal, flush=True)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and of its largest finished child (workers), MB."""
    import resource

    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


class StageJob:
    def __init__(self, snakemake, rule: str):
        cfg = snakemake.config
        self.config = cfg
        self.rule = rule
        kind = kind_of_rule(rule)  # an episode's job, or a season's
        self.unit = Unit.from_wildcards(kind, snakemake.wildcards)
        if self.unit is None:
            raise FacepipeError(f"rule {rule}: no {{{WILDCARD[kind]}}} wildcard names its {kind}; give its outputs one")
        self.step = step_of_rule(rule)
        self.heartbeat_s = float(cfg["progress"]["heartbeat_s"])
        self.state = PipelineState(cfg["data_root"], self.unit)
        self.registry = Registry(cfg["data_root"], self.unit, self.heartbeat_s)
        self.chunk = snakemake.wildcards.get("chunk")
        self.chunks = snakemake.params.get("chunks")  # how many chunks the episode has (detect_chunk)
        self.name = job_name(rule, self.chunk)
        self.job_id = f"{self.name}_{self.unit.name}"
        self.log = JobLog(os.path.abspath(snakemake.log[0]) if len(snakemake.log) else None)
        self._chunk_totals: list[int] | None = None
        self.slurm_job_id = os.environ.get("SLURM_JOB_ID")
        current, _ = self.state.read()
        self.cancelled_before_start = bool(
            current and current.get("status") == "cancelled" and self.registry.was_cancelled(current.get("run_id"))
        )
        if current and is_active(current) and self.step.name in (current.get("plan") or []):
            self.target, self.plan, self.run_id = current["target"], current["plan"], current.get("run_id")
        else:  # started without a workflow-level plan (e.g. hooks switched off)
            self.target, self.plan, self.run_id = self.step.name, [self.step.name], uuid.uuid4().hex
        self.outputs = [str(p) for p in snakemake.output]
        self._started = time.monotonic()
        self._last_write = 0.0
        self._heartbeat: Heartbeat | None = None
        # On this machine the job is a child of the snakemake run; if that run is killed, the job
        # must not go on alone. (On SLURM the job outlives its submitter by design.)
        self._head = None if self.slurm_job_id else _snakemake_ancestor()
        self.head_gone = False

    def _base(self) -> dict:
        base = {"target": self.target, "plan": self.plan, "run_id": self.run_id, "job_id": self.job_id,
                "step_index": self.step.index}
        if self.slurm_job_id:
            base["slurm_job_id"] = self.slurm_job_id
        return base

    def start(self) -> None:
        where = f"pid {os.getpid()} on {procinfo.hostname()}" + (f", SLURM job {self.slurm_job_id}"
                                                                 if self.slurm_job_id else "")
        self.log.line(f"facepipe {self.name} of {self.unit.name}: starting ({where}, run {self.run_id})")
        if self.cancelled_before_start:
            raise FacepipeError(f"{self.unit} was cancelled; {self.rule} not started")
        for output in self.outputs:  # what a killed earlier attempt may have left
            atomic.remove_stale_temps(output)
        self.registry.register_job(self.name, self.job_id, self.rule, self.chunk, self.slurm_job_id)
        fields = {**self._base(), "status": "running", "pct": rule_pct(self.rule, 0.0), "stage_pct": 0.0,
                  "done": 0, "total": None, "eta_s": None}
        if is_first_rule_of_step(self.rule) and self.step.name == self.target and len(self.plan) > 1:
            fields["current_step"], fields["message"] = messages.prerequisites_complete(self.plan)
        else:
            fields.update(current_step=self.step.title, message=messages.starting(self.step))
        self.state.update(**fields)
        self.log.line(fields["message"])
        self._note_requeue()
        self._last_write = time.monotonic()
        self._heartbeat = Heartbeat(self.heartbeat_s / 2, self._beat).start()

    def _note_requeue(self) -> None:
        """On SLURM: if this job runs again after a node failure (or another requeue), say so in
        the state for the rest of the run, and in the log."""
        restarts = slurm.restarts(self.slurm_job_id) if self.slurm_job_id else 0
        if restarts <= 0:
            return
        title = messages.job_title(self.step, self.chunk, self.chunks)
        line = messages.requeued(title, slurm.attempt_history(self.slurm_job_id), restarts + 1)
        self.state.note_attempt(self.run_id, self.name, line)
        self.log.line(f"facepipe {self.name} of {self.unit.name}: {line} (SLURM job {self.slurm_job_id})")

    def _beat(self) -> None:
        if self._head and not procinfo.is_alive(*self._head):
            self.head_gone = True
            os.kill(os.getpid(), signal.SIGTERM)  # stop the main thread: Cancelled, then clean-up
            return
        if time.monotonic() - self._last_write >= self.heartbeat_s * 0.5:
            self.state.touch()
            self._last_write = time.monotonic()
        self.registry.heartbeat(job=self.name)

    def set_chunk_totals(self, totals: list[int]) -> None:
        """This job is one of several detect chunks, which between them have `totals` items each:
        report the episode's progress summed over them."""
        self._chunk_totals = list(totals)

    def progress(self, done: int, total: int, message: str = "") -> None:
        """In-stage progress: `done` of `total` frames or items."""
        now = time.monotonic()
        if now - self._last_write < WRITE_EVERY_S and 0 < done < total:
            return
        elapsed = now - self._started
        eta = round(elapsed / done * (total - done), 1) if done and total else None
        base = {**self._base(), "status": "running", "current_step": self.step.title, "message": message,
                "eta_s": eta, "only_if": not_cancelled}
        if self._chunk_totals is None:
            frac = done / total if total else 0.0
            self.state.update(**base, done=done, total=total, stage_pct=round(frac, 4),
                              pct=rule_pct(self.rule, frac))
        else:
            chunk, totals = str(self.chunk), self._chunk_totals

            def summed(current: dict) -> dict:
                chunks = dict(current.get("chunks") or {}) if current.get("run_id") == self.run_id else {}
                chunks[chunk] = done
                all_done, all_total = sum(chunks.values()), max(1, sum(totals))
                frac = min(1.0, all_done / all_total)
                return {**base, "chunks": chunks, "done": all_done, "total": all_total, "stage_pct": round(frac, 4),
                        "pct": rule_pct(self.rule, frac),
                        "message": f"{message} (chunk {int(chunk) + 1} of {len(totals)})" if len(totals) > 1
                        else message}

            self.state.update_with(summed)
        self.log.line(message if not total or f"{done}/{total}" in message else f"{message} ({done}/{total})")
        self._last_write = now

    def _end(self) -> None:
        if self._heartbeat:
            self._heartbeat.stop()
        self.registry.clear_job(self.name)

    def finish(self) -> None:
        self._end()
        self.log.line(f"facepipe {self.name} of {self.unit.name}: done in {time.monotonic() - self._started:.1f} s, "
                      f"peak memory {_peak_rss_mb():.0f} MB")
        if self._chunk_totals is not None:  # one chunk of several: its last progress said it all
            return
        fields = {**self._base(), "stage_pct": 1.0, "pct": rule_pct(self.rule, 1.0), "eta_s": 0}
        if is_last_rule_of_step(self.rule) and self.step.name == self.target:
            fields.update(status="done", current_step=self.step.title,
                          message=messages.target_complete(self.step), pct=self.step.band[1])
        elif is_last_rule_of_step(self.rule):
            fields.update(status="running", message=messages.step_complete(self.step))
        self.state.update(**fields, only_if=not_cancelled)

    def fail(self, reason: str) -> None:
        self._end()
        self.state.update(**self._base(), status="error", current_step=self.step.title, eta_s=None,
                          message=messages.failed(self.step, self.target, reason), log=self.log.path,
                          only_if=not_cancelled)

    def stopped_by_cluster(self) -> str:
        """SLURM stopped this job on its node (the node is going down, a time limit, preemption) and
        nobody cancelled it: the unit stays active for the run to settle (a requeue starts the job
        again; otherwise Snakemake sees it fail, and retries it or fails the unit)."""
        self._end()
        line = f"{messages.job_title(self.step, self.chunk, self.chunks)}: stopped on its node by SLURM " \
               f"(job {self.slurm_job_id}); waiting for it to be started again or reported as failed"
        self.state.update(**self._base(), status="running", eta_s=None, message=line, only_if=not_cancelled)
        return line

    def user_cancelled(self) -> bool:
        """The user cancelled the unit (facepipe cancel marks the state before it signals)."""
        return (self.state.read()[0] or {}).get("status") == "cancelled"

    def cancelled(self, how: str) -> None:
        self._end()
        self.log.line(f"facepipe {self.name} of {self.unit.name}: cancelled ({how})")
        self.state.update(**self._base(), status="cancelled", current_step=self.step.title,
                          message=messages.cancelled_during(self.step, how), eta_s=None, only_if=not_cancelled)


def _caused_by_stop(err: BaseException) -> bool:
    """True if `err` was raised while unwinding from Ctrl-C or a stop request."""
    seen = err.__context__ or err.__cause__
    while seen is not None:
        if isinstance(seen, (KeyboardInterrupt, Cancelled)):
            return True
        seen = seen.__context__ or seen.__cause__
    return False


def _hold_signals() -> None:
    """While a job records how it ended, a second Ctrl-C or SIGTERM must not cut that short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _limit_threads(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:
        pass


@contextmanager
def stage_job(snakemake, rule: str, uses_torch: bool = False) -> Iterator[StageJob]:
    signal.signal(signal.SIGTERM, _raise_cancelled)
    job = StageJob(snakemake, rule)
    try:
        job.start()
    except FacepipeError as err:  # refused: cancelled, or another live job holds this stage
        job.log.tell(f"facepipe {rule} refused for {job.unit.name}: {err}")
        sys.exit(1)
    try:
        if uses_torch:
            _limit_threads(snakemake.threads)
        yield job
    except FacepipeError as err:
        _hold_signals()
        job.fail(str(err))
        job.log.tell(f"facepipe {rule} failed for {job.unit.name}: {err}")
        sys.exit(1)
    except Cancelled:
        _hold_signals()
        if job.slurm_job_id and not job.user_cancelled():
            job.log.tell(f"facepipe {rule} of {job.unit.name}: {job.stopped_by_cluster()}")
            sys.exit(1)
        how = "the snakemake run that started it has ended" if job.head_gone else "stopped by request"
        job.cancelled(how)
        job.log.tell(f"facepipe {rule} cancelled for {job.unit.name}: {how}")
        sys.exit(1)
    except KeyboardInterrupt:
        _hold_signals()
        job.cancelled("interrupted")
        sys.exit(1)
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        reason = f"{where}{err.strerror or err}; free space or fix permissions on the data root, then run again"
        try:
            job.fail(reason)
        except OSError:  # the disk may be too full even for the state file
            job.log.tell(f"facepipe: could not record the error in {job.state.path}")
        job.log.tell(f"facepipe {rule} failed for {job.unit.name}: {reason}")
        sys.exit(1)
    except Exception as err:
        _hold_signals()
        if _caused_by_stop(err):  # e.g. a pool lock broken while unwinding from Ctrl-C
            job.cancelled("interrupted")
            sys.exit(1)
        job.fail(f"{type(err).__name__}: {err}")
        job.log.tell(f"facepipe {rule} failed for {job.unit.name}: {type(err).__name__}: {err}"
                     + (f" (traceback in {job.log.path})" if job.log.path else ""))
        raise
    else:
        job.finish()
