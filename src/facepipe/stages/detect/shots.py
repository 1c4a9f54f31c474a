"""Shot-cut evidence: how different a sampled frame looks from the previous sampled frame.

Detect measures it (it has the pixels); Track decides where the cuts are with its own threshold.
The frame is split into a 3x3 grid; each cell gets an HSV colour histogram, and the score is the
median Bhattacharyya distance over the cells. The median ignores a few cells changed by motion
(a raised hand, a passing head) but sees a cut, which changes most cells at once.
"""

from __future__ import annotations

import cv2
import numpy as np

_W, _H, _GRID = 96, 54, 3


def colour_signature(frame_bgr: np.ndarray) -> list[np.ndarray]:
    small = cv2.resize(frame_bgr, (_W, _H), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    cells = []
    for row in range(_GRID):
        for col in range(_GRID):
            cell = hsv[row * _H // _GRID : (row + 1) * _H // _GRID, col * _W // _GRID : (col + 1) * _W // _GRID]
            hist = cv2.calcHist([cell], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
            cells.append(cv2.normalize(hist, hist))
    return cells


def cut_score(previous: list[np.ndarray] | None, current: list[np.ndarray]) -> float:
    """0: same look; 1: nothing in common (also for the first frame)."""
    if previous is None:
        return 1.0
    return float(np.median([cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA) for a, b in zip(previous, current)]))
