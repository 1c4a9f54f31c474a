"""Linking clusters across episodes: average linkage on cosine distance with cannot-link pairs,
exact and fast enough for a season of hundreds of episodes.

Average linkage merges two groups only while their average distance is below the threshold, so
every merged pair of groups holds at least one pair of items nearer than the threshold: groups
never grow across the components of the graph "nearer than the threshold". That graph is built
blockwise (a matrix product per block of rows), its components found with scipy, and average
linkage (cluster.agglomerate, the same as episode clustering) runs inside each component only.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..cluster import agglomerate

BLOCK = 2048


def near_pairs(points: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of l2-normalised vectors whose cosine distance is below `threshold`."""
    pts = np.ascontiguousarray(points, dtype=np.float32)
    rows, cols = [], []
    for start in range(0, len(pts), BLOCK):
        sims = pts[start:start + BLOCK] @ pts.T
        i, j = np.nonzero(1.0 - sims < threshold)
        i += start
        keep = i < j
        rows.append(i[keep])
        cols.append(j[keep])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def link(points: np.ndarray, forbidden: dict[int, set[int]], threshold: float,
         together: list[list[int]] | None = None, apart: np.ndarray | None = None) -> list[list[int]]:
    """Groups of item indices: average linkage below `threshold`, never joining an item with one
    in `forbidden[item]` (nor groups holding such a pair). Every item is in one group. The items
    of each `together` group are one group whatever their distance (cluster.agglomerate). Items
    with the same `apart` label (e.g. their episode) are never joined either, unless `together`
    joins them."""
    n = len(points)
    if n == 0:
        return []
    i, j = near_pairs(points, threshold)
    chained = [(g[k], g[k + 1]) for g in together or () for k in range(len(g) - 1)]
    if chained:
        i = np.concatenate([i, np.array([a for a, _b in chained], np.int64)])
        j = np.concatenate([j, np.array([b for _a, b in chained], np.int64)])
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    groups = []
    for component in range(count):
        members = np.flatnonzero(labels == component)
        if len(members) == 1:
            groups.append([int(members[0])])
            continue
        index = {int(m): k for k, m in enumerate(members)}
        ban = np.zeros((len(members), len(members)), dtype=bool)
        for m in members:
            for other in forbidden.get(int(m), ()):
                if other in index:
                    ban[index[int(m)], index[other]] = ban[index[other], index[int(m)]] = True
        if apart is not None:
            ban |= apart[members][:, None] == apart[members][None, :]
            np.fill_diagonal(ban, False)
        mine = [[index[k] for k in g if k in index] for g in together or ()]
        mine = [g for g in mine if len(g) > 1]
        for part in agglomerate(points[members].astype(np.float64), ban, threshold, mine or None):
            groups.append(sorted(int(members[k]) for k in part))
    return sorted(groups)
