"""Embed: one vector per still, with its track id, in embeddings.npz."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.workers import ordered_map
from ..stills import read_manifest
from .embedders import EMBEDDING_DIMS, dlib_engine, make_embedder

BATCH = 32  # stills a worker aligns, then embeds together


def uses_torch(cfg: dict) -> bool:
    """Whether the embedder runs on torch in the job's own process, with the job's threads
    (facenet). dlib and dlib-native run in worker processes of one thread each, which on a CPU get
    through more stills than one process of several threads (torch's thread pools do not survive
    a fork, so the job itself never starts torch)."""
    return cfg["embedder"] == "facenet"


def _worker_embedder(cfg: dict):
    """A worker's embedder, on one thread. dlib on ONNX Runtime (embed.engine) never imports torch:
    a worker starts in a fraction of a second instead of the seconds torch's import takes."""
    if cfg["embedder"] == "dlib" and dlib_engine(cfg["engine"], cfg["device"]) == "torch":
        import torch

        torch.set_num_threads(1)
    return make_embedder(cfg)


def _read(item) -> np.ndarray:
    path, _still, stills_dir = item
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FacepipeError(f"{path}: still image unreadable; delete {stills_dir} so stills run again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _embed_batch(embedder, batch: list) -> np.ndarray:
    """Vectors of a batch of stills: aligned one by one and embedded together where the embedder
    takes chips (dlib), one by one otherwise."""
    if hasattr(embedder, "embed_chips"):
        return embedder.embed_chips(np.stack([embedder.chip(_read(item), item[1]["box_in_crop"]) for item in batch]))
    return np.stack([embedder.embed(_read(item), item[1]["box_in_crop"], item[1].get("landmarks_in_crop"))
                     for item in batch])


def embed_stills(
    stills_dir: str | Path,
    out_npz: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
    workers: int = 1,
) -> int:
    """Embed every still of the manifest, BATCH at a time, spread over `workers` processes (one, in
    this process with its threads, for facenet)."""
    manifest = read_manifest(stills_dir)
    stills = manifest["stills"]
    if progress:
        progress(0, len(stills), f"Loading {cfg['embedder']} embedder")
    vectors = np.zeros((len(stills), EMBEDDING_DIMS[cfg["embedder"]]), dtype=np.float32)
    items = [(Path(stills_dir) / s["file"], s, stills_dir) for s in stills]
    workers = 1 if uses_torch(cfg) else max(1, workers)
    size = max(1, min(BATCH, math.ceil(len(items) / workers)))  # a few stills still keep every worker busy
    batches = [items[k:k + size] for k in range(0, len(items), size)]
    done = 0
    for found in ordered_map(_worker_embedder, (cfg,), _embed_batch, batches, workers):
        vectors[done:done + len(found)] = found
        done += len(found)
        if progress:
            progress(done, len(stills), f"Embedding stills: {done}/{len(stills)}")
    with atomic.atomic_path(out_npz, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                vectors=vectors,
                track_ids=np.array([s["track_id"] for s in stills], dtype=np.int64),
                files=np.array([s["file"] for s in stills], dtype=str),
                quality=np.array([s["quality"] for s in stills], dtype=np.float32),
                embedder=np.array(cfg["embedder"]),
            )
    return len(stills)
