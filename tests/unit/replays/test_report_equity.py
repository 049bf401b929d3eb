"""Equity curve, drawdown and down-sampling, against hand-worked marks."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable
from workbench.replays.report import build_result


def fill(fid: str, side: str, qty: float, price: float, ts: int, symbol: str = "X") -> Fill:
    return Fill(fid, f"O-s:{fid}", f"s:{fid}", symbol, Side(side), qty, price, ts)


def equity_at(result) -> dict[int, tuple[float, float]]:
    e = result.equity
    return {
        ts.value: (eq, dd) for ts, eq, dd in zip(e["ts"], e["equity"], e["drawdown"], strict=True)
    }


def test_equity_is_realized_plus_unrealized_at_each_tick():
    # Buy 2@10, buy 1@12, sell 1@15, sell 3@11, buy 1@9 against ticks 10,12,15,11,9,8.
    fills = [
        fill("f1", "BUY", 2, 10.0, 1),
        fill("f2", "BUY", 1, 12.0, 2),
        fill("f3", "SELL", 1, 15.0, 3),
        fill("f4", "SELL", 3, 11.0, 4),
        fill("f5", "BUY", 1, 9.0, 5),
    ]
    tt = TickTable(["X"] * 6, [1, 2, 3, 4, 5, 6], [10.0, 12.0, 15.0, 11.0, 9.0, 8.0], [1.0] * 6)
    r = build_result(fills, [], tt, signals=5)
    got = equity_at(r)
    expected = {1: (0, 0), 2: (4, 0), 3: (13, 0), 4: (5, -8), 5: (7, -6), 6: (7, -6)}
    assert got.keys() == expected.keys()
    for ts, (eq, dd) in expected.items():
        assert got[ts] == (pytest.approx(eq), pytest.approx(dd)), ts
    assert r.summary["max_drawdown"] == pytest.approx(-8.0)


def test_multi_symbol_equity_sums_symbols_marked_as_of_each_timestamp():
    # A ticks at 10,20,30,40; B at 15,25,35; the file holds A's rows then B's.
    tt = TickTable(
        ["A"] * 4 + ["B"] * 3,
        [10, 20, 30, 40, 15, 25, 35],
        [100.0, 102.0, 101.0, 104.0, 50.0, 48.0, 55.0],
        [1.0] * 7,
    )
    fills = [fill("a", "BUY", 1, 100.0, 10, "A"), fill("b", "SELL", 2, 50.0, 15, "B")]
    r = build_result(fills, [], tt, signals=2)
    # A long 1 from 100; B short 2 from 50, each marked at its latest tick.
    expected = {
        10: (0, 0),
        15: (0, 0),
        20: (2, 0),
        25: (2 + 4, 0),
        30: (1 + 4, -1),
        35: (1 - 10, -15),
        40: (4 - 10, -12),
    }
    got = equity_at(r)
    assert got.keys() == expected.keys()
    for ts, (eq, dd) in expected.items():
        assert got[ts] == (pytest.approx(eq), pytest.approx(dd)), ts
    s = r.summary
    assert s["symbols"] == 2
    assert s["net_pnl"] == pytest.approx(-6.0)
    assert s["unrealized_pnl"] == pytest.approx(4.0 - 10.0)
    assert s["max_drawdown"] == pytest.approx(-15.0)
    assert s["final_positions"] == {"A": 1.0, "B": -2.0}


def test_ticks_sharing_a_timestamp_give_one_row_after_all_of_them():
    tt = TickTable(["X", "X", "X"], [1, 2, 2], [10.0, 11.0, 13.0], [1.0] * 3)
    r = build_result([fill("a", "BUY", 1, 10.0, 1)], [], tt, signals=1)
    assert equity_at(r) == {1: (0.0, 0.0), 2: (3.0, 0.0)}


def test_symbol_is_marked_at_its_fill_price_until_its_first_tick():
    tt = TickTable(["A", "A", "A", "B"], [1, 2, 3, 3], [10.0, 10.0, 10.0, 25.0], [1.0] * 4)
    r = build_result([fill("b", "BUY", 1, 20.0, 1, "B")], [], tt, signals=1)
    assert equity_at(r) == {1: (0.0, 0.0), 2: (0.0, 0.0), 3: (5.0, 0.0)}


def test_drawdown_counts_from_zero_before_the_first_gain():
    # Bought at 10 while the first tick already says 8: down from the start.
    tt = TickTable(["X"] * 3, [1, 2, 3], [8.0, 7.0, 9.0], [1.0] * 3)
    r = build_result([fill("a", "BUY", 1, 10.0, 1)], [], tt, signals=1)
    assert equity_at(r) == {1: (-2.0, -2.0), 2: (-3.0, -3.0), 3: (-1.0, -1.0)}
    assert r.summary["max_drawdown"] == -3.0


def sawtooth_with_crash(n: int = 10_000, crash_at: int = 7_777) -> TickTable:
    # Price cycles 100..106; one tick at crash_at drops to 50.
    price = [100.0 + (k % 7) for k in range(n)]
    price[crash_at] = 50.0
    return TickTable(["X"] * n, list(range(n)), price, [1.0] * n)


def test_equity_is_down_sampled_keeping_ends_fills_and_trough():
    tt = sawtooth_with_crash()
    fills = [fill("a", "BUY", 1, 100.0, 0), fill("b", "SELL", 1, 103.0, 9_000)]
    fills += [fill(f"c{k}", "BUY", 0.5, 100.0 + k % 7, k) for k in range(1_000, 1_040)]
    r = build_result(fills, [], tt, signals=len(fills), max_points=100)
    ts = [t.value for t in r.equity["ts"]]
    assert len(ts) <= 100
    assert ts == sorted(ts)
    assert ts[0] == 0 and ts[-1] == 9_999
    assert {f.ts_ns for f in fills} <= set(ts)
    # Long 1 from 100 (+20 half-lots, each bought at the tick) peaks at 106;
    # the crash to 50 is the trough, and the stored curve must show it.
    trough = r.equity.loc[r.equity["drawdown"].idxmin()]
    assert trough["ts"].value == 7_777
    assert trough["drawdown"] == pytest.approx(r.summary["max_drawdown"])


def test_max_drawdown_of_single_long_over_sawtooth_crash():
    tt = sawtooth_with_crash()
    r = build_result([fill("a", "BUY", 1, 100.0, 0)], [], tt, signals=1, max_points=50)
    # Peak equity 6 (price 106), trough -50 (price 50): drawdown -56.
    assert r.summary["max_drawdown"] == -56.0
    assert len(r.equity) <= 50
    assert r.equity["drawdown"].min() == -56.0
    assert r.equity["equity"].max() == 6.0  # the peak before the trough is kept too


def test_cap_wins_when_fills_outnumber_max_points():
    tt = sawtooth_with_crash()
    # 300 buys, each at its tick's price: long 300 when the crash comes.
    fills = [fill(f"f{k}", "BUY", 1, 100.0 + (10 * k) % 7, 10 * k) for k in range(300)]
    r = build_result(fills, [], tt, signals=300, max_points=50)
    ts = [t.value for t in r.equity["ts"]]
    assert len(ts) <= 50
    assert ts[0] == 0 and ts[-1] == 9_999
    assert 7_777 in ts


def test_short_series_is_stored_whole():
    tt = sawtooth_with_crash(n=200, crash_at=150)
    r = build_result([fill("a", "BUY", 1, 100.0, 0)], [], tt, signals=1)
    assert len(r.equity) == 200


def test_down_sampling_keeps_bucket_extremes_not_a_stride():
    # A lone spike up at tick 4_321: a stride of 100 rows would miss it.
    n = 10_000
    price = [100.0] * n
    price[4_321] = 180.0
    tt = TickTable(["X"] * n, list(range(n)), price, [1.0] * n)
    r = build_result([fill("a", "BUY", 1, 100.0, 0)], [], tt, signals=1, max_points=100)
    assert r.equity["equity"].max() == 80.0


def test_price_samples_are_capped_per_symbol_and_keep_extremes():
    n = 20_000
    rng = np.random.default_rng(7)
    price = (100 + np.cumsum(rng.normal(0, 1, n))).tolist()
    tt = TickTable(["X"] * n, list(range(n)), price, [1.0] * n)
    r = build_result([fill("a", "BUY", 1, price[0], 0)], [], tt, signals=1)
    trace = r.figures()["price"].data[0]
    assert len(trace.y) <= 5_000
    assert max(trace.y) == max(price) and min(trace.y) == min(price)


def test_max_points_below_four_is_refused():
    tt = TickTable(["X"], [1], [1.0], [1.0])
    with pytest.raises(ValueError, match="max_points"):
        build_result([], [], tt, signals=0, max_points=3)
