"""MTCNN's three-stage cascade (Zhang et al., 2016) on facenet-pytorch's trained networks, with
the image pyramid and the candidate crops resized by OpenCV.

facenet-pytorch resizes every candidate box with a torch call of its own; on a CPU a frame's
hundred-odd small calls cost as much as a network. Here each stage cuts and resizes its crops
with OpenCV and runs its network once on the whole batch, laid out channels-last.

Stages: P-Net proposes boxes on every pyramid level (a 12 px window, stride 2); R-Net (24x24
crops) and O-Net (48x48 crops, with five landmarks) keep and refine them. Boxes follow MTCNN's
convention: corners in pixels, width x2 - x1 + 1 where a crop is cut.

`follow` finds faces again near where they were on the frame before (detect.keyframe_every):
P-Net searches only a window about each previous face (three times its side), at the three
pyramid levels where a face 0.6 to 1.7 times its size is found, and R-Net and O-Net judge what it
proposes there, so a face that moved or grew is found again for a fraction of a frame's cost.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import nms

PYRAMID_FACTOR = 0.709  # each pyramid level is this much smaller than the one before
CROP_INTERPOLATION = cv2.INTER_AREA
# `follow`'s window about a previous face of side s: FOLLOW_WINDOW * s square, centred on the face,
# resized so the face is each of FOLLOW_FACE_PX pixels high for P-Net (its 12 px window finds faces
# of about 12-17 px on a level: 10, 14 and 20 px cover faces of 0.6 to 1.7 s).
FOLLOW_WINDOW = 3.0
FOLLOW_FACE_PX = (10.0, 14.0, 20.0)
FOLLOW_KEEP = 2  # P-Net's best proposals kept per window and level (R-Net and O-Net's work)


def _batch(images: np.ndarray) -> torch.Tensor:
    """(n, h, w, 3) RGB (float32, or uint8 from follow) -> the networks' normalised input, channels-last."""
    return torch.from_numpy(((images - 127.5) * 0.0078125).astype(np.float32, copy=False)).permute(0, 3, 1, 2)


def _nms(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by non-maximum suppression on (n, >=5) rows of x1 y1 x2 y2 score."""
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    return nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), iou).numpy()


def _nms_min(boxes: np.ndarray, overlap: float) -> np.ndarray:
    """Suppression where overlap is the intersection over the smaller box (nested boxes go)."""
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(score)[::-1], []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[iw * ih / np.minimum(area[i], area[rest]) <= overlap]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (the later networks see square crops)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) * 0.5
    out[:, 1] = boxes[:, 1] + (h - side) * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _shift(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Apply a network's box regression (offsets as fractions of the box size)."""
    out = boxes.copy()
    extra = 1.0 if plus_one else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    out[:, :4] = boxes[:, :4] + reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return out


def _pnet_boxes(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net's output on one image (prob: face probability (h, w); reg: (4, h, w)) as boxes (n, 9):
    x1 y1 x2 y2 score and the regression, in the pixels of the image before it was scaled by `scale`."""
    ys, xs = np.nonzero(prob >= threshold)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    top_left = np.floor((2 * cells + 1) / scale)
    bottom_right = np.floor((2 * cells + 12) / scale)
    return np.concatenate([top_left, bottom_right, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)


class MTCNNCascade:
    """Faces of one RGB frame: boxes (n, 4), scores (n,), landmarks (n, 5, 2), largest first."""

    def __init__(self, pnet, rnet, onet, min_face: float, thresholds: list[float]):
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face = float(min_face)
        self.thresholds = thresholds

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces of a frame; with `scale` < 1, P-Net searches the frame shrunk by `scale` (faces
        of min_face / scale source pixels and up) while R-Net and O-Net judge crops cut from the
        full frame: a face just above the minimum keeps all its pixels for the two networks that
        decide whether it is one (on a shrunk frame their 24 and 48 px crops were upsampled from
        fewer pixels, and scored lower)."""
        image = rgb.astype(np.float32)
        if scale < 1.0:
            h, w = image.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            boxes = self._propose(small)
            boxes[:, :4] /= scale
        else:
            boxes = self._propose(image)
        return self._finish(image, boxes)

    @torch.inference_mode()
    def follow(self, rgb: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces of a frame found near `previous` (n, 4) boxes of the frame before, as detect()
        returns them: P-Net in a window about each previous box, then R-Net and O-Net (see the
        module's docstring). A face that left or faded (nothing there passes the three networks'
        thresholds) is not returned."""
        if not len(previous):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        image = rgb  # uint8: only the windows and crops are resized and converted, not the frame
        boxes = self._propose_near(image, np.asarray(previous, dtype=np.float32))
        return self._finish(image, boxes)

    def _finish(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """R-Net and O-Net on the full-frame crops of P-Net's candidate `boxes`: (boxes, scores,
        landmarks), largest face first, as detect() and follow() return them."""
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        boxes, marks = self._output(image, boxes)
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
        return boxes[order, :4], boxes[order, 4], marks[order]

    def _propose_near(self, image: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """P-Net on a window about each previous box (FOLLOW_WINDOW, FOLLOW_FACE_PX): squared
        candidate boxes (n, 5) in frame pixels. One network call per level for all the windows."""
        h, w = image.shape[:2]
        sq = _square(previous[:, :4])
        side = np.maximum(sq[:, 2] - sq[:, 0], 1.0)
        win = FOLLOW_WINDOW * side
        x0 = (sq[:, 0] + sq[:, 2]) / 2 - win / 2
        y0 = (sq[:, 1] + sq[:, 3]) / 2 - win / 2
        found = []
        for face_px in FOLLOW_FACE_PX:
            size = int(round(FOLLOW_WINDOW * face_px))
            levels = np.zeros((len(sq), size, size, 3), np.float32)
            for k in range(len(sq)):  # the window's part inside the frame, resized into place
                f = size / win[k]
                a, b = max(0, int(np.ceil(x0[k]))), max(0, int(np.ceil(y0[k])))
                c, d = min(w, int(x0[k] + win[k])), min(h, int(y0[k] + win[k]))
                p, q = min(size, int(round((a - x0[k]) * f))), min(size, int(round((b - y0[k]) * f)))
                r, s_ = min(size, int(round((c - x0[k]) * f))), min(size, int(round((d - y0[k]) * f)))
                if c > a and d > b and r > p and s_ > q:
                    levels[k, q:s_, p:r] = cv2.resize(image[b:d, a:c], (r - p, s_ - q), interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(_batch(levels))
            prob, reg = prob[:, 1].numpy(), reg.numpy()
            for k in range(len(sq)):
                boxes = _pnet_boxes(prob[k], reg[k], size / win[k], self.thresholds[0])
                if len(boxes):
                    boxes[:, :4] += [x0[k], y0[k], x0[k], y0[k]]
                    found.append(boxes[_nms(boxes, 0.5)[:FOLLOW_KEEP]])
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        boxes = np.concatenate(found).astype(np.float32)
        boxes = boxes[_nms(boxes, 0.7)]
        return _square(_shift(boxes[:, :5], boxes[:, 5:9], plus_one=False))

    def _scales(self, h: int, w: int) -> list[float]:
        scale, side, scales = 12.0 / self.min_face, min(h, w) * 12.0 / self.min_face, []
        while side >= 12:
            scales.append(scale)
            scale, side = scale * PYRAMID_FACTOR, side * PYRAMID_FACTOR
        return scales

    def _propose(self, image: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid: squared candidate boxes (n, 5)."""
        h, w = image.shape[:2]
        found = []
        for scale in self._scales(h, w):
            level = cv2.resize(image, (int(w * scale + 1), int(h * scale + 1)), interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(_batch(level[None]))
            level_boxes = _pnet_boxes(prob[0, 1].numpy(), reg[0].numpy(), scale, self.thresholds[0])
            if len(level_boxes):
                found.append(level_boxes[_nms(level_boxes, 0.5)])
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[_nms(boxes, 0.7)]
        return _square(_shift(boxes[:, :5], boxes[:, 5:9], plus_one=False))

    def _crops(self, image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each box's pixels (clipped to the image) resized to size x size; and which boxes had any."""
        h, w = image.shape[:2]
        corners = np.trunc(boxes[:, :4]).astype(np.int64)
        x1, y1 = np.maximum(corners[:, 0], 1) - 1, np.maximum(corners[:, 1], 1) - 1
        x2, y2 = np.minimum(corners[:, 2], w), np.minimum(corners[:, 3], h)
        usable = (x2 > x1) & (y2 > y1)
        crops = [cv2.resize(image[b:d, a:c], (size, size), interpolation=CROP_INTERPOLATION)
                 for a, b, c, d, ok in zip(x1, y1, x2, y2, usable) if ok]
        return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.float32), usable

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """R-Net: the candidates it scores above its threshold, regressed and squared."""
        crops, usable = self._crops(image, boxes, 24)
        if not len(crops):
            return np.zeros((0, 5), dtype=np.float32)
        reg, prob = (t.numpy() for t in self.rnet(_batch(crops)))
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[usable][keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        picked = _nms(boxes, 0.7)
        return _square(_shift(boxes[picked], reg[picked]))

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net: final boxes (n, 5) and their landmarks (n, 5, 2)."""
        crops, usable = self._crops(image, boxes, 48)
        if not len(crops):
            return np.zeros((0, 5)), np.zeros((0, 5, 2))
        reg, marks, prob = (t.numpy() for t in self.onet(_batch(crops)))
        keep = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[usable][keep, :4], prob[keep, 1:2]], axis=1)
        reg, marks = reg[keep], marks[keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([w * marks[:, :5] + boxes[:, :1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _shift(boxes, reg)
        picked = _nms_min(boxes, 0.7)
        return boxes[picked], points[picked]
