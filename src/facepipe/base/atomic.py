"""Atomic file publication: readers see the old file or the whole new one, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _match_umask(path: Path) -> None:
    # mkstemp creates 0600 files; published files follow the user's umask like any other file.
    os.chmod(path, 0o666 & ~current_umask())


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temporary siblings a killed writer of `path` left behind (`.name.XXXX.tmp*`)."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*.tmp*"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    `suffix` keeps a file extension for writers that infer the format from it (e.g. cv2.imwrite).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path, suffix)
    try:
        yield tmp
        _match_umask(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def encode_image(suffix: str, image, quality: int = 90) -> bytes:
    """The image encoded by OpenCV in the format of `suffix` (.jpg or .png)."""
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise ValueError(f"image could not be encoded as {suffix}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image, quality: int = 90) -> None:
    """Encode with OpenCV (format from the file name: .jpg or .png) and publish atomically; a full
    disk raises OSError(ENOSPC) naming the file (cv2.imwrite would only return False)."""
    path = Path(path)
    data = encode_image(path.suffix, image, quality)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def read_json(path: str | os.PathLike) -> tuple[dict | None, str | None]:
    """Read a JSON state file: (data, None), or (None, what is wrong with it) without raising.

    A missing file is (None, None). Damaged content (garbage, half a document) is reported, so the
    caller can show it and the next writer can replace it.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: unreadable ({exc.strerror})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"{path}: damaged, not valid JSON ({exc.msg} at line {exc.lineno}); the next run rewrites it"
    if not isinstance(data, dict):
        return None, f"{path}: damaged, not a JSON object; the next run rewrites it"
    return data, None
