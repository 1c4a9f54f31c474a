"""Charts, drawn off-screen with matplotlib: the one place a chart's figure is made, its text
checked for collisions and for staying inside the figure, its times and seconds written, and its
PNG published (base.atomic). The episode's timeline and the season's screen-time chart use it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from . import atomic

DPI = 100
FONT_PT = 9  # tick labels and lane names
# Steps of a time axis, in seconds: the smallest that gives at most the wanted number of ticks.
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), at facepipe's font size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_PT, "axes.titlesize": FONT_PT + 2})
    return plt


def decimals(values, most: int = 3) -> int:
    """The fewest decimals (`most` at most) that write every value as recorded: 2.75 s takes two,
    12.0 s none. Seconds are shown to the precision the data has, no more and no less."""
    for d in range(most + 1):
        if all(abs(round(float(v), d) - float(v)) < 1e-6 for v in values):
            return d
    return most


def clock(seconds: float, places: int = 0) -> str:
    """m:ss (h:mm:ss from an hour), with `places` decimals of the seconds."""
    scale = 10 ** places
    total = round(float(seconds) * scale)
    whole, frac = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return text + (f".{frac:0{places}d}" if places else "")


def time_step(span_s: float, ticks: int = 12) -> float:
    """A step for a time axis `span_s` long: the smallest of TIME_STEPS giving at most `ticks`."""
    for step in TIME_STEPS:
        if span_s / step <= ticks:
            return float(step)
    return float(TIME_STEPS[-1] * math.ceil(span_s / ticks / TIME_STEPS[-1]))


def shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def text_boxes(fig, texts) -> list[tuple[str, object]]:
    """(text, its bounding box in figure pixels) of each visible, non-empty matplotlib Text."""
    renderer = fig.canvas.get_renderer()
    hidden_axes = [ax for ax in fig.axes if not ax.axison]  # their tick labels are not drawn
    ticks = {id(t) for ax in hidden_axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    out = []
    for t in texts:
        if t.get_visible() and t.get_text().strip() and id(t) not in ticks:
            out.append((t.get_text(), t.get_window_extent(renderer)))
    return out


def collisions(fig, texts, slack_px: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of `texts` whose drawn boxes overlap (by more than `slack_px` each way)."""
    boxes = text_boxes(fig, texts)
    found = []
    for k, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[k + 1:]:
            if (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > slack_px
                    and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > slack_px):
                found.append((a, b))
    return found


def outside(fig, texts) -> list[str]:
    """The `texts` drawn (partly) outside the figure."""
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    return [text for text, box in text_boxes(fig, texts)
            if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5]


def fit_title(fig, heading) -> None:
    """Wrap the lines of a figure's title (a matplotlib Text) until it fits the figure's width.
    A text's width depends on its words and font alone, so it is measured without drawing the
    figure (a draw lays out every lane and tick: most of a timeline's cost)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    limit = fig.canvas.get_width_height()[0] - 8
    lines = heading.get_text().split("\n")
    chars = max(len(line) for line in lines)
    while heading.get_window_extent(renderer).width > limit and chars > 20:
        chars = int(chars * 0.9)
        heading.set_text("\n".join(w for line in lines for w in textwrap.wrap(line, chars)))


def save_png(fig, path: str | Path) -> None:
    """The figure as a PNG at `path`, published whole (base.atomic); the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
