"""What a build, a state, a registry, a watcher and a cancellation are about: a unit, an episode or
a season, named. There is no default kind: a caller says which one it means, and a unit says
where its files are (`paths`), so no episode-shaped API can silently address an episode when it
was handed a season's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .layout import RUNTIME, SEASON_RUNTIME, EpisodePaths, SeasonPaths

KINDS = ("episode", "season")
# The Snakemake wildcard that names a unit of each kind in the rules ({ep}, {season}).
WILDCARD = {"episode": "ep", "season": "season"}


@dataclass(frozen=True, order=True)
class Unit:
    kind: str  # "episode" or "season"
    name: str  # the episode id (RHOBH_S05_E03_11062025) or the season key

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown unit kind {self.kind!r}; a unit is one of {', '.join(KINDS)}")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a {self.kind} needs a name, got {self.name!r}")

    @classmethod
    def episode(cls, name: str) -> Unit:
        return cls("episode", name)

    @classmethod
    def season(cls, name: str) -> Unit:
        return cls("season", name)

    @classmethod
    def from_wildcards(cls, kind: str, wildcards) -> Unit | None:
        """The unit a job of `kind` works on, named by its Snakemake wildcards (None if unnamed)."""
        name = (wildcards or {}).get(WILDCARD[kind])
        return cls(kind, name) if name else None

    def paths(self, data_root: str | Path) -> EpisodePaths | SeasonPaths:
        """The unit's files (both kinds have pipeline_state, progress_log, runtime, log)."""
        root = Path(data_root)
        return EpisodePaths(root, self.name) if self.kind == "episode" else SeasonPaths(root, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def registry_unit(path: str | Path) -> tuple[Path, Unit]:
    """(data root, unit) of a runtime.json (layout.registry_files): an episode's under
    episodes/{key}/ (the unit is then named by its key, the only name the file has) or a
    season's under seasons/{season}/."""
    path = Path(path)
    for kind, pattern in (("episode", RUNTIME), ("season", SEASON_RUNTIME)):
        top, _name, file = pattern.split("/")
        if path.parent.parent.name == top and path.name == file:
            return path.parent.parent.parent, Unit(kind, path.parent.name)
    raise ValueError(f"{path}: not a runtime registry; expected {RUNTIME} or {SEASON_RUNTIME} under the data root")
