"""Face embedders: a face crop with its box and landmarks in, a fixed-length vector out.

- `dlib` (the default): dlib's face descriptor network (128-d), from the very weights file
  face-recognition-models ships (read by facepipe: dlib_weights.py), batched, on embed.device, run
  by embed.engine: ONNX Runtime (dlib_onnx.py; `auto` on the CPU) or PyTorch (dlib_resnet.py;
  `auto` on a GPU). The face is aligned as dlib aligns it: its 5-point shape predictor and
  dlib.get_face_chip (150x150, padding 0.25).
- `dlib-native`: the same network run by dlib's own C++ code (the wheel has no BLAS: about ten
  times slower); the reference the equivalence test compares `dlib` against.
- `facenet`: facenet-pytorch InceptionResnetV1 trained on VGGFace2 (512-d). Its weights are not
  shipped: they are looked up locally and never downloaded.

`dlib` on either engine and `dlib-native` give the same vectors (cosine similarity >= 0.9999), so
they share every measured threshold (SPACE).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from ...base.errors import FacepipeError
from ...base.images import crop_with_margin
from .dlib_weights import SHAPE_PREDICTOR_FILE, WEIGHTS_FILE, models_file

FACENET_WEIGHTS_FILE = "20180402-114759-vggface2.pt"


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, rgb_crop: np.ndarray, box: list[float], landmarks) -> np.ndarray: ...


class _DlibAligned:
    """dlib's 5-point shape predictor on the face box: the landmarks dlib's network is fed by."""

    dim = 128

    def __init__(self):
        import dlib

        self._dlib = dlib
        self.shape_predictor = dlib.shape_predictor(str(models_file(SHAPE_PREDICTOR_FILE)))

    def shape(self, rgb_crop: np.ndarray, box):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        return self.shape_predictor(rgb_crop, self._dlib.rectangle(x1, y1, x2, y2))


class DlibNativeEmbedder(_DlibAligned):
    """dlib's network run by dlib itself (embed.embedder: dlib-native)."""

    name = "dlib-native"

    def __init__(self):
        super().__init__()
        self.model = self._dlib.face_recognition_model_v1(str(models_file(WEIGHTS_FILE)))

    def embed(self, rgb_crop: np.ndarray, box, landmarks) -> np.ndarray:
        return np.asarray(self.model.compute_face_descriptor(rgb_crop, self.shape(rgb_crop, box)), dtype=np.float32)


def dlib_engine(engine: str, device: str) -> str:
    """embed.engine for embed.device: `auto` is onnxruntime on the CPU and torch on a CUDA device
    (docs/speed.md); onnxruntime on a CUDA device is refused in one line."""
    on_cpu = str(device).strip().lower() == "cpu"
    if engine == "auto":
        return "onnxruntime" if on_cpu else "torch"
    if engine == "onnxruntime" and not on_cpu:
        raise FacepipeError(f"embed.engine is 'onnxruntime' but embed.device is {device!r}: facepipe runs ONNX "
                            f"Runtime on the CPU only; set embed.engine: auto (or torch) for {device}")
    if engine != "torch" and engine != "onnxruntime":
        raise FacepipeError(f"embed.engine is {engine!r}; use auto, torch or onnxruntime")
    return engine


class DlibEmbedder(_DlibAligned):
    """dlib's network (embed.embedder: dlib), on the chips dlib would cut, run by `engine`
    (embed.engine) on `device` (embed.device). ONNX Runtime computes on `threads` threads (one in
    an embed worker) and never imports torch; PyTorch on the threads torch is set to."""

    name = "dlib"

    def __init__(self, device: str, engine: str = "auto", threads: int = 1):
        super().__init__()
        from .dlib_weights import CHIP_SIZE

        self.size = CHIP_SIZE
        self.engine = dlib_engine(engine, device)
        if self.engine == "onnxruntime":
            from .dlib_onnx import DlibOnnx

            self.net = DlibOnnx(models_file(WEIGHTS_FILE), threads=threads)
        else:
            from .dlib_resnet import DlibResNet

            self.net = DlibResNet(models_file(WEIGHTS_FILE), device=device)

    def chip(self, rgb_crop: np.ndarray, box) -> np.ndarray:
        """The 150x150 aligned chip dlib's compute_face_descriptor would feed its network."""
        return np.asarray(self._dlib.get_face_chip(np.ascontiguousarray(rgb_crop), self.shape(rgb_crop, box),
                                                   size=self.size, padding=0.25))

    def embed(self, rgb_crop: np.ndarray, box, landmarks) -> np.ndarray:
        return self.net.descriptors(self.chip(rgb_crop, box)[None])[0]

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors of a batch of chips (n, 150, 150, 3) uint8 RGB."""
        return self.net.descriptors(chips)


def facenet_weight_candidates(configured: str | None) -> list[Path]:
    if configured:
        return [Path(configured).expanduser()]
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    return [torch_home / folder / FACENET_WEIGHTS_FILE for folder in ("checkpoints", "hub/checkpoints")]


def find_facenet_weights(configured: str | None) -> Path:
    candidates = facenet_weight_candidates(configured)
    for path in candidates:
        if path.is_file():
            return path
    if configured:
        raise FacepipeError(
            f"{candidates[0]}: facenet weights not found (embed.facenet_weights); "
            f"point it at a local copy of {FACENET_WEIGHTS_FILE} or set embed.embedder: dlib"
        )
    raise FacepipeError(
        f"{candidates[0]}: facenet weights not found; copy {FACENET_WEIGHTS_FILE} there, "
        "set embed.facenet_weights to its path, or use embed.embedder: dlib (works offline)"
    )


class FacenetEmbedder:
    name = "facenet"
    dim = 512
    SIZE = 160
    MARGIN = 0.1

    def __init__(self, weights: str | None, device: str):
        """weights: embed.facenet_weights (None: looked up, facenet_weight_candidates); device: embed.device."""
        import torch
        from facenet_pytorch import InceptionResnetV1

        from .dlib_resnet import torch_device

        torch_device(device)  # a CUDA device named that is not there: one line, before the weights are sought
        path = find_facenet_weights(weights)

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise FacepipeError(
                f"{path}: not a readable facenet weights file ({type(exc).__name__}); replace it with "
                f"{FACENET_WEIGHTS_FILE}"
            ) from exc
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        self._torch = torch
        self.device = device
        self.model = InceptionResnetV1(pretrained=None, classify=False).eval().to(device)
        missing, _unexpected = self.model.load_state_dict(state, strict=False)
        if missing:
            raise FacepipeError(f"{path}: weights do not fit InceptionResnetV1 (missing {missing[0]}); "
                                f"use {FACENET_WEIGHTS_FILE}")

    def embed(self, rgb_crop: np.ndarray, box, landmarks) -> np.ndarray:
        import cv2

        # facenet-pytorch's own alignment: the box plus a small margin, resized to 160.
        face, _origin = crop_with_margin(rgb_crop, box, self.MARGIN)
        face = cv2.resize(face, (self.SIZE, self.SIZE), interpolation=cv2.INTER_AREA)
        tensor = self._torch.from_numpy((face.astype(np.float32) - 127.5) / 128.0).permute(2, 0, 1)[None]
        with self._torch.no_grad():
            vec = self.model(tensor.to(self.device))[0].cpu().numpy()
        return vec.astype(np.float32)


EMBEDDING_DIMS = {"dlib": DlibEmbedder.dim, "dlib-native": DlibNativeEmbedder.dim, "facenet": FacenetEmbedder.dim}
# The embedder whose measured thresholds apply to each embedder's vectors.
SPACE = {"dlib": "dlib", "dlib-native": "dlib", "facenet": "facenet"}


def make_embedder(cfg: dict) -> Embedder:
    """The embedder of the embed settings `cfg` (ONNX Runtime, for dlib, on one thread)."""
    if cfg["embedder"] == "dlib":
        return DlibEmbedder(cfg["device"], cfg["engine"])
    if cfg["embedder"] == "dlib-native":
        return DlibNativeEmbedder()
    if cfg["embedder"] == "facenet":
        return FacenetEmbedder(cfg["facenet_weights"], cfg["device"])
    raise FacepipeError(f"embed.embedder {cfg['embedder']!r} is unknown; use 'dlib', 'dlib-native' or 'facenet'")
