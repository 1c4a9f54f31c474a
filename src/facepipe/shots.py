"""Shot-cut evidence: how different a sampled frame looks from the previous sampled frame.

Detect measures it (it has the pixels); Track decides where the cuts are with its own threshold.
"""

from __future__ import annotations

import cv2
import numpy as np

_SIZE = (64, 36)


def colour_signature(frame_bgr: np.ndarray) -> np.ndarray:
    small = cv2.resize(frame_bgr, _SIZE, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


def cut_score(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Bhattacharyya distance of colour histograms: 0 same look, 1 nothing in common."""
    if previous is None:
        return 1.0
    return float(cv2.compareHist(previous, current, cv2.HISTCMP_BHATTACHARYYA))
