"""Identifying processes safely: a pid plus its start time names one process, even after pid reuse."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def hostname() -> str:
    return socket.gethostname()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def parent(pid: int) -> int:
    """The parent pid of `pid` (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def is_alive(pid: int, expected_start: int | None) -> bool:
    """True if `pid` runs and is the same process that was recorded (same start time)."""
    now = start_time(pid)
    return now is not None and (expected_start is None or now == expected_start)


def children(pid: int) -> list[int]:
    """All descendants of `pid` (depth first), read from /proc."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent_of[int(entry.name)] = parent(int(entry.name))
            except ValueError:
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out.extend(kids)
        todo.extend(kids)
    return out


def self_identity() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": hostname(), "pid_start_time": start_time(pid)}
