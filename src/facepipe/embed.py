"""Embed: one vector per still, with its track id, in embeddings.npz."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import atomic
from .embedders import make_embedder
from .errors import FacepipeError
from .stills import read_manifest


def embed_stills(
    stills_dir: str | Path,
    out_npz: str | Path,
    cfg: dict,
    progress: Callable[..., None] | None = None,
) -> int:
    manifest = read_manifest(stills_dir)
    stills = manifest["stills"]
    if progress:
        progress(0, len(stills), f"Loading {cfg['embedder']} embedder")
    embedder = make_embedder(cfg)
    vectors = np.zeros((len(stills), embedder.dim), dtype=np.float32)
    for i, still in enumerate(stills):
        path = Path(stills_dir) / still["file"]
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise FacepipeError(f"{path}: still image unreadable; delete {stills_dir} so stills run again")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        vectors[i] = embedder.embed(rgb, still["box_in_crop"], still.get("landmarks_in_crop"))
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
                embedder=np.array(embedder.name),
            )
    return len(stills)
