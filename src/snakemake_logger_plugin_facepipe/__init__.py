"""Snakemake logger plugin `facepipe` (`--logger facepipe`, on in the default profile).

It turns Snakemake's job events into facepipe progress: a job starting marks its episode (or
season) running; a job failing marks it error with the reason, even when the job died without reporting
(killed, out of memory, failed on a cluster node); a job failing that Snakemake will start again
(its rule's retries) keeps it running, saying so. It writes nothing to the terminal: Snakemake's
own output is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from logging import LogRecord

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    pass


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        self.jobs: dict[int, tuple[str, dict]] = {}  # job id -> (rule, wildcards)
        self.failures: dict[int, int] = {}  # job id -> how often it has failed (a retry keeps its id)

    def emit(self, record: LogRecord) -> None:
        if getattr(self.common_settings, "dryrun", False):
            return
        from facepipe.runtime import run_events

        event = getattr(record, "event", None)
        try:
            if event == LogEvent.JOB_INFO:
                # Logged as each job is handed to its executor (JOB_STARTED comes before it, with
                # job ids only), so this is where a job's episode becomes "running".
                wildcards = dict(getattr(record, "wildcards", None) or {})
                self.jobs[record.jobid] = (record.rule_name, wildcards)
                run_events.job_started(record.rule_name, wildcards)
            elif event == LogEvent.JOB_ERROR:
                rule, wildcards = self.jobs.get(record.jobid, (getattr(record, "rule_name", None), {}))
                if rule:
                    logs = getattr(record, "log", None) or []
                    self.failures[record.jobid] = self.failures.get(record.jobid, 0) + 1
                    run_events.job_failed(rule, wildcards, str(logs[0]) if logs else None,
                                          self.failures[record.jobid])
        except Exception as exc:  # progress reporting must never break the workflow
            import sys

            print(f"facepipe logger: could not record {event}: {exc}", file=sys.stderr)

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False
