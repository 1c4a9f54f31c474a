"""The contact sheet: one row of stills per cluster, so a person can check clusters at a glance
(drawn by base.sheet)."""

from __future__ import annotations

from pathlib import Path

from ...base import sheet

MAX_PER_ROW = 8


def render(clusters: dict, manifest: dict, stills_dir: str | Path, out_path: str | Path) -> None:
    """One row per cluster: its number, its name (from reference photos, naming.py), its tracks and
    screen time, and the best still of each of its tracks, best first."""
    stills_dir = Path(stills_dir)
    by_track: dict[int, list[dict]] = {}
    for s in manifest["stills"]:
        by_track.setdefault(s["track_id"], []).append(s)
    rows = []
    for c in clusters["clusters"]:
        picks = [max(by_track[t], key=lambda s: s["quality"]) for t in c["track_ids"] if t in by_track]
        picks.sort(key=lambda s: -s["quality"])
        rows.append(sheet.Row(f"#{c['cluster_id']}", c.get("name"),
                              f"{len(c['track_ids'])} track{'s' * (len(c['track_ids']) != 1)}, "
                              f"{c['screen_time_s']:.1f} s",
                              [stills_dir / s["file"] for s in picks]))
    sheet.write(out_path, f"{clusters['episode']}: {len(clusters['clusters'])} clusters ({clusters['embedder']})",
                rows, MAX_PER_ROW, "no faces found in this episode")
