"""The dashboard's runner table (state, rates, latency, buttons) and its log pane."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench.notebook.log_frame import LOG_LEVELS, level_rank

STATE_COLOURS = {
    "running": "#1a7f37",
    "starting": "#b26b00",
    "unhealthy": "#b26b00",
    "stopped": "#6e7781",
    "failed": "#cf222e",
}


def _fmt_duration(s: float | None) -> str:
    if not s:
        return "-"
    s = int(s)
    if s < 60:
        return f"{s}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _fmt_us(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:.0f} µs"


def _fmt_state(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#000")
    return f'<span class="wb-state" style="color:{colour};font-weight:600">● {state}</span>'


# (heading, width, formatter of a `Workbench.status_rows()` row)
COLUMNS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("runner", "110px", lambda r: f"<b>{html.escape(r['runner'])}</b>"),
    ("state", "110px", lambda r: _fmt_state(r["state"])),
    ("pid", "70px", lambda r: str(r["pid"] or "-")),
    ("uptime", "75px", lambda r: _fmt_duration(r["uptime_s"])),
    ("restarts", "65px", lambda r: str(r["restarts"])),
    (
        "heartbeat",
        "80px",
        lambda r: "-" if r["heartbeat_age_s"] is None else f"{r['heartbeat_age_s']:.1f} s ago",
    ),
    ("ticks/s", "75px", lambda r: f"{r['ticks_per_s']:,.0f}"),
    ("signals", "65px", lambda r: f"{r['signals']:,}"),
    ("orders", "65px", lambda r: f"{r['orders']:,}"),
    ("p50", "70px", lambda r: _fmt_us(r["p50_us"])),
    ("p99", "70px", lambda r: _fmt_us(r["p99_us"])),
)
ACTIONS = ("start", "stop", "restart")


class RunnerRow:
    """One runner's line in the table: its cells and its three buttons."""

    def __init__(self, name: str, on_action: Callable[[str, str], None]) -> None:
        self.name = name
        self.state = ""
        self.cells = [w.HTML(layout=w.Layout(width=width)) for _, width, _ in COLUMNS]
        buttons = []
        for action in ACTIONS:
            b = w.Button(
                description=action, tooltip=f"{action} {name}", layout=w.Layout(width="68px")
            )
            b.add_class(f"wb-action-{action}")
            b.on_click(lambda _b, a=action: on_action(a, name))
            buttons.append(b)
        self.widget = w.HBox([*self.cells, *buttons])
        self.widget.add_class("wb-runner-row")
        self.widget.add_class(f"wb-runner-{name}")

    def update(self, row: dict[str, Any]) -> None:
        """Show ``row``; traitlets send only the cells whose text changed."""
        for cell, (_, _, fmt) in zip(self.cells, COLUMNS, strict=True):
            cell.value = fmt(row)
        if row["state"] != self.state:
            if self.state:
                self.widget.remove_class(f"wb-state-{self.state}")
            self.widget.add_class(f"wb-state-{row['state']}")
            self.state = row["state"]


class RunnerTable:
    """Runner states with start / stop / restart per runner and for all."""

    def __init__(self, on_action: Callable[[str, str], None]) -> None:
        self._on_action = on_action
        self._rows: dict[str, RunnerRow] = {}
        header = w.HBox(
            [w.HTML(f"<b>{h}</b>", layout=w.Layout(width=width)) for h, width, _ in COLUMNS]
        )
        header.add_class("wb-runner-header")
        self._header = header
        self.widget = w.VBox([header])
        self.widget.add_class("wb-runner-table")

    def update(self, rows: list[dict[str, Any]]) -> None:
        """Show one line per runner, rebuilding the lines when the runner set changed."""
        names = [r["runner"] for r in rows]
        if names != list(self._rows):
            self._rows = {n: self._rows.get(n) or RunnerRow(n, self._on_action) for n in names}
            self.widget.children = [self._header, *(r.widget for r in self._rows.values())]
        for r in rows:
            self._rows[r["runner"]].update(r)


class LogPane:
    """Recent runner logs, newest first, filtered by runner and minimum level."""

    def __init__(self, lines: int, on_change: Callable[[], None]) -> None:
        self._lines = lines
        self.runner = w.Dropdown(
            options=[("all runners", "")], value="", description="runner",
            layout=w.Layout(width="220px"),
        )  # fmt: skip
        self.level = w.Dropdown(
            options=list(LOG_LEVELS[:4]), value="info", description="level",
            layout=w.Layout(width="200px"),
        )  # fmt: skip
        for dd in (self.runner, self.level):
            dd.observe(lambda _change: on_change(), names="value")
        self.text = w.HTML(layout=w.Layout(height="220px", overflow="auto", width="100%"))
        self.text.add_class("wb-log-pane")
        self.widget = w.VBox([w.HBox([self.runner, self.level]), self.text])

    def set_runners(self, names: list[str]) -> None:
        """Offer these runners in the filter (keeps the current choice when it remains)."""
        options = [("all runners", ""), *((n, n) for n in names)]
        if options != list(self.runner.options):
            current = self.runner.value
            self.runner.options = options
            self.runner.value = current if current in names else ""

    def update(self, entries: list[dict[str, Any]]) -> None:
        """Show ``entries`` (oldest first, as `LogBook.recent` gives them) after filtering."""
        floor = LOG_LEVELS.index(self.level.value)
        runner = self.runner.value
        shown = [
            e
            for e in entries
            if (not runner or e.get("runner") == runner) and level_rank(e.get("level")) >= floor
        ][-self._lines :]
        body = "".join(_log_line(e) for e in reversed(shown)) or "<i>no log lines yet</i>"
        style = "font-family:monospace;font-size:11px;line-height:1.35"
        self.text.value = f'<div style="{style}">{body}</div>'


_LOG_SKIP = {"timestamp", "level", "event", "runner", "pid", "run_id", "logger"}


def _log_line(e: dict[str, Any]) -> str:
    level = str(e.get("level", "info")).lower()
    colour = {"warning": "#b26b00", "error": "#cf222e", "critical": "#cf222e"}.get(level, "#444")
    stamp = str(e.get("timestamp", ""))[11:23]
    extra = " ".join(f"{k}={e[k]}" for k in e if k not in _LOG_SKIP)
    text = f"{stamp} {level.upper():<7} {e.get('runner', '')} {e.get('event', '')} {extra}"
    body = html.escape(text[:400])
    return f'<div class="wb-log wb-log-{level}" style="color:{colour}">{body}</div>'
