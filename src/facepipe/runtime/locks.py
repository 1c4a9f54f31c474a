"""Lock files guarding the state files that several processes rewrite (filelock)."""

from __future__ import annotations

import os

from ..base.atomic import current_umask


def lock_for(path: str | os.PathLike, timeout: float = 30.0):
    """The lock file guarding `path` (`<path>.lock`), created with the user's umask."""
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=timeout, mode=0o666 & ~current_umask())
