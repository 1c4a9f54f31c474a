"""An episode's moments on its page: its own video (the file episode discovery names), the people
on screen as lanes of tracks for the interactive timeline, and the captions (appearances.vtt).

The lanes are those of timeline.png (stages.appearances: the people shown, longest on screen
first, hidden people left out, those past MAX_LANES in one lane, unassigned faces in the last),
read from appearances.csv with clusters.json and video.json, so the page draws what the PNG shows.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from urllib.parse import quote

from ...base import atomic
from ...base.layout import EpisodePaths

# What a browser is told each video is (by its file's suffix, base.media's list); a browser
# plays what it can (an H.264 MP4 or a WebM nearly everywhere) and the page says when it cannot.
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska",
               ".mov": "video/quicktime", ".avi": "video/x-msvideo", ".gif": "image/gif", ".mpg": "video/mpeg",
               ".mpeg": "video/mpeg", ".ts": "video/mp2t", ".wmv": "video/x-ms-wmv", ".flv": "video/x-flv"}
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def video_type(path: Path) -> str:
    return VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream")


def video_file(path: Path | None) -> Path | None:
    """The regular file an episode's video is once links are followed (the videos folder may link
    to the files where they live, as snakemake reads them), or None."""
    try:
        real = path.resolve(strict=True) if path is not None else None
    except (OSError, RuntimeError):
        return None
    return real if real is not None and real.is_file() else None


def range_problem(header: str | None, size: int) -> tuple[int, str] | None:
    """(status, reason) for a Range header that cannot be served from a file of `size` bytes: 400
    when it is no byte range, 416 when no part of it lies in the file; None for no header or one the
    file answers (Starlette's FileResponse then sends 206 and its Content-Range)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    parts = [_RANGE.match(p) for p in spec.split(",")] if unit.strip().lower() == "bytes" and spec else [None]
    if any(m is None or not (m[1] or m[2]) or (m[1] and m[2] and int(m[1]) > int(m[2])) for m in parts):
        return 400, f"Range {header!r} refused: ask for bytes=START-END, START- or -LENGTH"
    if all((m[1] and int(m[1]) >= size) or (not m[1] and int(m[2]) == 0) for m in parts):
        return 416, f"Range {header!r} refused: the video has {size} bytes"
    return None


def _stamp(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def timeline(paths: EpisodePaths, video: Path | None) -> dict:
    """What the page draws: {built, duration_s, lanes: [{label, cluster_id, person_id, seconds,
    tracks: [{track_id, start_s, end_s, label}]}], people, vtt, video: {url, name, type, start_s}
    | None (start_s: where facepipe's time 0 is on the player's clock, base.video.stream_start_s),
    track_times: [[track_id, start_s, end_s]] (every track, a hidden person's too: a still plays its
    moment), problem}. A lane's cluster_id is null for the lane of the people past MAX_LANES and for
    the unassigned faces' (their tracks then carry their own label)."""
    from ...base.video import stream_start_s
    from ...stages.appearances import MAX_LANES, duration_s, person_label, shown_people

    ep = quote(paths.episode)
    shown_video = None
    if video_file(video) is not None:
        shown_video = {"url": f"/files/{ep}/video", "name": video.name, "type": video_type(video),
                       "start_s": round(stream_start_s(video), 6)}
    out = {"built": False, "duration_s": None, "lanes": [], "people": 0, "vtt": None, "video": shown_video,
           "problem": None}
    made, clustered = _stamp(paths.appearances), _stamp(paths.clusters)
    if made is None or clustered is None or made < clustered:  # not built, or being built again
        return out
    clusters, problem = atomic.read_json(paths.clusters)
    info, _ = atomic.read_json(paths.video_info)
    try:
        with open(paths.appearances, newline="", encoding="utf-8") as fh:
            rows = [{"cluster_id": int(r["cluster_id"]) if r["cluster_id"] else None, "track_id": int(r["track_id"]),
                     "start_s": float(r["start_s"]), "end_s": float(r["end_s"]), "seconds": float(r["seconds"]),
                     "hidden": r["hidden"] == "true"} for r in csv.DictReader(fh)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {**out, "problem": f"{paths.appearances}: not readable ({exc}); build Cluster again"}
    if clusters is None:
        return {**out, "problem": problem}
    people = shown_people(clusters)
    own = people if len(people) <= MAX_LANES else people[:MAX_LANES - 1]
    label = {c["cluster_id"]: person_label(c) for c in clusters.get("clusters", [])}
    by_cluster: dict[int | None, list[dict]] = {}
    for r in rows:
        if not r["hidden"]:
            by_cluster.setdefault(r["cluster_id"], []).append(
                {"track_id": r["track_id"], "start_s": r["start_s"], "end_s": r["end_s"],
                 "label": label.get(r["cluster_id"], "unassigned face")})
    lanes = [{"label": person_label(c), "cluster_id": c["cluster_id"], "person_id": c.get("person_id"),
              "seconds": c.get("screen_time_s"), "tracks": by_cluster.get(c["cluster_id"], [])} for c in own]
    rest = people[len(own):]
    if rest:
        lanes.append({"label": f"{len(rest)} more people", "cluster_id": None, "person_id": None,
                      "seconds": round(sum(c.get("screen_time_s") or 0 for c in rest), 3),
                      "tracks": sorted((t for c in rest for t in by_cluster.get(c["cluster_id"], [])),
                                       key=lambda t: t["start_s"])})
    if by_cluster.get(None):
        lanes.append({"label": "unassigned faces", "cluster_id": None, "person_id": None,
                      "seconds": round(sum(r["seconds"] for r in rows if r["cluster_id"] is None), 3),
                      "tracks": by_cluster[None]})
    vtt = _stamp(paths.appearances_vtt)
    return {**out, "built": True, "duration_s": round(duration_s(info or {}, rows), 3), "lanes": lanes,
            "people": len(people), "vtt": f"/files/{ep}/appearances.vtt?v={vtt}" if vtt else None,
            "track_times": [[r["track_id"], r["start_s"], r["end_s"]] for r in rows]}
