"""Image geometry shared by the stages and tools: letterboxing, and face crops with their box and
landmarks moved into the crop's coordinates."""

from __future__ import annotations

import cv2
import numpy as np


def letterbox(img: np.ndarray, width: int, height: int, fill: int = 0) -> np.ndarray:
    """`img` scaled to fit width x height, centred on a canvas of grey level `fill`."""
    h, w = img.shape[:2]
    s = min(width / w, height / h)
    img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), fill, np.uint8)
    y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
    canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
    return canvas


def crop_with_margin(image: np.ndarray, box, margin: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The box plus `margin` of its width and height on each side (clipped to the image), and the
    crop's origin in the image."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    h, w = image.shape[:2]
    cx1 = int(max(0, np.floor(x1 - margin * bw)))
    cy1 = int(max(0, np.floor(y1 - margin * bh)))
    cx2 = int(min(w, np.ceil(x2 + margin * bw)))
    cy2 = int(min(h, np.ceil(y2 + margin * bh)))
    return image[cy1:cy2, cx1:cx2].copy(), (cx1, cy1)


def shift_points(points, origin) -> list:
    """Points moved into a crop whose top-left corner is `origin`."""
    ox, oy = origin
    return [[round(x - ox, 1), round(y - oy, 1)] for x, y in points]


def face_crop(image: np.ndarray, face: dict, margin: float) -> tuple[np.ndarray, list, list | None]:
    """A face's crop with `margin`, its box [x1, y1, x2, y2] and landmarks in crop coordinates."""
    crop, origin = crop_with_margin(image, face["box"], margin)
    box = sum(shift_points([face["box"][:2], face["box"][2:]], origin), [])
    marks = shift_points(face["landmarks"], origin) if face.get("landmarks") else None
    return crop, box, marks
