"""What a run would build, per episode, from Snakemake's own dry run (its Python API).

The dry run emits one job-info record per job it would run, with the rule, the wildcards and
Snakemake's reason; they are collected here, so `facepipe plan` and a real run always agree.
`step_reasons` says those reasons in the pages' words: per step, what is missing or changed, with
paths relative to the episode's folder (or to the data root, or the file's name).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

from ..base.errors import FacepipeError
from ..base.layout import DETECT_CHUNK, EPISODE_CORRECTIONS, HARVEST, STEP_OUTPUTS, STILLS_DIR
from ..base.project import SNAKEFILE
from .steps import BY_NAME, RULES, STEP_OF_RULE, STEPS, ordered

# Snakemake's reasons (snakemake.jobs.Reason.__str__), clause by clause: its words -> what facepipe
# calls it. A clause runs to the next one ("; " + its words) or to the end; Params' text holds
# Python reprs, so it is never split at a bare "; ".
CLAUSES = {"Missing output files:": "missing", "Incomplete output files:": "incomplete",
           "Updated input files:": "changed", "Input files updated by another job:": "rebuilt",
           "Set of input files has changed since last execution": "input set",
           "Code has changed since last execution": "code",
           "Params have changed since last execution": "settings",
           "Software environment definition has changed since last execution": "software",
           "Forced execution": "forced"}
FILE_CLAUSES = ("missing", "incomplete", "changed", "rebuilt")
SHOWN_FILES = 4  # file names a reason lists before "and N more"


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
    for ep, entry in out.items():
        entry["reasons"] = step_reasons(ep, entry["jobs"])
    return dict(sorted(out.items()))


def _clauses(reason: str) -> list[tuple[str, str]]:
    """(kind, the rest of the clause) for each clause of a Snakemake reason, in its order; a clause
    facepipe does not know is ("other", its text)."""
    text = reason.strip()
    if text.startswith("Finished (was: ") and text.endswith(")"):
        text = text[len("Finished (was: "):-1]
    starts = sorted((0 if text.startswith(words) else text.find("; " + words) + 2, words)
                    for words in CLAUSES if text.startswith(words) or "; " + words in text)
    if not starts:
        return [("other", text)] if text else []
    out = [("other", text[:starts[0][0] - 2])] if starts[0][0] else []
    for k, (at, words) in enumerate(starts):
        end = starts[k + 1][0] - 2 if k + 1 < len(starts) else len(text)
        out.append((CLAUSES[words], text[at + len(words):end].strip()))
    return out


def shown_path(path: str, episode: str) -> str:
    """A path as the episode's page writes it: relative to the episode's folder (harvest/EP/), or
    from the data root for its corrections file, else the file's name (a video, a reference photo)."""
    path = path.strip().rstrip("/")
    own = f"{HARVEST}/{episode}/"
    if path.startswith(own) or f"/{own}" in path:
        name = path.split(own, 1)[1]
        return name + "/" if own + name == STILLS_DIR.format(ep=episode) else name  # a folder
    corrections = EPISODE_CORRECTIONS.format(ep=episode)
    if path == corrections or path.endswith("/" + corrections):
        return corrections
    return path.rsplit("/", 1)[-1]


def _step_of_output(name: str) -> str | None:
    """The step that builds a file of the episode's folder (a name shown_path gave), or None."""
    chunks = DETECT_CHUNK.split("{ep}/", 1)[1].split("{chunk}", 1)[0]
    if name.startswith(chunks):
        return STEPS[0].name
    for step in STEPS:
        if any(p.split("{ep}/", 1)[1] == name.rstrip("/") for p in STEP_OUTPUTS[step.name]):
            return step.name
    return None


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _files(names: list[str]) -> str:
    """Names in order (Snakemake lists them as a set's), chunk2 before chunk10, the first few."""
    names = sorted(names, key=_natural)
    shown = ", ".join(names[:SHOWN_FILES])
    return shown + (f" and {len(names) - SHOWN_FILES} more" if len(names) > SHOWN_FILES else "")


def _outputs(n: int) -> str:
    return f"{n} output{'s' if n != 1 else ''}"


def step_reasons(episode: str, jobs: list[dict]) -> list[dict]:
    """Why each planned step of an episode would run, in the pages' words: [{"step", "text"}] in
    pipeline order, e.g. "Detect: 2 outputs missing (detect_chunks/chunk0.json, ...)", "Cluster:
    corrections/episodes/EP.jsonl changed". `jobs`: [{rule, reason}] of that episode (Snakemake's
    reasons, as plan_by_episode keeps them)."""
    facts: dict[str, dict[str, list[str]]] = {}
    for job in jobs:
        step = STEP_OF_RULE.get(job["rule"])
        if step is None:
            continue
        mine = facts.setdefault(step.name, {})
        clauses = _clauses(job["reason"])
        changed = [shown_path(f, episode) for kind, rest in clauses if kind == "changed" for f in rest.split(", ")]
        for kind, rest in clauses:
            if kind == "settings" and EPISODE_CORRECTIONS.format(ep=episode) in changed:
                continue  # the corrections' digest is a param of cluster: their change is said once
            found = mine.setdefault(kind, [])
            items = [shown_path(f, episode) for f in rest.split(", ") if f.strip()] if kind in FILE_CLAUSES \
                else [rest]
            found += [i for i in items if i not in found]
    out = []
    for name in ordered(facts):
        mine, step = facts[name], BY_NAME[name]
        # files this step builds itself are no reason of its own ("rebuilt" by its first rule)
        before = [f for f in mine.get("rebuilt", []) if _step_of_output(f) != name]
        parts = []
        if mine.get("missing"):
            parts.append(f"{_outputs(len(mine['missing']))} missing ({_files(mine['missing'])})")
        if mine.get("incomplete"):
            parts.append(f"{_outputs(len(mine['incomplete']))} left incomplete by a run that stopped "
                         f"({_files(mine['incomplete'])})")
        if mine.get("changed"):
            parts.append(f"{_files(mine['changed'])} changed")
        words = {"input set": "its set of inputs changed", "settings": "its settings changed",
                 "code": "its code changed", "software": "its software changed", "forced": "asked for"}
        parts += [text for kind, text in words.items() if kind in mine]
        parts += [text for text in mine.get("other", []) if text]  # a clause facepipe does not know, as is
        if not parts and before:
            steps = ordered(s for s in map(_step_of_output, before) if s)
            titles = [BY_NAME[s].title for s in steps]
            after = ", ".join(titles[:-1]) + " and " + titles[-1] if len(titles) > 1 else \
                titles[0] if titles else "the steps before it"
            parts.append(f"follows {after}, built again first ({_files(before)})")
        out.append({"step": name, "text": f"{step.title}: {'; '.join(parts) or 'planned'}"})
    return out
