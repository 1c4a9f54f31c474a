"""dlib's face recognition network as its file holds it: where face-recognition-models keeps dlib's
model files (`models_file`), the network's architecture (`LEVELS`, `level_spec`) and the reader of
dlib's serialization (`read_dlib_net`). Nothing here needs dlib or torch.

The network is the ResNet-34-like `anet_type` of dlib's dnn_face_recognition_ex example: 150x150
RGB chips in, 128 floats out. Facts of the file this module relies on (all verified by
`read_dlib_net`):

- dlib writes integers as one control byte (low 4 bits: how many bytes follow, 0x80: negative)
  and then that many little-endian bytes; floats as two such integers, mantissa then exponent
  (value = mantissa * 2**exponent); strings as an unsigned length then the bytes; bools as the
  ASCII byte '1' or '0'; a tensor as the version 2, four dimensions (n, k, rows, cols) and then
  n*k*rows*cols little-endian float32s. A layer's shape-only view ("alias tensor") is the
  version 1 and four dimensions, no data.
- The network is nested, the loss outermost: first the loss (version, "loss_metric_2", margin,
  distance threshold), then every wrapper's integer version from the output down to the input,
  then the input layer ("input_rgb_image_sized": mean red, green, blue, rows, cols) and then each
  layer's own fields from the input up: its tagged details (e.g. "con_6", "affine_2", "relu_2",
  "max_pool_2", "avg_pool_2", "add_prev_", "fc_3") followed by three bools and three (empty)
  training tensors. Tags and skips write their version only.
- Input: x = (pixel - mean) / 256 per channel, the means (122.782, 117.001, 104.298) are in the
  file. Convolutions and pools are padded by size//2 when their stride is 1 and not at all
  otherwise; output size = 1 + (size + 2*pad - window) // stride.
- add_prev of two tensors of different shapes gives a tensor of the larger of each dimension in
  which what one of them lacks counts as zero (padding at the end: higher channels, bottom,
  right). It happens in every downsampling block (channels double) and, at 150x150 input, also in
  space in the last two: 3x3x256 + 4x4x128 and 1x1x256 + 2x2x256.
- loss_metric's output is the fc layer's output as it is: no normalisation.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...base.errors import FacepipeError

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
# Chips per network call: on 1 CPU thread 32 and 64 are about equally fast, 8 ~15 % and 1 ~60 % slower.
DEFAULT_BATCH = 32


def checked_chips(chips) -> np.ndarray:
    """`chips` as the network takes them, (n, 150, 150, 3) uint8 RGB (one chip: n = 1), or ValueError."""
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3) or chips.dtype != np.uint8:
        raise ValueError(f"chips must be (n, {CHIP_SIZE}, {CHIP_SIZE}, 3) uint8 RGB, not {chips.shape} {chips.dtype}")
    return chips


def models_file(name: str) -> Path:
    """A model file of face-recognition-models, found without importing the package (its __init__
    imports pkg_resources, gone from modern setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacepipeError("face-recognition-models is not installed (embed.embedder dlib and dlib-native read "
                            "dlib's model files from it); run pip install face-recognition-models "
                            "or reinstall facepipe")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / name


def default_weights() -> Path:
    """The network's file in face-recognition-models."""
    return models_file(WEIGHTS_FILE)


# ----------------------------------------------------------------------------------------
# The architecture, written once: the reader expects it in the file, DlibResNetModule computes it.

STEM = (32, 7, 2)  # the first convolution: filters, size, stride
STEM_POOL = (3, 2)  # the max pool after it: size, stride
# (channels, blocks, the first one downsampling) from the input up: dlib's levels 4 .. 0.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
BLOCKS = sum(count for _n, count, _down in LEVELS)  # residual blocks, two convolutions each


def level_spec() -> list[tuple]:
    """The layers between the loss and the input, outermost first (dlib's nesting), as (kind,
    *arguments)."""

    def block(n: int, stride: int) -> list[tuple]:
        # BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, ...>>>>>, BN = affine
        return [("affine",), ("con", n, 3, 3, 1), ("relu",), ("affine",), ("con", n, 3, 3, stride)]

    def ares(n: int) -> list[tuple]:
        return [("relu",), ("add_prev", 1), *block(n, 1), ("tag", 1)]

    def ares_down(n: int) -> list[tuple]:
        return [("relu",), ("add_prev", 2), ("avg_pool", 2, 2, 2), ("skip", 1), ("tag", 2),
                *block(n, 2), ("tag", 1)]

    levels = []
    for n, count, down in reversed(LEVELS):  # outermost level first; in a level, its last block first
        levels += [*ares(n)] * (count - 1) + (ares_down(n) if down else ares(n))
    filters, size, stride = STEM
    pool, pool_stride = STEM_POOL
    return [("fc", DESCRIPTOR_DIM), ("avg_pool", 0, 0, 1), *levels,
            ("max_pool", pool, pool, pool_stride), ("relu",), ("affine",), ("con", filters, size, size, stride)]


@dataclass
class DlibLayer:
    """One layer of the parsed network: its kind, its numbers and its weights (numpy float32)."""

    kind: str  # input, con, affine, relu, max_pool, avg_pool, add_prev, tag, skip, fc, loss_metric
    args: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) for k, v in self.tensors.items()}
        return f"DlibLayer({self.kind}, {self.args}, {shapes})"


def _fold(con: DlibLayer, affine: DlibLayer) -> tuple[np.ndarray, np.ndarray]:
    """The convolution followed by its affine layer as one convolution (float64)."""
    g, b = affine.tensors["gamma"].astype(np.float64), affine.tensors["beta"].astype(np.float64)
    weight = con.tensors["weight"].astype(np.float64) * g[:, None, None, None]
    bias = con.tensors["bias"].astype(np.float64) * g + b
    return weight, bias


def folded_weights(layers: list[DlibLayer]) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The weights as an engine computes with them: each convolution's (weight, bias), float32, its
    affine layer folded in and, in the first, the input scaling (x - mean) / 256 too (exact but
    for rounding: conv1 pads nothing), from the input up; and the fc weight (inputs, outputs)."""
    convs = [l for l in layers if l.kind == "con"]
    affines = [l for l in layers if l.kind == "affine"]
    # in dlib's order every convolution is followed directly by its affine layer
    order = [l.kind for l in layers if l.kind in ("con", "affine")]
    assert order == ["con", "affine"] * len(convs) and len(convs) == 1 + 2 * BLOCKS
    folded = [_fold(c, a) for c, a in zip(convs, affines)]
    # conv1((x - mean) / 256) = conv1'(x) with w' = w / 256, b' = b - sum(w * mean) / 256
    w, b = folded[0]
    mean = np.asarray(layers[0].args["mean_rgb"], np.float64)
    divisor = layers[0].args["divisor"]
    folded[0] = (w / divisor, b - (w * mean[None, :, None, None]).sum(axis=(1, 2, 3)) / divisor)
    fc = next(l for l in layers if l.kind == "fc")
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in folded], fc.tensors["weight"]


# ----------------------------------------------------------------------------------------
# The reader of dlib's serialization.


class _Damaged(Exception):
    """The file does not hold what this network's serialization holds at some offset."""


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Damaged(f"ends early at byte {len(self.data)} (wanted {n} bytes at {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def integer(self, signed: bool = True) -> int:
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        negative = bool(ctrl & 0x80)
        if size == 0 or size > 8 or (ctrl & 0x70) or (negative and not signed):
            raise _Damaged(f"no integer at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if negative else value

    def unsigned(self) -> int:
        return self.integer(signed=False)

    def real(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise _Damaged(f"no binary float at byte {self.pos}")
        mantissa = self.integer()
        exponent = self.integer()
        if not -32768 <= exponent <= 32767 or not -(2**63) <= mantissa < 2**63:
            raise _Damaged(f"no float before byte {self.pos}")
        if exponent >= 32000:  # dlib's codes for inf (32000), -inf (32001) and nan (32002)
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(np.float64(mantissa), exponent))

    def boolean(self) -> bool:
        at = self.pos
        byte = bytes(self._take(1))
        if byte not in (b"0", b"1"):
            raise _Damaged(f"no bool at byte {at}")
        return byte == b"1"

    def string(self, max_len: int = 64) -> str:
        at = self.pos
        n = self.unsigned()
        if n > max_len:
            raise _Damaged(f"no short string at byte {at}")
        try:
            return bytes(self._take(n)).decode("ascii")
        except UnicodeDecodeError:
            raise _Damaged(f"no text string at byte {at}") from None

    def tag(self, *allowed: str) -> str:
        at = self.pos
        text = self.string()
        if text not in allowed:
            raise _Damaged(f"found {text!r} at byte {at} where {' or '.join(map(repr, allowed))} belongs")
        return text

    def version(self, *allowed: int) -> int:
        at = self.pos
        v = self.integer()
        if v not in allowed:
            raise _Damaged(f"found version {v} at byte {at}, expected {allowed}")
        return v

    def tensor(self) -> np.ndarray:
        self.version(2)
        dims = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in dims):
            raise _Damaged(f"negative tensor size {dims} before byte {self.pos}")
        count = int(np.prod(dims, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self) -> tuple[int, ...]:
        self.version(1)
        return tuple(self.integer() for _ in range(4))


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise _Damaged(what)


def _read_input(r: _Reader) -> DlibLayer:
    r.tag("input_rgb_image_sized")
    means = [r.real() for _ in range(3)]
    rows, cols = r.unsigned(), r.unsigned()
    _expect((rows, cols) == (CHIP_SIZE, CHIP_SIZE), f"input is {rows}x{cols}, not {CHIP_SIZE}x{CHIP_SIZE}")
    return DlibLayer("input", {"mean_rgb": means, "rows": rows, "cols": cols, "divisor": 256.0})


def _read_details(r: _Reader, spec: tuple, in_channels: int) -> tuple[DlibLayer, int]:
    """One layer's own fields; returns the layer and its number of output channels."""
    kind = spec[0]
    if kind == "con":
        _, n, nr, nc, stride = spec
        version = r.tag("con_4", "con_5", "con_6")
        params = r.tensor()
        num_filters = r.integer()
        fnr, fnc, sy, sx, py, px = (r.integer() for _ in range(6))
        pad = nr // 2 if stride == 1 else 0
        _expect((num_filters, fnr, fnc, sy, sx, py, px) == (n, nr, nc, stride, stride, pad, pad),
                f"convolution {(num_filters, fnr, fnc, sy, sx, py, px)} where "
                f"{(n, nr, nc, stride, stride, pad, pad)} belongs")
        fshape = r.alias()
        bshape = r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.real()
        use_bias = r.boolean() if version in ("con_5", "con_6") else True
        use_relu = r.boolean() if version == "con_6" else False
        _expect(fshape == (n, in_channels, nr, nc), f"filters {fshape} where {(n, in_channels, nr, nc)} belongs")
        _expect(not use_relu, "a convolution with a fused relu")
        flat = params.reshape(-1)
        nw = n * in_channels * nr * nc
        _expect(flat.size == nw + (n if use_bias else 0), f"convolution parameters of size {flat.size}")
        weight = flat[:nw].reshape(fshape)
        if use_bias:
            _expect(bshape == (1, n, 1, 1), f"biases {bshape}")
            bias = flat[nw:].copy()
        else:
            bias = np.zeros(n, np.float32)
        layer = DlibLayer("con", {"filters": n, "size": (nr, nc), "stride": stride, "padding": pad},
                          {"weight": weight, "bias": bias})
        return layer, n
    if kind == "affine":
        version = r.tag("affine_", "affine_2")
        params = r.tensor()
        gshape, bshape = r.alias(), r.alias()
        mode = r.integer()
        disabled = r.boolean() if version == "affine_2" else False
        c = in_channels
        _expect(mode == 0, f"affine layer in mode {mode}, not per channel")  # 0: CONV_MODE
        _expect(not disabled, "a disabled affine layer")
        _expect(gshape == bshape == (1, c, 1, 1) and params.size == 2 * c, f"affine of shape {gshape}")
        flat = params.reshape(-1)
        return DlibLayer("affine", {}, {"gamma": flat[:c].copy(), "beta": flat[c:].copy()}), c
    if kind == "relu":
        version = r.tag("relu_", "relu_2")
        disabled = r.boolean() if version == "relu_2" else False
        _expect(not disabled, "a disabled relu")
        return DlibLayer("relu"), in_channels
    if kind in ("max_pool", "avg_pool"):
        _, nr, nc, stride = spec
        r.tag(f"{kind}_2")
        got = tuple(r.integer() for _ in range(6))
        pad = nr // 2 if stride == 1 else 0
        want = (nr, nc, stride, stride, pad, pad)
        _expect(got == want, f"{kind} {got} where {want} belongs")
        return DlibLayer(kind, {"size": (nr, nc), "stride": stride, "padding": pad}), in_channels
    if kind == "add_prev":
        r.tag("add_prev_")
        return DlibLayer("add_prev", {"tag": spec[1]}), in_channels
    if kind == "fc":
        n = spec[1]
        version = r.tag("fc_2", "fc_3")
        num_outputs, num_inputs = r.unsigned(), r.unsigned()
        params = r.tensor()
        wshape, _bshape = r.alias(), r.alias()
        bias_mode = r.integer()
        for _ in range(4):
            r.real()
        use_bias = r.boolean() if version == "fc_3" else True
        _expect(bias_mode == 1, f"fc layer with bias mode {bias_mode}, not fc_no_bias")  # 1: FC_NO_BIAS
        del use_bias  # no bias in this mode either way
        _expect((num_outputs, num_inputs) == (n, in_channels), f"fc {num_inputs}->{num_outputs}")
        _expect(params.shape == (num_inputs, num_outputs, 1, 1) and wshape[:2] == (num_inputs, num_outputs),
                f"fc parameters {params.shape}")
        # dlib computes x @ W with W of shape (inputs, outputs)
        return DlibLayer("fc", {"outputs": n}, {"weight": params.reshape(num_inputs, num_outputs).copy()}), n
    raise AssertionError(kind)


def _parse(data: bytes) -> list[DlibLayer]:
    r = _Reader(data)
    specs = level_spec()  # outermost first
    r.version(1)  # the loss wrapper
    r.tag("loss_metric_2")
    loss = DlibLayer("loss_metric", {"margin": r.real(), "distance_threshold": r.real()})
    # Every wrapper's version, from the output down to the input.
    versions = []
    for i, spec in enumerate(specs):
        if spec[0] in ("tag", "skip"):
            versions.append(r.version(1))
        elif i == len(specs) - 1:  # the layer right on top of the input
            versions.append(r.version(2, 3))
        else:
            versions.append(r.version(1, 2))
    layers = [_read_input(r)]
    channels = 3
    tagged: dict[int, int] = {}  # tag id -> channels of the tensor it marks
    for spec, version in zip(reversed(specs), reversed(versions)):
        kind = spec[0]
        if kind == "tag":
            tagged[spec[1]] = channels
            layers.append(DlibLayer("tag", {"id": spec[1]}))
            continue
        if kind == "skip":
            channels = tagged[spec[1]]
            layers.append(DlibLayer("skip", {"id": spec[1]}))
            continue
        layer, out_channels = _read_details(r, spec, channels)
        if kind == "add_prev":
            out_channels = max(channels, tagged[spec[1]])
        channels = out_channels
        for _ in range(3):  # setup called, gradient stale, output disabled
            r.boolean()
        for _ in range(3):  # x_grad, cached output, params_grad / grad_final: training state
            r.tensor()
        if version == 3:  # the layer on the input: its sample expansion factor
            factor = r.unsigned()
            _expect(factor == 1, f"sample expansion factor {factor} before byte {r.pos}")
        layers.append(layer)
    layers.append(loss)
    if r.pos != len(data):
        raise _Damaged(f"{len(data) - r.pos} bytes left over after the network at byte {r.pos}")
    return layers


def read_dlib_net(path: str | os.PathLike) -> list[DlibLayer]:
    """Parse dlib's file of its face recognition network: its layers from the input to the loss.

    Each layer is a `DlibLayer`: kind, arguments and weights (float32 numpy arrays; a
    convolution's weight in (out, in, rows, cols), the fc weight in (inputs, outputs)).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise unreadable(path, e) from None
    try:
        return _parse(data)
    except _Damaged as e:
        raise FacepipeError(f"{path}: not dlib's face recognition network ({e}); "
                            "reinstall face-recognition-models") from None


def unreadable(path: str | os.PathLike, error: OSError) -> FacepipeError:
    """The one message for dlib's network file missing, or there and unreadable."""
    if isinstance(error, FileNotFoundError):
        return FacepipeError(f"{path}: dlib's face recognition network not found; reinstall face-recognition-models")
    return FacepipeError(f"{path}: cannot read dlib's face recognition network ({error.strerror}); "
                         "check the file or reinstall face-recognition-models")
