"""The live dashboard: runner table, price charts with signals and fills, logs.

    wb.dashboard()             # or: Dashboard(wb, refresh_hz=5).widget

One background thread redraws everything at most ``refresh_hz`` times a
second. It reads the taps' ring buffers (keeping the newest ``points`` ticks
of each symbol as they arrive), skips a chart when no tick, signal, fill or
level changed since the last redraw (the rings' ``total`` counters tell), and
sends each chart as one ``batch_update``. So the kernel keeps up with a 10k ticks/s feed; the CPU it
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

import collections
import concurrent.futures
import html
import threading
import time
from typing import Any, Protocol

import ipywidgets as w
import structlog

from workbench.notebook.charts import PriceChart
from workbench.notebook.table import ACTIONS, LogPane, RunnerTable
from workbench.taps import Ring

log = structlog.get_logger()
NOT_STARTED = "<i>not started: run <code>wb.start()</code></i>"
TRADING_COLOURS = {"ACTIVE": "#1a7f37", "REDUCING": "#b26b00", "HALTED": "#cf222e"}


class LogSource(Protocol):
    """Recent runner log lines (`LogBook`)."""

    def recent(self, runner: str | None = None) -> list[dict[str, Any]]: ...


class HasLogs(Protocol):
    """Something holding a `LogSource` (the `Supervisor`)."""

    @property
    def logs(self) -> LogSource: ...


class DashboardSource(Protocol):
    """What a `Dashboard` reads and calls: the parts of `Workbench` it needs."""

    @property
    def ticks(self) -> Ring: ...

    @property
    def signals(self) -> Ring: ...

    @property
    def fills(self) -> Ring: ...

    @property
    def supervisor(self) -> HasLogs | None: ...

    def status_rows(self) -> list[dict[str, Any]]: ...

    def levels(self) -> list[dict[str, Any]]: ...

    def positions(self) -> dict[str, float]: ...

    def pnl(self) -> float: ...

    def trading_state(self) -> str: ...

    def halt(self, flatten: bool = False) -> dict[str, Any]: ...

    def resume(self) -> dict[str, Any]: ...

    def start_runner(self, runner: str) -> None: ...

    def stop_runner(self, runner: str) -> None: ...

    def restart(self, runner: str) -> None: ...


class Dashboard:
    """Live widgets for a `Workbench`: display ``.widget``, stop with ``.close()``.

    Args:
        wb: The workbench to watch and drive (anything shaped as `DashboardSource`).
        refresh_hz: Redraws per second at most, from 0.0001 to 100.
        points: Ticks drawn per symbol (the newest).
        log_lines: Log lines shown after filtering.
        log_interval_s: Seconds between log pane redraws (a filter change redraws at once).
    """

    def __init__(
        self,
        wb: DashboardSource,
        *,
        refresh_hz: float = 5.0,
        points: int = 2_000,
        log_lines: int = 200,
        log_interval_s: float = 1.0,
    ) -> None:
        from workbench.notebook.arguments import check_between

        self._wb = wb  # 0 was a ZeroDivisionError; -1 and NaN were taken
        hz = check_between(refresh_hz, "refresh_hz", 1e-4, 100, "redraws per second")
        self._interval_s = 1.0 / hz
        # -1 drew no chart and logged on every redraw; log_lines 0 showed every line
        self._points = int(check_between(points, "points", 2, 1_000_000, "points per symbol"))
        log_lines = int(check_between(log_lines, "log_lines", 1, 100_000, "lines"))
        self._log_interval_s = check_between(log_interval_s, "log_interval_s", 0.01, 3600, "s")
        self._charts: dict[str, PriceChart] = {}
        self._ticks: dict[str, collections.deque[tuple]] = {}  # symbol -> its newest ticks
        self._ticks_seen = 0  # the tick ring's total when last read
        self._chart_sig: tuple = ()
        self._logs_due = 0.0
        self._last_error = ""
        self.redraws = 0
        self._table = RunnerTable(self._on_action)
        self._logs = LogPane(log_lines, self._logs_now)
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
        # Each symbol keeps its own newest ticks: a quiet one beside a busy one
        # is not crowded out of the ring's newest rows.
        self._ticks_seen, new = wb.ticks.since(self._ticks_seen)
        for t in new:
            recent = self._ticks.get(t[1])
            if recent is None:
                recent = self._ticks[t[1]] = collections.deque(maxlen=self._points)
            recent.append(t)
        for sym in sorted(set(self._ticks) - set(self._charts)):
            self._charts[sym] = PriceChart(sym)
            self._chart_box.children = [c.fig for c in self._charts.values()]
        signals, fills = wb.signals.rows(last=500), wb.fills.rows(last=500)
        for sym, chart in self._charts.items():
            chart.update(
                list(self._ticks[sym]),
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
            f"ticks <b>{t.total:,}</b> (dropped {t.dropped:,}, missed {t.missed:,}"
            f"{_before(t)}) · signals <b>{wb.signals.total:,}</b>{_before(wb.signals, ' (', ')')} "
            f"· fills <b>{wb.fills.total:,}</b>{_before(wb.fills, ' (', ')')} · "
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


def _before(ring: Any, lead: str = ", ", end: str = "") -> str:
    """What a stream sent before the tap first heard it (the dashboard counts none of it)."""
    n = getattr(ring, "before_join", 0)
    return f"{lead}{n:,} before the tap joined{end}" if n else ""
