"""The plan in the pages' words (runtime.planning.step_reasons): per step, what is missing or
changed, paths relative to the episode, from reasons written by the installed Snakemake itself
(its Reason class), so a change of its wording fails here rather than on a page."""

from __future__ import annotations

import pytest

from facepipe.runtime.planning import plan_by_episode, shown_path, step_reasons

jobs_module = pytest.importorskip("snakemake.jobs")
persistence = pytest.importorskip("snakemake.persistence")

ROOT = "/srv/shows/facepipe-data"  # an absolute data root: Snakemake then writes every path from /
EP = "S01E02"


def reason(missing=(), incomplete=(), updated=(), by_job=(), params=False, code=False, input_set=False) -> str:
    r = jobs_module.Reason()
    r.missing_output.update(missing)
    r.incomplete_output.update(incomplete)
    r.updated_input.update(updated)
    r.updated_input_run.update(by_job)
    if params:  # a config section's repr, "; " and all
        r.params_changed = persistence.ParamsChange(only_old={"{'fps': 2; 'x': 1}"}, only_new={"{'fps': 4}"})
    r.code_changed, r.input_changed = code, input_set
    return str(r)


def h(name: str) -> str:
    return f"{ROOT}/harvest/{EP}/{name}"


def texts(jobs: list[tuple[str, str]]) -> list[str]:
    return [r["text"] for r in step_reasons(EP, [{"rule": rule, "reason": why} for rule, why in jobs])]


def test_missing_outputs_are_counted_per_step_relative_to_the_episode():
    chunks = [h(f"detect_chunks/chunk{k}.json") for k in (0, 2, 10, 1)]
    said = texts([
        ("detect_chunk", reason(missing=chunks[:1])), ("detect_chunk", reason(missing=chunks[1:])),
        ("detect", reason(missing=[h("detections.jsonl")], by_job=chunks)),
        ("track", reason(missing=[h("tracks.json")], by_job=[h("detections.jsonl"), h("video.json")])),
        ("stills", reason(missing=[h("stills")], by_job=[h("tracks.json")])),
    ])
    assert said[0] == ("Detect: 5 outputs missing (detect_chunks/chunk0.json, detect_chunks/chunk1.json, "
                       "detect_chunks/chunk2.json, detect_chunks/chunk10.json and 1 more)")
    assert said[1:] == ["Track: 1 output missing (tracks.json)", "Stills: 1 output missing (stills/)"]
    assert not any(ROOT in t or "Missing output files" in t for t in said)


def test_a_changed_input_and_the_settings_and_code():
    corrections = f"{ROOT}/corrections/episodes/{EP}.jsonl"
    assert texts([("cluster", reason(updated=[corrections], params=True))]) == [
        f"Cluster: corrections/episodes/{EP}.jsonl changed"]  # the corrections' digest is no other setting
    assert texts([("detect_chunk", reason(updated=[f"/media/tv/{EP}.mkv"], params=True))]) == [
        f"Detect: {EP}.mkv changed; its settings changed"]
    assert texts([("embed", reason(code=True)), ("appearances", reason(input_set=True))]) == [
        "Cluster: its set of inputs changed; its code changed"]
    assert texts([("track", reason(incomplete=[h("tracks.json")]))]) == [
        "Track: 1 output left incomplete by a run that stopped (tracks.json)"]


def test_a_step_that_only_follows_an_earlier_one_says_which():
    assert texts([("detect", reason(updated=[h("detect_chunks/chunk0.json")])),
                  ("track", reason(by_job=[h("detections.jsonl"), h("video.json")]))]) == [
        "Detect: detect_chunks/chunk0.json changed",
        "Track: follows Detect, built again first (detections.jsonl, video.json)"]


def test_a_step_after_several_names_them_as_a_person_would():
    assert texts([("cluster", reason(by_job=[h("stills"), h("tracks.json"), h("video.json")]))]) == [
        "Cluster: follows Detect, Track and Stills, built again first (stills/, tracks.json, video.json)"]


def test_paths_outside_the_episode_and_unknown_words():
    assert shown_path(f"data/harvest/{EP}/logs/x.log", EP) == "logs/x.log"
    assert shown_path(f"harvest/{EP}/stills", EP) == "stills/"
    assert shown_path(f"/elsewhere/harvest/{EP}x/a.json", EP) == "a.json"  # another episode's: its name only
    assert texts([("cluster", "Some new reason a later Snakemake gives")]) == [
        "Cluster: Some new reason a later Snakemake gives"]


def test_the_plan_of_each_episode_carries_its_reasons():
    plan = plan_by_episode([{"rule": "track", "wildcards": {"ep": EP}, "reason": reason(missing=[h("tracks.json")])}])
    assert plan[EP]["reasons"] == [{"step": "track", "text": "Track: 1 output missing (tracks.json)"}]
    assert plan[EP]["jobs"][0]["reason"].startswith("Missing output files: /")  # Snakemake's own words, kept
