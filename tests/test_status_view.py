"""`facepipe status` as a person sees it: run as a command in terminals 60, 80, 120 and 200
columns wide, over states written by the package's own writers, for episodes with long ids."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from facepipe.base.unit import Unit
from facepipe.runtime import messages
from facepipe.runtime.progress import PipelineState
from facepipe.runtime.registry import Registry
from facepipe.runtime.steps import BY_NAME
from helpers import BIN

RUNNING, FAILED = "Real_Housewives_S01_E02_11132025", "Real_Housewives_S01_E03_11202025"
EPISODES = ("Real_Housewives_S01_E01_11062025", RUNNING, FAILED, "Real_Housewives_S01_E04_11272025")
SEASON = "Real_Housewives_S01"
REASON = f"/data/videos/{FAILED}.mp4: cannot be decoded at frame 1200; re-download it"
PROGRESS = "detect chunk 2/5: 412/900 frames"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Four episodes (done, running with a live and a stale job, failed, cancelled) and a season."""
    root = tmp_path_factory.mktemp("status") / "data"
    cluster = BY_NAME["cluster"]
    done, running, failed, cancelled = (PipelineState(root, Unit.episode(ep)) for ep in EPISODES)
    done.update(target="cluster_target", current_step=cluster.title, step_index=4, status="done", pct=1.0,
                message=messages.target_complete(cluster), run_id="r")
    running.update(target="cluster_target", current_step="Detect", step_index=1, status="running", pct=0.23,
                   message=PROGRESS, eta_s=754, run_id="r")
    failed.update(target="cluster_target", current_step="Stills", step_index=3, status="error", pct=0.71,
                  message=messages.failed(BY_NAME["stills"], "cluster", REASON), run_id="r")
    cancelled.update(target="cluster_target", current_step="Track", step_index=2, status="cancelled", pct=0.55,
                     message=messages.cancelled_by_user(["track"]), run_id="r")
    PipelineState(root, Unit.season(SEASON)).update(target="season_target", current_step="Season", step_index=1,
                                                     status="pending", pct=0.0, message="waiting", run_id="r")
    registry = Registry(root, Unit.episode(RUNNING), heartbeat_s=5)
    registry.register_job("detect_chunk.1", "job-1", rule="detect_chunk", chunk="1")  # this process: alive
    with registry.edit() as data:  # a job on another host, silent since 2020: stale
        data["jobs"]["detect_chunk.2"] = {"job_id": "job-2", "rule": "detect_chunk", "chunk": "2", "pid": 4242,
                                          "host": "node-7", "slurm_job_id": "991",
                                          "started_at": "2020-01-01T00:00:00.000Z",
                                          "heartbeat_at": "2020-01-01T00:00:00.000Z"}
    return root


def status(data_root, columns: int, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run([str(BIN / "facepipe"), "status", "--data-root", str(data_root), *args],
                          capture_output=True, text=True, timeout=120, check=False, cwd=data_root.parent,
                          env={**env, "COLUMNS": str(columns)})
    assert proc.returncode == 1, proc.stderr  # one episode failed
    assert not re.search(r"\x1b\[", proc.stdout), "no escape codes when not printing to a terminal"
    return proc.stdout


@pytest.mark.parametrize("columns", [60, 80, 120, 200])
def test_status_fits_the_terminal_and_never_breaks_an_id_or_a_step(data_root, columns):
    out = status(data_root, columns)
    lines = out.splitlines()
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, f"wider than {columns} columns:\n" + "\n".join(too_wide)
    for unit in (*EPISODES, f"{SEASON} (season)"):
        assert any(unit in line for line in lines), f"{unit} is not whole on any line:\n{out}"
    for step in ("Cluster 4/4", "Detect 1/4", "Stills 3/4", "Track 2/4", "Season 1/1"):
        assert any(step in line for line in lines), f"{step} is not whole on any line:\n{out}"
    words = " ".join(re.sub(r"[│┃]", " ", out).split())  # what a reader reads, across wrapped lines
    assert REASON in words, "a failed episode's reason is always shown"
    assert "stale job detect_chunk.2: job-2" in words, "a stale job is always flagged"
    assert "stale job detect_chunk.1" not in words, "a live job is not flagged"
    if columns <= 80:  # the least useful columns gave way
        assert "heartbeat" not in out and "active jobs" not in out and PROGRESS not in words
    if columns == 80:  # a table still: the id, the step, the bar and the pct, the status
        assert re.search(rf"│ {RUNNING} │ Detect 1/4 +│ ##-------- +23% │ running +│", out), out
    if columns == 200:  # room for everything: the message in its column, both active jobs
        assert "┃ message" in out and "┃ active jobs" in out and PROGRESS in words
        assert "detect_chunk.1" in words and "detect_chunk.2 (stale)" in words


def test_status_json_is_the_whole_snapshot_at_any_width(data_root):
    def snapshot(columns):
        units = json.loads(status(data_root, columns, "--json"))
        for unit in units:
            unit.pop("heartbeat_age_s")  # the one field that moves with the clock
        return units

    narrow = snapshot(40)
    assert narrow == snapshot(200)
    assert [(u["episode"], u["kind"]) for u in narrow] == [(ep, "episode") for ep in EPISODES] + [(SEASON, "season")]
    by_name = {u["episode"]: u for u in narrow}
    assert by_name[RUNNING]["state"]["message"] == PROGRESS
    assert REASON in by_name[FAILED]["state"]["message"]
    assert {a["name"]: a["stale"] for a in by_name[RUNNING]["active"]} == {"detect_chunk.1": False,
                                                                          "detect_chunk.2": True}
    assert any(f.startswith("stale job detect_chunk.2: job-2") for f in by_name[RUNNING]["flags"])
