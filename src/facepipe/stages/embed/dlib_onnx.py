"""dlib's face descriptor network run by ONNX Runtime (embed.engine: onnxruntime, auto on a CPU).

The graph is written from dlib's own file (read by dlib_weights.py, folded as for torch:
dlib_weights.folded_weights), layer by layer with onnx.helper, and cached as an .onnx file
(base.onnx_models), so a worker opens it with onnxruntime alone: nothing here imports torch.
It computes what dlib_resnet.DlibResNetModule computes, on the same uint8 chips: the graph's
input is the chips as they are, (n, 150, 150, 3) uint8 RGB, converted and transposed inside.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...base.onnx_models import cached_session
from .dlib_weights import (
    CHIP_SIZE,
    DEFAULT_BATCH,
    DESCRIPTOR_DIM,
    LEVELS,
    STEM,
    STEM_POOL,
    checked_chips,
    default_weights,
    folded_weights,
    read_dlib_net,
    unreadable,
)

MODEL_NAME = "dlib_resnet_v1"
GRAPH_VERSION = 2  # raise when the graph written here changes: cached models of other versions are not used


def _out(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def build_model(weights: Path, metadata: dict) -> bytes:
    """The network of dlib's file `weights` as a serialized ONNX model."""
    from ...base.onnx_graph import Graph

    convs, fc = folded_weights(read_dlib_net(weights))
    convs = iter(convs)
    g = Graph()
    chips = g.input("chips", np.uint8, ["n", CHIP_SIZE, CHIP_SIZE, 3])
    x = g.op("Cast", [g.op("Transpose", [chips], perm=[0, 3, 1, 2])], to=1)  # to NCHW (bytes: 4x fewer), float32
    filters, size, stride = STEM
    x = g.conv(x, *next(convs), stride=stride)
    pool, pool_stride = STEM_POOL
    x = g.relu(g.max_pool(x, pool, pool_stride))  # relu and max pool commute: pooling first
    side = _out(_out(CHIP_SIZE, size, stride, 0), pool, pool_stride, 0)
    channels = filters
    for n, count, down in LEVELS:
        for i in range(count):
            first = down and i == 0
            y = g.relu(g.conv(x, *next(convs), stride=2 if first else 1, pad=0 if first else 1))
            y = g.conv(y, *next(convs), pad=1)
            y_side = _out(side, 3, 2, 0) if first else side
            shortcut, s_side = (g.avg_pool(x, 2, 2), side // 2) if first else (x, side)
            # dlib's add_prev: the larger of each dimension, what one lacks counted as zero (at the end)
            c, h = max(n, channels), max(y_side, s_side)
            if (n, y_side) != (c, h):
                y = g.pad_end(y, [0, c - n, h - y_side, h - y_side])
            if (channels, s_side) != (c, h):
                shortcut = g.pad_end(shortcut, [0, c - channels, h - s_side, h - s_side])
            x, side, channels = g.relu(g.op("Add", [y, shortcut])), h, c
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    x = g.op("MatMul", [x, g.const(np.ascontiguousarray(fc, dtype=np.float32))])
    return g.model({"descriptors": (x, ["n", DESCRIPTOR_DIM])}, metadata,
                   "dlib_face_recognition_resnet_model_v1, built by facepipe")


class DlibOnnx:
    """dlib's 128-d face descriptor computed by ONNX Runtime: `descriptors(chips)` as
    dlib_resnet.DlibResNet's, (n, 150, 150, 3) uint8 RGB chips in, (n, 128) float32 out.

    `threads`: ONNX Runtime's compute threads (the embed workers run one each, as they run torch)."""

    def __init__(self, weights: str | os.PathLike | None = None, *, threads: int = 1,
                 batch_size: int = DEFAULT_BATCH):
        self.weights = Path(weights) if weights is not None else default_weights()
        self.batch_size = int(batch_size)
        self.session = cached_session(MODEL_NAME, GRAPH_VERSION, [self.weights],
                                      lambda metadata: build_model(self.weights, metadata), threads, unreadable)

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(n, 150, 150, 3) uint8 RGB chips -> (n, 128) float32 descriptors, `batch_size` at a time."""
        chips = checked_chips(chips)
        out = np.empty((len(chips), DESCRIPTOR_DIM), np.float32)
        for start in range(0, len(chips), self.batch_size):
            part = np.ascontiguousarray(chips[start:start + self.batch_size])
            out[start:start + len(part)] = self.session.run(None, {"chips": part})[0]
        return out
