"""`facepipe status`: the episodes' progress as a table in the terminal, once or live.

The table fits the width it is drawn in (the terminal's, or $COLUMNS): as that shrinks, the least
useful columns give way first (OPTIONAL), and an id, a step or a job name is never folded. Without
the message column, a failed unit's reason and its flags and problems are listed under the table,
below the unit's id. Where not even the id, step, pct and status fit side by side, each unit takes
two lines. `--json` is the whole snapshot at any width.
"""

from __future__ import annotations

STATUS_COLOURS = {"done": "green", "error": "red", "cancelled": "yellow", "running": "cyan", "pending": "white"}


# Display order of the columns. The progress column is the bar and the pct ("########-- 80%").
COLUMNS = ("episode", "step", "progress", "status", "message", "eta", "heartbeat", "active jobs")
# What gives way as the width shrinks, first to last ("bar": the progress column keeps the pct).
# The episode, the step, the pct and the status always stay.
OPTIONAL = ("message", "heartbeat", "active jobs", "eta", "bar")
# The message column stays only where it gets this many characters (or all that it needs).
MESSAGE_MIN = 24
BAR_WIDTH = 10


def render(statuses: list[dict]) -> StatusView:
    """The statuses (runtime.snapshot.unit_status) as a rich renderable that fits its width."""
    return StatusView([_row(st) for st in statuses])


def _row(st: dict) -> dict:
    """The texts of a unit's cells (plain: the view styles them)."""
    s = st["state"] or {}
    pct, status = s.get("pct"), s.get("status", "-")
    filled = round((pct or 0) * BAR_WIDTH)
    age, eta = st["heartbeat_age_s"], s.get("eta_s")
    return {
        "episode": f"{st['episode']} (season)" if st.get("kind") == "season" else st["episode"],
        "step": step_label(s),
        "bar": "#" * filled + "-" * (BAR_WIDTH - filled),
        "pct": f"{pct * 100:.0f}%" if isinstance(pct, (int, float)) else "-",
        "status": status,
        "message": s.get("message") or "",
        "notes": st["flags"] + st["problems"],
        "eta": format_eta(eta) if status in ("pending", "running") else "-",
        "heartbeat": f"{age:.0f} s ago" if age is not None else "-",
        "active jobs": "\n".join(f"{a['name']}{' (stale)' if a['stale'] else ''}" for a in st["active"]) or "-",
    }


def step_label(state: dict) -> str:
    """The step, short: "Cluster 4/4" (a qualifier such as "(Auto-running prerequisites)" is left
    to the message)."""
    if not state.get("current_step"):
        return "-"
    title = state["current_step"].split(" (")[0]
    if state.get("step_index") and state.get("total_steps"):
        return f"{title} {state['step_index']}/{state['total_steps']}"
    return title


class StatusView:
    """The table, laid out for the width rich gives it each time it is drawn (console.print, and
    every refresh of --watch, so a resized terminal gets a table of its new width)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __rich_console__(self, console, options):
        for dropped in range(len(OPTIONAL) + 1):
            shown = [c for c in (*COLUMNS, "bar") if c not in OPTIONAL[:dropped]]
            widths = self._widths(shown, options.max_width)
            if widths is not None:
                yield self._table(shown, widths)
                break
        else:
            yield from self._stacked()
        if "message" not in shown or widths is None:
            yield from self._notes(console, options.max_width)

    def _cell(self, row: dict, column: str, shown: list[str]) -> str:
        if column == "progress":
            return f"{row['bar']} {row['pct']:>4}" if "bar" in shown else row["pct"]
        if column == "message":
            return "\n".join(([row["message"]] if row["message"] else []) + row["notes"])
        return row[column]

    def _widths(self, shown: list[str], width: int) -> dict[str, int] | None:
        """Each column's width (without its padding) for a table no wider than `width`; None
        where the columns `shown` do not fit. Only the message column wraps."""
        from rich.cells import cell_len

        widths = {c: max(cell_len(line) for text in [c, *(self._cell(r, c, shown) for r in self.rows)]
                         for line in text.split("\n"))
                  for c in COLUMNS if c in shown}
        # Each column takes its padding (1 + 1) and the rule on its left; the right edge takes 1.
        over = sum(w + 3 for w in widths.values()) + 1 - width
        if over > 0 and "message" in widths:
            needed = min(widths["message"], MESSAGE_MIN)
            widths["message"] -= over
            over = 0 if widths["message"] >= needed else over
        return widths if over <= 0 else None

    def _table(self, shown: list[str], widths: dict[str, int]):
        from rich.table import Table
        from rich.text import Text

        table = Table(show_lines=False)
        for column, width in widths.items():
            table.add_column(column, width=width, no_wrap=column != "message", overflow="fold")
        for row in self.rows:
            cells = []
            for column in widths:
                if column == "status":
                    cells.append(Text(row["status"], style=STATUS_COLOURS.get(row["status"], "white")))
                elif column == "message":
                    text = Text(row["message"])
                    for note in row["notes"]:
                        text.append(("\n" if text else "") + note, style="red")
                    cells.append(text)
                else:
                    cells.append(Text(self._cell(row, column, shown)))
            table.add_row(*cells)
        return table

    def _stacked(self):
        """Two lines a unit, where not even a table of the id, step, pct and status fits."""
        from rich.text import Text

        step_width = max(len(r["step"]) for r in self.rows)
        for row in self.rows:
            yield Text(row["episode"], style="bold")
            line = Text(f"  {row['step']:<{step_width}}  {row['pct']:>4}  ")
            line.append(row["status"], style=STATUS_COLOURS.get(row["status"], "white"))
            if row["eta"] != "-":
                line.append(f"  eta {row['eta']}")
            yield line

    def _notes(self, console, width: int):
        """Without the message column: under the id of each unit concerned, its reason if it
        failed and its flags and problems, one item each, wrapped at words and indented."""
        from rich.text import Text

        for row in self.rows:
            said = [Text(row["message"])] if row["status"] == "error" and row["message"] else []
            said += [Text(note, style="red") for note in row["notes"]]
            if not said:
                continue
            yield Text(f"{row['episode']}:")
            for text in said:
                for k, line in enumerate(text.wrap(console, max(width - 4, 8), overflow="fold")):
                    line.rstrip()
                    yield Text("  - " if k == 0 else "    ") + line


def format_eta(eta_s) -> str:
    if not isinstance(eta_s, (int, float)):
        return "-"
    minutes, seconds = divmod(int(round(eta_s)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def render_log_tails(statuses: list[dict]) -> list[str]:
    """For each failed episode with a log: its path and last lines, for under the table."""
    out = []
    for st in statuses:
        if st.get("log"):
            out.append(f"{st['episode']}: last lines of {st['log']}")
            out.extend(f"  {line}" for line in st["log_tail"] or ["(the log is empty or gone)"])
    return out
