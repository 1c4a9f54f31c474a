"""Appearances: who is on screen when in an episode, from its clusters.json, tracks.json and
video.json.

- appearances.csv: one row per track, in time order: its cluster (empty for an unassigned track),
  person id, name, track id, start, end, seconds on screen (cluster.track_screen_time, as the
  clusters' screen time counts them) and whether the user hid its person.
- timeline.png: one lane per person shown, the longest on screen at the top, named where named
  ("person N" after the cluster's number otherwise), on a m:ss time axis over the whole episode;
  the people past MAX_LANES share one lane, and unassigned faces have one of their own.
- appearances.vtt: WebVTT cues of who is on screen ("Ada, person 3"), for any video player; a
  person's tracks less than one sampled frame apart are one stay on screen, and a stretch shorter
  than half a sampled frame is taken into the next; hidden people and unassigned faces are left out.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..base import atomic, chart
from .cluster import person_id, track_screen_time

MAX_LANES = 40  # the timeline's lanes of people; the rest share one
LANE_IN = 0.3  # a lane's height, inches
NAME_CHARS = 28  # a longer name is cut on the timeline
COLUMNS = ["cluster_id", "person_id", "name", "track_id", "start_s", "end_s", "seconds", "hidden"]


def person_label(cluster: dict) -> str:
    """A person's name where named, else "person N" (N: the cluster's number on the contact sheet)."""
    return cluster.get("name") or f"person {cluster['cluster_id']}"


def appearances(clusters: dict, tracks: dict) -> list[dict]:
    """One row per track (COLUMNS), ordered by start time then track id."""
    by_id = {t["track_id"]: t for t in tracks["tracks"]}
    owner = {tid: c for c in clusters["clusters"] for tid in c["track_ids"]}
    first = {c["cluster_id"]: min((by_id[t] for t in c["track_ids"]), key=lambda t: (t["detections"][0]["t"],
                                                                                     t["track_id"]))
             for c in clusters["clusters"]}
    sample_fps = tracks.get("sample_fps")
    rows = []
    for tr in tracks["tracks"]:
        c = owner.get(tr["track_id"])
        start = float(tr["detections"][0]["t"])
        seconds = track_screen_time(tr, sample_fps)
        rows.append({"cluster_id": c["cluster_id"] if c else None,
                     "person_id": (c.get("person_id") or person_id(first[c["cluster_id"]])) if c else None,
                     "name": c.get("name") if c else None, "track_id": tr["track_id"],
                     "start_s": round(start, 3), "end_s": round(start + seconds, 3), "seconds": round(seconds, 3),
                     "hidden": bool(c.get("hidden")) if c else False})
    rows.sort(key=lambda r: (r["start_s"], r["track_id"]))
    return rows


def write_csv(rows: list[dict], path: str | Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(["" if r["cluster_id"] is None else r["cluster_id"], r["person_id"] or "", r["name"] or "",
                         r["track_id"], f"{r['start_s']:.3f}", f"{r['end_s']:.3f}", f"{r['seconds']:.3f}",
                         "true" if r["hidden"] else "false"])
    atomic.write_text(path, out.getvalue())


def track_times(path: str | Path) -> dict[int, tuple[float, float]]:
    """Track id -> (start_s, end_s), read back from an appearances.csv (write_csv)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {int(r["track_id"]): (float(r["start_s"]), float(r["end_s"])) for r in csv.DictReader(fh)}


def duration_s(video: dict, rows: list[dict]) -> float:
    """The episode's length: its decoded frames over its frame rate (at least its last track's end)."""
    length = video["frame_count"] / video["fps"] if video.get("fps") and video.get("frame_count") else 0.0
    return max([length, *(r["end_s"] for r in rows)])


def shown_people(clusters: dict) -> list[dict]:
    """The clusters shown (not hidden), longest on screen first."""
    return sorted((c for c in clusters["clusters"] if not c.get("hidden")),
                  key=lambda c: (-c["screen_time_s"], c["cluster_id"]))


def lanes(clusters: dict, rows: list[dict]) -> list[tuple[str, list[tuple[float, float]], float, bool]]:
    """(label, [(start, seconds)], total seconds, is a person) per lane, top lane first."""
    people = shown_people(clusters)
    spans: dict[int, list[tuple[float, float]]] = {}
    unassigned = []
    for r in rows:
        if r["cluster_id"] is None:
            unassigned.append((r["start_s"], r["seconds"]))
        elif not r["hidden"]:
            spans.setdefault(r["cluster_id"], []).append((r["start_s"], r["seconds"]))
    own = people if len(people) <= MAX_LANES else people[:MAX_LANES - 1]
    out = [(chart.shorten(person_label(c), NAME_CHARS), spans.get(c["cluster_id"], []), c["screen_time_s"], True)
           for c in own]
    rest = people[len(own):]
    if rest:
        out.append((f"{len(rest)} more people", [s for c in rest for s in spans.get(c["cluster_id"], [])],
                    sum(c["screen_time_s"] for c in rest), False))
    if unassigned:
        out.append(("unassigned faces", unassigned, sum(s for _t, s in unassigned), False))
    return out


def draw_timeline(clusters: dict, rows: list[dict], video: dict):
    """The timeline as a matplotlib figure (write_timeline publishes it; tests read its text)."""
    plt = chart.pyplot()
    drawn = lanes(clusters, rows)
    length = duration_s(video, rows)
    width = 14.0
    height = 1.5 + LANE_IN * max(2, len(drawn))
    fig, ax = plt.subplots(figsize=(width, height), dpi=chart.DPI, layout="constrained")
    title = f"{clusters['episode']}: who is on screen when"
    if drawn:
        colours = [c for k, c in enumerate(plt.get_cmap("tab20").colors) if k not in (14, 15)]  # grey: not a person
        places = chart.decimals([total for _l, _s, total, _p in drawn], most=2)
        for k, (_label, spans, _total, person) in enumerate(drawn):
            colour = colours[k % len(colours)] if person else (0.55, 0.55, 0.55)
            # an edge as wide as a pixel keeps a one-second stay visible on a 44-minute axis
            ax.broken_barh(spans, (k - 0.36, 0.72), facecolors=colour, edgecolors=colour, linewidth=0.6)
        ax.set_yticks(range(len(drawn)), [label for label, *_rest in drawn])
        right = ax.secondary_yaxis("right")
        right.set_yticks(range(len(drawn)), [chart.clock(total, places) for _l, _s, total, _p in drawn])
        right.tick_params(length=0)
        ax.set_ylim(len(drawn) - 0.5, -0.5)
        title += f" ({len(shown_people(clusters))} people, {chart.clock(length)})"
    else:
        ax.text(0.5, 0.5, "no face found in this episode", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    step = chart.time_step(length)
    ticks = [k * step for k in range(int(length // step) + 1)]
    ax.set_xticks(ticks, [chart.clock(t) for t in ticks])
    ax.set_xlim(0, max(length, 1.0))
    ax.set_xlabel("time in the episode (m:ss); right: seconds on screen in all (m:ss)")
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    chart.fit_title(fig, fig.suptitle(title, x=0.01, ha="left"))
    return fig


def write_timeline(clusters: dict, rows: list[dict], video: dict, path: str | Path) -> None:
    chart.save_png(draw_timeline(clusters, rows, video), path)


def cues(clusters: dict, rows: list[dict], sample_fps: float | None) -> list[tuple[float, float, list[str]]]:
    """(start, end, the names of who is on screen) for every stretch where the same people are on
    screen, in time order; hidden people and unassigned faces left out."""
    order = {c["cluster_id"]: k for k, c in enumerate(shown_people(clusters))}
    label = {c["cluster_id"]: person_label(c) for c in clusters["clusters"]}
    gap = (1.0 / sample_fps if sample_fps else 0.0) + 1e-6
    stays: dict[int, list[list[float]]] = {}
    for r in sorted(rows, key=lambda r: r["start_s"]):
        if r["cluster_id"] is None or r["hidden"]:
            continue
        mine = stays.setdefault(r["cluster_id"], [])
        if mine and r["start_s"] <= mine[-1][1] + gap:
            mine[-1][1] = max(mine[-1][1], r["end_s"])
        else:
            mine.append([r["start_s"], r["end_s"]])
    events: dict[float, list[tuple[int, int]]] = {}  # time -> (person, +1 arrives / -1 leaves)
    for cid, spans in stays.items():
        for s, e in spans:
            events.setdefault(s, []).append((cid, 1))
            events.setdefault(e, []).append((cid, -1))
    out: list[tuple[float, float, list[str]]] = []
    here: set[int] = set()
    times = sorted(events)
    for a, b in zip(times, times[1:]):
        for cid, change in events[a]:
            if change < 0:
                here.discard(cid)
        here |= {cid for cid, change in events[a] if change > 0}
        if not here:
            continue
        out.append((a, b, [label[cid] for cid in sorted(here, key=order.get)]))
    # A stretch shorter than half a sampled frame is below what the samples tell apart (a track
    # counts one sample interval past its last detection, so it overlaps the next shot's first):
    # the next stretch, where it follows at once, starts there instead.
    shortest = 0.5 / sample_fps if sample_fps else 0.0
    kept: list[tuple[float, float, list[str]]] = []
    for k, (a, b, names) in enumerate(out):
        if b - a < shortest and k + 1 < len(out) and abs(out[k + 1][0] - b) < 1e-9:
            out[k + 1] = (a, *out[k + 1][1:])
            continue
        if kept and kept[-1][2] == names and abs(kept[-1][1] - a) < 1e-9:
            kept[-1] = (kept[-1][0], b, names)
        else:
            kept.append((a, b, names))
    return kept


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _vtt_text(text: str) -> str:
    text = " ".join(text.split())  # one line: a blank line would end the cue
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(clusters: dict, rows: list[dict], sample_fps: float | None, stream_start_s: float = 0.0) -> str:
    """The captions on the video file's own clock, where players count: facepipe's times (from the
    video stream's first frame) plus where that frame lies in the file (base.video.stream_start_s)."""
    lines = ["WEBVTT", "", f"NOTE who is on screen in {_vtt_text(clusters['episode'])} (facepipe)", ""]
    for k, (a, b, names) in enumerate(cues(clusters, rows, sample_fps), start=1):
        a, b = a + stream_start_s, b + stream_start_s
        lines += [str(k), f"{_vtt_time(a)} --> {_vtt_time(b)}", _vtt_text(", ".join(names)), ""]
    return "\n".join(lines)


def write_vtt(clusters: dict, rows: list[dict], sample_fps: float | None, path: str | Path,
              stream_start_s: float = 0.0) -> None:
    atomic.write_text(path, vtt(clusters, rows, sample_fps, stream_start_s))


def summary(clusters: dict, rows: list[dict]) -> str:
    """The job's last message: people on screen, tracks, and those unassigned or hidden."""
    people = len(shown_people(clusters))
    unassigned = sum(r["cluster_id"] is None for r in rows)
    hidden = sum(r["hidden"] for r in rows)
    text = f"{people} {'person' if people == 1 else 'people'} on screen in {len(rows)} tracks"
    extra = [f"{unassigned} unassigned"] * bool(unassigned) + [f"{hidden} of hidden people"] * bool(hidden)
    return text + (f" ({', '.join(extra)})" if extra else "")
