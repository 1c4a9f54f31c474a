"""Bench 1: facepipe's detect stage against a naive baseline, on a 720p test episode.

Baseline: OpenCV reads every frame, keeps every k-th for the same sampled fps, and runs
facenet-pytorch MTCNN at full resolution, one frame at a time; its faces are those MTCNN gives
with at least detect.min_score confidence (the faces facepipe keeps), so recall measures what
facepipe's speed-ups lose, not its confidence cut-off. facepipe: its detect stage with the
default configuration. Reports each one's sampled frames per second, their ratio, and
facepipe's recall of the baseline's faces at least 40 px high (IoU >= 0.5).
Goal: ratio >= 3 at recall >= 0.97.

    python bench/detect_throughput.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np
from facepipe.base.config import defaults

from benchlib import OUT, machine, make_video


def baseline(video, sample_fps: float, min_score: float):
    from facenet_pytorch import MTCNN

    from facepipe.base.video import is_sampled

    model = MTCNN(keep_all=True, device="cpu")
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    faces, index = {}, 0
    t0 = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if is_sampled(index, fps, sample_fps):
            boxes, probs = model.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            faces[index] = [] if boxes is None else [list(map(float, b)) for b, p in zip(boxes, probs)
                                                      if p is not None and p >= min_score]
        index += 1
    return faces, time.perf_counter() - t0


def facepipe_detect(video, cfg: dict, workers: int):
    """facepipe's detect stage in a fresh process, as a detect job runs it (`workers` = its threads)."""
    import subprocess
    import sys

    out = OUT / "bench1-detections.jsonl"
    code = ("import json, sys; from facepipe.stages.detect import detect_frames; "
            "detect_frames(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), workers=int(sys.argv[4]))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(video), str(out), json.dumps(cfg), str(workers)], check=True)
    elapsed = time.perf_counter() - t0
    faces = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        faces[rec["frame"]] = [f["box"] for f in rec["faces"]]
    return faces, elapsed


def recall(reference: dict, found: dict, min_h: float = 40, min_iou: float = 0.5) -> tuple[float, int]:
    from facepipe.stages.track import iou_matrix

    wanted = hit = 0
    for frame, boxes in reference.items():
        big = [b for b in boxes if b[3] - b[1] >= min_h]
        if not big:
            continue
        wanted += len(big)
        mine = found.get(frame, [])
        if mine:
            iou = iou_matrix(np.array(big), np.array(mine))
            hit += int((iou.max(axis=1) >= min_iou).sum())
    return (hit / wanted if wanted else 1.0), wanted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    cfg = defaults()["detect"]
    video = make_video(OUT / f"ep720_{int(args.seconds)}s.mp4", 1280, 720, args.seconds)
    base_faces, base_s = baseline(video, cfg["fps"], cfg["min_score"])
    workers = min(2, os.cpu_count() or 1)  # the detect rule's threads, capped by the machine
    runs = [("default config", cfg), ("detect.cascade: opencv", {**cfg, "cascade": "opencv"})]
    n = len(base_faces)
    print(f"machine: {machine()}")
    print(f"video: {video.name}, 1280x720, {args.seconds:.0f} s, {n} frames sampled at {cfg['fps']}/s")
    print(f"baseline (every frame decoded, full-res MTCNN): {n / base_s:6.2f} sampled frames/s ({base_s:.1f} s)")
    for label, run_cfg in runs:
        mine, mine_s = facepipe_detect(video, run_cfg, workers)
        r, wanted = recall(base_faces, mine)
        print(f"facepipe detect ({label}, {workers} workers): {len(mine) / mine_s:6.2f} sampled frames/s "
              f"({mine_s:.1f} s, process start and model load included)")
        print(f"  speed ratio facepipe/baseline: {base_s / mine_s:.2f}  (goal >= 3)")
        print(f"  recall of baseline faces >= 40 px high at IoU >= 0.5: {r:.3f} of {wanted}  (goal >= 0.97)")

if __name__ == "__main__":
    main()
