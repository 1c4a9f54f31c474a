"""`facepipe status`: the episodes' progress as a table in the terminal, once or live."""

from __future__ import annotations

STATUS_COLOURS = {"done": "green", "error": "red", "cancelled": "yellow", "running": "cyan", "pending": "white"}


def render(statuses: list[dict]):
    """A rich Table of the statuses (runtime.snapshot.unit_status)."""
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("episode", "step", "progress", "pct", "status", "message", "eta", "heartbeat", "active jobs"):
        table.add_column(col, overflow="fold")
    for st in statuses:
        s = st["state"] or {}
        pct = s.get("pct")
        filled = int(round((pct or 0) * 10))
        bar = "#" * filled + "-" * (10 - filled)
        status = s.get("status", "-")
        message = s.get("message") or ""
        notes = st["flags"] + st["problems"]
        if notes:
            message += "\n[red]" + "\n".join(notes) + "[/red]"
        jobs = ", ".join(f"{a['name']}{' (stale)' if a['stale'] else ''}" for a in st["active"]) or "-"
        age, eta = st["heartbeat_age_s"], s.get("eta_s")
        name = f"{st['episode']} (season)" if st.get("kind") == "season" else st["episode"]
        table.add_row(name, f"{s.get('current_step', '-')}" + (f" [{s.get('step_index')}/{s.get('total_steps')}]" if s else ""),
                      bar, f"{pct * 100:.0f}%" if isinstance(pct, (int, float)) else "-",
                      f"[{STATUS_COLOURS.get(status, 'white')}]{status}[/]", message,
                      format_eta(eta) if status in ("pending", "running") else "-",
                      f"{age:.0f} s ago" if age is not None else "-", jobs)
    return table


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
