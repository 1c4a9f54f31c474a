"""The four user-facing steps of an episode and the one of a season, the rules behind them, and
their share of the progress bar: the one table the runtime, the plan, the status view, the web page
and the CLI read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str  # plan entry: detect, track, stills, cluster
    title: str  # shown to users: Detect, Track, Stills, Cluster
    noun: str  # "... before clustering", "Clustering complete"
    index: int  # 1-4
    band: tuple[float, float]  # share of the whole pipeline's pct
    rules: tuple[tuple[str, tuple[float, float]], ...]  # (rule, the part of the step's band it covers)
    target: str  # the Snakemake target that builds everything up to this step


STEPS = (
    Step("detect", "Detect", "detection", 1, (0.00, 0.50), (("detect_chunk", (0.0, 0.98)), ("detect", (0.98, 1.0))),
         "detect_target"),
    Step("track", "Track", "tracking", 2, (0.50, 0.70), (("track", (0.0, 1.0)),), "track_target"),
    Step("stills", "Stills", "stills", 3, (0.70, 0.75), (("stills", (0.0, 1.0)),), "stills_target"),
    Step("cluster", "Cluster", "clustering", 4, (0.75, 1.00),
         (("embed", (0.0, 0.8)), ("cluster", (0.8, 0.96)), ("appearances", (0.96, 1.0))), "cluster_target"),
)
# A season has one step: linking its episodes' clusters into a cast (progress of its own, under
# seasons/{season}/diagnostics/).
SEASON_STEP = Step("season", "Season", "season linking", 1, (0.0, 1.0), (("season", (0.0, 1.0)),), "season_target")
STEPS_OF_KIND = {"episode": STEPS, "season": (SEASON_STEP,)}
BY_NAME = {s.name: s for steps in STEPS_OF_KIND.values() for s in steps}
TOTAL_STEPS = len(STEPS)
# Snakemake rule -> its step; rules in pipeline order (an episode's, then a season's).
STEP_OF_RULE = {rule: step for steps in STEPS_OF_KIND.values() for step in steps for rule, _part in step.rules}
RULES = tuple(STEP_OF_RULE)
EPISODE_RULES = tuple(rule for step in STEPS for rule, _part in step.rules)
_PART = {rule: part for step in STEP_OF_RULE.values() for rule, part in step.rules}


def kind_of_rule(rule: str) -> str:
    return "season" if STEP_OF_RULE[rule] is SEASON_STEP else "episode"


def step_of_rule(rule: str) -> Step:
    return STEP_OF_RULE[rule]


def rule_pct(rule: str, stage_pct: float) -> float:
    """Whole-pipeline pct for a rule `stage_pct` (0-1) of the way through."""
    step = step_of_rule(rule)
    lo, hi = _PART[rule]
    frac = lo + (hi - lo) * min(1.0, max(0.0, stage_pct))
    return round(step.band[0] + (step.band[1] - step.band[0]) * frac, 4)


def is_last_rule_of_step(rule: str) -> bool:
    return step_of_rule(rule).rules[-1][0] == rule


def is_first_rule_of_step(rule: str) -> bool:
    return step_of_rule(rule).rules[0][0] == rule


def ordered(step_names) -> list[str]:
    """Step names in pipeline order (an episode's steps, then the season's)."""
    wanted = set(step_names)
    return [name for name in BY_NAME if name in wanted]
