"""Corrections: the user's own records of what the clustering got wrong, kept as build inputs.

One file per episode and one per season under the data root (layout.EPISODE_CORRECTIONS,
layout.SEASON_CORRECTIONS):

    corrections/episodes/{ep}.jsonl
    corrections/seasons/{season}.jsonl

Each line is one record, a JSON object, appended and never rewritten: the file is the history.
Blank lines and lines starting with `#` are comments. Every record has

    {"id": "r3f9a1c2", "at": "2026-12-01T22:41:07Z", "op": ..., ...}

and, by `op` (an anchor is one track as the user saw it; see `anchor`):

    merge    "groups": [[anchor, ...], ...]       these groups of tracks are one person
    split    "tracks": [anchor, ...], "into": [anchor, ...] | null
                                                  these tracks are someone else: a new person, or
                                                  the person of the "into" tracks (in a season:
                                                  "person": [anchor, ...], the cast member that
                                                  appearance leaves)
    name     "tracks": [anchor, ...], "name": "Full Name"
    hide     "tracks": [anchor, ...]              not of interest (a passer-by, a poster)
    unhide   "tracks": [anchor, ...]
    not      "tracks": [anchor, ...], "person": [anchor, ...]
                                                  these tracks are never that person
    undo     "record": "<id>"                     that record no longer applies (an undo of an
                                                  undo applies the record again)

A season's anchors also carry "episode". Records never name cluster or cast ids, which every
rerun renumbers: they name tracks by their times and boxes, so they still find their faces when
detection or tracking is rebuilt with other settings (stages.cluster.corrections).

Writers append under `<file>.lock` and publish the whole file atomically (temp name + rename):
two writers lose nothing, a reader (a cluster job) never sees half a line, and a full disk
leaves the file as it was. A hand edit is welcome; `parse` refuses a bad line naming the file,
the line and the fix, before any job runs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from . import atomic, clock
from .errors import FacepipeError

OPS = ("merge", "split", "name", "hide", "unhide", "not", "undo")
# Box samples an anchor keeps of its track (first, last and evenly between).
ANCHOR_SAMPLES = 5
_NAME_MAX = 200


@dataclass(frozen=True)
class Record:
    line: int  # 1-based line of the file
    data: dict

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def op(self) -> str:
        return self.data["op"]


def anchor(track: dict, episode: str | None = None) -> dict:
    """A track (tracks.json) as a correction records it: its id then, its start and end times and
    a few (t, box) samples along it."""
    dets = track["detections"]
    n = len(dets)
    picks = sorted({round(k * (n - 1) / (ANCHOR_SAMPLES - 1)) for k in range(ANCHOR_SAMPLES)}) if n > 1 else [0]
    out = {"track_id": track["track_id"], "start_s": round(float(dets[0]["t"]), 3),
           "end_s": round(float(dets[-1]["t"]), 3),
           "samples": [[round(float(dets[k]["t"]), 3), *(round(float(v), 1) for v in dets[k]["box"])] for k in picks]}
    return {"episode": episode, **out} if episode else out


def new_record(op: str, **fields) -> dict:
    """A record to append: a fresh id and the time now, then `fields`."""
    return {"id": "r" + secrets.token_hex(4), "at": clock.utc_now(), "op": op, **fields}


# --- reading ---------------------------------------------------------------------------------------
class _Bad(Exception):
    pass


def _check_anchor(a, season: bool) -> None:
    if not isinstance(a, dict):
        raise _Bad("an anchor is not an object")
    for key in ("start_s", "end_s"):
        if not isinstance(a.get(key), (int, float)):
            raise _Bad(f"an anchor has no number {key!r}")
    if a["end_s"] < a["start_s"]:
        raise _Bad("an anchor ends before it starts")
    samples = a.get("samples")
    if not isinstance(samples, list) or not samples or not all(
            isinstance(s, list) and len(s) == 5 and all(isinstance(v, (int, float)) for v in s) for s in samples):
        raise _Bad("an anchor's 'samples' is not a list of [t, x1, y1, x2, y2]")
    if season and not isinstance(a.get("episode"), str):
        raise _Bad("a season's anchor has no 'episode'")


def _check_anchors(value, key: str, season: bool, allow_null: bool = False) -> None:
    if value is None and allow_null:
        return
    if not isinstance(value, list) or not value:
        raise _Bad(f"{key!r} is not a non-empty list of anchors")
    for a in value:
        _check_anchor(a, season)


def _check(data, season: bool, seen: dict[str, int]) -> None:
    if not isinstance(data, dict):
        raise _Bad("a record is a JSON object")
    rid, op = data.get("id"), data.get("op")
    if not isinstance(rid, str) or not rid:
        raise _Bad("the record has no 'id'")
    if rid in seen:
        raise _Bad(f"id {rid!r} is also used on line {seen[rid]}")
    if not isinstance(data.get("at"), str):
        raise _Bad("the record has no 'at' time")
    if op not in OPS:
        raise _Bad(f"'op' {op!r} is none of {', '.join(OPS)}")
    if op == "undo":
        if data.get("record") not in seen:
            raise _Bad(f"undo names record {data.get('record')!r}, which no earlier line holds")
        return
    if op == "merge":
        groups = data.get("groups")
        if not isinstance(groups, list) or len(groups) < 2:
            raise _Bad("'groups' of a merge is not a list of two or more lists of anchors")
        for g in groups:
            _check_anchors(g, "groups", season)
        return
    _check_anchors(data.get("tracks"), "tracks", season)
    if op == "split" and season:
        _check_anchors(data.get("person"), "person", season)
    elif op == "split":
        _check_anchors(data.get("into"), "into", season, allow_null=True)
    elif op == "not":
        _check_anchors(data.get("person"), "person", season)
    elif op == "name":
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX or "\n" in name:
            raise _Bad(f"'name' is not a name of 1 to {_NAME_MAX} characters on one line")


def parse(path: str | Path, season: bool = False) -> list[Record]:
    """The records of a corrections file (none if there is no file). Raises FacepipeError naming
    the file, the line and the fix for a line that is not a valid record."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise FacepipeError(f"{path}: cannot read the corrections ({exc}); fix or remove the file") from None
    records, seen = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
            _check(data, season, seen)
        except (ValueError, _Bad) as exc:
            why = f"not JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise FacepipeError(f"{path}:{number}: {why}; fix the line, or delete it (or start it with #) "
                                "to drop that correction") from None
        seen[data["id"]] = number
        records.append(Record(number, data))
    return records


def effective(records: list[Record]) -> list[Record]:
    """The records that apply, in order: every record but undo records and the ones undone
    (an undo that is itself undone undoes nothing)."""
    active = {r.id: True for r in records}
    for r in reversed(records):  # an undo only ever names an earlier record
        if r.op == "undo" and active[r.id]:
            active[r.data["record"]] = False
    return [r for r in records if r.op != "undo" and active[r.id]]


# --- writing ---------------------------------------------------------------------------------------
def append(path: str | Path, record: dict, season: bool = False, timeout: float = 30.0) -> dict:
    """Append `record` (new_record) to the corrections file, under its lock, publishing the whole
    file atomically; returns the record. The file as it was is checked first, so a record is never
    appended to a file the build would refuse."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        existing = parse(path, season)
        _check_one(path, record, season, {r.id: r.line for r in existing})
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic.write_text(path, old + json.dumps(record, ensure_ascii=False) + "\n")
    return record


def _check_one(path: Path, record: dict, season: bool, seen: dict[str, int]) -> None:
    try:
        _check(record, season, seen)
    except _Bad as exc:
        raise FacepipeError(f"{path}: the new correction is not valid ({exc})") from None


def digest(path: str | Path) -> str:
    """A short fingerprint of the file's content ('' when there is none): the cluster rule's
    params carry it, so a record added while a cluster job ran still reruns it next time."""
    import hashlib

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return ""
    return hashlib.sha256(data).hexdigest()[:16]
