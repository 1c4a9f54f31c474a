"""What a run would build, per episode, from Snakemake's own dry run (its Python API).

The dry run emits one job-info record per job it would run, with the rule, the wildcards and
Snakemake's reason; they are collected here, so `facepipe plan` and a real run always agree.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from ..base.errors import FacepipeError
from ..base.project import SNAKEFILE
from .steps import RULES, STEP_OF_RULE, ordered


class _JobInfoCollector(logging.Handler):
    def __init__(self):
        super().__init__()
        self.jobs: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(getattr(record, "event", "")) == "job_info":
            self.jobs.append({"rule": record.rule_name, "wildcards": dict(getattr(record, "wildcards", {}) or {}),
                              "reason": str(getattr(record, "reason", ""))})


def find_snakefile(snakefile: str | Path | None = None) -> Path:
    for candidate in ([Path(snakefile)] if snakefile else [Path("workflow/Snakefile"), SNAKEFILE]):
        if candidate.is_file():
            return candidate.resolve()
    raise FacepipeError("workflow/Snakefile not found; run from the facepipe folder or pass --snakefile")


def dry_run(target: str = "cluster_target", snakefile: str | Path | None = None, workdir: str | Path | None = None,
            configfiles: list[str] | None = None, config: dict | None = None) -> list[dict]:
    """The jobs Snakemake would run for `target`: [{rule, wildcards, reason}]."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    snakefile = find_snakefile(snakefile)
    collector = _JobInfoCollector()
    snake_logger = logging.getLogger("snakemake")
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            with SnakemakeApi(OutputSettings(dryrun=True, nocolor=True)) as api:
                wf = api.workflow(
                    resource_settings=ResourceSettings(cores=1),
                    config_settings=ConfigSettings(configfiles=[Path(c) for c in configfiles or []],
                                                   config=config or {}),
                    snakefile=snakefile,
                    workdir=Path(workdir) if workdir else None,
                )
                dag = wf.dag(DAGSettings(targets={target}))
                snake_logger.addHandler(collector)
                dag.execute_workflow(executor="dryrun")
    except Exception as exc:
        lines = [ln for ln in (str(exc) or sink.getvalue()).strip().splitlines() if ln.strip()]
        raise FacepipeError(f"planning {target} failed: {lines[-1] if lines else type(exc).__name__}") from None
    finally:
        snake_logger.removeHandler(collector)
    return [j for j in collector.jobs if j["rule"] in RULES]


def plan_by_episode(jobs: list[dict]) -> dict[str, dict]:
    """episode -> {"steps": [...], "jobs": [{"rule", "reason"}]} in pipeline order."""
    out: dict[str, dict] = {}
    rule_order = list(RULES)
    for job in jobs:
        ep = job["wildcards"].get("ep")
        if ep:
            out.setdefault(ep, {"jobs": []})["jobs"].append({"rule": job["rule"], "reason": job["reason"]})
    for entry in out.values():
        entry["jobs"].sort(key=lambda j: rule_order.index(j["rule"]))
        entry["steps"] = ordered(STEP_OF_RULE[j["rule"]].name for j in entry["jobs"])
    return dict(sorted(out.items()))
