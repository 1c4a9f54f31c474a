"""The folder where facepipe keeps what it makes from installed model weights (dlib's parsed
network, the ONNX models), and how a weights file is identified there.

The folder is $XDG_CACHE_HOME/facepipe, ~/.cache/facepipe where XDG_CACHE_HOME is not set. Files
in it are named by the contents of the weights they were made from, so a reinstalled or changed
package never meets a stale file, and they are published atomically (base.atomic), so jobs that
make the same file at once (detect chunks side by side) each write their own temporary file and
a reader sees a whole file or none.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facepipe"


def file_id(path: str | os.PathLike) -> dict:
    """A weights file identified by its contents: size and sha256 (~25 ms for 22 MB). OSError if
    it cannot be read."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}
