"""Running one stage inside a Snakemake job (the scripts/ entry points call this).

Wherever the job runs (this machine or a cluster node), it
- registers itself in the episode's runtime registry and clears its entry when it ends,
- reports in-stage progress to pipeline_state.json, throttled to one write a second, and
  rewrites it at least every progress.heartbeat_s even while one frame or a model load takes longer,
- ends with status done, error (one line naming the file and the fix, no traceback for
  user-facing errors) or cancelled (SIGTERM from `facepipe cancel`, or Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from . import atomic, procinfo
from .errors import FacepipeError
from .progress import ACTIVE, Heartbeat, PipelineState
from .registry import Registry, job_key
from .steps import BY_NAME, is_first_rule_of_step, is_last_rule_of_step, rule_pct, step_of_rule

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


class StageJob:
    def __init__(self, snakemake, rule: str):
        cfg = snakemake.config
        self.config = cfg
        self.rule = rule
        self.episode = snakemake.wildcards.get("ep")
        self.step = step_of_rule(rule)
        self.heartbeat_s = float(cfg.get("progress", {}).get("heartbeat_s", 5))
        self.state = PipelineState(cfg["data_root"], self.episode)
        self.registry = Registry(cfg["data_root"], self.episode, self.heartbeat_s)
        self.chunk = snakemake.wildcards.get("chunk")
        self.key = job_key(rule, self.chunk)
        self.job_id = f"{self.key}_{self.episode}"
        self._chunk_totals: list[int] | None = None
        self.slurm_job_id = os.environ.get("SLURM_JOB_ID")
        current, _ = self.state.read()
        self.cancelled_before_start = bool(
            current and current.get("status") == "cancelled" and self.registry.was_cancelled(current.get("run_id"))
        )
        if current and current.get("status") in ACTIVE and self.step.name in (current.get("plan") or []):
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
        if self.cancelled_before_start:
            raise FacepipeError(f"episode {self.episode} was cancelled; {self.rule} not started")
        for output in self.outputs:  # what a killed earlier attempt may have left
            atomic.remove_stale_temps(output)
        self.registry.register_job(self.key, self.job_id, self.slurm_job_id)
        fields = {**self._base(), "status": "running", "pct": rule_pct(self.rule, 0.0), "stage_pct": 0.0,
                  "done": 0, "total": None, "eta_s": None}
        if is_first_rule_of_step(self.rule) and self.step.name == self.target and len(self.plan) > 1:
            before = [BY_NAME[s].title for s in self.plan[:-1]]
            fields.update(current_step=f"{self.step.title} (Prerequisites complete)",
                          message=f"{'/'.join(before)} complete, starting {self.step.noun}...")
        else:
            fields.update(current_step=self.step.title, message=f"Starting {self.step.noun}...")
        self.state.update(**fields)
        self._last_write = time.monotonic()
        self._heartbeat = Heartbeat(self.heartbeat_s / 2, self._beat).start()

    def _beat(self) -> None:
        if self._head and not procinfo.is_alive(*self._head):
            self.head_gone = True
            os.kill(os.getpid(), signal.SIGTERM)  # stop the main thread: Cancelled, then clean-up
            return
        if time.monotonic() - self._last_write >= self.heartbeat_s * 0.5:
            self.state.touch()
            self._last_write = time.monotonic()
        self.registry.heartbeat(stage=self.key)

    def set_chunks(self, chunk: int, ranges: list[tuple[int, int | None]], info) -> None:
        """This job is one of several detect chunks: report the episode's frames, summed over them."""
        from .detect import expected_samples

        self._chunk_totals = [expected_samples(info.frame_count, info.fps, self._sample_fps, a, b) for a, b in ranges]

    @property
    def _sample_fps(self) -> float:
        return float(self.config["detect"]["fps"])

    def progress(self, done: int, total: int, message: str = "") -> None:
        """In-stage progress: `done` of `total` frames or items."""
        now = time.monotonic()
        if now - self._last_write < WRITE_EVERY_S and 0 < done < total:
            return
        elapsed = now - self._started
        eta = round(elapsed / done * (total - done), 1) if done and total else None
        base = {**self._base(), "status": "running", "current_step": self.step.title, "message": message,
                "eta_s": eta, "only_if": lambda cur: cur.get("status") != "cancelled"}
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
                        "message": f"{message} (chunk {chunk} of {len(totals)})" if len(totals) > 1 else message}

            self.state.update_with(summed)
        self._last_write = now

    def _stop_heartbeat(self) -> None:
        if self._heartbeat:
            self._heartbeat.stop()

    def finish(self) -> None:
        self._stop_heartbeat()
        self.registry.clear_job(self.key)
        if self._chunk_totals is not None:  # one chunk of several: its last progress said it all
            return
        fields = {**self._base(), "stage_pct": 1.0, "pct": rule_pct(self.rule, 1.0), "eta_s": 0}
        if is_last_rule_of_step(self.rule) and self.step.name == self.target:
            fields.update(status="done", current_step=self.step.title,
                          message=f"{self.step.noun.capitalize()} complete", pct=self.step.band[1])
        elif is_last_rule_of_step(self.rule):
            fields.update(status="running", message=f"{self.step.title} complete")
        self.state.update(**fields, only_if=lambda cur: cur.get("status") != "cancelled")

    def fail(self, reason: str) -> None:
        self._stop_heartbeat()
        self.registry.clear_job(self.key)
        auto = self.step.name != self.target
        message = f"Auto-run failed: {reason}" if auto else f"{self.step.title} failed: {reason}"
        self.state.update(**self._base(), status="error", current_step=self.step.title, message=message,
                          eta_s=None, only_if=lambda cur: cur.get("status") != "cancelled")

    def cancelled(self, how: str) -> None:
        self._stop_heartbeat()
        self.registry.clear_job(self.key)
        self.state.update(**self._base(), status="cancelled", current_step=self.step.title,
                          message=f"Cancelled during {self.step.title} ({how})", eta_s=None,
                          only_if=lambda cur: cur.get("status") != "cancelled")


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
    except FacepipeError as err:  # refused: another live job holds this stage
        print(f"facepipe {rule} refused for {job.episode}: {err}", file=sys.stderr)
        sys.exit(1)
    try:
        if uses_torch:
            _limit_threads(snakemake.threads)
        yield job
    except FacepipeError as err:
        _hold_signals()
        job.fail(str(err))
        print(f"facepipe {rule} failed for {job.episode}: {err}", file=sys.stderr)
        sys.exit(1)
    except Cancelled:
        _hold_signals()
        how = "the snakemake run that started it has ended" if job.head_gone else "stopped by request"
        job.cancelled(how)
        print(f"facepipe {rule} cancelled for {job.episode}: {how}", file=sys.stderr)
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
            print(f"facepipe: could not record the error in {job.state.path}", file=sys.stderr)
        print(f"facepipe {rule} failed for {job.episode}: {reason}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        _hold_signals()
        if _caused_by_stop(err):  # e.g. a pool lock broken while unwinding from Ctrl-C
            job.cancelled("interrupted")
            sys.exit(1)
        job.fail(f"{type(err).__name__}: {err}")
        raise
    else:
        job.finish()
