"""The four-stage workflow end to end on the shared videos, as a user runs it."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from helpers import SHARED_VIDEOS, jobs, snakemake, write_config

EPISODES = sorted(p.stem for p in SHARED_VIDEOS.iterdir() if p.suffix in {".mp4", ".gif"})
STAGES = {"detect_chunk", "detect", "track", "stills", "embed", "cluster"}


def harvest(workdir, ep):
    return workdir / "data" / "harvest" / ep


@pytest.mark.parametrize("ep", EPISODES)
def test_full_run_writes_every_output(built_run, ep):
    h = harvest(built_run, ep)
    frames = [json.loads(line) for line in (h / "detections.jsonl").read_text().splitlines()]
    assert frames, "no sampled frames"
    info = json.loads((h / "video.json").read_text())
    # Sampled at 4 per second of video.
    assert abs(len(frames) - info["frame_count"] / info["fps"] * 4) <= 1.5
    assert [f["frame"] for f in frames] == sorted(f["frame"] for f in frames)
    faces = [face for f in frames for face in f["faces"]]
    assert faces, "the shared videos show people: faces must be found"
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert x2 > x1 and y2 > y1 and 0 <= face["score"] <= 1 and len(face["landmarks"]) == 5

    tracks = json.loads((h / "tracks.json").read_text())
    assert tracks["episode"] == ep and tracks["fps"] == info["fps"] and tracks["tracks"]
    for tr in tracks["tracks"]:
        assert len(tr["detections"]) >= 2
        assert {"frame", "t", "box", "score"} <= set(tr["detections"][0])

    manifest = json.loads((h / "stills" / "manifest.json").read_text())
    assert {s["track_id"] for s in manifest["stills"]} == {t["track_id"] for t in tracks["tracks"]}
    for still in manifest["stills"]:
        img = cv2.imread(str(h / "stills" / still["file"]))
        assert img is not None and img.shape[0] > 10

    with np.load(h / "embeddings.npz") as npz:
        assert npz["vectors"].shape == (len(manifest["stills"]), 128)
        assert np.all(np.isfinite(npz["vectors"]))
        assert list(npz["track_ids"]) == [s["track_id"] for s in manifest["stills"]]

    clusters = json.loads((h / "clusters.json").read_text())
    assert clusters["episode"] == ep and clusters["embedder"] == "dlib"
    assigned = [t for c in clusters["clusters"] for t in c["track_ids"]]
    assert sorted(assigned + clusters["unassigned_track_ids"]) == sorted(t["track_id"] for t in tracks["tracks"])
    frames_of = {t["track_id"]: {d["frame"] for d in t["detections"]} for t in tracks["tracks"]}
    for c in clusters["clusters"]:
        assert c["screen_time_s"] > 0
        for i, a in enumerate(c["track_ids"]):
            for b in c["track_ids"][i + 1:]:
                assert not frames_of[a] & frames_of[b], f"tracks {a} and {b} share a frame but share cluster {c}"
    sheet = cv2.imread(str(h / "clusters.jpg"))
    assert sheet is not None and sheet.shape[0] > 100


def test_walking_gif_finds_its_three_people(built_run):
    clusters = json.loads((harvest(built_run, "walking_and_pause") / "clusters.json").read_text())
    assert len(clusters["clusters"]) == 3


def test_second_run_runs_nothing(run_copy):
    proc = snakemake(run_copy, "cluster_target")
    assert jobs(proc) == set()
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_dry_run_on_empty_data_root_plans_every_stage(tmp_path):
    write_config(tmp_path, SHARED_VIDEOS)
    proc = snakemake(tmp_path, "cluster_target", "-n")
    assert jobs(proc) == {(stage, ep) for stage in STAGES for ep in EPISODES}
    assert not (tmp_path / "data").exists(), "a dry run must not write outputs"


def test_deleted_stills_rebuild_only_what_depends_on_them(run_copy):
    ep = "hamilton_clip"
    clusters_before = (harvest(run_copy, ep) / "clusters.json").read_text()
    other_mtime = (harvest(run_copy, "walking_and_pause") / "clusters.json").stat().st_mtime_ns
    shutil.rmtree(harvest(run_copy, ep) / "stills")
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {("stills", ep), ("embed", ep), ("cluster", ep)}
    ran = jobs(snakemake(run_copy, "cluster_target"))
    assert ran == planned
    assert (harvest(run_copy, ep) / "stills" / "manifest.json").exists()
    assert json.loads((harvest(run_copy, ep) / "clusters.json").read_text()) == json.loads(clusters_before)
    assert (harvest(run_copy, "walking_and_pause") / "clusters.json").stat().st_mtime_ns == other_mtime


def test_changed_cluster_threshold_reruns_only_cluster(run_copy):
    write_config(run_copy, SHARED_VIDEOS, cluster={"threshold": 0.3})
    ran = jobs(snakemake(run_copy, "cluster_target"))
    assert ran == {("cluster", ep) for ep in EPISODES}
    clusters = json.loads((harvest(run_copy, "hamilton_clip") / "clusters.json").read_text())
    assert clusters["threshold"] == 0.3


def test_changed_embedder_reruns_embed_and_cluster(run_copy):
    write_config(run_copy, SHARED_VIDEOS, embed={"embedder": "facenet"})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in ("embed", "cluster") for ep in EPISODES}


def test_changed_detect_fps_reruns_everything_downstream(run_copy):
    write_config(run_copy, SHARED_VIDEOS, detect={"fps": 2})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in STAGES for ep in EPISODES}


def test_single_output_can_be_asked_for_by_path(tmp_path):
    write_config(tmp_path, SHARED_VIDEOS)
    ran = jobs(snakemake(tmp_path, "data/harvest/walking_and_pause/tracks.json"))
    assert ran == {("detect_chunk", "walking_and_pause"), ("detect", "walking_and_pause"), ("track", "walking_and_pause")}
    assert (harvest(tmp_path, "walking_and_pause") / "tracks.json").exists()
    assert not (harvest(tmp_path, "hamilton_clip")).exists()


def test_lfw10_slideshow_clusters_people_without_being_told_how_many(lfw_slideshow, tmp_path):
    from facepipe.evaluate import score

    videos, labels = lfw_slideshow
    write_config(tmp_path, videos)
    snakemake(tmp_path, "cluster_target")
    h = harvest(tmp_path, "lfw10")
    result = score(json.loads((h / "clusters.json").read_text()), json.loads((h / "tracks.json").read_text()),
                   json.loads(labels.read_text()))
    print("lfw10 quality:", json.dumps(result))
    assert result["items"] == 100
    assert result["bcubed_f"] >= 0.90, result
