"""Cluster: group face tracks into identities, the number of people unknown.

Each track is one point: the mean of its stills' unit-length embeddings. Tracks are merged by
average-linkage agglomeration while the closest pair of clusters is nearer than a cosine-distance
threshold. Two tracks that share a frame are different people: their distance is infinite, and
average linkage carries that to every cluster holding either, so they are never merged.
Tracks too short or too poor to trust are left out, in `unassigned_track_ids`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import atomic

# Cosine-distance thresholds per embedder (see README "Quality" for how they were chosen).
DEFAULT_THRESHOLDS = {"dlib": 0.10, "facenet": 0.5}


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def track_vectors(vectors: np.ndarray, still_track_ids: np.ndarray, track_ids: list[int]) -> np.ndarray:
    vecs = unit(vectors.astype(np.float64))
    return unit(np.stack([vecs[still_track_ids == t].mean(axis=0) for t in track_ids]))


def cannot_link(tracks: list[dict]) -> np.ndarray:
    """Boolean matrix: True where two tracks have a frame in common."""
    frames = [{d["frame"] for d in tr["detections"]} for tr in tracks]
    n = len(tracks)
    out = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            if frames[i] & frames[j]:
                out[i, j] = out[j, i] = True
    return out


def agglomerate(points: np.ndarray, forbidden: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage clustering on cosine distance with cannot-link pairs; returns index groups."""
    n = len(points)
    if n == 0:
        return []
    dist = 1.0 - points @ points.T
    dist[forbidden] = np.inf
    np.fill_diagonal(dist, np.inf)
    sizes = np.ones(n)
    members = {i: [i] for i in range(n)}
    alive = np.ones(n, dtype=bool)
    while len(members) > 1:
        flat = int(np.argmin(dist))
        i, j = divmod(flat, n)
        if not dist[i, j] < threshold:
            break
        merged = (sizes[i] * dist[i] + sizes[j] * dist[j]) / (sizes[i] + sizes[j])
        merged[~alive] = np.inf
        dist[i, :] = merged
        dist[:, i] = merged
        dist[i, i] = np.inf
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        sizes[i] += sizes[j]
        alive[j] = False
        members[i].extend(members.pop(j))
    return [sorted(m) for m in members.values()]


def track_screen_time(track: dict, sample_fps: float | None) -> float:
    dets = track["detections"]
    step = 1.0 / sample_fps if sample_fps else 0.0
    return float(dets[-1]["t"] - dets[0]["t"] + step)


def cluster_tracks(tracks: dict, embeddings: dict, cfg: dict) -> dict:
    embedder = str(embeddings["embedder"])
    threshold = cfg.get("threshold") or DEFAULT_THRESHOLDS[embedder]
    still_tids = np.asarray(embeddings["track_ids"])
    quality = np.asarray(embeddings["quality"])
    all_tracks = tracks["tracks"]
    trusted, unassigned = [], []
    for tr in all_tracks:
        qs = quality[still_tids == tr["track_id"]]
        ok = len(tr["detections"]) >= cfg["min_track_detections"] and qs.size and qs.max() >= cfg["min_quality"]
        (trusted if ok else unassigned).append(tr)
    ids = [tr["track_id"] for tr in trusted]
    points = track_vectors(np.asarray(embeddings["vectors"]), still_tids, ids) if ids else np.zeros((0, 1))
    groups = agglomerate(points, cannot_link(trusted), threshold)
    sample_fps = tracks.get("sample_fps")
    clusters = []
    for group in groups:
        members = [trusted[k] for k in group]
        clusters.append(
            {
                "track_ids": sorted(tr["track_id"] for tr in members),
                "screen_time_s": round(sum(track_screen_time(tr, sample_fps) for tr in members), 3),
            }
        )
    clusters.sort(key=lambda c: (-c["screen_time_s"], c["track_ids"][0]))
    for k, c in enumerate(clusters):
        clusters[k] = {"cluster_id": k, **c}
    return {
        "episode": tracks["episode"],
        "embedder": embedder,
        "method": "agglomerative-average",
        "threshold": threshold,
        "clusters": clusters,
        "unassigned_track_ids": sorted(tr["track_id"] for tr in unassigned),
    }


def load_embeddings(path: str | Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_clusters(path: str | Path, result: dict) -> None:
    atomic.write_json(path, result)
