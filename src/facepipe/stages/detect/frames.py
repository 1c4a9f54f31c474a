"""Detect: faces on frames sampled at detect.fps, one JSON line per sampled frame.

Each sampled frame is decoded, scored for a shot cut against the previous sampled frame and handed
whole to the detector in a worker process (which shrinks it as detector.source_scale says); the
lines are written in frame order, atomically. With `crops_out`, the worker also cuts and scores
every face found, as stills wants them, into that chunk's crop archive (base.facecrops): stills
then needs no second decode of the video.

With detect.keyframe_every K > 1 (backend facenet on the CPU) the full detector runs only on
keyframes: a shot start (cut score above detect.keyframe_cut) and the first sampled frame of each
run of K sample slots (slot = floor(t * detect.fps), so the schedule depends on a frame's time
alone and a chunk keeps it). On the frames between, each face of the frame before is looked for
near its box (FacenetDetector.follow). A keyframe and the frames up to the next are one work item,
detected in order by one worker. A chunk starts reading K - 1 sampled frames early, so it begins
at the keyframe a single pass would and writes the same lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.facecrops import crop_archive, cut_faces
from ...base.video import FrameReader, expected_samples, previous_sample, probe, sample_slot
from ...base.workers import ordered_map
from .detector import FaceDetector, make_detector
from .shots import colour_signature, cut_score

Progress = Callable[..., None]


def _worker_context(cfg: dict, make: Callable[..., FaceDetector], width: int, height: int,
                    margin: float | None) -> tuple[FaceDetector, float | None]:
    """A worker's detector, and the crop margin (None: no crops are cut)."""
    if make is make_detector:  # torch: one thread per worker process (base.workers)
        import torch

        torch.set_num_threads(1)
    return make(cfg, width, height), margin


def _cuts(rgb, faces: list[dict], margin: float | None) -> list:
    return cut_faces(rgb, faces, margin) if margin is not None and faces else []


def _detect_one(context, item):
    detector, margin = context
    index, t, cut, rgb = item
    faces = detector.detect(rgb)
    return index, t, cut, faces, _cuts(rgb, faces, margin)


def _detect_run(context, run: list) -> list:
    """A keyframe and the frames after it up to the next: the full detector on the first, each
    later frame searched near the faces of the one before."""
    detector, margin = context
    out, live = [], None
    for index, t, cut, rgb in run:
        faces, live = detector.detect_live(rgb) if live is None else detector.follow(rgb, live)
        out.append((index, t, cut, faces, _cuts(rgb, faces, margin)))
    return out


def keyframe_runs(frames: Iterable[tuple], sample_fps: float, every: int, cut_above: float) -> Iterator[list]:
    """(index, t, cut, rgb) items grouped into runs, each starting at a keyframe: a cut score
    above `cut_above`, or the first frame in a new run of `every` sample slots (see the module)."""
    run: list = []
    block = None
    for item in frames:
        here = sample_slot(item[1], sample_fps) // every
        if run and (here != block or item[2] > cut_above):
            yield run
            run = []
        run.append(item)
        block = here
    if run:
        yield run


def keyframe_every(cfg: dict) -> int:
    """detect.keyframe_every where faces can be followed between keyframes (backend facenet on the
    CPU), else 1: the full detector on every sampled frame."""
    if cfg["backend"] != "facenet" or str(cfg["device"]) != "cpu":
        return 1
    return int(cfg["keyframe_every"])


def _setup_args(cfg: dict, make: Callable[..., FaceDetector] | None, info, margin: float | None) -> tuple:
    return cfg, make or make_detector, info.width, info.height, margin


def detect_frames(
    video: str | Path,
    out_jsonl: str | Path,
    cfg: dict,
    progress: Progress | None = None,
    start: int = 0,
    stop: int | None = None,
    workers: int = 1,
    make: Callable[..., FaceDetector] | None = None,
    crops_out: str | Path | None = None,
    crop_margin: float = 0.0,
) -> dict:
    """Run the detector on the sampled frames in [start, stop) and write JSON lines atomically.

    `workers` > 1 spreads detection over that many processes. `make(cfg, width, height)` builds
    the detector (default: make_detector; a module-level function). `crops_out`: the crop archive
    of the faces found, cut with `crop_margin` (stills.margin). Returns the video facts the later
    stages need (fps, decoded frame count, size).
    """
    if make is None and cfg["backend"] == "mtcnn":  # TensorFlow gets a process of its own
        return _detect_in_worker(video, out_jsonl, cfg, start, stop, crops_out, crop_margin)
    info = probe(video)
    total = expected_samples(info.frame_count, info.fps, cfg["fps"], start, stop)
    if progress:
        progress(0, total, "Loading face detector")
    every = keyframe_every(cfg) if make is None else 1
    # A chunk also reads the sampled frame before it, for the same first cut score as one pass;
    # with keyframes, the K - 1 before it, to begin at the keyframe a single pass would.
    first = start
    for _ in range(max(1, every - 1) if start > 0 else 0):
        earlier = previous_sample(video, first, cfg["fps"])
        if earlier is None:
            break
        first = earlier
    reader = FrameReader(video, sample_fps=cfg["fps"], start=first, stop=stop)

    def shrunk_frames(lead_in: bool):
        previous_sig = None
        for index, frame in reader:
            sig = colour_signature(frame)
            cut = cut_score(previous_sig, sig)
            previous_sig = sig
            if lead_in or index >= start:
                yield index, reader.t, cut, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # the detector shrinks it

    setup = _setup_args(cfg, make, info, None if crops_out is None else crop_margin)
    if every > 1:  # runs from a keyframe to the next, each in one worker; lead-in runs are dropped
        runs = (run for run in keyframe_runs(shrunk_frames(True), cfg["fps"], every, cfg["keyframe_cut"])
                if run[-1][0] >= start)
        results = (item for run in ordered_map(_worker_context, setup, _detect_run, runs, workers)
                   for item in run if item[0] >= start)
    else:
        results = ordered_map(_worker_context, setup, _detect_one, shrunk_frames(False),
                              workers if make is None else 1)
    done = 0
    with (atomic.atomic_path(out_jsonl) as tmp, open(tmp, "w", encoding="utf-8") as out,
          crop_archive(crops_out) if crops_out is not None else _no_archive() as keep):
        for index, t, cut, faces, cuts in results:
            record = {"frame": index, "t": round(t, 4), "faces": faces, "cut_score": round(cut, 4)}
            out.write(json.dumps(record) + "\n")
            keep(index, faces, cuts)
            done += 1
            if progress:
                progress(done, max(total, done), f"Detecting faces: frame {index}")
    return {**info.to_dict(), "frame_count": max(reader.decoded, start), "sampled_frames": done,
            "sample_fps": cfg["fps"], "start": start, "stop": stop}


@contextmanager
def _no_archive():
    yield lambda *_: None


def _detect_in_worker(video, out_jsonl, cfg, start, stop, crops_out, crop_margin) -> dict:
    """Run the TensorFlow backend in a separate Python process and return its video facts."""
    request = {"video": str(video), "out": str(out_jsonl), "cfg": cfg, "start": start, "stop": stop,
               "crops_out": None if crops_out is None else str(crops_out), "crop_margin": crop_margin}
    proc = subprocess.run(
        [sys.executable, "-m", "facepipe.stages.detect.mtcnn_worker"],
        input=json.dumps(request), capture_output=True, text=True,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise FacepipeError(lines[-1] if lines else f"{video}: mtcnn detector process failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_video_info(path: str | Path, facts: dict) -> None:
    atomic.write_json(path, facts)


def read_detections(path: str | Path) -> list[dict]:
    path = Path(path)
    frames = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                frames.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FacepipeError(
                    f"{path}:{n}: not valid JSON ({exc.msg}); delete the file so detect runs again"
                ) from exc
    return frames
