"""The user's corrections applied to an episode's clusters (the records: base.corrections).

A record names tracks by anchors (their times and boxes as the user saw them), never by cluster
ids. Each anchor is found again among the episode's current tracks (`match`): a current track is
the anchor's when the two share most of their time (MATCH_OVERLAP) and, at the anchor's sampled
times that the track covers, its boxes overlap the recorded ones (median IoU at least MATCH_IOU).
With the same tracks that is the very track; after detection or tracking ran again with other
settings (another detect.fps, tracks cut again) it is the track, or the pieces of it, that now
shows that face.

Records then apply in order, on top of the machine's clusters:

- merge: the clusters holding most of each group's tracks become one;
- split: the tracks leave their clusters, for a new person or the person of the "into" tracks;
- not: the tracks leave that person's cluster for a new person of their own;
- name / hide / unhide: the cluster holding most of the tracks is named, hidden or shown;

and clusters the user gave one name are one person. A record none of whose tracks (or whose
person, or "into") can be found changes nothing and is reported in clusters.json's "corrections"
as unmatched, with why: never dropped in silence, never applied to someone else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ...base.corrections import Record, effective, parse
from .grouping import track_screen_time

MATCH_IOU = 0.5
# A track is an anchor's (or a piece of it) only when they share at least this much of the
# shorter one's time: the shot after it, at the same place on screen, is someone else.
MATCH_OVERLAP = 0.5
# How far (s) from an anchor's sampled time a track's nearest detection may be, at least; more
# when the episode samples more sparsely than that.
MATCH_TOLERANCE_S = 0.3


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class TrackIndex:
    """The episode's current tracks, for finding anchors again."""

    def __init__(self, tracks: dict):
        self.tracks = {t["track_id"]: t for t in tracks["tracks"]}
        fps = tracks.get("sample_fps")
        self.tolerance = max(MATCH_TOLERANCE_S, 0.75 / fps) if fps else MATCH_TOLERANCE_S
        self.half_step = 0.5 / fps if fps else 0.125
        self._times = {tid: np.array([d["t"] for d in t["detections"]]) for tid, t in self.tracks.items()}
        self._span = {tid: (ts[0], ts[-1]) for tid, ts in self._times.items() if len(ts)}

    def match(self, anchor: dict) -> list[int]:
        """Ids of the current tracks that are the anchor's track (or its pieces), sorted: tracks
        that share most of their time with it (MATCH_OVERLAP of the shorter of the two) and whose
        boxes overlap its boxes at the anchor's sampled times they cover."""
        h, tol = self.half_step, self.tolerance
        a0, a1 = anchor["start_s"] - h, anchor["end_s"] + h
        found = []
        for tid, (start, end) in self._span.items():
            t0, t1 = start - h, end + h
            shared = min(a1, t1) - max(a0, t0)
            if shared <= 0 or shared < MATCH_OVERLAP * min(a1 - a0, t1 - t0):
                continue  # another moment (the shot before or after, at the same place)
            times, dets = self._times[tid], self.tracks[tid]["detections"]
            ious = []
            for t, *box in anchor["samples"]:
                if not t0 <= t <= t1:
                    continue
                k = int(np.argmin(np.abs(times - t)))
                if abs(times[k] - t) <= tol:
                    ious.append(_iou(box, dets[k]["box"]))
            if ious and float(np.median(ious)) >= MATCH_IOU:
                found.append(tid)
        return sorted(found)

    def match_all(self, anchors: list[dict]) -> tuple[set[int], int]:
        """The current tracks of all `anchors`, and how many anchors found none."""
        tids, lost = set(), 0
        for a in anchors:
            m = self.match(a)
            tids.update(m)
            lost += not m
        return tids, lost


@dataclass
class _Person:
    tracks: set[int]
    name: str | None = None
    named_by: str | None = None
    hidden: bool = False
    records: list[str] = field(default_factory=list)


class _Clusters:
    def __init__(self, result: dict):
        self.people = [_Person(set(c["track_ids"]), c.get("name"), c.get("named_by")) for c in result["clusters"]]
        self.loose = set(result["unassigned_track_ids"])

    def owner(self, tid: int) -> _Person | None:
        return next((p for p in self.people if tid in p.tracks), None)

    def holding_most(self, tids: set[int]) -> _Person | None:
        best, count = None, 0
        for p in self.people:
            n = len(p.tracks & tids)
            if n > count:
                best, count = p, n
        return best

    def take(self, tids: set[int]) -> None:
        for p in self.people:
            p.tracks -= tids
        self.loose -= tids

    def new(self, tids: set[int]) -> _Person:
        self.take(tids)
        person = _Person(set(tids))
        self.people.append(person)
        return person

    def merge(self, into: _Person, other: _Person) -> None:
        if other is into:
            return
        into.tracks |= other.tracks
        if into.named_by != "user" and other.named_by == "user":
            into.name, into.named_by = other.name, other.named_by
        into.hidden = into.hidden and other.hidden
        into.records += other.records
        self.people.remove(other)


def _apply(record: Record, state: _Clusters, index: TrackIndex) -> str | None:
    """Apply one record to `state`; returns why it could not be, or None."""
    d = record.data
    if record.op == "merge":
        found_groups = [tids for tids in (index.match_all(g)[0] for g in d["groups"]) if tids]
        if len(found_groups) < 2:
            return "the tracks of at most one of the clusters to merge are still there"
        people, loose = [], set()
        for tids in found_groups:
            person = state.holding_most(tids)
            if person is None:
                loose |= tids
            elif person not in people:
                people.append(person)
        target = people[0] if people else state.new(loose)
        for other in people[1:]:
            state.merge(target, other)
        state.take(loose)
        target.tracks |= loose
        target.records.append(record.id)
        return None
    tids, _lost = index.match_all(d["tracks"])
    if not tids:
        return "none of its tracks is there any more"
    if record.op == "split":
        if d.get("into"):
            into_tids, _ = index.match_all(d["into"])
            target = state.holding_most(into_tids - tids)
            if target is None:
                return "the person to move the tracks to is no longer there"
            state.take(tids)
            target.tracks |= tids
        else:
            target = state.new(tids)
        target.records.append(record.id)
        return None
    if record.op == "not":
        person_tids, _ = index.match_all(d["person"])
        person = state.holding_most(person_tids - tids)
        if person is None:
            return "that person is no longer there"
        moved = person.tracks & tids
        if moved:
            state.new(moved).records.append(record.id)
        return None
    target = state.holding_most(tids)
    if target is None:
        return "its tracks are in no cluster"
    if record.op == "name":
        target.name, target.named_by = d["name"].strip(), "user"
    else:
        target.hidden = record.op == "hide"
    target.records.append(record.id)
    return None


def person_id(track: dict) -> str:
    """A short id of a person that stays while their first track stays: from its start and box."""
    first = track["detections"][0]
    x1, y1, x2, y2 = first["box"]
    key = f"{first['t']:.1f}:{(x1 + x2) / 2:.0f},{(y1 + y2) / 2:.0f}"
    return "p" + hashlib.sha1(key.encode()).hexdigest()[:6]


def apply_corrections(result: dict, tracks: dict, records: list[Record], source: str | None = None) -> dict:
    """clusters.json `result` with the effective `records` (base.corrections.effective) applied.

    Adds "hidden" to every cluster, "named_by": "user" to those the user named, and a
    "corrections" summary: the file, the records applied and those that found nothing (why).
    Clusters are sorted again: shown ones by screen time, then hidden ones."""
    index = TrackIndex(tracks)
    state = _Clusters(result)
    applied, unmatched = [], []
    for record in records:
        why = _apply(record, state, index)
        if why:
            unmatched.append({"id": record.id, "op": record.op, "line": record.line, "why": why})
        else:
            applied.append(record.id)
        state.people = [p for p in state.people if p.tracks]
    by_name: dict[str, _Person] = {}
    for person in list(state.people):  # one name the user gave, one person
        if person.named_by == "user":
            if person.name in by_name:
                state.merge(by_name[person.name], person)
            else:
                by_name[person.name] = person
    by_id = index.tracks
    sample_fps = tracks.get("sample_fps")
    clusters = []
    for p in state.people:
        tids = sorted(p.tracks)
        first = min(tids, key=lambda t: (by_id[t]["detections"][0]["t"], t))
        c = {"track_ids": tids,
             "screen_time_s": round(sum(track_screen_time(by_id[t], sample_fps) for t in tids), 3),
             "person_id": person_id(by_id[first]), "hidden": p.hidden}
        if p.name:
            c["name"], c["named_by"] = p.name, p.named_by
        if p.records:
            c["corrected_by"] = sorted(set(p.records))
        clusters.append(c)
    clusters.sort(key=lambda c: (c["hidden"], -c["screen_time_s"], c["track_ids"][0]))
    assigned = {t for c in clusters for t in c["track_ids"]}
    result = {**result, "clusters": [{"cluster_id": k, **c} for k, c in enumerate(clusters)],
              "unassigned_track_ids": sorted(set(result["unassigned_track_ids"]) - assigned)}
    result["corrections"] = {"file": source, "applied": applied, "unmatched": unmatched}
    return result


def apply_corrections_file(result: dict, tracks: dict, path: str | None) -> dict:
    """apply_corrections with the records of the episode's corrections file (None: there is none)."""
    return apply_corrections(result, tracks, effective(parse(path)) if path else [], path)


def corrections_summary(result: dict) -> str:
    """The cluster job's last message: clusters, hidden ones, and the corrections that found nothing."""
    hidden = sum(c.get("hidden", False) for c in result["clusters"])
    text = f"{len(result['clusters']) - hidden} clusters" + (f", {hidden} hidden" if hidden else "")
    report = result.get("corrections") or {}
    if report.get("applied"):
        text += f"; {len(report['applied'])} corrections applied"
    if report.get("unmatched"):
        text += f"; {len(report['unmatched'])} corrections found nothing (facepipe correct {result['episode']} list)"
    return text
