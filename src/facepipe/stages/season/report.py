"""A season's tables and pictures: screen_time.csv (cast by episode, seconds), screen_time.png
(the same as a chart) and cast.jpg (each cast member's best still in every episode)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np

from ...base import atomic, sheet

MAX_EPISODES = 16  # the cast sheet shows a cast member in this many episodes at most
CHART_MAX_CAST = 40  # the chart shows the cast members with the most screen time


def label(member: dict) -> str:
    return f"#{member['cast_id']} {member['name']}" if member.get("name") else f"#{member['cast_id']}"


def seconds_table(cast: dict) -> tuple[list[str], list[str], np.ndarray]:
    """(row labels, episodes, seconds[cast member, episode])."""
    episodes = cast["episodes"]
    column = {ep: k for k, ep in enumerate(episodes)}
    table = np.zeros((len(cast["cast"]), len(episodes)))
    for r, member in enumerate(cast["cast"]):
        for a in member["appearances"]:
            table[r, column[a["episode"]]] = a["screen_time_s"]
    return [label(m) for m in cast["cast"]], episodes, table


def write_csv(cast: dict, path: str | Path) -> None:
    rows, episodes, table = seconds_table(cast)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cast_id", "name", "total_s", *episodes])
    for member, values in zip(cast["cast"], table):
        writer.writerow([member["cast_id"], member.get("name", ""), f"{member['screen_time_s']:.1f}",
                         *(f"{v:.1f}" for v in values)])
    atomic.write_text(path, out.getvalue())


def write_chart(cast: dict, path: str | Path) -> None:
    """A heat map of screen time, cast member by episode, each cell labelled in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, episodes, table = seconds_table(cast)
    rows, table = rows[:CHART_MAX_CAST], table[:CHART_MAX_CAST]
    width = min(24.0, 3.0 + 0.6 * max(1, len(episodes)))
    height = min(24.0, 1.8 + 0.38 * max(1, len(rows)))
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    if len(rows):
        image = ax.imshow(table, aspect="auto", cmap="Blues", vmin=0)
        fig.colorbar(image, ax=ax, label="seconds on screen", fraction=0.04)
        if table.size <= 600:
            top = table.max() or 1.0
            for (r, c), v in np.ndenumerate(table):
                if v > 0:
                    ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if v > 0.6 * top else "black")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xticks(range(len(episodes)), episodes, rotation=45 if len(episodes) > 4 else 0, ha="right")
    else:
        ax.text(0.5, 0.5, "no cast member found in this season", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    more = len(cast["cast"]) - len(rows)
    ax.set_title(f"{cast['season']}: screen time per cast member and episode"
                 + (f" (top {len(rows)}; {more} more in screen_time.csv)" if more > 0 else ""))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    image = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    atomic.write_image(path, image)


def write_cast_sheet(cast: dict, data_root: str | Path, path: str | Path) -> None:
    """One row per cast member (drawn by base.sheet): their label, then their best still in each
    episode they appear in, captioned with the episode."""
    data_root = Path(data_root)
    rows = []
    for member in cast["cast"]:
        shown = member["appearances"][:MAX_EPISODES]
        hidden = len(member["appearances"]) - len(shown)
        rows.append(sheet.Row(f"#{member['cast_id']}", member.get("name"),
                              f"{len(member['appearances'])} ep., {member['screen_time_s']:.0f} s",
                              [data_root / a["best_still"] if a.get("best_still") else None for a in shown],
                              [a["episode"][-13:] for a in shown], f"+{hidden} more" if hidden > 0 else None))
    sheet.write(path, f"{cast['season']}: {len(cast['cast'])} cast members in {len(cast['episodes'])} episodes "
                      f"({cast['embedder']})", rows, MAX_EPISODES, "no cast member found in this season", captions=True)
