"""The live dashboard: runner table, price charts with signals and fills, logs.

    wb.dashboard()             # or: Dashboard(wb, refresh_hz=5).widget

One background thread redraws everything at most ``refresh_hz`` times a
second. It reads the taps' ring buffers (the newest ``points`` ticks), skips a
chart when no tick, signal, fill or level changed since the last redraw (the
rings' ``total`` counters tell), and sends each chart as one
``batch_update``. So the kernel keeps up with a 10k ticks/s feed; the CPU it
costs is printed by ``benchmarks/dashboard_cpu.py``.

Buttons call the blocking `Workbench` verbs on a worker thread, so the
notebook stays responsive while a runner stops.

Every part carries a stable CSS class for browser tests and custom styling:
``wb-dashboard``, ``wb-runner-table``, ``wb-runner-row`` (plus
``wb-runner-<name>`` and ``wb-state-<state>``), ``wb-price-charts``,
``wb-price-chart`` (plus ``wb-price-chart-<symbol>``), ``wb-summary``,
``wb-log-pane`` and ``wb-message``.
"""

from __future__ import annotations

import concurrent.futures
import html
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import structlog

if TYPE_CHECKING:
    from workbench.notebook.workbench import Workbench

log = structlog.get_logger()
NOT_STARTED = "<i>not started: run <code>wb.start()</code></i>"

STATE_COLOURS = {
    "running": "#1a7f37",
    "starting": "#b26b00",
    "unhealthy": "#b26b00",
    "stopped": "#6e7781",
    "failed": "#cf222e",
}
TRADING_COLOURS = {"ACTIVE": "#1a7f37", "REDUCING": "#b26b00", "HALTED": "#cf222e"}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LEVEL_STYLES = {  # level key in `Workbench.levels()` -> (label, colour, dash)
    "trigger": ("trigger", "#6e7781", "dot"),
    "entry_level": ("entry", "#0969da", "dash"),
    "tp_level": ("take-profit", "#1a7f37", "dash"),
    "sl_level": ("stop-loss", "#cf222e", "dash"),
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


class _RunnerRow:
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


class _RunnerTable:
    """Runner states with start / stop / restart per runner and for all."""

    def __init__(self, on_action: Callable[[str, str], None]) -> None:
        self._on_action = on_action
        self._rows: dict[str, _RunnerRow] = {}
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
            self._rows = {n: self._rows.get(n) or _RunnerRow(n, self._on_action) for n in names}
            self.widget.children = [self._header, *(r.widget for r in self._rows.values())]
        for r in rows:
            self._rows[r["runner"]].update(r)


class _PriceChart:
    """One symbol: last ticks, condition levels, buy/sell signals and fills.

    Levels are line traces (one per kind, a segment per condition) rather than
    layout shapes: trailing conditions move them on most redraws, and
    replacing a trace's arrays costs far less than rebuilding shapes.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        levels = [
            go.Scatter(
                name=label,
                mode="lines",
                line={"color": colour, "width": 1, "dash": dash},
                hovertemplate="%{text}<extra></extra>",
                connectgaps=False,
            )
            for label, colour, dash in LEVEL_STYLES.values()
        ]
        self.fig = go.FigureWidget(
            data=[
                go.Scatter(name="price", mode="lines", line={"width": 1.2, "color": "#24292f"}),
                *levels,
                _markers("buy signal", "triangle-up", "#1a7f37"),
                _markers("sell signal", "triangle-down", "#cf222e"),
                _markers("fill", "circle-open", "#8250df", size=12),
            ],
            layout=go.Layout(
                title={"text": symbol, "font": {"size": 14}, "x": 0.01, "y": 0.97},
                height=320,
                autosize=True,
                margin={"l": 50, "r": 20, "t": 56, "b": 30},
                xaxis={"type": "date", "title": None},
                yaxis={"title": None, "tickformat": ".2f"},
                legend={
                    "orientation": "h",
                    "x": 1,
                    "xanchor": "right",
                    "y": 1.0,
                    "yanchor": "bottom",
                },  # above the plot area, right of the title
                uirevision=symbol,  # keep the user's zoom across redraws
                template="plotly_white",
            ),
        )
        self.fig.add_class("wb-price-chart")
        self.fig.add_class(f"wb-price-chart-{symbol}")

    def update(
        self,
        ticks: list[tuple],
        signals: list[tuple],
        fills: list[tuple],
        levels: list[dict[str, Any]],
        position: float,
    ) -> None:
        """Redraw from tap rows (``taps.TICK_COLUMNS`` etc.) in one batch."""
        ts = _dates([t[0] for t in ticks])
        price = np.fromiter((t[2] for t in ticks), np.float64, len(ticks))
        start_ns = ticks[0][0] if ticks else 0
        sig = [s for s in signals if s[0] is not None and s[0] >= start_ns]
        fl = [f for f in fills if f[0] is not None and f[0] >= start_ns]
        span = [str(ts[0]), str(ts[-1])] if len(ts) else []
        last = f" last {price[-1]:.2f}" if len(price) else ""
        data = self.fig.data
        with self.fig.batch_update():
            data[0].x, data[0].y = ts, price
            for trace, key in zip(data[1:5], LEVEL_STYLES, strict=True):
                trace.x, trace.y, trace.text = _level_segments(levels, key, span)
            for trace, side in ((data[5], "BUY"), (data[6], "SELL")):
                rows = [s for s in sig if s[4] == side]
                trace.x = _dates([s[0] for s in rows])
                trace.y = [s[6] for s in rows]
                trace.text = [f"{s[1]} {s[7]} ({s[8]})" for s in rows]
            data[7].x = _dates([f[0] for f in fl])
            data[7].y = [f[6] for f in fl]
            data[7].text = [f"{f[1]} {f[4]} {f[5]:g} @ {f[6]:.2f}" for f in fl]
            self.fig.layout.title.text = f"<b>{self.symbol}</b>{last} · position {position:+g}"


def _dates(ns: list[int]) -> np.ndarray:
    """Epoch nanoseconds as datetimes (UTC) to the microsecond, which plotly draws as dates."""
    return np.array(ns, dtype="datetime64[ns]").astype("datetime64[us]")


def _markers(name: str, symbol: str, colour: str, size: int = 10) -> go.Scatter:
    return go.Scatter(
        name=name,
        mode="markers",
        marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 1.5}},
        hovertemplate="%{text}<extra></extra>",
    )


def _level_segments(
    levels: list[dict[str, Any]], key: str, span: list[str]
) -> tuple[list, list, list]:
    """x, y and hover text of one horizontal segment per condition across ``span``."""
    xs: list[str | None] = []
    ys: list[float | None] = []
    texts: list[str] = []
    label = LEVEL_STYLES[key][0]
    for d in levels:
        y = d.get(key)
        if y is None or not span:
            continue
        text = f"{d['id']} {label} {y:.2f} ({d.get('state', '')})"
        xs += [span[0], span[1], None]
        ys += [y, y, None]
        texts += [text, text, ""]
    return xs, ys, texts


class _LogPane:
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
            if (not runner or e.get("runner") == runner) and _level_rank(e.get("level")) >= floor
        ][-self._lines :]
        body = "".join(_log_line(e) for e in reversed(shown)) or "<i>no log lines yet</i>"
        style = "font-family:monospace;font-size:11px;line-height:1.35"
        self.text.value = f'<div style="{style}">{body}</div>'


def _level_rank(level: Any) -> int:
    try:
        return LOG_LEVELS.index(str(level or "info").lower())
    except ValueError:
        return 1


_LOG_SKIP = {"timestamp", "level", "event", "runner", "pid", "run_id", "logger"}


def _log_line(e: dict[str, Any]) -> str:
    level = str(e.get("level", "info")).lower()
    colour = {"warning": "#b26b00", "error": "#cf222e", "critical": "#cf222e"}.get(level, "#444")
    stamp = str(e.get("timestamp", ""))[11:23]
    extra = " ".join(f"{k}={e[k]}" for k in e if k not in _LOG_SKIP)
    text = f"{stamp} {level.upper():<7} {e.get('runner', '')} {e.get('event', '')} {extra}"
    body = html.escape(text[:400])
    return f'<div class="wb-log wb-log-{level}" style="color:{colour}">{body}</div>'


class Dashboard:
    """Live widgets for a `Workbench`: display ``.widget``, stop with ``.close()``.

    Args:
        wb: The workbench to watch and drive.
        refresh_hz: Redraws per second at most.
        points: Ticks drawn per symbol (the newest).
        log_lines: Log lines shown after filtering.
        log_interval_s: Seconds between log pane redraws (a filter change redraws at once).
    """

    def __init__(
        self,
        wb: Workbench,
        *,
        refresh_hz: float = 5.0,
        points: int = 2_000,
        log_lines: int = 200,
        log_interval_s: float = 1.0,
    ) -> None:
        self._wb = wb
        self._interval_s = 1.0 / refresh_hz
        self._points = points
        self._log_interval_s = log_interval_s
        self._charts: dict[str, _PriceChart] = {}
        self._chart_sig: tuple = ()
        self._logs_due = 0.0
        self._last_error = ""
        self.redraws = 0
        self._table = _RunnerTable(self._on_action)
        self._logs = _LogPane(log_lines, self._logs_now)
        self._summary = w.HTML()
        self._summary.add_class("wb-summary")
        self._message = w.HTML()
        self._message.add_class("wb-message")
        self._chart_box = w.VBox()
        self._chart_box.add_class("wb-price-charts")
        self.widget = w.VBox(
            [self._toolbar(), self._table.widget, self._summary, self._chart_box, self._logs.widget]
        )
        self.widget.add_class("wb-dashboard")
        self._actions = concurrent.futures.ThreadPoolExecutor(1, "wb-dashboard-action")
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="wb-dashboard", daemon=True)
        self._thread.start()

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Stop redrawing; the widgets keep showing the last state."""
        if self._stop.is_set():
            return
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)
        self._actions.shutdown(wait=False, cancel_futures=True)
        self._message.value = "<i>dashboard stopped: it shows the last state it saw</i>"

    stop = close

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.refresh()
                self._last_error = ""
            except Exception as e:  # a redraw must never kill the thread
                if repr(e) != self._last_error:  # once per burst, not 5 times a second
                    log.warning("dashboard_refresh_failed", error=repr(e))
                    self._last_error = repr(e)

    # -- drawing ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw what changed since the last call (the thread calls this)."""
        rows = self._wb.status_rows()
        self._table.update(rows)
        if not rows:
            self._message.value = NOT_STARTED
        elif self._message.value == NOT_STARTED:
            self._message.value = ""
        self._draw_charts()
        if time.monotonic() >= self._logs_due:
            self._draw_logs([r["runner"] for r in rows])
        self.redraws += 1

    def _draw_charts(self) -> None:
        wb = self._wb
        levels = wb.levels()
        positions = wb.positions()
        sig = (
            wb.ticks.total, wb.signals.total, wb.fills.total,
            repr(levels), repr(positions), wb.trading_state(),
        )  # fmt: skip
        if sig == self._chart_sig:
            return
        self._chart_sig = sig
        self._draw_summary(positions)
        ticks = wb.ticks.rows(last=self._points * max(1, len(self._charts)))
        symbols = {t[1] for t in ticks}
        for sym in sorted(symbols - set(self._charts)):
            self._charts[sym] = _PriceChart(sym)
            self._chart_box.children = [c.fig for c in self._charts.values()]
        signals, fills = wb.signals.rows(last=500), wb.fills.rows(last=500)
        for sym, chart in self._charts.items():
            chart.update(
                [t for t in ticks if t[1] == sym][-self._points :],
                [s for s in signals if s[3] == sym],
                [f for f in fills if f[3] == sym],
                [lv for lv in levels if lv.get("symbol") == sym],
                float(positions.get(sym, 0.0)),
            )

    def _draw_summary(self, positions: dict[str, float]) -> None:
        wb = self._wb
        t = wb.ticks
        pos = ", ".join(f"{s} {q:+g}" for s, q in sorted(positions.items())) or "flat"
        state = wb.trading_state() or "-"
        colour = TRADING_COLOURS.get(state, "#6e7781")
        self._summary.value = (
            f'trading <b class="wb-trading-state" style="color:{colour}">{state}</b> · '
            f"ticks <b>{t.total:,}</b> (dropped {t.dropped:,}, missed {t.missed:,}) · "
            f"signals <b>{wb.signals.total:,}</b> · fills <b>{wb.fills.total:,}</b> · "
            f"position <b>{html.escape(pos)}</b> · realized PnL <b>{wb.pnl():+.2f}</b>"
        )

    def _draw_logs(self, runners: list[str]) -> None:
        self._logs_due = time.monotonic() + self._log_interval_s
        self._logs.set_runners(runners)
        sup = self._wb.supervisor
        self._logs.update(sup.logs.recent() if sup is not None else [])

    def _logs_now(self) -> None:
        self._logs_due = 0.0

    # -- buttons ----------------------------------------------------------------------

    def _toolbar(self) -> w.HBox:
        buttons = []
        for action in ACTIONS:
            b = w.Button(description=f"{action} all", layout=w.Layout(width="100px"))
            b.add_class(f"wb-action-{action}-all")
            b.on_click(lambda _b, a=action: self._on_action(a, None))
            buttons.append(b)
        # The kill switch: orders stop before the next signal is acted on.
        for action, style in (("halt", "danger"), ("resume", "success")):
            b = w.Button(description=action, button_style=style, layout=w.Layout(width="80px"))
            b.add_class(f"wb-action-{action}")
            b.on_click(lambda _b, a=action: self._on_action(a, None))
            buttons.append(b)
        return w.HBox([*buttons, self._message])

    def _on_action(self, action: str, runner: str | None) -> None:
        """Run a button's action on the worker thread; report the outcome in the message."""
        target = runner or ("trading" if action in ("halt", "resume") else "all runners")
        if self._stop.is_set():
            self._message.value = "<i>dashboard stopped: open a new one with wb.dashboard()</i>"
            return
        self._message.value = f"{action}: {html.escape(target)} …"
        fut = self._actions.submit(self._act, action, runner)
        fut.add_done_callback(lambda f: self._done(f, action, target))

    def _act(self, action: str, runner: str | None) -> None:
        wb = self._wb
        if action == "halt":
            wb.halt()
            return
        if action == "resume":
            wb.resume()
            return
        names = [runner] if runner else [r["runner"] for r in wb.status_rows()]
        if action == "stop":
            for n in reversed(names):  # strategies first, the binders last
                wb.stop_runner(n)
        elif action == "start":
            for n in names:
                wb.start_runner(n)
        else:
            for n in names:
                wb.restart(n)

    def _done(self, fut: concurrent.futures.Future, action: str, target: str) -> None:
        err = None if fut.cancelled() else fut.exception()
        if err is None:
            self._message.value = f"{action}: {html.escape(target)} done"
        else:
            log.warning("dashboard_action_failed", action=action, target=target, error=repr(err))
            self._message.value = (
                f'<span style="color:#cf222e">{action} {html.escape(target)} failed: '
                f"{html.escape(str(err))}</span>"
            )
