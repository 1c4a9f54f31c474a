"""The four-stage workflow end to end on the shared videos, as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepipe.base import layout
from facepipe.base.atomic import encode_image
from facepipe.base.config import defaults
from facepipe.base.facecrops import JPEG_QUALITY, quality
from facepipe.base.images import face_crop
from facepipe.base.video import FrameReader
from helpers import SHARED_VIDEOS, jobs, paths, snakemake, write_config

pytestmark = pytest.mark.media
EPISODES = sorted(p.stem for p in SHARED_VIDEOS.glob("*") if p.suffix in {".mp4", ".gif"})  # none without the media
STAGES = {"detect_chunk", "detect", "track", "stills", "embed", "cluster", "appearances"}


@pytest.mark.parametrize("ep", EPISODES)
def test_full_run_writes_every_output(built_run, ep):
    p = paths(built_run, ep)
    frames = [json.loads(line) for line in (p.detections).read_text().splitlines()]
    assert frames, "no sampled frames"
    info = json.loads((p.video_info).read_text())
    # Sampled at 4 per second of video.
    assert abs(len(frames) - info["frame_count"] / info["fps"] * 4) <= 1.5
    assert [f["frame"] for f in frames] == sorted(f["frame"] for f in frames)
    faces = [face for f in frames for face in f["faces"]]
    assert faces, "the shared videos show people: faces must be found"
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert x2 > x1 and y2 > y1 and 0 <= face["score"] <= 1 and len(face["landmarks"]) == 5

    tracks = json.loads((p.tracks).read_text())
    assert tracks["episode"] == ep and tracks["fps"] == info["fps"] and tracks["tracks"]
    for tr in tracks["tracks"]:
        assert len(tr["detections"]) >= 2
        assert {"frame", "t", "box", "score"} <= set(tr["detections"][0])

    manifest = json.loads((p.stills_dir / "manifest.json").read_text())
    assert {s["track_id"] for s in manifest["stills"]} == {t["track_id"] for t in tracks["tracks"]}
    for still in manifest["stills"]:
        img = cv2.imread(str(p.stills_dir / still["file"]))
        assert img is not None and img.shape[0] > 10

    with np.load(p.embeddings) as npz:
        assert npz["vectors"].shape == (len(manifest["stills"]), 128)
        assert np.all(np.isfinite(npz["vectors"]))
        assert list(npz["track_ids"]) == [s["track_id"] for s in manifest["stills"]]

    clusters = json.loads((p.clusters).read_text())
    assert clusters["episode"] == ep and clusters["embedder"] == "dlib"
    assigned = [t for c in clusters["clusters"] for t in c["track_ids"]]
    assert sorted(assigned + clusters["unassigned_track_ids"]) == sorted(t["track_id"] for t in tracks["tracks"])
    frames_of = {t["track_id"]: {d["frame"] for d in t["detections"]} for t in tracks["tracks"]}
    for c in clusters["clusters"]:
        assert c["screen_time_s"] > 0
        for i, a in enumerate(c["track_ids"]):
            for b in c["track_ids"][i + 1:]:
                assert not frames_of[a] & frames_of[b], f"tracks {a} and {b} share a frame but share cluster {c}"
    sheet = cv2.imread(str(p.contact_sheet))
    assert sheet is not None and sheet.shape[0] > 100


def test_every_job_has_its_log_and_benchmark(built_run):
    for ep in EPISODES:
        p = paths(built_run, ep)
        chunks = len(list(p.detect_chunks_dir.glob("chunk*.jsonl")))
        jobs_run = [("detect_chunk", k) for k in range(chunks)] + [(r, None) for r in STAGES - {"detect_chunk"}]
        for rule, chunk in jobs_run:
            log, bench = p.log(rule, chunk), p.benchmark(rule, chunk)
            assert f"facepipe {layout.job_name(rule, chunk)} of {ep}: done in" in log.read_text(), log
            header, row = bench.read_text().splitlines()[:2]
            assert header.split("\t")[:3] == ["s", "h:m:s", "max_rss"] and float(row.split("\t")[0]) > 0, bench


def test_stills_are_the_best_crops_a_fresh_decode_gives_and_read_no_video(built_run):
    """Stills reads no video: its crops come from the detect job's archives. Each track's stills
    must be its best faces by quality on a fresh decode of the clip, each file the very crop a
    fresh decode cuts, JPEG for JPEG."""
    p = paths(built_run, "hamilton_clip")
    cfg = defaults()["stills"]
    tracks = json.loads(p.tracks.read_text())["tracks"]
    frames = sorted({d["frame"] for t in tracks for d in t["detections"]})
    decoded = {index: frame.copy() for index, frame in FrameReader(SHARED_VIDEOS / "hamilton_clip.mp4",
                                                                   wanted=frames, start=frames[0])}
    built = json.loads((p.stills_dir / "manifest.json").read_text())["stills"]
    assert len(built) > 20
    for track in tracks:
        ranked = sorted(track["detections"], key=lambda d: (-quality(decoded[d["frame"]], d), d["frame"]))
        mine = [s for s in built if s["track_id"] == track["track_id"]]
        assert [s["frame"] for s in mine] == [d["frame"] for d in ranked[:cfg["per_track"]]], track["track_id"]
    for still in built:
        det = {"box": still["box"], "score": still["score"], "landmarks": None}
        crop, box_in_crop, _ = face_crop(decoded[still["frame"]], det, cfg["margin"])
        assert (p.stills_dir / still["file"]).read_bytes() == encode_image(".jpg", crop, quality=JPEG_QUALITY)
        assert still["box_in_crop"] == box_in_crop


def test_walking_gif_finds_its_three_people(built_run):
    clusters = json.loads(paths(built_run, "walking_and_pause").clusters.read_text())
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
    clusters_before = paths(run_copy, ep).clusters.read_text()
    other_mtime = paths(run_copy, "walking_and_pause").clusters.stat().st_mtime_ns
    shutil.rmtree(paths(run_copy, ep).stills_dir)
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {("stills", ep), ("embed", ep), ("cluster", ep), ("appearances", ep)}
    ran = jobs(snakemake(run_copy, "cluster_target"))
    assert ran == planned
    assert (paths(run_copy, ep).stills_dir / "manifest.json").exists()
    assert json.loads(paths(run_copy, ep).clusters.read_text()) == json.loads(clusters_before)
    assert paths(run_copy, "walking_and_pause").clusters.stat().st_mtime_ns == other_mtime


def test_changed_cluster_threshold_reruns_only_cluster(run_copy):
    write_config(run_copy, SHARED_VIDEOS, cluster={"threshold": 0.3})
    ran = jobs(snakemake(run_copy, "cluster_target"))
    assert ran == {(rule, ep) for rule in ("cluster", "appearances") for ep in EPISODES}
    clusters = json.loads(paths(run_copy, "hamilton_clip").clusters.read_text())
    assert clusters["threshold"] == 0.3


def test_changed_embedder_reruns_embed_and_cluster(run_copy):
    write_config(run_copy, SHARED_VIDEOS, embed={"embedder": "facenet"})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in ("embed", "cluster", "appearances") for ep in EPISODES}


def test_changed_stills_settings_rerun_from_stills_but_the_margin_from_detect(run_copy):
    """Detect cuts the faces stills chooses from: their margin is a setting of detect."""
    write_config(run_copy, SHARED_VIDEOS, stills={"per_track": 2})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in ("stills", "embed", "cluster", "appearances") for ep in EPISODES}
    write_config(run_copy, SHARED_VIDEOS, stills={"margin": 0.3})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in STAGES for ep in EPISODES}


def test_changed_detect_fps_reruns_everything_downstream(run_copy):
    write_config(run_copy, SHARED_VIDEOS, detect={"fps": 2})
    planned = jobs(snakemake(run_copy, "cluster_target", "-n"))
    assert planned == {(stage, ep) for stage in STAGES for ep in EPISODES}


def test_single_output_can_be_asked_for_by_path(tmp_path):
    write_config(tmp_path, SHARED_VIDEOS)
    ran = jobs(snakemake(tmp_path, str(paths(Path("."), "walking_and_pause").tracks)))
    assert ran == {(rule, "walking_and_pause") for rule in ("detect_chunk", "detect", "track")}
    assert paths(tmp_path, "walking_and_pause").tracks.exists()
    assert not paths(tmp_path, "hamilton_clip").harvest.exists()
