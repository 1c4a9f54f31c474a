"""Shared pieces of facepipe's benchmarks: test media built from ../shared/data, timed runs, and
the stage times Snakemake measured (each rule's benchmark file).

Benchmarks print ratios against a baseline measured in the same run, so the figures compare
like with like on whatever machine runs them. They are never run as timed tests.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

from facepipe.base.layout import EpisodePaths
from facepipe.base.project import ROOT as REPO
from facepipe.runtime.launch import snakemake_argv
from facepipe.tools.testmedia import SHARED, make_video, source_frames  # noqa: F401 (the benches' media)

OUT = REPO / "bench" / "out"
BIN = Path(sys.executable).parent


def timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:3]))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def snakemake_cmd(workdir: Path, target: str, *extra: str) -> list[str]:
    return snakemake_argv(target, workdir=workdir, cores=os.cpu_count() or 2,
                          configfiles=[workdir / "bench-config.yaml"], extra=extra)


def write_config(workdir: Path, videos: Path, **sections) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = {"videos_dir": str(videos), "data_root": "data", **sections}
    (workdir / "bench-config.yaml").write_text(yaml.safe_dump(cfg))


def episode(workdir: Path, ep: str) -> EpisodePaths:
    return EpisodePaths(workdir / "data", ep)


def job_benchmarks(workdir: Path, ep: str) -> dict[str, dict]:
    """Snakemake's benchmark table of each job of an episode (harvest/{ep}/benchmarks/*.tsv):
    job name (detect_chunk.0, track, ...) -> {"s": seconds, "max_rss": MB, ...}."""
    out = {}
    for path in sorted(episode(workdir, ep).benchmarks_dir.glob("*.tsv")):
        with open(path, newline="") as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        out[path.stem] = {k: float(v) for k, v in row.items() if k != "h:m:s" and v not in ("", "NA", None)}
    return out


def stage_seconds(workdir: Path, ep: str) -> dict[str, float]:
    """Seconds per rule of an episode from its benchmark files (detect chunks summed)."""
    seconds: dict[str, float] = {}
    for name, row in job_benchmarks(workdir, ep).items():
        rule = name.split(".", 1)[0]
        seconds[rule] = seconds.get(rule, 0.0) + row["s"]
    return seconds


EMBED_CHILD = """
import json, sys, time
from facepipe.base.config import defaults
from facepipe.stages.embed import embed_stills
t0 = time.perf_counter()
seen = []
def progress(done, total, message):
    seen.append((time.perf_counter() - t0, done))
cfg = {**defaults()["embed"], sys.argv[3]: sys.argv[4]}
n = embed_stills(sys.argv[1], sys.argv[2], cfg, progress, workers=2)
elapsed = time.perf_counter() - t0
first = next((t, d) for t, d in seen if d > 0)  # the first batch back: the workers are up
print(json.dumps({"stills": n, "seconds": elapsed, "start": first[0],
                  "steady": (n - first[1]) / (elapsed - first[0])}))
"""


def embed_in_child(stills: str | os.PathLike, out: str | os.PathLike, key: str, value: str) -> dict:
    """The embed stage as the embed job runs it (embed_stills, 2 worker processes) on the stills
    folder `stills`, in a fresh process, with embed.`key` set to `value`: {"stills", "seconds",
    "start" (seconds to the first batch back), "steady" (stills/s after it)}."""
    proc = subprocess.run([sys.executable, "-c", EMBED_CHILD, str(stills), str(out), key, value],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    import platform

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = int(next(ln.split()[1] for ln in meminfo if ln.startswith("MemTotal"))) // 2**20
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB"
