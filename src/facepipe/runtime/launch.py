"""The snakemake command line that builds facepipe targets: one source for the web app, the tests
and the benchmarks, so each runs the workflow exactly as a user does from the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from ..base.project import SNAKEFILE

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake_argv(*targets: str, workdir: str | Path | None = None, configfiles=(), config: dict | None = None,
                   cores: int | str = "all", extra=()) -> list[str]:
    """argv of `snakemake TARGETS` on the project's workflow. The workstation profile
    (workflow/profiles/default) applies as it does to a plain `snakemake` in the project folder."""
    argv = [str(SNAKEMAKE), *targets, "-s", str(SNAKEFILE), "--cores", str(cores)]
    if workdir is not None:
        argv += ["-d", str(workdir)]
    for path in configfiles:
        argv += ["--configfile", str(path)]
    if config:
        argv += ["--config", *(f"{k}={v}" for k, v in config.items())]
    return [*argv, *extra]
