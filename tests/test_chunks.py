"""Detection split into chunks gives the same detections as one pass, and reports as one stage."""

from __future__ import annotations

import json

from helpers import SHARED_VIDEOS, jobs, paths, snakemake, write_config


def test_chunked_detection_equals_a_single_pass(built_run, tmp_path):
    write_config(tmp_path, SHARED_VIDEOS, detect={"chunk_s": 2})
    ran = jobs(snakemake(tmp_path, "detect_target"))
    # hamilton_clip is 9.2 s: 5 chunks of 2 s are 5 jobs (the gif is 3.3 s: 2).
    assert ("detect_chunk", "hamilton_clip") in ran
    hamilton_chunks = sorted(paths(tmp_path, "hamilton_clip").detect_chunks_dir.glob("chunk*.jsonl"))
    assert len(hamilton_chunks) == 5
    for ep in ("hamilton_clip", "walking_and_pause"):
        single = paths(built_run, ep).detections.read_text()
        chunked = paths(tmp_path, ep).detections.read_text()
        assert chunked == single, f"{ep}: chunked detections differ from a single pass"
        info_single = json.loads(paths(built_run, ep).video_info.read_text())
        info_chunked = json.loads(paths(tmp_path, ep).video_info.read_text())
        assert info_chunked == info_single
    seen = [json.loads(line) for line in
            paths(tmp_path, "hamilton_clip").progress_log.read_text().splitlines()]
    detect = [s for s in seen if s["current_step"] == "Detect" and s["status"] == "running" and s.get("chunks")]
    assert detect, "chunk jobs report progress"
    assert all(0.0 <= s["pct"] <= 0.5 for s in detect)
    last = max(detect, key=lambda s: s["done"])
    assert last["total"] == len(paths(tmp_path, "hamilton_clip").detections.read_text().splitlines())
    assert last["done"] == last["total"] and set(last["chunks"]) == {"0", "1", "2", "3", "4"}
    assert seen[-1]["status"] == "done" and seen[-1]["pct"] == 0.5
