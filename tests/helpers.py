"""Running the real workflow from tests and reading what Snakemake reports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from facepipe.base.layout import EpisodePaths
from facepipe.base.project import ROOT as REPO  # noqa: F401 (for the tests)
from facepipe.runtime.launch import snakemake_argv
from facepipe.tools.testmedia import SHARED, SHARED_VIDEOS  # noqa: F401 (for the tests)

BIN = Path(sys.executable).parent
# Where tests leave what a person should look at (screenshots, charts): $FACEPIPE_ARTIFACTS.
ARTIFACTS = Path(os.environ.get("FACEPIPE_ARTIFACTS") or REPO / "test-artifacts")
# The test seasons (conftest's season_run): season -> the shared photo set its episodes show.
SEASON_SETS = {"LFW_S01": "lfw10", "JOHNS_S01": "johns"}
# Why the tests that read the shared test media cannot run here (None: they can).
MEDIA_MISSING = None if SHARED_VIDEOS.is_dir() else (
    f"{SHARED_VIDEOS}: shared test media not found; set FACEPIPE_SHARED_DATA to the folder that holds "
    "videos/ and faces/ (default ../shared/data)")


def need_media() -> None:
    """Skip the test (or the fixture's tests) that calls this where the shared media are missing
    (in CI they are never missing: conftest refuses to start without them)."""
    if MEDIA_MISSING:
        pytest.skip(MEDIA_MISSING)


def write_config(workdir: Path, videos_dir: Path, **sections) -> Path:
    cfg = {"videos_dir": str(videos_dir), "data_root": "data"}
    for key, value in sections.items():
        cfg[key] = value
    path = workdir / "test-config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The snakemake CLI on the project's workflow in `workdir` (which holds .snakemake/)."""
    return snakemake_argv(*args, workdir=workdir, cores=2, configfiles=[workdir / "test-config.yaml"])


def paths(workdir: Path, ep: str) -> EpisodePaths:
    """Where an episode's files are in a test run's data root (`data` under the workdir)."""
    return EpisodePaths(workdir / "data", ep)


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 900, env: dict | None = None):
    """Run the snakemake CLI on the project's workflow in `workdir`."""
    cmd = snakemake_cmd(workdir, *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_WILDCARDS = re.compile(r"^\s+wildcards: .*\bep=([A-Za-z0-9_-]+)")


def jobs(proc) -> set[tuple[str, str | None]]:
    """(rule, episode) for every job a run or dry-run reported, targets left out."""
    found: set[tuple[str, str | None]] = set()
    rule = None
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        m = _RULE.match(line.strip()) if not line.startswith(" ") else None
        if m:
            rule = m.group(1)
            if not rule.endswith("_target"):
                found.add((rule, None))
            continue
        w = _WILDCARDS.match(line)
        if w and rule and not rule.endswith("_target"):
            found.discard((rule, None))
            found.add((rule, w.group(1)))
    return found


def copy_workdir(src: Path, dst: Path) -> Path:
    """Copy a finished run (outputs and Snakemake's records, mtimes kept) for a test to change."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def start_snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Start the workflow in the background (for tests that watch or interrupt a live run)."""
    cmd = snakemake_cmd(workdir, *args)
    log = open(workdir / "background-run.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True)


def burst_videos(tmp: Path, count: int, seconds: float = 2.0) -> tuple[Path, list[str]]:
    """`count` episodes Burst_01... (links to one short clip of the shared videos), for a burst of
    builds: (videos folder, episode names)."""
    from facepipe.tools.testmedia import make_video

    need_media()
    clip = make_video(tmp / "clip" / "clip.mp4", 640, 360, seconds)
    videos = tmp / "videos"
    videos.mkdir()
    names = [f"Burst_{k:02d}" for k in range(1, count + 1)]
    for name in names:
        (videos / f"{name}.mp4").symlink_to(clip)
    return videos, names


def serve_config(workdir: Path, videos: Path) -> Path:
    path = workdir / "serve-config.yaml"
    path.write_text(f"videos_dir: {videos}\ndata_root: data\n")
    return path


def api_rows(url: str) -> dict[str, dict]:
    import json
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/") + "/api/episodes", timeout=30) as response:
        return {r["episode"]: r for r in json.loads(response.read())["episodes"]}


def settled(url: str, names: list[str], timeout: float) -> dict[str, dict]:
    """The rows of `names` once none is busy and each has ended (done, error or cancelled)."""
    def ended():
        rows = api_rows(url)
        return rows if all(not rows[n]["busy"] and rows[n]["status"] in ("done", "error", "cancelled")
                           for n in names) else None

    return wait_for(ended, timeout=timeout, interval=1.0, what=f"the builds of {', '.join(names)} to end")


def built_once(workdir: Path, ep: str) -> bool:
    """The episode's state was written by one run only (one run id in its progress log)."""
    import json

    lines = paths(workdir, ep).progress_log.read_text().splitlines()
    return len({json.loads(line).get("run_id") for line in lines}) == 1


def registry_clean(workdir: Path, ep: str) -> bool:
    reg = read_json(paths(workdir, ep).runtime) or {}
    return not reg.get("runs") and not reg.get("jobs") and not reg.get("active_jobs")


def burst_from_the_page(workdir: Path, count: int, seconds: float, *server_options: str,
                        timeout: float = 900) -> tuple[list[str], int]:
    """`count` detect builds started at once with the page's action on a real `facepipe serve`
    (with `server_options`); checks that every one completed, each built by one run, and that the
    registry ended clean. Returns the episode names, and how many clicks the server queued."""
    import signal

    from facepipe.tools.browser import click_all, start_server

    videos, names = burst_videos(workdir, count, seconds)
    server, url = start_server(workdir, serve_config(workdir, videos), *server_options)
    try:  # a person clicks once the rows are there
        wait_for(lambda: set(names) <= set(api_rows(url)), timeout=60, what="the page to list the episodes")
        answers = click_all(url, [f"/api/episodes/{n}/build/detect" for n in names])
        assert [code for code, _ in answers] == [202] * count, answers
        rows = settled(url, names, timeout=timeout)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=180)
    assert {n: rows[n]["status"] for n in names} == {n: "done" for n in names}
    assert all(built_once(workdir, n) for n in names), "an episode was built by two runs"
    assert all(registry_clean(workdir, n) for n in names)
    return names, sum(1 for _, answer in answers if answer.get("queued"))


def facepipe(*args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True):
    proc = subprocess.run([str(BIN / "facepipe"), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"facepipe {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def videos_with(tmp: Path, *names: str) -> Path:
    """A videos folder holding links to some of the shared videos."""
    need_media()
    folder = tmp / "videos"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).symlink_to(SHARED_VIDEOS / name)
    return folder


def wait_for(predicate, timeout: float = 120, interval: float = 0.1, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg binary that imageio-ffmpeg ships (a test dependency)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def truncated_copy(dst: Path, fraction: float, index_first: bool) -> Path:
    """The first `fraction` of hamilton_clip.mp4 as a download cut short. The shared file keeps its
    index (moov) at the end, so a cut copy has none and cannot be opened; with index_first, a copy
    remuxed with the index at the front (faststart), whose cut copy decodes up to the cut."""
    need_media()
    src = SHARED_VIDEOS / "hamilton_clip.mp4"
    if index_first:
        src = dst.with_name(".faststart-" + dst.name)  # hidden: never taken for an episode
        ffmpeg("-i", str(SHARED_VIDEOS / "hamilton_clip.mp4"), "-c", "copy", "-movflags", "+faststart", str(src))
    whole = src.read_bytes()
    dst.write_bytes(whole[: int(len(whole) * fraction)])
    return dst


def job_benchmark(workdir: Path, ep: str, rule: str, chunk: int | None = None) -> dict:
    """Snakemake's benchmark table of one job (its time, and the peak memory of its processes)."""
    import csv

    with open(paths(workdir, ep).benchmark(rule, chunk), newline="") as fh:
        return next(csv.DictReader(fh, delimiter="\t"))
