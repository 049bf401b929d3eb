"""The report books fills in the order they happened, and a float's drift closes nothing."""

from __future__ import annotations

import pytest

from workbench.domain.accounting import Portfolio, Position
from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable
from workbench.replays.performance import annual_return
from workbench.replays.report import build_result

T0, T1, T2 = 1_000, 2_000, 3_000
TICKS = TickTable(["ABC"] * 3, [T0, T1, T2], [100.0, 110.0, 110.0], [1.0] * 3)
PARTS = [235278.3, 3501235.9, 573118.0, 311448.1, 48098.6]  # a venue's decimal pieces
TOTAL = 4669178.9  # their sum in decimal; 4669178.8999999985 in floats


def fill(seq: int, side: str, qty: float, price: float, ts: int) -> Fill:
    return Fill(f"F-s:{seq}", f"O-s:{seq}", f"s:{seq}", "ABC", Side(side), qty, price, ts)


def test_fills_of_one_time_are_booked_in_seq_order_as_the_executor_booked_them():
    fills = [fill(1, "BUY", 1, 100.0, T0), fill(9, "SELL", 1, 109.0, T1)]
    fills.append(fill(10, "BUY", 1, 111.0, T1))  # "s:10" < "s:9" as text
    books = Portfolio()
    for f in fills:
        books.apply(f)
    r = build_result(fills, [], TICKS, signals=3)
    row = r.positions.iloc[0]
    assert row["avg_price"] == pytest.approx(books.positions["ABC"].avg_price) == 111.0
    assert r.summary["realized_pnl"] == pytest.approx(9.0)
    assert r.summary["unrealized_pnl"] == pytest.approx(-1.0)


def test_a_flip_and_a_close_at_one_time_pair_into_the_right_trades():
    fills = [fill(1, "BUY", 1, 100.0, T0), fill(9, "SELL", 2, 109.0, T1)]
    fills.append(fill(10, "BUY", 1, 111.0, T1))
    r = build_result(fills, [], TICKS, signals=3)
    got = r.trades[["side", "qty", "entry_price", "exit_price", "pnl"]].values.tolist()
    assert got == [["LONG", 1.0, 100.0, 109.0, 9.0], ["SHORT", 1.0, 109.0, 111.0, -2.0]]


def test_a_position_closed_in_pieces_is_flat():
    p = Position("X")
    p.apply(Fill("F-s:1", "O-s:1", "s:1", "X", Side.BUY, TOTAL, 1.0, 1))
    for i, q in enumerate([235278.3, 3501235.9, 573118.0, 311448.1, 47998.6, 100.0], start=2):
        p.apply(Fill(f"F-s:{i}", f"O-s:{i}", f"s:{i}", "X", Side.SELL, q, 1.0, i))
    assert (p.qty, p.avg_price, p.peak) == (0.0, 0.0, 0.0)


def test_a_real_remainder_is_not_drift():
    p = Position("X")
    p.apply(Fill("F-s:1", "O-s:1", "s:1", "X", Side.BUY, 1.0, 1.0, 1))
    p.apply(Fill("F-s:2", "O-s:2", "s:2", "X", Side.SELL, 1.0 - 1e-9, 1.0, 2))
    assert p.qty == pytest.approx(1e-9)


def test_pieces_closed_by_one_fill_leave_no_lot_and_no_exposure():
    fills = [fill(i + 1, "BUY", q, 100.0, T0) for i, q in enumerate(PARTS)]
    fills += [fill(7, "SELL", TOTAL, 100.0, T1), fill(8, "BUY", 1, 110.0, T1 + 1)]
    fills.append(fill(9, "SELL", 1, 110.0, T2))
    r = build_result(fills, [], TICKS, signals=8)
    assert len(r.trades) == 6 and r.trades["qty"].min() > 0.5  # 5 lots, 1 round trip
    only_pieces = build_result(fills[:6], [], TICKS, signals=6)
    assert only_pieces.positions["qty"].tolist() == [0.0]
    assert only_pieces.performance["exposure"] == pytest.approx(0.5)  # T0..T1 of T0..T2


def test_a_return_no_float_holds_a_year_on_is_null_not_a_crash():
    assert annual_return(17.0, 1) is None
    fills = [fill(1, "BUY", 170, 100.0, T0), fill(2, "SELL", 170, 110.0, T1)]
    r = build_result(fills, [], TICKS, signals=2, capital=100.0)
    assert r.summary["net_pnl"] == pytest.approx(1700.0)
    assert r.performance["annual_return"] is None
