"""The workflow on a live one-node SLURM controller (started by the test set-up on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import (
    REPO,
    SHARED_VIDEOS,
    copy_workdir,
    facepipe,
    paths,
    read_json,
    snakemake,
    start_snakemake,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slurm
SLURM_PROFILE = str(REPO / "workflow" / "profiles" / "slurm")
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2")


def _slurm_up() -> bool:
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10).stdout
        return states.strip() == "idle"
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def slurm():
    """A live controller: the one .ci/run started, or one this fixture starts (and stops) itself."""
    started = False
    if not _slurm_up():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("no SLURM controller, and starting one needs root on Debian")
        subprocess.run(["bash", str(REPO / "tests" / "slurm" / "start-local-slurm.sh")], check=True, timeout=600)
        started = True
    yield
    subprocess.run(["scancel", "--user", os.environ.get("USER", "root")], capture_output=True)
    if started:
        subprocess.run(["bash", str(REPO / "tests" / "slurm" / "stop-local-slurm.sh")], timeout=300)


def sacct_states(job_ids) -> dict[str, str]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "--format=JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("|", 1) for line in out.split())


def submitted(snakemake_output: str) -> dict[tuple[str, str], list[str]]:
    """(rule, episode) -> SLURM job ids, from the executor's submission lines."""
    found: dict[tuple[str, str], list[str]] = {}
    submitted = r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/([\w-]+)/"
    for job, rule, wildcards in re.findall(submitted, snakemake_output):
        ep = wildcards.rsplit("_", 1)[0] if rule == "detect_chunk" else wildcards
        found.setdefault((rule, ep), []).append(job)
    return found


class RegistrySampler(threading.Thread):
    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.slurm_ids, self._halt = path, set(), threading.Event()

    def run(self):
        while not self._halt.is_set():
            reg = read_json(self.path) or {}
            self.slurm_ids |= {e.get("slurm_job_id") for e in reg.get("jobs", {}).values() if e.get("slurm_job_id")}
            time.sleep(0.2)

    def stop(self):
        self._halt.set()
        self.join()
        return self


def test_every_rule_goes_through_sbatch_and_matches_a_local_run(slurm, built_run, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for v in SHARED_VIDEOS.iterdir():
        (videos / v.name).symlink_to(v)
    (videos / "broken_ep.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom cut off mid-download")
    write_config(tmp_path, videos)
    sampler = RegistrySampler(paths(tmp_path, "hamilton_clip").runtime)
    sampler.start()
    proc = snakemake(tmp_path, "cluster_target", "--profile", SLURM_PROFILE, *FAST_POLL, check=False, timeout=1200)
    sampler.stop()
    assert proc.returncode != 0, "the broken episode must fail the run"

    sent = submitted(proc.stdout + proc.stderr)
    for ep in ("hamilton_clip", "walking_and_pause"):
        for rule in ("detect_chunk", "track", "stills", "embed", "cluster", "appearances"):
            assert len(sent.get((rule, ep), [])) == 1, f"{rule} of {ep} was not submitted once: {sent}"
        states = sacct_states([i for (r, e), ids in sent.items() if e == ep for i in ids])
        assert set(states.values()) == {"COMPLETED"}, states
        for name in ("detections", "tracks", "clusters"):
            assert getattr(paths(tmp_path, ep), name).read_text() == getattr(paths(built_run, ep), name).read_text()
        state = json.loads(paths(tmp_path, ep).pipeline_state.read_text())
        assert state["status"] == "done"
        reg = json.loads(paths(tmp_path, ep).runtime.read_text())
        assert not reg["jobs"] and not reg["runs"] and not reg["active_jobs"]
    hamilton_ids = {i for (r, e), ids in sent.items() if e == "hamilton_clip" for i in ids}
    assert sampler.slurm_ids and sampler.slurm_ids <= hamilton_ids, (sampler.slurm_ids, hamilton_ids)
    progress = [json.loads(line) for line in
                paths(tmp_path, "hamilton_clip").progress_log.read_text().splitlines()]
    assert {s.get("slurm_job_id") for s in progress if s.get("slurm_job_id")} <= hamilton_ids

    broken = json.loads(paths(tmp_path, "broken_ep").pipeline_state.read_text())
    assert broken["status"] == "error" and "broken_ep.mp4" in broken["message"]
    assert broken["message"].startswith("Auto-run failed: ")
    reg = json.loads(paths(tmp_path, "broken_ep").runtime.read_text())
    assert not reg["jobs"] and not reg["runs"]


def test_a_season_is_a_small_slurm_job_of_its_own(slurm, season_run, tmp_path):
    work, _labels = season_run
    run = copy_workdir(work, tmp_path / "run")
    seasons = run / "data" / "seasons"
    before = {p.parent.name: json.loads(p.read_text()) for p in seasons.glob("*/cast.json")}
    assert sorted(before) == ["JOHNS_S01", "LFW_S01"]
    shutil.rmtree(seasons)  # the episodes stay built: only the two seasons are left to do
    proc = snakemake(run, "season_target", "--profile", SLURM_PROFILE, *FAST_POLL, timeout=900)
    sent = submitted(proc.stdout + proc.stderr)
    assert sorted(sent) == [("season", "JOHNS_S01"), ("season", "LFW_S01")], sent
    assert set(sacct_states([i for ids in sent.values() for i in ids]).values()) == {"COMPLETED"}
    assert {p.parent.name: json.loads(p.read_text()) for p in seasons.glob("*/cast.json")} == before


def test_cancel_of_a_running_slurm_job(slurm, lfw_slideshow, tmp_path):
    videos, _ = lfw_slideshow
    write_config(tmp_path, videos)
    run = start_snakemake(tmp_path, "cluster_target", "--profile", SLURM_PROFILE, *FAST_POLL)
    try:
        registry = paths(tmp_path, "lfw10").runtime
        entry = wait_for(lambda: (read_json(registry) or {}).get("jobs", {}).get("detect_chunk.0"),
                         timeout=300, what="the detect chunk to start on the cluster")
        job = entry["slurm_job_id"]
        assert job
        out = facepipe("cancel", "lfw10", "--data-root", str(tmp_path / "data"))
        assert f"scancel {job}" in out.stdout
        queued = ["squeue", "-h", "-o", "%i"]
        wait_for(lambda: job not in subprocess.run(queued, capture_output=True, text=True).stdout.split(),
                 timeout=60, what="the job to leave squeue")
    finally:
        run.wait(timeout=300)
    state = json.loads(paths(tmp_path, "lfw10").pipeline_state.read_text())
    assert state["status"] == "cancelled"
    reg = json.loads(paths(tmp_path, "lfw10").runtime.read_text())
    assert not reg["jobs"] and not reg["runs"]


def test_killed_head_reruns_only_unfinished_chunks(slurm, slideshow_run, tmp_path):
    videos = slideshow_run / "videos"
    write_config(tmp_path, videos, detect={"chunk_s": 20})  # lfw10 is 100 s of video: 5 chunks
    run = start_snakemake(tmp_path, "detect_target", "--profile", SLURM_PROFILE, *FAST_POLL)
    lfw = paths(tmp_path, "lfw10")

    def on_disk() -> set[int]:  # chunk outputs are published whole (temp name + rename), or not at all
        return {k for k in range(5) if lfw.detect_chunk(k).exists()}

    wait_for(lambda: len(on_disk()) >= 2, timeout=600, interval=0.5, what="two chunks to finish")
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    # Chunk jobs still running on their node finish or are cancelled; only then is the disk settled.
    subprocess.run(["scancel", "--user", os.environ.get("USER", "root")], capture_output=True)
    wait_for(lambda: not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip(),
             timeout=120, what="the queue to empty")
    complete = on_disk()
    assert len(complete) < 5, "all chunks finished before the kill: the test proves nothing"
    before = {k: lfw.detect_chunk(k).stat().st_mtime_ns for k in complete}
    rerun = snakemake(tmp_path, "detect_target", "--profile", SLURM_PROFILE, *FAST_POLL, timeout=1200)
    chunks_rerun = {int(re.search(r"chunk(\d+)\.jsonl", line).group(1))
                    for line in rerun.stdout.splitlines() + rerun.stderr.splitlines()
                    if "output:" in line and "lfw10/detect_chunks" in line}  # johns' chunks rerun too
    assert chunks_rerun == set(range(5)) - complete, (chunks_rerun, complete)
    assert {k: lfw.detect_chunk(k).stat().st_mtime_ns for k in complete} == before, "a complete chunk was redone"
    assert lfw.detections.read_text() == paths(slideshow_run, "lfw10").detections.read_text()
