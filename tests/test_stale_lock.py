"""Snakemake's lock after a killed run: released only by the head of a real run, and only when
facepipe's registry shows the run that took it is dead (docs/architecture.md, "Parse time")."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

from facepipe.base.unit import Unit
from facepipe.runtime import procinfo
from facepipe.runtime.registry import Registry
from helpers import copy_workdir, facepipe, paths, snakemake

EP = "walking_and_pause"


def stamp(seconds_ago: float) -> str:
    t = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def locked_run(built_run, tmp_path, **entry) -> tuple:
    """A copy of the built run whose folder is locked by a run registered as `entry`."""
    run = copy_workdir(built_run, tmp_path / "run")
    locks = run / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "0.output.lock"
    lock.write_text(str(paths(run, EP).tracks.relative_to(run)) + "\n")
    with Registry(run / "data", Unit.episode(EP), heartbeat_s=5).edit() as data:
        data["runs"]["cluster"] = {"job_id": f"cluster_{EP}", "workdir": str(run), "started_at": stamp(600),
                                   **entry}
        data["active_jobs"]["cluster"] = f"cluster_{EP}"
    return run, lock


def test_a_job_parsing_the_workflow_never_releases_the_lock(built_run, tmp_path):
    # The head runs on a login node; its heartbeat reads 20 s old here, as on a lagging network
    # file system. A job (as SLURM starts one: snakemake --mode remote) parses the workflow.
    run, lock = locked_run(built_run, tmp_path, pid=4242, host="login-node-2", pid_start_time=1,
                           heartbeat_at=stamp(20))
    proc = snakemake(run, "--mode", "remote", "--target-jobs", f"track:ep={EP}", "--force", "--no-hooks", "--nolock",
                     "--ignore-incomplete")
    assert "removed Snakemake's lock" not in proc.stderr
    assert lock.exists()


def test_a_head_elsewhere_silent_for_20_s_is_alive_so_a_new_run_is_refused(built_run, tmp_path):
    run, lock = locked_run(built_run, tmp_path, pid=4242, host="login-node-2", pid_start_time=1,
                           heartbeat_at=stamp(20))
    proc = snakemake(run, "cluster_target", check=False)
    assert proc.returncode != 0 and "Directory cannot be locked" in proc.stdout + proc.stderr
    assert lock.exists()


def test_a_head_elsewhere_silent_for_minutes_is_dead_and_the_next_run_releases_its_lock(built_run, tmp_path):
    run, lock = locked_run(built_run, tmp_path, pid=4242, host="login-node-2", pid_start_time=1,
                           heartbeat_at=stamp(600))
    proc = snakemake(run, "cluster_target")
    assert "removed Snakemake's lock" in proc.stderr and "Nothing to be done" in proc.stdout + proc.stderr
    assert not lock.exists()


def test_a_dead_head_here_its_lock_is_released_by_a_real_run_only(built_run, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    run, lock = locked_run(built_run, tmp_path, pid=dead.pid, host=procinfo.hostname(), pid_start_time=1,
                           heartbeat_at=stamp(1))
    snakemake(run, "cluster_target", "-n")  # a dry run only warns
    facepipe("plan", "--json", "-d", str(run), "--config", str(run / "test-config.yaml"))
    assert lock.exists(), "a dry run or facepipe plan released the lock"
    proc = snakemake(run, "cluster_target")
    assert f"(pid {dead.pid} on {procinfo.hostname()})" in proc.stderr
    assert not lock.exists()
