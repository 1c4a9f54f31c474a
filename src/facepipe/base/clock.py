"""Time stamps in state files: UTC, ISO 8601 with milliseconds and a Z."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(stamp: str | None) -> float | None:
    """Seconds since the epoch of a utc_now() stamp, or None if there is no readable stamp."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age_s(stamp: str | None) -> float | None:
    """Seconds since a utc_now() stamp, or None if there is no readable stamp."""
    t = parse(stamp)
    return None if t is None else time.time() - t
