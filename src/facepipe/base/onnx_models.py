"""ONNX models made from installed weights, cached, and opened with ONNX Runtime.

`cached_session` builds a model once from the weights files it is made of and publishes it in the
cache folder (base.model_cache: $XDG_CACHE_HOME/facepipe, else ~/.cache/facepipe) as
`{name}-{key}.onnx`, the key a digest of those files' sha256, the graph's version and the opset;
a later job opens it with onnxruntime alone (no torch, no onnx). The key is also recorded in the
model's metadata: a cached file that does not open, or records another key (damaged, cut short,
foreign), is built again and replaced. Jobs that build it at once each publish a whole file by
atomic rename. A cache folder that cannot be written is no error: the model is then built in
memory for this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from . import atomic
from .model_cache import cache_dir, file_id
from .onnx_graph import OPSET

KEY = "facepipe_key"  # the metadata entry holding the model's key


def options(threads: int):
    """Session options: `threads` compute threads (the caller's, as torch.set_num_threads would be),
    operators run one after another."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    return opts


def _open(model: str | bytes, threads: int):
    import onnxruntime as ort

    return ort.InferenceSession(model, options(threads), providers=["CPUExecutionProvider"])


def model_key(name: str, version: int, sources: list[dict]) -> str:
    """What a cached model is made of, as text: its name, graph version, opset, and the weights."""
    return json.dumps({"name": name, "version": version, "opset": OPSET,
                       "sources": [[s["size"], s["sha256"]] for s in sources]}, sort_keys=True)


def cache_path(name: str, key: str) -> Path:
    return cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"


def cached_session(name: str, version: int, weights: list[Path], build: Callable[[dict], bytes], threads: int,
                   unreadable: Callable[[Path, OSError], Exception]):
    """An onnxruntime session of model `name` (graph `version`) made from the `weights` files by
    `build(metadata)` (the serialized model, carrying `metadata` in its properties), from the
    cache when it holds this very model. `unreadable(path, error)`: the error to raise for a
    weights file that cannot be read."""
    sources = []
    for path in weights:
        try:
            sources.append(file_id(path))
        except OSError as e:
            raise unreadable(path, e) from None
    key = model_key(name, version, sources)
    path = cache_path(name, key)
    if path.is_file():
        try:
            session = _open(str(path), threads)
            if session.get_modelmeta().custom_metadata_map.get(KEY) == key:
                return session
        except Exception:  # noqa: BLE001 - whatever is wrong with the file, the model is built again
            pass
    data = build({KEY: key})
    # a cache folder that cannot be made, a full disk: go without (atomic_path removes its temp file)
    with contextlib.suppress(OSError), atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return _open(data, threads)
