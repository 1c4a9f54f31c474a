"""Embed: one vector per still, with its track id, in embeddings.npz."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.workers import ordered_map
from ..stills import read_manifest
from .embedders import EMBEDDING_DIMS, make_embedder


def uses_torch(cfg: dict) -> bool:
    """Whether the embedder runs on torch: it then gets the job's threads in one process, since
    torch's thread pools do not survive the fork of worker processes."""
    return cfg["embedder"] != "dlib"


def _embed_file(embedder, item) -> np.ndarray:
    path, still, stills_dir = item
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FacepipeError(f"{path}: still image unreadable; delete {stills_dir} so stills run again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return embedder.embed(rgb, still["box_in_crop"], still.get("landmarks_in_crop"))


def embed_stills(
    stills_dir: str | Path,
    out_npz: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
    workers: int = 1,
) -> int:
    """Embed every still of the manifest; dlib spreads the work over `workers` processes."""
    manifest = read_manifest(stills_dir)
    stills = manifest["stills"]
    if progress:
        progress(0, len(stills), f"Loading {cfg['embedder']} embedder")
    vectors = np.zeros((len(stills), EMBEDDING_DIMS[cfg["embedder"]]), dtype=np.float32)
    items = ((Path(stills_dir) / s["file"], s, stills_dir) for s in stills)
    workers = 1 if uses_torch(cfg) else workers
    for i, vector in enumerate(ordered_map(make_embedder, (cfg,), _embed_file, items, workers)):
        vectors[i] = vector
        if progress:
            progress(i + 1, len(stills), f"Embedding stills: {i + 1}/{len(stills)}")
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
