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
    api_rows,
    burst_from_the_page,
    copy_workdir,
    facepipe,
    paths,
    read_json,
    registry_clean,
    serve_config,
    settled,
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
def slurm_cluster():
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


@pytest.fixture
def slurm(slurm_cluster):
    """The cluster, its one node taking jobs: a test that failed while the node was drained or
    down (SLURM keeps that state) must not fail every test after it."""
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()
    if state not in ("idle", "mix", "alloc"):
        subprocess.run(["scancel", "--user", os.environ.get("USER", "root")], capture_output=True)
        node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()[0]
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
        wait_for(_slurm_up, timeout=60, interval=0.5, what=f"node {node} ({state}) to take jobs again")


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
    # The profile's retries: the failing job was submitted three times, the episode said so while
    # it was retried, and it failed only after the last attempt, naming the job's log.
    assert len(sent[("detect_chunk", "broken_ep")]) == 3, sent
    log = str(paths(tmp_path, "broken_ep").harvest / "logs" / "detect_chunk.0.log")
    assert broken["log"] == log and Path(log).is_file()
    assert broken["attempts"] == {"detect_chunk.0": f"Detect chunk 1: failed on each of its 3 attempts; see {log}"}
    said = [json.loads(line) for line in paths(tmp_path, "broken_ep").progress_log.read_text().splitlines()]
    retried = dict.fromkeys(s["message"] for s in said if s["status"] == "running" and "retrying" in s["message"])
    assert list(retried) == [f"Detect chunk 1: failed, retrying (attempt {n} of 3); see {log}"
                                               for n in (2, 3)], [s["message"] for s in said]
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


def job_times(job_ids) -> dict[str, tuple[str, str, str]]:
    """SLURM job id -> (state, start, end), as sacct has them (ISO times; "Unknown" while running)."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "--format=JobID,State,Start,End", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True).stdout
    return {f[0]: (f[1].split()[0], f[2], f[3]) for f in (line.split("|") for line in out.splitlines() if line)}


def chunk_jobs(snakemake_output: str, ep: str) -> dict[int, str]:
    """chunk -> the SLURM job id a run submitted for that detect chunk of `ep`."""
    found = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_detect_chunk/" + ep + r"_(\d+)/",
                       snakemake_output)
    return {int(chunk): job for job, chunk in found}


def test_killed_head_then_the_same_command_at_once_cancels_its_jobs_and_reruns_only_unfinished_chunks(
        slurm, slideshow_run, tmp_path):
    videos = slideshow_run / "videos"
    write_config(tmp_path, videos, detect={"chunk_s": 20})  # lfw10 is 100 s of video: 5 chunks
    run = start_snakemake(tmp_path, "detect_target", "--profile", SLURM_PROFILE, *FAST_POLL)
    lfw = paths(tmp_path, "lfw10")

    def on_disk() -> set[int]:  # chunk outputs are published whole (temp name + rename), or not at all
        return {k for k in range(5) if lfw.detect_chunk(k).exists()}

    wait_for(lambda: len(on_disk()) >= 2, timeout=600, interval=0.5, what="two chunks to finish")
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    first = chunk_jobs((tmp_path / "background-run.log").read_text(), "lfw10")
    # The dead head's queued jobs go on starting on the node; the first to register clears the dead
    # run's registry entry (the case that used to leave the lock in place).
    wait_for(lambda: not (read_json(lfw.runtime) or {}).get("runs"), timeout=120, interval=0.2,
             what="a job of the dead head to start after it")
    complete = on_disk()
    assert len(complete) < 5, "all chunks finished before the kill: the test proves nothing"
    before = {k: lfw.detect_chunk(k).stat().st_mtime_ns for k in complete}
    rerun = snakemake(tmp_path, "detect_target", "--profile", SLURM_PROFILE, *FAST_POLL, timeout=1200)
    said = rerun.stdout + rerun.stderr
    assert "facepipe: removed Snakemake's lock" in said
    assert "facepipe: cancelled SLURM job(s)" in said
    second = chunk_jobs(said, "lfw10")
    assert set(second) == set(range(5)) - complete, (second, complete)
    assert {k: lfw.detect_chunk(k).stat().st_mtime_ns for k in complete} == before, "a complete chunk was redone"
    # No chunk ever had two jobs at once: each dead head's job for a redone chunk had ended (cancelled,
    # or never started) before the rerun's own job for it started.
    times = job_times([*first.values(), *second.values()])
    for k, job in second.items():
        old_state, _, old_end = times[first[k]]
        assert old_state in ("CANCELLED", "COMPLETED"), times[first[k]]
        assert old_end != "Unknown" and old_end <= times[job][1], (k, times[first[k]], times[job])
    assert lfw.detections.read_text() == paths(slideshow_run, "lfw10").detections.read_text()
    assert not (read_json(lfw.runtime) or {}).get("jobs") and json.loads(lfw.pipeline_state.read_text())[
        "status"] == "done"


def test_a_node_set_down_under_a_chunk_is_requeued_and_the_episode_says_so(slurm, slideshow_run, tmp_path):
    videos = slideshow_run / "videos"
    write_config(tmp_path, videos, detect={"chunk_s": 50})  # 2 chunks
    run = start_snakemake(tmp_path, "detect_target", "--profile", SLURM_PROFILE, *FAST_POLL)
    lfw = paths(tmp_path, "lfw10")
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()[0]
    try:
        entry = wait_for(lambda: next((e for e in ((read_json(lfw.runtime) or {}).get("jobs") or {}).values()
                                       if e.get("rule") == "detect_chunk"), None),
                         timeout=300, interval=0.2, what="a detect chunk to run on the node")
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=facepipe-test"], check=True)
        job = entry["slurm_job_id"]
        wait_for(lambda: len(subprocess.run(["sacct", "-X", "-D", "-n", "-o", "State", "-j", job],
                                            capture_output=True, text=True).stdout.splitlines()) >= 2,
                 timeout=120, what="SLURM to requeue the job")
        # The killed instance's steps must be gone from the node before the requeued one starts there:
        # a node that still runs a job id it is asked to launch again is drained ("Duplicate jobid").
        wait_for(lambda: subprocess.run(["pgrep", "-f", rf"slurmstepd: \[{job}\."]).returncode == 1,
                 timeout=120, interval=0.2, what=f"the killed instance of job {job} to leave the node")
    finally:  # the node comes back (if it has not already), and the requeued job need not wait its hold
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
    for pending in subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i"], capture_output=True,
                                  text=True).stdout.split():
        subprocess.run(["scontrol", "update", f"jobid={pending}", "StartTime=now"], capture_output=True)
    assert run.wait(timeout=900) == 0, (tmp_path / "background-run.log").read_text()[-3000:]
    state = json.loads(lfw.pipeline_state.read_text())
    chunk = int(entry["chunk"]) + 1
    assert state["status"] == "done"
    assert state["attempts"] == {f"detect_chunk.{entry['chunk']}":
                                 f"Detect chunk {chunk}: node failed, requeued (attempt 2)"}, state
    status = facepipe("status", "lfw10", "--data-root", str(tmp_path / "data")).stdout
    assert f"Detect chunk {chunk}: node failed, requeued (attempt 2)" in " ".join(status.split()), status
    assert not (read_json(lfw.runtime) or {}).get("jobs")
    assert lfw.detections.read_text() == paths(slideshow_run, "lfw10").detections.read_text()


def fast_slurm_profile(folder: Path) -> Path:
    """The SLURM profile, polling the queue every 2 s (what FAST_POLL gives the terminal's runs),
    with one thread per detect chunk, so that the one 2-CPU node runs two at once."""
    import yaml

    folder.mkdir(parents=True)
    profile = yaml.safe_load((Path(SLURM_PROFILE) / "config.yaml").read_text())
    profile.update({"slurm-init-seconds-before-status-checks": 2, "seconds-between-status-checks": 2})
    profile["set-threads"]["detect_chunk"] = 1
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_the_dashboard_on_a_login_node_builds_refuses_and_cancels_through_slurm(slurm, lfw_slideshow, tmp_path):
    pytest.importorskip("starlette", reason="facepipe serve needs the web extra: pip install -e '.[web]'")
    from facepipe.tools.browser import click_all, start_server

    videos, _ = lfw_slideshow
    profile = fast_slurm_profile(tmp_path / "profile")
    server, url = start_server(tmp_path, serve_config(tmp_path, videos), "--profile", str(profile))
    lfw = paths(tmp_path, "lfw10")
    try:
        wait_for(lambda: "lfw10" in api_rows(url), timeout=60, what="the page to list the episode")
        [(code, _)] = click_all(url, ["/api/episodes/lfw10/build/cluster"])
        assert code == 202
        entry = wait_for(lambda: ((read_json(lfw.runtime) or {}).get("jobs") or {}).get("detect_chunk.0"),
                         timeout=300, interval=0.2, what="the detect job to start on the cluster")
        job = entry["slurm_job_id"]
        assert job and job in subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
        row = wait_for(lambda: (r := api_rows(url)["lfw10"])["busy"] and (r["pct"] or 0) > 0.01 and r,
                       timeout=120, interval=0.5, what="the page to show the job's progress")
        assert row["status"] == "running"
        [(code, body)] = click_all(url, ["/api/episodes/lfw10/build/cluster"])
        assert code == 409 and "already" in body["error"] and "lfw10" in body["error"], body
        [(code, body)] = click_all(url, ["/api/episodes/lfw10/cancel"])
        assert code == 200 and any(f"scancel {job}" in line for line in body["report"]), body
        queued = ["squeue", "-h", "-o", "%i"]
        wait_for(lambda: job not in subprocess.run(queued, capture_output=True, text=True).stdout.split(),
                 timeout=90, what="the job to leave squeue")
        rows = settled(url, ["lfw10"], timeout=300)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=180)
    assert rows["lfw10"]["status"] == "cancelled", rows["lfw10"]
    assert registry_clean(tmp_path, "lfw10")
    assert job_times([job])[job][0] == "CANCELLED"
    assert "--profile" in lfw.launch_log.read_text().splitlines()[0]


def test_a_burst_of_10_builds_from_the_page_through_slurm_all_complete_each_built_once(slurm, tmp_path):
    """10 here (4.4 of CI's minutes at 20); the burst of 20 through SLURM is bench/web.py's."""
    pytest.importorskip("starlette", reason="facepipe serve needs the web extra: pip install -e '.[web]'")
    names, queued = burst_from_the_page(tmp_path, 10, 1.0, "--profile",
                                        str(fast_slurm_profile(tmp_path / "profile")), timeout=1200)
    assert queued == 0  # through SLURM the page queues nothing: the cluster's queue orders the jobs
    for n in names:
        sent = submitted(paths(tmp_path, n).launch_log.read_text())
        assert list(sent) == [("detect_chunk", n)] and len(sent[("detect_chunk", n)]) == 1, (n, sent)
