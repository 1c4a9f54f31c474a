"""dlib's face descriptor network (dlib_face_recognition_resnet_model_v1) in PyTorch.

The weights are read from dlib's own file (shipped by face-recognition-models) by facepipe's reader
(dlib_weights.py, which also holds the architecture and the facts of the file); dlib itself is not
needed to compute a descriptor. The network computes the same function as
`dlib.face_recognition_model_v1` up to float rounding, on the chip
`dlib.get_face_chip(img, shape, size=150, padding=0.25)` returns. The weights, folded for torch,
are cached (written through base.atomic) so that the file is parsed once.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...base import atomic
from ...base.errors import FacepipeError
from ...base.model_cache import cache_dir, file_id
from .dlib_weights import (
    BLOCKS,
    DEFAULT_BATCH,
    DESCRIPTOR_DIM,
    LEVELS,
    STEM,
    STEM_POOL,
    DlibLayer,
    checked_chips,
    default_weights,
    folded_weights,
    read_dlib_net,
    unreadable,
)

CACHE_FORMAT = "facepipe-dlib-resnet"
CACHE_VERSION = 3


# ----------------------------------------------------------------------------------------
# The network in torch.


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger of each dimension, missing parts being zero."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def grow(t: torch.Tensor) -> torch.Tensor:
        _, tc, th, tw = t.shape
        return F.pad(t, (0, w - tw, 0, h - th, 0, c - tc)) if (tc, th, tw) != (c, h, w) else t

    return grow(a) + grow(b)


class _Block(nn.Module):
    """relu(conv_b(relu(conv_a(x))) + shortcut(x)); each conv with its affine folded in."""

    def __init__(self, cin: int, n: int, down: bool):
        super().__init__()
        stride = 2 if down else 1
        self.down = down
        self.conv_a = nn.Conv2d(cin, n, 3, stride=stride, padding=0 if down else 1)
        self.conv_b = nn.Conv2d(n, n, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place where a tensor is fresh: fewer and smaller allocations
        y = self.conv_b(F.relu_(self.conv_a(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        if y.shape == shortcut.shape:
            return F.relu_(y.add_(shortcut))
        return F.relu_(_add_padded(y, shortcut))


class DlibResNetModule(nn.Module):
    """The network on float RGB chips (n, 3, 150, 150) of pixel values 0..255.

    dlib's input scaling, (x - mean) / 256, is folded into conv1 (exact but for rounding: conv1
    has no padding), and so is each affine layer into the convolution before it.
    """

    def __init__(self):
        super().__init__()
        filters, size, stride = STEM
        self.conv1 = nn.Conv2d(3, filters, size, stride=stride, padding=0)
        blocks = []
        cin = filters
        for n, count, down in LEVELS:
            for i in range(count):
                blocks.append(_Block(cin, n, down and i == 0))
                cin = n
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, DESCRIPTOR_DIM, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        # relu and max pool commute: pooling first leaves the relu 4 times fewer values
        x = F.relu_(F.max_pool2d(self.conv1(chips), *STEM_POOL))
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def state_dict_from_layers(layers: list[DlibLayer]) -> dict[str, torch.Tensor]:
    """The parsed layers as `DlibResNetModule` weights (folded: dlib_weights.folded_weights)."""
    convs, fc = folded_weights(layers)
    names = ["conv1"] + [f"blocks.{i}.conv_{ab}" for i in range(BLOCKS) for ab in "ab"]
    sd = {}
    for name, (w, b) in zip(names, convs):
        # stored channels last, the layout used on CPU: a load from the cache then copies nothing
        sd[f"{name}.weight"] = torch.from_numpy(w).contiguous(memory_format=torch.channels_last)
        sd[f"{name}.bias"] = torch.from_numpy(b)
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.T))
    return sd


# ----------------------------------------------------------------------------------------
# The cache of parsed weights.


def _cache_path(source: dict) -> Path:
    return cache_dir() / f"dlib_resnet_v1-{source['sha256'][:16]}-{source['size']}.pt"


def _expected_shapes() -> dict[str, tuple]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in DlibResNetModule().state_dict().items()}


def _load_cache(cache: Path, source: dict) -> dict | None:
    """The cached weights, or None for a cache that is damaged, foreign or of another file."""
    try:
        blob = torch.load(cache, map_location="cpu", weights_only=True)
        if (not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT
                or blob.get("version") != CACHE_VERSION or blob.get("sha256") != source["sha256"]):
            return None
        sd = blob["state_dict"]
        shapes = {k: tuple(v.shape) for k, v in sd.items() if isinstance(v, torch.Tensor)}
        if shapes != _expected_shapes() or any(v.dtype != torch.float32 for v in sd.values()):
            return None
        return sd
    except Exception:  # noqa: BLE001 - whatever is wrong with it, the weights file is parsed again
        return None


def _save_cache(cache: Path, source: dict, state_dict: dict) -> None:
    # a cache folder that cannot be made, a full disk: go without (atomic_path removes its temp file)
    with contextlib.suppress(Exception), atomic.atomic_path(cache) as tmp, open(tmp, "wb") as f:
        torch.save({"format": CACHE_FORMAT, "version": CACHE_VERSION, "sha256": source["sha256"],
                    "size": source["size"], "state_dict": state_dict}, f)


def load_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    """The folded weights of `weights`, from the cache when it holds this very file."""
    try:
        source = file_id(weights)
    except OSError as e:
        raise unreadable(weights, e) from None
    cache = _cache_path(source)
    if cache.is_file():
        sd = _load_cache(cache, source)
        if sd is not None:
            return sd
    sd = state_dict_from_layers(read_dlib_net(weights))
    _save_cache(cache, source, sd)
    return sd


# ----------------------------------------------------------------------------------------


def torch_device(device: str) -> torch.device:
    """embed.device as a torch device: cpu, cuda or cuda:N, the CUDA device present, else one line
    naming embed.device and the fix."""
    text = str(device).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = text[5:]
        if index and not index.isdigit():
            raise FacepipeError(f"embed.device is {device!r}; use cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise FacepipeError(f"embed.device is {device!r} but no CUDA device is available; set embed.device: cpu")
        if index and int(index) >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise FacepipeError(f"embed.device is {device!r} but there are only {count} CUDA devices; "
                                f"set embed.device: cuda:0 (or cpu)")
        return torch.device(text)
    raise FacepipeError(f"embed.device is {device!r}; use cpu, cuda or cuda:N")


class DlibResNet:
    """dlib's 128-d face descriptor computed by PyTorch.

    `descriptors(chips)` takes (n, 150, 150, 3) uint8 RGB chips as `dlib.get_face_chip(img,
    shape, 150, 0.25)` cuts them and returns (n, 128) float32, what
    `dlib.face_recognition_model_v1.compute_face_descriptor` returns for them (not normalised).

    The weights come from `weights` (default: face-recognition-models' file), parsed once and then
    loaded from a cache under $XDG_CACHE_HOME/facepipe. `device` (embed.device): "cpu", "cuda" or
    "cuda:N". The number of torch threads is the caller's: on CPU, processes of one thread each
    (torch.set_num_threads(1)) get through more chips than one process of several threads.
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, device: str, batch_size: int = DEFAULT_BATCH,
                 channels_last: bool = True):
        self.device = torch_device(device)
        self.weights = Path(weights) if weights is not None else default_weights()
        self.batch_size = int(batch_size)
        self.channels_last = channels_last
        state_dict = load_state_dict(self.weights)
        with torch.device("meta"):  # no random initialisation of weights about to be replaced
            net = DlibResNetModule()
        net.load_state_dict(state_dict, assign=True)
        net.eval().requires_grad_(False)
        net = net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.net = net.to(self.device)

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(n, 150, 150, 3) uint8 RGB chips -> (n, 128) float32 descriptors, `batch_size` at a time."""
        chips = checked_chips(chips)
        out = np.empty((len(chips), DESCRIPTOR_DIM), np.float32)
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                part = np.ascontiguousarray(chips[start:start + self.batch_size])
                batch = torch.from_numpy(part if part.flags.writeable else part.copy())
                x = batch.to(self.device).permute(0, 3, 1, 2).float()  # NHWC memory: channels last
                if not self.channels_last:
                    x = x.contiguous()
                out[start:start + len(batch)] = self.net(x).float().cpu().numpy()
        return out
