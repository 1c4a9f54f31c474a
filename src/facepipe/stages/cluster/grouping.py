"""Cluster: group face tracks into identities, the number of people unknown.

Each track is one point: the mean of its stills' unit-length embeddings. Two methods
(`cluster.method`), both on cosine distance and both bounded by one threshold:

- `agglomerative`: average-linkage agglomeration while the closest pair of clusters is nearer
  than the threshold. Two tracks that share a frame are different people: their distance is
  infinite, and average linkage carries that to every cluster holding either.
- `dbscan`: scikit-learn DBSCAN (min_samples=1, eps = the threshold), i.e. the groups of tracks
  linked by chains of neighbours. A group holding two tracks that share a frame is split again by
  linking its closest pairs first and never joining two parts across such a pair.

Either way two tracks that share a frame are never in one cluster. Tracks too short or too poor
to trust are left out of both, in `unassigned_track_ids`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...base import atomic
from ...base.errors import FacepipeError
from ..embed import SPACE

METHODS = ("agglomerative", "dbscan")
# Cosine-distance thresholds per method and embedder. dlib's: measured by bench/quality_ablation.py
# (docs/quality.md); facenet's are placeholders until its weights can be had to measure them.
DEFAULT_THRESHOLDS = {
    "agglomerative": {"dlib": 0.08, "facenet": 0.5},
    "dbscan": {"dlib": 0.06, "facenet": 0.4},
}


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """Each vector (the last axis) scaled to length 1 (a zero vector stays zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def track_vectors(vectors: np.ndarray, still_track_ids: np.ndarray, track_ids: list[int]) -> np.ndarray:
    vecs = l2_normalise(vectors.astype(np.float64))
    return l2_normalise(np.stack([vecs[still_track_ids == t].mean(axis=0) for t in track_ids]))


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


def _cosine_distances(points: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - points @ points.T, 0.0, 2.0)


def agglomerate(points: np.ndarray, forbidden: np.ndarray, threshold: float,
                together: list[list[int]] | None = None) -> list[list[int]]:
    """Average-linkage clustering on cosine distance with cannot-link pairs; returns index groups.

    `together`: groups of indices that are one person whatever their distance (the user said so):
    each is joined first, as average linkage joins any pair, and clustering goes on from there."""
    n = len(points)
    if n == 0:
        return []
    dist = _cosine_distances(points)
    dist[forbidden] = np.inf
    np.fill_diagonal(dist, np.inf)
    sizes = np.ones(n)
    members = {i: [i] for i in range(n)}
    alive = np.ones(n, dtype=bool)

    def join(i: int, j: int) -> None:
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

    home = list(range(n))  # index -> the representative of its group while `together` is joined
    for group in together or ():
        reps = sorted({home[k] for k in group})
        for other in reps[1:]:
            for k in members[other]:
                home[k] = reps[0]
            join(reps[0], other)
    while len(members) > 1:
        flat = int(np.argmin(dist))
        i, j = divmod(flat, n)
        if not dist[i, j] < threshold:
            break
        join(i, j)
    return [sorted(m) for m in members.values()]


def split_cannot_links(members: list[int], dist: np.ndarray, forbidden: np.ndarray, eps: float) -> list[list[int]]:
    """Split one group so that no part holds a cannot-link pair: join the closest pairs (within
    eps) first, skipping any join that would put two forbidden tracks together."""
    if not forbidden[np.ix_(members, members)].any():
        return [sorted(members)]
    part = {i: {i} for i in members}  # track index -> the set it belongs to (shared objects)
    pairs = sorted((dist[i, j], i, j) for a, i in enumerate(members) for j in members[a + 1 :] if dist[i, j] <= eps)
    for _d, i, j in pairs:
        a, b = part[i], part[j]
        if a is b or forbidden[np.ix_(sorted(a), sorted(b))].any():
            continue
        a |= b
        for k in b:
            part[k] = a
    unique = {id(p): p for p in part.values()}
    return [sorted(p) for p in unique.values()]


def dbscan(points: np.ndarray, forbidden: np.ndarray, eps: float) -> list[list[int]]:
    """DBSCAN (min_samples=1) on cosine distance, then cannot-link splits; returns index groups."""
    from sklearn.cluster import DBSCAN

    if len(points) == 0:
        return []
    dist = _cosine_distances(points)
    labels = DBSCAN(eps=eps, min_samples=1, metric="precomputed").fit(dist).labels_
    groups = []
    for label in sorted(set(labels.tolist())):
        groups.extend(split_cannot_links(np.flatnonzero(labels == label).tolist(), dist, forbidden, eps))
    return sorted(groups)


def group_tracks(points: np.ndarray, forbidden: np.ndarray, threshold: float, method: str) -> list[list[int]]:
    return {"agglomerative": agglomerate, "dbscan": dbscan}[method](points, forbidden, threshold)


def track_screen_time(track: dict, sample_fps: float | None) -> float:
    dets = track["detections"]
    step = 1.0 / sample_fps if sample_fps else 0.0
    return float(dets[-1]["t"] - dets[0]["t"] + step)


def cluster_tracks(tracks: dict, embeddings: dict, cfg: dict) -> dict:
    embedder = str(embeddings["embedder"])
    method = cfg["method"]
    if method not in METHODS:
        raise FacepipeError(f"cluster.method {method!r} is unknown; use one of {', '.join(METHODS)}")
    threshold = cfg["threshold"] or DEFAULT_THRESHOLDS[method][SPACE[embedder]]
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
    groups = group_tracks(points, cannot_link(trusted), threshold, method)
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
        "method": method,
        "threshold": threshold,
        "clusters": clusters,
        "unassigned_track_ids": sorted(tr["track_id"] for tr in unassigned),
    }


def load_embeddings(path: str | Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_clusters(path: str | Path, result: dict) -> None:
    atomic.write_json(path, result)
