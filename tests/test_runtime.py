"""The runtime's rules on their own, so a regression points at its function: pct bands and their
monotonicity, staleness, the registry's merges and refusals, the state file's merges, messages,
configuration defaults, and the layout's names."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from facepipe.base import config, layout
from facepipe.base.errors import FacepipeError
from facepipe.base.project import ROOT
from facepipe.base.unit import KINDS, Unit, registry_unit
from facepipe.runtime import messages, procinfo
from facepipe.runtime.progress import PipelineState
from facepipe.runtime.registry import OTHER_HOST_STALE_HEARTBEATS, Registry, RegistryBusy, is_stale
from facepipe.runtime.steps import (
    BY_NAME,
    EPISODE_RULES,
    RULES,
    SEASON_STEP,
    STEPS,
    STEPS_OF_KIND,
    is_first_rule_of_step,
    is_last_rule_of_step,
    kind_of_rule,
    rule_pct,
)


def stamp(seconds_ago: float) -> str:
    t = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- steps and pct bands -------------------------------------------------------------------------

def test_bands_cover_zero_to_one_in_step_order():
    assert STEPS[0].band[0] == 0.0 and STEPS[-1].band[1] == 1.0
    for a, b in zip(STEPS, STEPS[1:]):
        assert a.band[1] == b.band[0] and a.index + 1 == b.index
    assert RULES == EPISODE_RULES + tuple(rule for rule, _part in SEASON_STEP.rules)
    assert kind_of_rule(SEASON_STEP.rules[0][0]) == "season" and rule_pct(SEASON_STEP.rules[0][0], 0.5) == 0.5
    assert {kind_of_rule(rule) for rule in EPISODE_RULES} == {"episode"}


def test_the_steps_name_the_workflow_s_rules_and_only_those():
    """steps.py is the one list of the rules behind the steps: every job rule of workflow/rules/,
    each once, each run by its scripts/{rule}.py through stage_job under that name."""
    smk = "".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    defined = re.findall(r"^rule (\w+):", smk, re.M)
    assert sorted(RULES) == sorted(defined), f"runtime/steps.py names {RULES}, workflow/rules/ defines {defined}"
    for rule in RULES:
        script = ROOT / "scripts" / f"{rule}.py"
        assert f'stage_job(snakemake, "{rule}"' in script.read_text(), f"{script}: not run as stage_job {rule!r}"
    assert set(STEPS_OF_KIND) == set(KINDS), "every kind of unit has its steps, and only those"


def test_pct_never_goes_down_along_the_pipeline_and_stays_in_each_step():
    seen = []
    for rule in EPISODE_RULES:
        step = BY_NAME[next(s.name for s in STEPS if rule in dict(s.rules))]
        for k in range(11):
            pct = rule_pct(rule, k / 10)
            assert step.band[0] <= pct <= step.band[1], (rule, k, pct)
            seen.append(pct)
    assert seen == sorted(seen)
    assert rule_pct("detect_chunk", 0) == 0.0 and rule_pct("appearances", 1) == 1.0
    assert rule_pct("track", -1) == 0.5 and rule_pct("track", 2) == 0.7  # clamped


def test_first_and_last_rules_of_a_step():
    assert is_first_rule_of_step("detect_chunk") and not is_last_rule_of_step("detect_chunk")
    assert is_last_rule_of_step("detect") and is_first_rule_of_step("embed") and is_last_rule_of_step("appearances")
    assert not is_last_rule_of_step("cluster")


def test_state_pct_is_monotone_within_a_run_and_restarts_with_a_new_run(tmp_path):
    state = PipelineState(tmp_path, Unit.episode("Ep_1"))
    state.update(run_id="a", pct=0.4, status="running")
    assert state.update(run_id="a", pct=0.2)["pct"] == 0.4
    assert state.update(run_id="b", pct=0.1)["pct"] == 0.1
    history = [json.loads(x) for x in state.log_path.read_text().splitlines()]
    assert [h["pct"] for h in history] == [0.4, 0.4, 0.1]


def test_state_update_respects_only_if_and_drops_unset_optional_fields(tmp_path):
    state = PipelineState(tmp_path, Unit.episode("Ep_1"))
    state.update(run_id="a", status="cancelled", log="x.log")
    kept = state.update(status="running", only_if=lambda cur: cur["status"] != "cancelled")
    assert kept["status"] == "cancelled"
    assert "log" not in state.update(log=None, status="pending")
    assert state.read()[0]["status"] == "pending"


def test_a_damaged_state_file_is_reported_then_replaced(tmp_path):
    state = PipelineState(tmp_path, Unit.episode("Ep_1"))
    state.path.parent.mkdir(parents=True)
    state.path.write_text('{"status": "runn')
    data, problem = state.read()
    assert data is None and str(state.path) in problem and "damaged" in problem
    assert state.update(status="pending")["status"] == "pending"


# --- staleness -----------------------------------------------------------------------------------

def test_an_entry_of_this_host_is_stale_exactly_when_its_process_is_gone():
    me = procinfo.self_identity()
    assert not is_stale({**me, "heartbeat_at": stamp(3600)}, 5)  # alive, however old its heartbeat
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert is_stale({"pid": dead.pid, "host": me["host"], "pid_start_time": 1, "heartbeat_at": stamp(0)}, 5)
    assert is_stale({**me, "pid_start_time": me["pid_start_time"] + 1, "heartbeat_at": stamp(0)}, 5)  # pid reused


def test_an_entry_of_another_host_is_stale_only_after_a_long_silence():
    other = {"pid": 123, "host": "login-2", "pid_start_time": 1}
    limit = OTHER_HOST_STALE_HEARTBEATS * 5
    assert limit >= 60
    assert not is_stale({**other, "heartbeat_at": stamp(20)}, 5)  # a lagging network file system
    assert not is_stale({**other, "heartbeat_at": stamp(limit - 5)}, 5)
    assert is_stale({**other, "heartbeat_at": stamp(limit + 5)}, 5)
    assert is_stale({**other}, 5)  # no heartbeat at all
    me = procinfo.self_identity()  # a SLURM job on this very node is judged by heartbeat too
    assert not is_stale({**me, "slurm_job_id": "7", "heartbeat_at": stamp(20)}, 5)


# --- the registry --------------------------------------------------------------------------------

def test_a_second_live_run_is_refused_naming_the_holder(tmp_path):
    reg = Registry(tmp_path, Unit.episode("RHOBH_S05_E03_11062025"), heartbeat_s=5)
    assert reg.path == tmp_path / "episodes" / "rhobh_s05_e03" / "runtime.json"
    holder = subprocess.Popen(["sleep", "30"])
    try:
        with reg.edit() as data:
            data["runs"]["cluster"] = {"job_id": "cluster_X", "pid": holder.pid, "host": procinfo.hostname(),
                                       "pid_start_time": procinfo.start_time(holder.pid), "started_at": stamp(5)}
            data["active_jobs"]["cluster"] = "cluster_X"
        with pytest.raises(RegistryBusy, match=f"already being built by cluster_X \\(pid {holder.pid}"):
            reg.register_run("track", "track_X")
    finally:
        holder.kill()
        holder.wait()
    dropped = reg.register_run("track", "track_X")  # the holder is gone: its entry is dropped
    assert dropped and "cluster_X" in dropped[0]
    data, _ = reg.read()
    assert list(data["runs"]) == ["track"] and data["active_jobs"] == {"track": "track_X"}


def test_jobs_are_keyed_by_job_name_and_a_live_holder_is_refused(tmp_path):
    reg = Registry(tmp_path, Unit.episode("Ep"), heartbeat_s=5)
    reg.register_job(layout.job_name("detect_chunk", 0), "a", rule="detect_chunk", chunk="0")
    reg.register_job(layout.job_name("detect_chunk", 1), "b", rule="detect_chunk", chunk="1")
    with pytest.raises(RegistryBusy, match="detect_chunk.1 of episode Ep is already running"):
        reg.register_job("detect_chunk.1", "c", rule="detect_chunk", chunk="1")
    jobs = reg.read()[0]["jobs"]
    assert set(jobs) == {"detect_chunk.0", "detect_chunk.1"} and jobs["detect_chunk.1"]["rule"] == "detect_chunk"
    reg.clear_job("detect_chunk.0")
    assert set(reg.read()[0]["jobs"]) == {"detect_chunk.1"}


def test_cancel_remembers_the_last_twenty_cancelled_runs(tmp_path):
    reg = Registry(tmp_path, Unit.episode("Ep"), heartbeat_s=5)
    for k in range(25):
        reg.clear_all(cancelled_run=f"run{k}")
    cancelled = reg.read()[0]["cancelled_runs"]
    assert cancelled == [f"run{k}" for k in range(5, 25)]
    assert reg.was_cancelled("run24") and not reg.was_cancelled("run0") and not reg.was_cancelled(None)


def test_an_active_target_without_its_run_is_dropped_on_the_next_write(tmp_path):
    reg = Registry(tmp_path, Unit.episode("Ep"), heartbeat_s=5)
    with reg.edit() as data:
        data["active_jobs"]["cluster"] = "cluster_Ep"  # its run entry is missing (a crash mid-write)
    assert reg.clear_stale() == []
    assert reg.read()[0]["active_jobs"] == {}


def test_a_unit_has_a_kind_and_a_name_and_no_default(tmp_path):
    with pytest.raises(TypeError):
        Unit("Ep_1")  # the kind is never guessed
    with pytest.raises(ValueError, match="unknown unit kind 'show'"):
        Unit("show", "Ep_1")
    with pytest.raises(ValueError, match="a season needs a name"):
        Unit.season("")
    assert Unit.episode("Ep_1") == Unit("episode", "Ep_1") != Unit.season("Ep_1")
    assert Unit.episode("Ep_1").paths(tmp_path).pipeline_state == layout.EpisodePaths(tmp_path, "Ep_1").pipeline_state
    assert Unit.season("S1").paths(tmp_path).runtime == tmp_path / "seasons" / "S1" / "runtime.json"
    assert Unit.from_wildcards("season", {"season": "S1", "ep": "x"}) == Unit.season("S1")
    assert Unit.from_wildcards("episode", {}) is None and str(Unit.season("S1")) == "season S1"


def test_a_registry_read_from_its_file_knows_an_episode_s_from_a_season_s(tmp_path):
    episode, season = Registry(tmp_path, Unit.episode("Ep_1"), 5), Registry(tmp_path, Unit.season("S1"), 5)
    for reg in (episode, season):
        reg.register_job("x", "x_job", rule="track")
    assert layout.registry_files(tmp_path) == [episode.path, season.path]
    read = [Registry.from_file(path, 5) for path in layout.registry_files(tmp_path)]
    assert [r.unit for r in read] == [Unit.episode("ep_1"), Unit.season("S1")]  # an episode by its key
    assert [r.path for r in read] == [episode.path, season.path] and read[1].read()[0]["jobs"]["x"]["job_id"] == "x_job"
    with pytest.raises(RegistryBusy, match=r"x of season S1 is already running.*facepipe cancel S1 --season"):
        read[1].register_job("x", "y", rule="track")
    assert registry_unit(tmp_path / "seasons" / "S1" / "runtime.json") == (tmp_path, Unit.season("S1"))
    with pytest.raises(ValueError, match="not a runtime registry"):
        registry_unit(tmp_path / "harvest" / "Ep_1" / "runtime.json")


# --- messages, configuration, layout --------------------------------------------------------------

def test_plan_messages():
    assert messages.plan_start(["detect", "track", "stills", "cluster"]) == (
        "Cluster (Auto-running prerequisites)", "Auto-running Detect -> Track -> Stills before clustering...")
    assert messages.plan_start(["cluster"]) == ("Cluster", "Starting clustering...")
    assert messages.prerequisites_complete(["detect", "track", "stills", "cluster"]) == (
        "Cluster (Prerequisites complete)", "Detect/Track/Stills complete, starting clustering...")
    assert messages.failed(BY_NAME["detect"], "cluster", "x") == "Auto-run failed: x"
    assert messages.failed(BY_NAME["cluster"], "cluster", "x") == "Cluster failed: x"


def test_every_default_comes_from_the_schema(tmp_path):
    schema = yaml.safe_load(config.SCHEMA_FILE.read_text())
    defaults = config.defaults()
    for section, sub in schema["properties"].items():
        if sub.get("type") == "object":
            for key, spec in sub["properties"].items():
                assert "default" in spec and "description" in spec, f"{section}.{key}"
                assert defaults[section][key] == spec["default"]
        else:
            assert defaults[section] == sub["default"]
    user = tmp_path / "mine.yaml"
    user.write_text("detect: {fps: 2}\n")
    loaded = config.load(user, {"data_root": "/x", "videos_dir": None})
    assert loaded["detect"]["fps"] == 2 and loaded["detect"]["min_score"] == defaults["detect"]["min_score"]
    assert loaded["data_root"] == "/x" and loaded["videos_dir"] == defaults["videos_dir"]
    user.write_text("detect: {fsp: 2}\n")
    with pytest.raises(FacepipeError, match="unknown config key detect.fsp"):
        config.load(user)
    with pytest.raises(FacepipeError, match="config file not found"):
        config.load(tmp_path / "none.yaml")


def test_job_names_and_their_files():
    paths = layout.EpisodePaths(layout.Path("/d"), "RHOBH_S05_E03_11062025")
    assert layout.job_name("detect_chunk", 3) == "detect_chunk.3" and layout.job_name("track") == "track"
    assert str(paths.log("detect_chunk", 3)) == "/d/harvest/RHOBH_S05_E03_11062025/logs/detect_chunk.3.log"
    assert str(paths.benchmark("embed")) == "/d/harvest/RHOBH_S05_E03_11062025/benchmarks/embed.tsv"
    assert layout.job_pattern(layout.LOG, "detect_chunk", chunked=True) == "harvest/{ep}/logs/detect_chunk.{chunk}.log"
    assert str(paths.runtime) == "/d/episodes/rhobh_s05_e03/runtime.json"
