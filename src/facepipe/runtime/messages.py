"""The words a user reads in pipeline_state.json's current_step and message, written once for
the jobs (runtime.job) and the run (runtime.run_events)."""

from __future__ import annotations

from .steps import BY_NAME, Step

INTERRUPTED = "Interrupted: the run was stopped before finishing (Ctrl-C or SIGTERM)"
NOT_STARTED = "Not started: the run stopped before reaching this episode"


def plan_start(plan: list[str]) -> tuple[str, str]:
    """(current_step, message) when a run that builds `plan` (step names, in order) starts."""
    target = BY_NAME[plan[-1]]
    if len(plan) > 1:
        before = " -> ".join(BY_NAME[s].title for s in plan[:-1])
        return f"{target.title} (Auto-running prerequisites)", f"Auto-running {before} before {target.noun}..."
    return target.title, starting(target)


def prerequisites_complete(plan: list[str]) -> tuple[str, str]:
    """(current_step, message) when the target step starts after its auto-run prerequisites."""
    target = BY_NAME[plan[-1]]
    before = "/".join(BY_NAME[s].title for s in plan[:-1])
    return f"{target.title} (Prerequisites complete)", f"{before} complete, starting {target.noun}..."


def starting(step: Step) -> str:
    return f"Starting {step.noun}..."


def step_complete(step: Step) -> str:
    return f"{step.title} complete"


def target_complete(step: Step) -> str:
    return f"{step.noun.capitalize()} complete"


def failed(step: Step, target: str, reason: str) -> str:
    """A step failed: an auto-run prerequisite of `target`, or the target step itself."""
    return f"Auto-run failed: {reason}" if step.name != target else f"{step.title} failed: {reason}"


def died(rule: str, log: str | None = None) -> str:
    """The reason for a job that ended without reporting why."""
    reason = f"the {rule} job ended without reporting (killed, out of memory or failed on its node)"
    return f"{reason}; see {log}" if log else reason


def job_title(step: Step, chunk: str | None = None, chunks: int | None = None) -> str:
    """A job as the page names it: "Detect chunk 2" (chunks count from 1), or the step's title."""
    return f"{step.title} chunk {int(chunk) + 1}" if chunk is not None and (chunks or 2) > 1 else step.title


def requeued(title: str, why: list[str], attempt: int) -> str:
    """A job SLURM started again on another node (`why`: how its earlier runs ended)."""
    reason = next((w for w in reversed(why) if w), None)
    return f"{title}: {reason}, requeued (attempt {attempt})" if reason else \
        f"{title}: requeued by SLURM (attempt {attempt})"


def retrying(title: str, attempt: int, attempts: int, log: str | None) -> str:
    """A job that failed and that Snakemake starts again (its `retries`)."""
    return f"{title}: failed, retrying (attempt {attempt} of {attempts})" + (f"; see {log}" if log else "")


def failed_every_attempt(title: str, attempts: int, log: str | None) -> str:
    return f"{title}: failed on each of its {attempts} attempts" + (f"; see {log}" if log else "")


def head_died(pid: int, how: str) -> str:
    """The reason for a run whose snakemake process ended without settling its episodes."""
    return f"snakemake (pid {pid}) {how} before the run finished; its jobs were stopped"


def cancelled_during(step: Step, how: str) -> str:
    return f"Cancelled during {step.title} ({how})"


def cancelled_by_user(jobs: list[str]) -> str:
    return f"Cancelled by user ({', '.join(jobs) or 'queued run'})"


def season_blocked(season: str, failed: list[str]) -> str:
    """A season whose episodes did not all build: which failed, and the three ways out."""
    return (f"Season {season} blocked: episode {'; '.join(failed)}. Repair the episode and run again, remove "
            f"its video from videos_dir, or leave it out with season.exclude")
