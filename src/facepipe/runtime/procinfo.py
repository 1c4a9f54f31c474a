"""Identifying processes safely: a pid plus its start time names one process, even after pid reuse."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def hostname() -> str:
    return socket.gethostname()


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat[stat.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def parent(pid: int) -> int:
    """The parent pid of `pid` (0 if it is gone)."""
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def group(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


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
