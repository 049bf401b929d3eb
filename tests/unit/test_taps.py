"""Tap ring buffers: bounded, drop the oldest, count what they dropped."""

from __future__ import annotations

from workbench.taps import TICK_COLUMNS, Ring


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


def test_empty_ring_gives_an_empty_frame_with_columns():
    df = Ring(("ts", "x"), maxlen=2).frame()
    assert df.empty and list(df.columns) == ["ts", "x"]
