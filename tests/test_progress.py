"""Live progress, the runtime registry and the facepipe command, on real runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import time

from facepipe.base.unit import Unit
from facepipe.runtime.registry import Registry
from helpers import (
    BIN,
    SHARED_VIDEOS,
    facepipe,
    jobs,
    need_media,
    paths,
    read_json,
    snakemake,
    start_snakemake,
    videos_with,
    wait_for,
    write_config,
)
from progress_sampler import StateSampler

BANDS = {"Detect": (0.0, 0.5), "Track": (0.5, 0.7), "Stills": (0.7, 0.75), "Cluster": (0.75, 1.0)}


def history(workdir, ep):
    return [json.loads(line) for line in paths(workdir, ep).progress_log.read_text().splitlines()]


def registry_is_clear(workdir, ep):
    reg = read_json(paths(workdir, ep).runtime)
    return reg is not None and not reg["active_jobs"] and not reg["jobs"] and not reg["runs"]


def test_cluster_with_nothing_built_auto_runs_prerequisites_and_reports_all_the_way(tmp_path):
    ep = "hamilton_clip"
    write_config(tmp_path, videos_with(tmp_path, "hamilton_clip.mp4"))
    sampler = StateSampler(paths(tmp_path, ep).pipeline_state)
    sampler.start()
    snakemake(tmp_path, "cluster_target")
    sampler.stop().check()

    seen = history(tmp_path, ep)
    first = seen[0]
    assert first["current_step"] == "Cluster (Auto-running prerequisites)"
    assert first["plan"] == ["detect", "track", "stills", "cluster"]
    assert first["message"] == "Auto-running Detect -> Track -> Stills before clustering..."
    assert first["pct"] == 0.0 and first["target"] == "cluster" and first["total_steps"] == 4
    # Detect reports frames before anything else runs, then each stage inside its band.
    frames = [s for s in seen if s["current_step"] == "Detect" and (s["done"] or 0) > 0]
    assert frames and frames[0]["total"] >= 36
    for s in seen:
        if s["current_step"] in BANDS and s["status"] == "running":
            lo, hi = BANDS[s["current_step"]]
            assert lo - 1e-9 <= s["pct"] <= hi + 1e-9, s
    steps_in_order = [s["current_step"] for s in seen]
    for step in ("Detect", "Track", "Stills"):
        assert step in steps_in_order
    handover = [s for s in seen if s["current_step"] == "Cluster (Prerequisites complete)"]
    assert handover and handover[0]["message"] == "Detect/Track/Stills complete, starting clustering..."
    assert handover[0]["pct"] == 0.75
    assert steps_in_order.index("Stills") < steps_in_order.index("Cluster (Prerequisites complete)")
    last = seen[-1]
    assert (last["status"], last["pct"], last["message"]) == ("done", 1.0, "Clustering complete")
    assert json.loads(paths(tmp_path, ep).pipeline_state.read_text())["status"] == "done"
    for s in seen:
        assert s["updated_at"].endswith("Z") and "T" in s["updated_at"]
    assert registry_is_clear(tmp_path, ep)


def test_prerequisites_already_built_plan_only_cluster(run_copy):
    ep = "hamilton_clip"
    h = paths(run_copy, ep).harvest
    for name in ("embeddings.npz", "clusters.json", "clusters.jpg"):
        (h / name).unlink()
    before = len(history(run_copy, ep))
    snakemake(run_copy, "cluster_target")
    seen = history(run_copy, ep)[before:]
    assert seen[0]["plan"] == ["cluster"]
    assert all("Auto-running" not in s["message"] and "Auto-run" not in s["message"] for s in seen)
    assert seen[0]["pct"] == 0.75 and min(s["pct"] for s in seen) == 0.75
    assert seen[-1]["status"] == "done" and seen[-1]["pct"] == 1.0
    # The other episode was up to date: its state was not touched by this run.
    other = history(run_copy, "walking_and_pause")
    assert all(s["run_id"] != seen[0]["run_id"] for s in other)


def test_a_second_process_finds_the_live_run_and_follows_it_to_the_end(tmp_path):
    ep = "hamilton_clip"
    write_config(tmp_path, videos_with(tmp_path, "hamilton_clip.mp4"))
    run = start_snakemake(tmp_path, "cluster_target")
    try:
        registry = wait_for(lambda: (read_json(paths(tmp_path, ep).runtime) or {}).get("active_jobs"),
                            what="the run to register")
        assert registry == {"cluster": f"cluster_{ep}"}
        watch = facepipe("status", ep, "--watch", "--json", "--interval", "0.5",
                         "--data-root", str(tmp_path / "data"), timeout=300)
        frames = [json.loads(line) for line in watch.stdout.splitlines()]
        assert frames[0][0]["state"]["status"] in ("pending", "running")
        assert any(a["name"] == "cluster" for a in frames[0][0]["active"])
        assert frames[-1][0]["state"]["status"] == "done" and frames[-1][0]["state"]["pct"] == 1.0
        assert len(frames) >= 3
    finally:
        assert run.wait(timeout=300) == 0


def test_corrupted_video_ends_in_error_naming_the_file_then_succeeds_once_replaced(tmp_path):
    need_media()  # the replacement is a shared video
    videos = tmp_path / "videos"
    videos.mkdir()
    bad = videos / "Show_S01_E01.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this download was cut short")
    write_config(tmp_path, videos)
    proc = snakemake(tmp_path, "cluster_target", check=False)
    assert proc.returncode != 0
    state = json.loads(paths(tmp_path, "Show_S01_E01").pipeline_state.read_text())
    assert state["status"] == "error"
    assert state["message"].startswith("Auto-run failed: ") and str(bad) in state["message"]
    assert registry_is_clear(tmp_path, "Show_S01_E01")
    bad.unlink()
    shutil.copy(SHARED_VIDEOS / "walking_and_pause.gif", videos / "Show_S01_E01.gif")
    snakemake(tmp_path, "cluster_target")
    state = json.loads(paths(tmp_path, "Show_S01_E01").pipeline_state.read_text())
    assert (state["status"], state["pct"]) == ("done", 1.0)


def _churn(args):
    data_root, worker, cycles = args
    reg = Registry(data_root, Unit.episode("RHOBH_S05_E03_11062025"), heartbeat_s=5)
    for k in range(cycles):
        reg.register_job(f"w{worker}", f"job{worker}_{k}", rule="detect")
        with reg.edit() as data:
            data["counter"] = data.get("counter", 0) + 1
        reg.clear_job(f"w{worker}")


def test_sixteen_processes_on_one_registry_lose_no_update(tmp_path):
    with multiprocessing.get_context("spawn").Pool(16) as pool:
        pool.map(_churn, [(str(tmp_path), w, 50) for w in range(16)])
    data = json.loads((tmp_path / "episodes" / "rhobh_s05_e03" / "runtime.json").read_text())
    assert data["counter"] == 16 * 50
    assert data["jobs"] == {}


def test_damaged_registry_is_reported_and_repaired_by_the_next_writer(tmp_path):
    reg = Registry(tmp_path, Unit.episode("Ep_1"), heartbeat_s=5)
    reg.path.parent.mkdir(parents=True)
    reg.path.write_text('{"active_jobs": {"clu')
    data, problem = reg.read()
    assert problem and "damaged" in problem and str(reg.path) in problem
    reg.register_job("detect", "detect_Ep_1", rule="detect")
    assert json.loads(reg.path.read_text())["jobs"]["detect"]["job_id"] == "detect_Ep_1"


def test_entry_of_a_dead_process_is_stale_shown_by_status_and_cleared_by_the_next_run(tmp_path):
    ep = "walking_and_pause"
    write_config(tmp_path, videos_with(tmp_path, "walking_and_pause.gif"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    reg = Registry(tmp_path / "data", Unit.episode(ep), heartbeat_s=5)
    with reg.edit() as data:
        data["jobs"]["detect"] = {"job_id": f"detect_{ep}", "rule": "detect", "pid": dead.pid,
                                  "host": os.uname().nodename, "pid_start_time": 1,
                                  "started_at": "2026-01-01T00:00:00Z", "heartbeat_at": "2026-01-01T00:00:00Z"}
    status = json.loads(facepipe("status", ep, "--json", "--data-root", str(tmp_path / "data")).stdout)
    assert status[0]["active"][0]["stale"] is True
    assert any("stale job detect" in f for f in status[0]["flags"])
    snakemake(tmp_path, "cluster_target")
    assert registry_is_clear(tmp_path, ep)


def test_second_run_on_the_same_episode_is_refused_naming_the_holder(tmp_path):
    data_root = tmp_path / "shared-data"
    first, second, other = (tmp_path / n for n in ("first", "second", "other"))
    for wd in (first, second, other):
        wd.mkdir()
    videos = videos_with(tmp_path, "hamilton_clip.mp4")
    write_config(first, videos)
    write_config(second, videos)
    write_config(other, videos_with(other, "walking_and_pause.gif"))
    for wd in (first, second, other):  # one data root shared by all three
        cfg = (wd / "test-config.yaml").read_text().replace("data_root: data", f"data_root: {data_root}")
        (wd / "test-config.yaml").write_text(cfg)
    run = start_snakemake(first, "cluster_target")
    try:
        registry = data_root / "episodes" / "hamilton_clip" / "runtime.json"
        holder = wait_for(lambda: (read_json(registry) or {}).get("runs"),
                          what="the first run to register")
        side = start_snakemake(other, "cluster_target")
        t0 = time.monotonic()
        refused = snakemake(second, "cluster_target", check=False)
        elapsed = time.monotonic() - t0
        assert refused.returncode != 0
        text = refused.stdout + refused.stderr
        entry = holder["cluster"]
        assert "already being built by cluster_hamilton_clip" in text
        assert f"pid {entry['pid']}" in text and entry["host"] in text and entry["started_at"] in text
        assert elapsed < 10
        assert side.wait(timeout=300) == 0, "a run on another episode must proceed side by side"
    finally:
        assert run.wait(timeout=300) == 0, "the first run must be unaffected"
    state = json.loads((data_root / "harvest" / "hamilton_clip" / "diagnostics" / "pipeline_state.json").read_text())
    assert state["status"] == "done"


def test_plan_agrees_with_snakemakes_dry_run(run_copy):
    shutil.rmtree(paths(run_copy, "hamilton_clip").stills_dir)
    planned = json.loads(facepipe("plan", "--json", "-d", str(run_copy), "--configfile",
                                  str(run_copy / "test-config.yaml")).stdout)
    assert list(planned) == ["hamilton_clip"]
    assert planned["hamilton_clip"]["steps"] == ["stills", "cluster"]
    assert [j["rule"] for j in planned["hamilton_clip"]["jobs"]] == ["stills", "embed", "cluster", "appearances"]
    assert "Missing output files" in planned["hamilton_clip"]["jobs"][0]["reason"]
    dry = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert dry == {(j["rule"], ep) for ep, e in planned.items() for j in e["jobs"]}


def test_cancel_stops_the_running_job_and_the_next_run_redoes_it(tmp_path, lfw_slideshow):
    videos, _labels = lfw_slideshow
    ep = "lfw10"
    write_config(tmp_path, videos)
    run = start_snakemake(tmp_path, "cluster_target")
    try:
        job = wait_for(lambda: (read_json(paths(tmp_path, ep).runtime) or {}).get("jobs", {}).get("detect_chunk.0"),
                       what="detect to register")
        wait_for(lambda: ((read_json(paths(tmp_path, ep).pipeline_state) or {}).get("done") or 0) > 0,
                 what="detect to report frames")
        out = facepipe("cancel", ep, "--data-root", str(tmp_path / "data"))
        assert f"stopped pid {job['pid']}" in out.stdout
    finally:
        run.wait(timeout=120)
    assert not os.path.exists(f"/proc/{job['pid']}") or "Z" in open(f"/proc/{job['pid']}/stat").read().split()[2]
    state = json.loads(paths(tmp_path, ep).pipeline_state.read_text())
    assert state["status"] == "cancelled"
    assert registry_is_clear(tmp_path, ep)
    h = paths(tmp_path, ep).harvest
    assert not (h / "detections.jsonl").exists() and not list(h.glob(".*tmp*")), "no half-written output survives"
    assert ("detect_chunk", ep) in jobs(snakemake(tmp_path, "cluster_target", "-n"))


def test_cancel_never_signals_a_process_that_is_not_the_registered_job(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        from facepipe.runtime.procinfo import start_time

        reg = Registry(tmp_path, Unit.episode("Ep_2"), heartbeat_s=5)
        born = start_time(bystander.pid)
        for start, expect in ((born + 1, "already ended"), (born, "not the registered")):
            with reg.edit() as data:
                data["jobs"]["detect"] = {"job_id": "detect_Ep_2", "rule": "detect", "pid": bystander.pid,
                                          "host": os.uname().nodename, "pid_start_time": start,
                                          "started_at": "x", "heartbeat_at": "x"}
            out = facepipe("cancel", "Ep_2", "--data-root", str(tmp_path), check=False)
            assert expect in out.stdout + out.stderr
            assert bystander.poll() is None, "a process that is not the registered job was signalled"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_a_watcher_started_before_the_run_waits_for_it_and_follows_it_to_the_end(tmp_path):
    from facepipe.runtime.progress import PipelineState

    data_root = tmp_path / "data"  # nothing there yet: the run has not started
    watcher = subprocess.Popen([str(BIN / "facepipe"), "status", "--watch", "--json", "--interval", "0.2",
                                "--data-root", str(data_root)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        assert watcher.poll() is None, "the watcher exited before any run started"
        state = PipelineState(data_root, Unit.episode("Ep_1"))
        state.update(run_id="r", status="running", current_step="Detect", pct=0.2, eta_s=42.0, message="Detecting")
        time.sleep(1)
        assert watcher.poll() is None, "the watcher exited while the run was going"
        state.update(run_id="r", status="done", pct=1.0, eta_s=0, message="Clustering complete")
        out, _ = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    frames = [json.loads(line) for line in out.splitlines()]
    assert frames[0] == [] and any(f and f[0]["state"]["eta_s"] == 42.0 for f in frames)
    assert frames[-1][0]["state"]["status"] == "done" and watcher.returncode == 0
