"""facepipe.stages.embed.dlib_resnet (dlib's face descriptor network in PyTorch), dlib_onnx (the same network on
ONNX Runtime) and dlib_weights (the reader of its file), checked against dlib itself and each other."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from facepipe.base.errors import FacepipeError
from facepipe.stages.embed.dlib_onnx import DlibOnnx
from facepipe.stages.embed.dlib_resnet import DlibResNet
from facepipe.stages.embed.dlib_weights import SHAPE_PREDICTOR_FILE, default_weights, models_file, read_dlib_net
from helpers import SHARED

dlib = pytest.importorskip("dlib")

WEIGHTS = default_weights()
SHAPE_PREDICTOR = models_file(SHAPE_PREDICTOR_FILE)
MIN_COSINE = 0.9999
# Photo sets, and whether a photo without a detected face is taken whole (johns: face chips).
SETS = {"lfw10": False, "johns": True}


@contextlib.contextmanager
def _cache_home(path):
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


@functools.cache
def _dlib_models():
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(SHAPE_PREDICTOR)),
            dlib.face_recognition_model_v1(str(WEIGHTS)))


_PRIVATE_CACHE: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """The network's cache in a folder of pytest's: the tests leave the user's ~/.cache alone."""
    _PRIVATE_CACHE["dir"] = tmp_path_factory.mktemp("dlib-cache")
    yield
    _net.cache_clear()


@functools.cache
def _net() -> DlibResNet:
    with _cache_home(_PRIVATE_CACHE["dir"]):
        return DlibResNet(device="cpu")


def assert_same_descriptors(rgb_images, boxes) -> tuple[float, float]:
    """dlib's descriptor (compute_face_descriptor) against DlibResNet on dlib.get_face_chip for
    each image and its face box (x1, y1, x2, y2), both aligned by dlib's 5-point shape predictor.
    Asserts a cosine similarity >= MIN_COSINE for each; returns (min cosine, max abs difference)."""
    _, predictor, model = _dlib_models()
    chips, expected = [], []
    for img, (x1, y1, x2, y2) in zip(rgb_images, boxes, strict=True):
        shape = predictor(img, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
        expected.append(np.asarray(model.compute_face_descriptor(img, shape), dtype=np.float64))
        chips.append(dlib.get_face_chip(img, shape, size=150, padding=0.25))
    expected = np.stack(expected)
    got = _net().descriptors(np.stack(chips)).astype(np.float64)
    assert got.shape == expected.shape == (len(chips), 128)
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    max_abs = float(np.abs(got - expected).max())
    bad = np.flatnonzero(cos < MIN_COSINE)
    assert not len(bad), f"cosine below {MIN_COSINE} for images {bad.tolist()}: {cos[bad].tolist()}"
    return float(cos.min()), max_abs


def _face_box(img: np.ndarray, whole_image_ok: bool) -> tuple[tuple | None, str]:
    """The largest face dlib's HOG detector finds, else MTCNN's, else (face chips) the image."""
    detector = _dlib_models()[0]
    faces = list(detector(img, 1))
    if faces:
        r = max(faces, key=lambda r: r.area())
        return (r.left(), r.top(), r.right(), r.bottom()), "hog"
    from facenet_pytorch import MTCNN

    found, _ = MTCNN(keep_all=True, device="cpu").detect(img)
    if found is not None and len(found):
        x1, y1, x2, y2 = max(found, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        return (round(x1), round(y1), round(x2), round(y2)), "mtcnn"
    if whole_image_ok:
        return (0, 0, img.shape[1] - 1, img.shape[0] - 1), "whole image"
    return None, "no face found by dlib's HOG detector nor by MTCNN"


@functools.cache
def _photo_set(photos: str) -> tuple[list, list, list, dict, list]:
    """A shared photo set's (images, face boxes, photos skipped, how the boxes were found, files)."""
    files = sorted((SHARED / "faces" / photos).glob("*/*.jpg"))
    assert files, f"no photos under {SHARED / 'faces' / photos}"
    images, boxes, skipped, how = [], [], [], {}
    for f in files:
        img = dlib.load_rgb_image(str(f))
        box, found_by = _face_box(img, SETS[photos])
        how[found_by] = how.get(found_by, 0) + 1
        if box is None:
            skipped.append(f"{f.relative_to(SHARED)}: {found_by}")
            continue
        images.append(img)
        boxes.append(box)
    return images, boxes, skipped, how, files


@pytest.mark.media
@pytest.mark.parametrize("photos", list(SETS))
def test_same_descriptors_as_dlib(photos):
    images, boxes, skipped, how, files = _photo_set(photos)
    if skipped:
        warnings.warn(f"{photos}: {len(skipped)} photos skipped: " + "; ".join(skipped), stacklevel=2)
    assert len(skipped) <= len(files) // 50, f"too many photos without a face: {skipped}"
    min_cos, max_abs = assert_same_descriptors(images, boxes)
    print(f"\n{photos}: {len(images)}/{len(files)} photos (boxes: {how}), "
          f"min cosine {min_cos:.9f} (1 - cos = {1 - min_cos:.1e}), max abs difference {max_abs:.1e}")


def test_parse_matches_the_architecture():
    layers = read_dlib_net(WEIGHTS)
    kinds = [l.kind for l in layers]
    assert kinds[0] == "input" and kinds[-1] == "loss_metric"
    assert kinds.count("con") == kinds.count("affine") == 29
    assert kinds.count("add_prev") == 14 and kinds.count("skip") == 4
    assert layers[0].args["mean_rgb"] == pytest.approx([122.782, 117.001, 104.298], abs=1e-4)
    assert layers[1].tensors["weight"].shape == (32, 3, 7, 7)
    assert layers[-2].kind == "fc" and layers[-2].tensors["weight"].shape == (256, 128)
    strides = [l.args["stride"] for l in layers if l.kind == "con"]
    paddings = [l.args["padding"] for l in layers if l.kind == "con"]
    assert [p for s, p in zip(strides, paddings) if s == 2] == [0] * 5  # conv1 and 4 downsamplings
    assert all(p == 1 for s, p in zip(strides, paddings) if s == 1)


def _assert_one_line_error(excinfo, path: Path):
    message = str(excinfo.value)
    assert str(path) in message and "\n" not in message, message
    return message


ENGINES = {"torch": lambda path: DlibResNet(path, device="cpu"), "onnxruntime": lambda path: DlibOnnx(path)}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_missing_weights(tmp_path, engine):
    path = tmp_path / "nowhere.dat"
    with _cache_home(tmp_path / "cache"), pytest.raises(FacepipeError) as excinfo:
        ENGINES[engine](path)
    assert "reinstall face-recognition-models" in _assert_one_line_error(excinfo, path)


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("damage", ["half", "last byte cut", "byte added", "random bytes", "empty"])
def test_damaged_weights(tmp_path, damage, engine):
    data = WEIGHTS.read_bytes()
    damaged = {
        "half": data[: len(data) // 2],
        "last byte cut": data[:-1],
        "byte added": data + b"\0",
        "random bytes": np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes(),
        "empty": b"",
    }[damage]
    path = tmp_path / "damaged.dat"
    path.write_bytes(damaged)
    with _cache_home(tmp_path / "cache"), pytest.raises(FacepipeError) as excinfo:
        ENGINES[engine](path)
    message = _assert_one_line_error(excinfo, path)
    assert "not dlib's face recognition network" in message and "reinstall face-recognition-models" in message


def test_cache(tmp_path):
    chips = np.random.default_rng(1).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    with _cache_home(tmp_path / "cache"):
        first = DlibResNet(device="cpu").descriptors(chips)
        cached = list((tmp_path / "cache" / "facepipe").glob("*.pt"))
        assert len(cached) == 1
        assert list((tmp_path / "cache" / "facepipe").iterdir()) == cached  # published whole, no temp file left
        start = time.perf_counter()
        net = DlibResNet(device="cpu")
        seconds = time.perf_counter() - start
        print(f"\nload from the cache: {seconds * 1000:.0f} ms")
        assert seconds < 1.0
        np.testing.assert_array_equal(net.descriptors(chips), first)
        # a damaged cache is replaced without a word
        cached[0].write_bytes(b"not a torch file")
        np.testing.assert_array_equal(DlibResNet(device="cpu").descriptors(chips), first)
        assert cached[0].stat().st_size > 1_000_000
    # a cache folder that cannot be made: no cache, no error
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with _cache_home(blocker):
        np.testing.assert_array_equal(DlibResNet(device="cpu").descriptors(chips), first)


def test_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FacepipeError) as excinfo:
        DlibResNet(device="cuda")
    assert str(excinfo.value) == "embed.device is 'cuda' but no CUDA device is available; set embed.device: cpu"


def test_face_recognition_models_missing_is_told_once_the_same_way(monkeypatch):
    import importlib.util

    from facepipe.stages.embed.embedders import DlibEmbedder, DlibNativeEmbedder

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    messages = set()
    for make in (default_weights, lambda: DlibEmbedder("cpu"), DlibNativeEmbedder):
        with pytest.raises(FacepipeError) as excinfo:
            make()
        messages.add(str(excinfo.value))
    assert len(messages) == 1 and "pip install face-recognition-models" in messages.pop()


def test_bad_chips():
    with pytest.raises(ValueError):
        _net().descriptors(np.zeros((2, 160, 160, 3), np.uint8))


def test_same_vectors_as_dlib_on_every_still_of_the_shared_videos(built_run):
    """facepipe's `dlib` embedder (this network, batched) on each engine against `dlib-native`
    (dlib's own code), as the embed stage runs them, on every still of both shared videos."""
    import cv2

    from facepipe.stages.embed.embedders import DlibEmbedder, DlibNativeEmbedder
    from helpers import paths

    with _cache_home(_PRIVATE_CACHE["dir"]):
        mine = {engine: DlibEmbedder("cpu", engine) for engine in ENGINES}
    native = DlibNativeEmbedder()
    count, worst = 0, dict.fromkeys(mine, 1.0)
    for ep in ("hamilton_clip", "walking_and_pause"):
        stills_dir = paths(built_run, ep).stills_dir
        stills = json.loads((stills_dir / "manifest.json").read_text())["stills"]
        rgbs = [cv2.cvtColor(cv2.imread(str(stills_dir / s["file"])), cv2.COLOR_BGR2RGB) for s in stills]
        want = np.stack([native.embed(rgb, s["box_in_crop"], None) for rgb, s in zip(rgbs, stills)])
        for engine, embedder in mine.items():
            got = embedder.embed_chips(np.stack([embedder.chip(rgb, s["box_in_crop"]) for rgb, s in zip(rgbs, stills)]))
            cos = _cosines(got, want)
            assert cos.min() >= MIN_COSINE, (engine, ep, cos.min())
            worst[engine] = min(worst[engine], float(cos.min()))
        count += len(stills)
    print(f"\n{count} stills, min cosine {worst}")
    assert count >= 20


# ----------------------------------------------------------------------------------------
# ONNX Runtime (embed.engine: onnxruntime, auto on a CPU)


def _chips(photos: str) -> np.ndarray:
    """dlib's chips of a shared photo set's faces, cut as compute_face_descriptor cuts them."""
    images, boxes, *_ = _photo_set(photos)
    predictor = _dlib_models()[1]
    return np.stack([dlib.get_face_chip(img, predictor(img, dlib.rectangle(*map(int, box))), size=150, padding=0.25)
                     for img, box in zip(images, boxes)])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.media
def test_onnxruntime_gives_torchs_descriptors():
    """The ONNX model against DlibResNet on the real chips of both photo sets: all of them on one
    thread, as an embed worker runs it, in the stage's batches of 32; five one at a time; a batch
    on two threads."""
    chips = np.concatenate([_chips(photos) for photos in SETS])
    want = _net().descriptors(chips)
    worst, max_abs = 1.0, 0.0
    with _cache_home(_PRIVATE_CACHE["dir"]):
        one, two = DlibOnnx(threads=1), DlibOnnx(threads=2)
        for got in (one.descriptors(chips), np.concatenate([one.descriptors(c) for c in chips[:5]]),
                    two.descriptors(chips[:32])):
            cos = _cosines(got, want[: len(got)])
            assert cos.min() >= MIN_COSINE, (len(got), cos.min())
            worst, max_abs = min(worst, cos.min()), max(max_abs, float(np.abs(got - want[: len(got)]).max()))
    print(f"\n{len(chips)} chips: min cosine {worst:.9f}, max abs difference {max_abs:.1e}")
    assert len(chips) >= 140


def _onnx_files(folder: Path) -> list[Path]:
    return sorted((folder / "facepipe").glob("dlib_resnet_v1-*.onnx"))


def test_onnx_cache_is_reused_and_rebuilt_when_damaged(tmp_path):
    chips = np.random.default_rng(1).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    with _cache_home(tmp_path):
        first = DlibOnnx().descriptors(chips)
        cached = _onnx_files(tmp_path)
        assert len(cached) == 1 and list((tmp_path / "facepipe").iterdir()) == cached  # whole, no temp file left
        made = cached[0].stat()
        start = time.perf_counter()
        net = DlibOnnx()
        print(f"\nload from the cache: {(time.perf_counter() - start) * 1000:.0f} ms")
        again = cached[0].stat()
        assert (again.st_ino, again.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # opened, not rebuilt
        np.testing.assert_array_equal(net.descriptors(chips), first)
        whole = cached[0].read_bytes()
        for damage in (b"not an onnx model", whole[: len(whole) // 2], whole[:-40]):
            cached[0].write_bytes(damage)
            np.testing.assert_array_equal(DlibOnnx().descriptors(chips), first)  # built again, without a word
            assert cached[0].read_bytes() == whole
    # a cache folder that cannot be made: built in memory, no error
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with _cache_home(blocker):
        np.testing.assert_array_equal(DlibOnnx().descriptors(chips), first)


def test_onnx_cache_of_other_weights_is_not_used(tmp_path):
    """The cached model's name and recorded key are its weights' (sha256), graph version and opset;
    a file of that name recording another key (a foreign or stale model) is built again."""
    from facepipe.base.model_cache import file_id
    from facepipe.base.onnx_models import KEY, cache_path, model_key
    from facepipe.stages.embed.dlib_onnx import GRAPH_VERSION, MODEL_NAME

    chips = np.random.default_rng(2).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    with _cache_home(tmp_path):
        want = DlibOnnx().descriptors(chips)
        (cached,) = _onnx_files(tmp_path)
        key = model_key(MODEL_NAME, GRAPH_VERSION, [file_id(WEIGHTS)])
        assert cache_path(MODEL_NAME, key) == cached
        import onnx

        model = onnx.load(cached)
        assert {p.key: p.value for p in model.metadata_props}[KEY] == key
        # the same name holding a model recorded for something else: replaced
        model.metadata_props[0].value = key.replace(file_id(WEIGHTS)["sha256"], "0" * 64)
        onnx.save(model, cached)
        np.testing.assert_array_equal(DlibOnnx().descriptors(chips), want)
        assert {p.key: p.value for p in onnx.load(cached).metadata_props}[KEY] == key


WORKER = """
import hashlib, json, sys
import numpy as np
from facepipe.base.config import defaults
from facepipe.stages.embed.stage import _worker_embedder

embedder = _worker_embedder(defaults()["embed"])  # as an embed worker builds it: engine auto, cpu
vectors = embedder.embed_chips(np.load(sys.argv[1]))
print(json.dumps({"engine": embedder.engine, "torch": "torch" in sys.modules,
                  "vectors": hashlib.sha256(vectors.tobytes()).hexdigest()}))
"""


@pytest.mark.media
def test_embed_workers_on_onnxruntime_never_import_torch_and_share_one_cache(tmp_path):
    """Two fresh processes built as embed workers at once, on an empty cache: both build the model
    and publish it, one whole file is left, and neither imports torch; their vectors are the same."""
    np.save(tmp_path / "chips.npy", _chips("johns")[:4])
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "chips.npy")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["engine"] == "onnxruntime" and not r["torch"] for r in results), results
    assert results[0]["vectors"] == results[1]["vectors"]
    (cached,) = _onnx_files(tmp_path / "cache")
    assert list((tmp_path / "cache" / "facepipe").iterdir()) == [cached]  # no temp file left
    made = cached.stat()
    with _cache_home(tmp_path / "cache"):  # the file left is whole: it opens and gives the same vectors
        vectors = DlibOnnx().descriptors(np.load(tmp_path / "chips.npy"))
    assert hashlib.sha256(vectors.tobytes()).hexdigest() == results[0]["vectors"]
    assert cached.stat().st_mtime_ns == made.st_mtime_ns
