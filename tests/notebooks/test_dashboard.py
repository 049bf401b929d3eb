"""The dashboard's drawing and buttons, against a fake workbench (no processes, no browser)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from workbench.notebook.dashboard import Dashboard
from workbench.taps import FILL_COLUMNS, SIGNAL_COLUMNS, TICK_COLUMNS, Ring

T0 = 1_700_000_000_000_000_000


def status(runner: str, state: str = "running") -> dict[str, Any]:
    return {
        "runner": runner, "role": "strategy", "state": state, "pid": 42, "uptime_s": 3.0,
        "restarts": 0, "heartbeat_age_s": 0.1, "ticks_per_s": 50.0, "signals": 1, "orders": 0,
        "fills": 0, "p50_us": 900.0, "p99_us": 2500.0, "exit_code": None, "detail": "",
    }  # fmt: skip


class FakeLogs:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def recent(self, runner: str | None = None) -> list[dict[str, Any]]:
        return list(self.entries)


class FakeSupervisor:
    def __init__(self) -> None:
        self.logs = FakeLogs()


class FakeWorkbench:
    """What `Dashboard` reads from and calls on a `Workbench`."""

    def __init__(self) -> None:
        self.rows = [status("executor"), status("gateway"), status("sr-1")]
        self.ticks = Ring(TICK_COLUMNS, 10_000)
        self.signals = Ring(SIGNAL_COLUMNS, 1_000)
        self.fills = Ring(FILL_COLUMNS, 1_000)
        self.supervisor = FakeSupervisor()
        self.calls: list[tuple[str, str, int]] = []
        self.state = "ACTIVE"
        self.called = threading.Event()

    def status_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def levels(self) -> list[dict[str, Any]]:
        return [{"id": "buy-dip", "symbol": "ABC", "state": "WAITING", "trigger": 99.9,
                 "entry_level": 99.95, "tp_level": 100.15, "sl_level": 99.8}]  # fmt: skip

    def positions(self) -> dict[str, float]:
        return {"ABC": 1.0}

    def pnl(self) -> float:
        return 0.25

    def trading_state(self) -> str:
        return self.state

    def halt(self, flatten: bool = False) -> dict[str, Any]:
        self.state = "HALTED"
        self._record("halt", "")
        return {"trading_state": self.state}

    def resume(self) -> dict[str, Any]:
        self.state = "ACTIVE"
        self._record("resume", "")
        return {"trading_state": self.state}

    def _record(self, verb: str, runner: str) -> None:
        self.calls.append((verb, runner, threading.get_ident()))
        self.called.set()

    def start_runner(self, runner: str) -> None:
        self._record("start", runner)

    def stop_runner(self, runner: str) -> None:
        self._record("stop", runner)

    def restart(self, runner: str) -> None:
        self._record("restart", runner)


def add_ticks(wb: FakeWorkbench, n: int, start: int = 0) -> None:
    wb.ticks.extend(
        (T0 + (start + i) * 1_000_000, "ABC", 100.0 + i / 100, 1.0, start + i) for i in range(n)
    )


@pytest.fixture
def wb() -> FakeWorkbench:
    return FakeWorkbench()


@pytest.fixture
def dash(wb: FakeWorkbench) -> Iterator[Dashboard]:
    d = Dashboard(wb, refresh_hz=0.001)  # the thread stays idle: tests call refresh()
    try:
        yield d
    finally:
        d.close()


def row_classes(dash: Dashboard, runner: str) -> tuple[str, ...]:
    return tuple(dash._table._rows[runner].widget._dom_classes)


def test_each_runner_row_carries_its_state_as_a_css_class(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    assert "wb-state-running" in row_classes(dash, "sr-1")
    wb.rows[2]["state"] = "failed"
    dash.refresh()
    assert "wb-state-failed" in row_classes(dash, "sr-1")
    assert "wb-state-running" not in row_classes(dash, "sr-1")
    assert "wb-runner-table" in dash._table.widget._dom_classes


def test_the_chart_shows_the_newest_points_and_skips_work_when_nothing_changed(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    add_ticks(wb, 3_000)
    dash.refresh()
    fig = dash._charts["ABC"].fig
    assert len(fig.data[0].x) == 2_000
    assert fig.data[0].y[-1] == pytest.approx(100.0 + 2_999 / 100)
    assert "position +1" in fig.layout.title.text
    calls = []
    dash._charts["ABC"].update = lambda *a: calls.append(a)
    dash.refresh()
    assert calls == []
    add_ticks(wb, 1, start=3_000)
    dash.refresh()
    assert len(calls) == 1


def test_a_quiet_symbol_keeps_its_chart_and_ticks_beside_a_busy_one(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    # The charts took the newest points * charts ticks over all symbols: a
    # quiet symbol got no chart, or lost its ticks once a busy one flooded.
    wb.ticks.extend([(T0, "SLOW", 0.5, 1.0, 1), (T0 + 1, "SLOW", 0.51, 1.0, 2)])
    add_ticks(wb, 2_500, start=10)
    dash.refresh()
    assert sorted(dash._charts) == ["ABC", "SLOW"]
    assert list(dash._charts["SLOW"].fig.data[0].y) == [0.5, 0.51]
    add_ticks(wb, 5_000, start=3_000)
    dash.refresh()
    assert list(dash._charts["SLOW"].fig.data[0].y) == [0.5, 0.51]
    assert len(dash._charts["ABC"].fig.data[0].x) == 2_000


def test_signals_fills_and_levels_are_drawn_on_the_chart(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    add_ticks(wb, 100)
    ts = T0 + 50 * 1_000_000
    wb.signals.extend([(ts, "sr-1:1", "sr-1", "ABC", "BUY", 1.0, 100.5, "entry", "buy-dip", 9.0)])
    wb.fills.extend([(ts, "F-sr-1:1", "sr-1:1", "ABC", "BUY", 1.0, 100.51, 0.0, 1.0)])
    dash.refresh()
    data = dash._charts["ABC"].fig.data
    names = [t.name for t in data]
    assert list(data[names.index("buy signal")].y) == [100.5]
    assert list(data[names.index("sell signal")].y) == []
    assert list(data[names.index("fill")].y) == [100.51]
    assert [y for y in data[names.index("take-profit")].y if y is not None] == [100.15, 100.15]
    assert "fills <b>1</b>" in dash._summary.value
    assert "before the tap joined" not in dash._summary.value
    # What went before the tap joined (up to a second at the start) was shown nowhere.
    wb.ticks.before_join, wb.fills.before_join = 73, 1
    add_ticks(wb, 1, start=200)  # (it changes as a stream first reaches the tap)
    dash.refresh()
    assert "missed 0, 73 before the tap joined)" in dash._summary.value
    assert "fills <b>1</b> (1 before the tap joined)" in dash._summary.value


def test_the_log_pane_filters_by_runner_and_minimum_level(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    wb.supervisor.logs.entries = [
        {"timestamp": "2024-01-01T00:00:00.000Z", "runner": "sr-1", "level": "info",
         "event": "runner_started"},
        {"timestamp": "2024-01-01T00:00:01.000Z", "runner": "gateway", "level": "warning",
         "event": "gap_detected"},
    ]  # fmt: skip
    dash._logs.level.value = "warning"  # a filter change redraws at the next refresh
    dash.refresh()
    assert "gap_detected" in dash._logs.text.value
    assert "runner_started" not in dash._logs.text.value
    dash._logs.level.value = "info"
    dash._logs.runner.value = "sr-1"
    dash.refresh()
    assert "runner_started" in dash._logs.text.value
    assert "gap_detected" not in dash._logs.text.value


def test_buttons_run_their_action_off_the_widget_thread(wb: FakeWorkbench, dash: Dashboard) -> None:
    row = dash._table._rows["sr-1"]
    stop = next(b for b in row.widget.children if "wb-action-stop" in b._dom_classes)
    stop.click()
    assert wb.called.wait(5)
    verb, runner, ident = wb.calls[0]
    assert (verb, runner) == ("stop", "sr-1")
    assert ident != threading.get_ident()
    deadline = time.monotonic() + 5
    while "done" not in dash._message.value and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "stop: sr-1 done" in dash._message.value


def test_stop_all_stops_strategies_before_the_runners_they_connect_to(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    dash._on_action("stop", None)
    deadline = time.monotonic() + 5
    while len(wb.calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [c[1] for c in wb.calls] == ["sr-1", "gateway", "executor"]


def test_the_update_thread_redraws_and_close_stops_it(wb: FakeWorkbench) -> None:
    d = Dashboard(wb, refresh_hz=50)
    try:
        deadline = time.monotonic() + 5
        while d.redraws < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert d.redraws >= 5
    finally:
        d.close()
    assert not d._thread.is_alive()
    after = d.redraws
    time.sleep(0.1)
    assert d.redraws == after


def test_the_halt_button_halts_trading_and_the_summary_shows_the_state(
    wb: FakeWorkbench, dash: Dashboard
) -> None:
    dash.refresh()
    assert ">ACTIVE<" in dash._summary.value
    toolbar = dash.widget.children[0]
    halt = next(b for b in toolbar.children if "wb-action-halt" in b._dom_classes)
    halt.click()
    assert wb.called.wait(5)
    assert wb.calls[0][0] == "halt"
    dash.refresh()
    assert "wb-trading-state" in dash._summary.value and ">HALTED<" in dash._summary.value
