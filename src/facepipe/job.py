"""Running one stage inside a Snakemake job (the scripts/ entry points call this).

A stage's user-facing errors end the job with one line naming the file and the fix, no traceback.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from .errors import FacepipeError


class StageJob:
    def __init__(self, snakemake, stage: str):
        self.snakemake = snakemake
        self.stage = stage
        self.episode = snakemake.wildcards.get("ep")
        self.config = snakemake.config

    def progress(self, done: int, total: int, message: str = "") -> None:
        """In-stage progress: `done` of `total` frames or items."""


def _limit_threads(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:
        pass


@contextmanager
def stage_job(snakemake, stage: str, uses_torch: bool = False) -> Iterator[StageJob]:
    if uses_torch:
        _limit_threads(snakemake.threads)
    job = StageJob(snakemake, stage)
    try:
        yield job
    except FacepipeError as err:
        print(f"facepipe {stage} failed for {job.episode}: {err}", file=sys.stderr)
        sys.exit(1)
