"""Tap ring buffers: bounded, drop the oldest, count what they dropped."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from helpers import make_config

from workbench.exceptions import ConfigurationError
from workbench.taps import TICK_COLUMNS, Ring, Taps


def test_ring_keeps_the_newest_and_counts_drops():
    r = Ring(("a",), maxlen=3)
    r.extend([(1,), (2,)])
    r.extend([(3,), (4,), (5,)])
    assert r.rows() == [(3,), (4,), (5,)]
    assert (r.total, r.dropped, len(r)) == (5, 2, 3)


def test_frame_gives_the_last_n_rows_with_utc_times():
    r = Ring(TICK_COLUMNS, maxlen=10)
    r.extend([(1_700_000_000_000_000_000 + i, "ABC", 100.0 + i, 1.0, i) for i in range(5)])
    df = r.frame(last=2)
    assert list(df.columns) == list(TICK_COLUMNS)
    assert df["price"].tolist() == [103.0, 104.0]
    assert str(df["ts"].dt.tz) == "UTC"


def test_since_gives_the_rows_added_after_a_total_that_the_ring_still_holds():
    r = Ring(("a",), maxlen=3)
    assert r.since(0) == (0, [])
    r.extend([(1,), (2,)])
    total, rows = r.since(0)
    assert (total, rows) == (2, [(1,), (2,)])
    r.extend([(3,), (4,), (5,), (6,)])  # (3,) dropped before it was read
    assert r.since(total) == (6, [(4,), (5,), (6,)])
    assert r.since(6) == (6, [])


def test_empty_ring_gives_an_empty_frame_with_columns():
    df = Ring(("ts", "x"), maxlen=2).frame()
    assert df.empty and list(df.columns) == ["ts", "x"]


def test_a_failed_set_up_does_not_stop_the_next_start_and_stop_reaches_its_thread(
    tmp_path, monkeypatch
):
    # The first error stayed set: the next start (the key now given) raised it
    # again after 5 s and lost the thread it had started, which ran on.
    from workbench import taps as taps_module

    failures = [ConfigurationError("security.keys_dir: no tap key")]
    threads: list[threading.Thread] = []

    def install(*args: Any) -> None:
        threads.append(threading.current_thread())
        if failures:
            raise failures.pop()

    monkeypatch.setattr(taps_module.security, "install", install)
    taps = Taps(make_config(tmp_path))
    with pytest.raises(ConfigurationError, match="no tap key"):
        taps.start()
    try:
        taps.start()
        assert taps._thread is threads[-1] and taps._thread.is_alive()
    finally:
        taps.stop()
    assert len(threads) == 2 and not any(t.is_alive() for t in threads)


def test_a_start_after_a_stop_waits_for_its_own_subscription(tmp_path, monkeypatch):
    # The first start's ready flag was never cleared: the second returned at
    # once, before its sockets were connected.
    from workbench import taps as taps_module

    real = taps_module.security.install
    done: list[int] = []

    def slow_install(*args: Any) -> None:
        time.sleep(0.3)
        real(*args)
        done.append(1)

    taps = Taps(make_config(tmp_path))
    taps.start()
    taps.stop()
    monkeypatch.setattr(taps_module.security, "install", slow_install)
    try:
        taps.start()
        assert done == [1]
    finally:
        taps.stop()


def test_a_gateway_restarting_for_ever_keeps_two_of_its_processes_in_the_tap():
    """One entry per gateway process was kept for ever (a crash loop under
    unlimited_restarts grew it without end); the newest and the one before suffice."""
    from workbench.config import build_config
    from workbench.domain.model import TickBatch
    from workbench.taps import Taps

    taps = Taps(build_config({}))
    for epoch in range(1, 50):
        taps._count_ticks("gw", epoch, TickBatch("ABC", 1, [1, 2], [1.0, 1.0], [1.0, 1.0]))
        taps._count_ticks("other", 7, TickBatch("ABC", epoch * 2 - 1, [1, 2], [1.0] * 2, [1.0] * 2))
    assert sorted(taps._next_tick) == [("gw", 48), ("gw", 49), ("other", 7)]
    taps._count_ticks("gw", 48, TickBatch("ABC", 3, [3], [1.0], [1.0]))  # the old one's last
    assert taps.ticks.missed == 0
