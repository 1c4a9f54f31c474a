"""The four user-facing steps, the rules behind them, and their share of the progress bar."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str  # plan entry: detect, track, stills, cluster
    title: str  # shown to users: Detect, Track, Stills, Cluster
    noun: str  # "... before clustering", "Clustering complete"
    index: int  # 1-4
    band: tuple[float, float]  # share of the whole pipeline's pct


STEPS = (
    Step("detect", "Detect", "detection", 1, (0.00, 0.50)),
    Step("track", "Track", "tracking", 2, (0.50, 0.70)),
    Step("stills", "Stills", "stills", 3, (0.70, 0.75)),
    Step("cluster", "Cluster", "clustering", 4, (0.75, 1.00)),
)
BY_NAME = {s.name: s for s in STEPS}
TOTAL_STEPS = len(STEPS)

# Snakemake rule -> (step, the part of the step's band the rule covers).
RULES = {
    "detect_chunk": ("detect", (0.0, 0.98)),
    "detect": ("detect", (0.98, 1.0)),
    "track": ("track", (0.0, 1.0)),
    "stills": ("stills", (0.0, 1.0)),
    "embed": ("cluster", (0.0, 0.8)),
    "cluster": ("cluster", (0.8, 1.0)),
}
STEP_RULES = {"detect": ["detect_chunk", "detect"], "track": ["track"], "stills": ["stills"], "cluster": ["embed", "cluster"]}


def step_of_rule(rule: str) -> Step:
    return BY_NAME[RULES[rule][0]]


def rule_pct(rule: str, stage_pct: float) -> float:
    """Whole-pipeline pct for a rule `stage_pct` (0-1) of the way through."""
    step = step_of_rule(rule)
    lo, hi = RULES[rule][1]
    frac = lo + (hi - lo) * min(1.0, max(0.0, stage_pct))
    return round(step.band[0] + (step.band[1] - step.band[0]) * frac, 4)


def is_last_rule_of_step(rule: str) -> bool:
    return STEP_RULES[RULES[rule][0]][-1] == rule


def is_first_rule_of_step(rule: str) -> bool:
    return STEP_RULES[RULES[rule][0]][0] == rule


def ordered(step_names) -> list[str]:
    wanted = set(step_names)
    return [s.name for s in STEPS if s.name in wanted]
