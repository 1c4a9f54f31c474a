"""Bench 1: facepipe's detect stage against a naive baseline, on two 720p test episodes.

Episodes: the shared clips upscaled to 1280x720 and looped ("bench"), and a crowded one: a 2 x 2
mosaic of them at their own size, so a frame holds several people and many faces 40-60 px high
("crowded"). Baseline: OpenCV reads every frame, keeps every k-th for the same sampled fps, and
runs facenet-pytorch MTCNN at full resolution, one frame at a time; its faces are those MTCNN
gives with at least detect.min_score confidence (the faces facepipe keeps), so recall measures
what facepipe's speed-ups lose, not its confidence cut-off. facepipe: its detect stage (the
defaults, the full detector on every sampled frame: detect.keyframe_every 1, detect.cascade:
facenet, detect.backend: blazeface; with --keyframes, other detect.keyframe_every values). Reports each one's
sampled frames per second, the ratio to the baseline, and recall of the baseline's faces at least
40 px high (IoU >= 0.5) and by face height (20-40, 40-60, 60-100, 100+ px).
Goal: ratio >= 7 at recall >= 0.97 (faces >= 40 px) on both episodes (issue #20; it was 3.5).

    python bench/detect_throughput.py [--seconds 120] [--episodes bench crowded]
        [--runs full default facenet blazeface] [--keyframes K ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np

from benchlib import OUT, machine, make_video
from facepipe.base.config import defaults
from facepipe.tools.testmedia import make_crowded_video


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
    faces, items = {}, []
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        faces[rec["frame"]] = [f["box"] for f in rec["faces"]]
        items.append((rec["frame"], rec["t"], rec["cut_score"], None))
    return faces, elapsed, items


def keyframes(items: list, cfg: dict) -> int:
    """How many of the sampled frames got the full detector (detect.keyframe_every, keyframe_cut)."""
    from facepipe.stages.detect.frames import keyframe_every, keyframe_runs

    return sum(1 for _ in keyframe_runs(items, cfg["fps"], keyframe_every(cfg), cfg["keyframe_cut"]))


BANDS = ((20, 40), (40, 60), (60, 100), (100, 10_000))


def recall(reference: dict, found: dict, min_h: float = 40, min_iou: float = 0.5,
           max_h: float = float("inf")) -> tuple[float, int]:
    from facepipe.stages.track import iou_matrix

    wanted = hit = 0
    for frame, boxes in reference.items():
        big = [b for b in boxes if min_h <= b[3] - b[1] < max_h]
        if not big:
            continue
        wanted += len(big)
        mine = found.get(frame, [])
        if mine:
            iou = iou_matrix(np.array(big), np.array(mine))
            hit += int((iou.max(axis=1) >= min_iou).sum())
    return (hit / wanted if wanted else 1.0), wanted


RUNS = {
    "full": ("detect.keyframe_every: 1 (full detector on every sampled frame)", {"keyframe_every": 1}),
    "default": ("defaults (detect.keyframe_every: {keyframe_every}, cascade: auto)", {}),
    "facenet": ("detect.cascade: facenet", {"cascade": "facenet"}),
    "blazeface": ("detect.backend: blazeface", {"backend": "blazeface", "min_score": 0.5}),
}


def episode_video(name: str, seconds: float):
    if name == "crowded":
        return make_crowded_video(OUT / f"crowd720_{int(seconds)}s.mp4", seconds)
    return make_video(OUT / f"ep720_{int(seconds)}s.mp4", 1280, 720, seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--episodes", nargs="+", default=["bench", "crowded"], choices=["bench", "crowded"])
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--keyframes", nargs="*", type=int, default=[], metavar="K",
                    help="also run detect.keyframe_every K for each K given, e.g. --keyframes 2 6 8")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a detect setting for every run, e.g. min_face_px=36")
    args = ap.parse_args()
    cfg = defaults()["detect"]
    for item in args.set:
        key, value = item.split("=", 1)
        cfg[key] = type(cfg[key])(value) if cfg.get(key) is not None else value
    workers = min(2, os.cpu_count() or 1)  # the detect rule's threads, capped by the machine
    print(f"machine: {machine()}")
    for name in args.episodes:
        video = episode_video(name, args.seconds)
        base_faces, base_s = baseline(video, cfg["fps"], cfg["min_score"])
        n = len(base_faces)
        print(f"\n{name}: {video.name}, 1280x720, {args.seconds:.0f} s, {n} frames sampled at {cfg['fps']}/s; "
              f"settings {args.set or 'defaults'}")
        print(f"baseline (every frame decoded, full-res MTCNN): {n / base_s:6.2f} sampled frames/s ({base_s:.1f} s)")
        bands = ", ".join(f"{lo}-{hi if hi < 10_000 else ''}" for lo, hi in BANDS)
        print(f"| run | frames/s | ratio | recall >= 40 px | recall by height ({bands} px) | full detector on |")
        print("| --- | --- | --- | --- | --- | --- |")
        runs = [RUNS[key] for key in args.runs] + [(f"detect.keyframe_every: {k}", {"keyframe_every": k})
                                                  for k in args.keyframes]
        for label, extra in runs:
            label = label.format(**cfg)
            run_cfg = {**cfg, **extra}
            mine, mine_s, items = facepipe_detect(video, run_cfg, workers)
            r, wanted = recall(base_faces, mine)
            by_band = [recall(base_faces, mine, lo, 0.5, hi) for lo, hi in BANDS]
            print(f"| {label} | {len(mine) / mine_s:.2f} | {base_s / mine_s:.2f} | {r:.3f} of {wanted} | "
                  + ", ".join(f"{x:.3f} of {w}" for x, w in by_band) + f" | {keyframes(items, run_cfg)} of {n} |")


if __name__ == "__main__":
    main()
