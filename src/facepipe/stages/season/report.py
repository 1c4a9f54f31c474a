"""A season's tables and pictures: screen_time.csv (cast by episode, seconds), screen_time.png
(the same as a chart) and cast.jpg (each cast member's best still in every episode).

Each lists the people the user did not hide: the recurring cast first, then the people seen in
one episode (cast.build_cast's order). Seconds are written to the precision the data has
(base.chart.decimals).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from ...base import atomic, chart, sheet
from .cast import cast_summary

MAX_EPISODES = 16  # the cast sheet shows a cast member in this many episodes at most
SHEET_MAX_CAST = 100  # the cast sheet's rows; the rest are in cast.json and screen_time.csv
CHART_MAX_CAST = 40  # the chart's rows: the first of the cast (recurring first, by screen time)
CELL_PT = (5.0, 8.0)  # the smallest and largest a cell's seconds are written; smaller: not written
ROW_IN, MIN_COLUMN_IN = 0.3, 0.45


def label(member: dict) -> str:
    return f"#{member['cast_id']} {member['name']}" if member.get("name") else f"#{member['cast_id']}"


def shown(cast: dict) -> list[dict]:
    """The cast members the user did not hide, in the cast's order."""
    return [m for m in cast["cast"] if not m.get("hidden")]


def seconds_table(cast: dict) -> tuple[list[str], list[str], np.ndarray]:
    """(row labels, episodes, seconds[cast member, episode]) of the members shown."""
    episodes = cast["episodes"]
    column = {ep: k for k, ep in enumerate(episodes)}
    members = shown(cast)
    table = np.zeros((len(members), len(episodes)))
    for r, member in enumerate(members):
        for a in member["appearances"]:
            table[r, column[a["episode"]]] = a["screen_time_s"]
    return [label(m) for m in members], episodes, table


def write_csv(cast: dict, path: str | Path) -> None:
    rows, episodes, table = seconds_table(cast)
    members = shown(cast)
    places = chart.decimals([*table.ravel(), *(m["screen_time_s"] for m in members)])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cast_id", "name", "recurring", "total_s", *episodes])
    for member, values in zip(members, table):
        writer.writerow([member["cast_id"], member.get("name", ""), "true" if member["recurring"] else "false",
                         f"{member['screen_time_s']:.{places}f}", *(f"{v:.{places}f}" for v in values)])
    atomic.write_text(path, out.getvalue())


def episode_labels(episodes: list[str]) -> tuple[list[str], str]:
    """Short column labels (what follows the episodes' common prefix, cut after a _ or -) and that
    prefix: LFW_S01_E01, LFW_S01_E02 -> E01, E02 and "LFW_S01_"."""
    if len(episodes) < 2:
        return list(episodes), ""
    common = os.path.commonprefix(episodes)
    cut = max(common.rfind("_"), common.rfind("-")) + 1
    return [ep[cut:] for ep in episodes], common[:cut]


def _thin_labels(fig, labels) -> None:
    """Rotate, then leave out every other label, until no two of `labels` (matplotlib Texts) collide."""
    if not chart.collisions(fig, labels):
        return
    for t in labels:
        t.set_rotation(90)
    step = 1
    while chart.collisions(fig, labels) and step < len(labels):
        step += 1
        for k, t in enumerate(labels):
            t.set_visible(k % step == 0)


def draw_chart(cast: dict):
    """The heat map of screen time, cast member by episode, each cell in seconds, as a matplotlib
    figure (write_chart publishes it; tests read its text)."""
    plt = chart.pyplot()
    rows, episodes, table = seconds_table(cast)
    members = shown(cast)
    rows, table, members = rows[:CHART_MAX_CAST], table[:CHART_MAX_CAST], members[:CHART_MAX_CAST]
    places = chart.decimals(table.ravel()) if table.size else 0
    widest = max([len(f"{v:.{places}f}") for v in table.ravel()] or [1])
    column_in = max(MIN_COLUMN_IN, widest * CELL_PT[1] * 0.62 / 72 + 0.1)
    names, prefix = episode_labels(episodes)
    label_in = 0.5 + 0.075 * max([len(r) for r in rows] or [10])
    width = min(30.0, max(7.0, label_in + column_in * max(1, len(episodes)) + 1.6))
    height = 2.2 + ROW_IN * max(3, len(rows))
    fig, ax = plt.subplots(figsize=(width, height), dpi=chart.DPI, layout="constrained")
    more = len(shown(cast)) - len(rows)
    title = f"{cast['season']}: seconds on screen per person and episode"
    sub = cast_summary(cast) + (f"; the first {len(rows)} shown, all {len(rows) + more} in screen_time.csv"
                                if more > 0 else "")
    if len(rows):
        image = ax.imshow(table, aspect="auto", cmap="Blues", vmin=0, interpolation="nearest")
        fig.colorbar(image, ax=ax, label="seconds on screen", fraction=0.04, pad=0.02)
        ax.set_yticks(range(len(rows)), rows)
        for tick, member in zip(ax.get_yticklabels(), members):
            if not member["recurring"]:
                tick.set_color("0.45")
        once = [k for k, m in enumerate(members) if not m["recurring"]]
        if once and once[0] > 0:
            ax.axhline(once[0] - 0.5, color="black", linewidth=1.5)
            sub = sub.replace(" seen in one episode", " seen in one episode (grey, below the line)", 1)
        ax.set_xticks(range(len(episodes)), names)
        ax.xaxis.tick_top()
        ax.set_xlabel("episode" + (f" ({prefix}…)" if prefix else ""))
        ax.xaxis.set_label_position("top")
        ax.tick_params(length=0)
        fig.canvas.draw()
        _thin_labels(fig, ax.get_xticklabels())
        cell_w = ax.get_window_extent().width / max(1, len(episodes)) * 72 / chart.DPI  # points
        size = min(CELL_PT[1], cell_w / (0.62 * widest + 0.6), ROW_IN * 72 * 0.55)
        if size >= CELL_PT[0]:
            top = table.max() or 1.0
            for (r, c), v in np.ndenumerate(table):
                if v > 0:
                    ax.text(c, r, f"{v:.{places}f}", ha="center", va="center", fontsize=size,
                            color="white" if v > 0.6 * top else "black")
    else:
        ax.text(0.5, 0.5, "no one found on screen in this season", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    heading = fig.suptitle(f"{title}\n{sub}", x=0.01, ha="left")
    chart.fit_title(fig, heading)
    return fig


def write_chart(cast: dict, path: str | Path) -> None:
    """The heat map (draw_chart), published as a PNG."""
    chart.save_png(draw_chart(cast), path)


def write_cast_sheet(cast: dict, data_root: str | Path, path: str | Path) -> None:
    """One row per cast member shown (drawn by base.sheet; SHEET_MAX_CAST at most): their label,
    then their best still in each episode they appear in, captioned with the episode. The sheet is
    as wide as its longest row (and its title) needs."""
    data_root = Path(data_root)
    members = shown(cast)
    places = chart.decimals([m["screen_time_s"] for m in members])
    rows = []
    for member in members[:SHEET_MAX_CAST]:
        seen = member["appearances"][:MAX_EPISODES]
        left = len(member["appearances"]) - len(seen)
        rows.append(sheet.Row(f"#{member['cast_id']}", member.get("name"),
                              f"{len(member['appearances'])} ep., {member['screen_time_s']:.{places}f} s",
                              [data_root / a["best_still"] if a.get("best_still") else None for a in seen],
                              [a["episode"][-13:] for a in seen], f"+{left} more" if left > 0 else None))
    if len(members) > SHEET_MAX_CAST:
        rows.append(sheet.Row(f"+{len(members) - SHEET_MAX_CAST}", None, "more in cast.json", [], []))
    title = f"{cast['season']}: {cast_summary(cast)} ({cast['embedder']})"
    most = max([len(m["appearances"][:MAX_EPISODES]) for m in members] or [1])
    sheet.write(path, title, rows, sheet.fit_columns(title, most, MAX_EPISODES),
                "no one found on screen in this season", captions=True)
