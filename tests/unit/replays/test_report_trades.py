"""FIFO trade matching and average-cost positions, against hand-worked books."""

from __future__ import annotations

import math

import pytest

from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable
from workbench.replays.report import build_result


def fill(fid: str, side: str, qty: float, price: float, ts: int, symbol: str = "X") -> Fill:
    return Fill(fid, f"O-s:{fid}", f"s:{fid}", symbol, Side(side), qty, price, ts)


def ticks(symbol: str, prices: list[float], start: int = 1) -> TickTable:
    n = len(prices)
    return TickTable([symbol] * n, list(range(start, start + n)), prices, [1.0] * n)


# Buy 2@10, buy 1@12, sell 1@15, sell 3@11 (closes 2, flips short 1), buy 1@9.
BOOK = [
    fill("f1", "BUY", 2, 10.0, 1),
    fill("f2", "BUY", 1, 12.0, 2),
    fill("f3", "SELL", 1, 15.0, 3),
    fill("f4", "SELL", 3, 11.0, 4),
    fill("f5", "BUY", 1, 9.0, 5),
]
BOOK_TICKS = ticks("X", [10.0, 12.0, 15.0, 11.0, 9.0, 8.0])


def trade_rows(result) -> list[tuple]:
    t = result.trades
    return list(
        zip(
            t["side"],
            t["qty"],
            t["entry_price"],
            t["exit_price"],
            t["pnl"],
            t["entry_order_id"].str.removeprefix("O-s:"),  # each fill here is an order's
            t["exit_order_id"].str.removeprefix("O-s:"),
            strict=True,
        )
    )


def test_fifo_matches_oldest_lot_first_and_splits_partials_and_flips():
    r = build_result(BOOK, [], BOOK_TICKS, signals=5)
    assert trade_rows(r) == [
        ("LONG", 1.0, 10.0, 15.0, 5.0, "f1", "f3"),
        ("LONG", 1.0, 10.0, 11.0, 1.0, "f1", "f4"),
        ("LONG", 1.0, 12.0, 11.0, -1.0, "f2", "f4"),
        ("SHORT", 1.0, 11.0, 9.0, 2.0, "f4", "f5"),
    ]


def test_trade_timestamps_are_utc_datetimes_of_entry_and_exit_fills():
    r = build_result(BOOK, [], BOOK_TICKS, signals=5)
    assert [t.value for t in r.trades["entry_ts"]] == [1, 1, 2, 4]
    assert [t.value for t in r.trades["exit_ts"]] == [3, 4, 4, 5]
    assert str(r.trades["entry_ts"].dt.tz) == "UTC"


def test_win_rate_and_sharpe_from_trade_pnl():
    # Trade PnL 5, 1, -1, 2: mean 1.75, sample stdev 2.5.
    s = build_result(BOOK, [], BOOK_TICKS, signals=5).summary
    assert (s["trades"], s["wins"], s["losses"]) == (4, 3, 1)
    assert s["win_rate"] == 0.75
    assert s["sharpe"] == pytest.approx(0.7)


def test_realized_pnl_is_average_cost_and_equals_trade_total_when_flat():
    # Average cost 32/3: sell 1@15 books 13/3, sell 2@11 books 2/3, cover 1@9 books 2.
    r = build_result(BOOK, [], BOOK_TICKS, signals=5)
    assert r.summary["realized_pnl"] == pytest.approx(7.0)
    assert r.trades["pnl"].sum() == pytest.approx(7.0)
    assert r.summary["net_pnl"] == pytest.approx(7.0)
    assert r.summary["final_positions"] == {"X": 0.0}


def test_realized_pnl_differs_from_fifo_while_a_position_is_open():
    # Stop before the flip: average cost has booked 13/3, FIFO has booked 5.
    r = build_result(BOOK[:3], [], BOOK_TICKS, signals=3)
    assert r.summary["realized_pnl"] == pytest.approx(13 / 3)
    assert r.trades["pnl"].sum() == pytest.approx(5.0)
    pos = r.positions.iloc[0]
    assert (pos["qty"], pos["avg_price"]) == (2.0, pytest.approx(32 / 3))
    # Marked at the last tick, 8: (8 - 32/3) * 2.
    assert pos["last_price"] == 8.0
    assert pos["unrealized_pnl"] == pytest.approx(-16 / 3)
    assert r.summary["net_pnl"] == pytest.approx(13 / 3 - 16 / 3)


def test_partial_closes_of_one_lot_make_one_trade_each():
    fills = [
        fill("a", "BUY", 4, 20.0, 1),
        fill("b", "SELL", 1, 21.0, 2),
        fill("c", "SELL", 1, 19.0, 3),
        fill("d", "SELL", 2, 22.0, 4),
    ]
    r = build_result(fills, [], ticks("X", [20.0, 21.0, 19.0, 22.0]), signals=4)
    assert trade_rows(r) == [
        ("LONG", 1.0, 20.0, 21.0, 1.0, "a", "b"),
        ("LONG", 1.0, 20.0, 19.0, -1.0, "a", "c"),
        ("LONG", 2.0, 20.0, 22.0, 4.0, "a", "d"),
    ]
    assert r.summary["realized_pnl"] == pytest.approx(4.0)


def test_flip_closes_the_long_then_opens_a_short_at_the_fill_price():
    fills = [
        fill("a", "BUY", 2, 100.0, 1),
        fill("b", "SELL", 5, 103.0, 2),  # closes 2 (+6), opens short 3 @ 103
        fill("c", "BUY", 3, 101.0, 3),  # covers 3 (+6)
    ]
    r = build_result(fills, [], ticks("X", [100.0, 103.0, 101.0]), signals=3)
    assert trade_rows(r) == [
        ("LONG", 2.0, 100.0, 103.0, 6.0, "a", "b"),
        ("SHORT", 3.0, 103.0, 101.0, 6.0, "b", "c"),
    ]
    assert r.summary["realized_pnl"] == pytest.approx(12.0)


def test_open_lots_are_not_trades_and_short_pnl_has_the_right_sign():
    fills = [fill("a", "SELL", 2, 50.0, 1), fill("b", "BUY", 1, 45.0, 2)]
    r = build_result(fills, [], ticks("X", [50.0, 45.0, 44.0]), signals=2)
    assert trade_rows(r) == [("SHORT", 1.0, 50.0, 45.0, 5.0, "a", "b")]
    pos = r.positions.iloc[0]
    assert pos["qty"] == -1.0
    assert pos["unrealized_pnl"] == pytest.approx(6.0)  # short 1 from 50, marked at 44


def test_symbols_are_matched_separately():
    fills = [
        fill("a", "BUY", 1, 10.0, 1, "A"),
        fill("b", "SELL", 1, 20.0, 2, "B"),
        fill("c", "SELL", 1, 11.0, 3, "A"),
        fill("d", "BUY", 1, 18.0, 4, "B"),
    ]
    tt = TickTable(["A", "B"] * 2, [1, 2, 3, 4], [10.0, 20.0, 11.0, 18.0], [1.0] * 4)
    r = build_result(fills, [], tt, signals=4)
    assert list(zip(r.trades["symbol"], r.trades["side"], r.trades["pnl"], strict=True)) == [
        ("A", "LONG", 1.0),
        ("B", "SHORT", 2.0),
    ]
    assert list(r.positions["symbol"]) == ["A", "B"]


def test_fill_input_order_does_not_matter():
    a = build_result(BOOK, [], BOOK_TICKS, signals=5)
    b = build_result(list(reversed(BOOK)), [], BOOK_TICKS, signals=5)
    assert trade_rows(a) == trade_rows(b)
    assert a.summary == b.summary
    assert list(b.fills["fill_id"]) == ["f1", "f2", "f3", "f4", "f5"]


def test_same_timestamp_fills_are_ordered_by_fill_id():
    fills = [fill("z", "SELL", 1, 12.0, 5), fill("a", "BUY", 1, 10.0, 5)]
    r = build_result(fills, [], ticks("X", [10.0], start=5), signals=2)
    assert list(r.fills["fill_id"]) == ["a", "z"]
    assert trade_rows(r) == [("LONG", 1.0, 10.0, 12.0, 2.0, "a", "z")]


def test_symbol_without_ticks_is_marked_at_its_last_fill_price():
    fills = [fill("a", "BUY", 1, 7.0, 1, "C"), fill("b", "BUY", 1, 9.0, 2, "C")]
    r = build_result(fills, [], ticks("X", [1.0, 1.0]), signals=2)
    pos = r.positions.iloc[0]
    assert (pos["symbol"], pos["last_price"], pos["avg_price"]) == ("C", 9.0, 8.0)
    assert pos["unrealized_pnl"] == pytest.approx(2.0)


def order_fill(
    fid: str, order: str, side: str, qty: float, price: float, ts: int, fee: float = 0.0
) -> Fill:
    return Fill(fid, order, f"s:{order}", "X", Side(side), qty, price, ts, fee=fee)


def test_an_order_filled_in_pieces_is_one_round_trip_with_its_fills_fees_after():
    # Entry order E filled 1 + 1 + 1 @ 10, 10, 11; exit X 2 + 1 @ 12, 13. FIFO pairs three
    # pieces; they are one trade (the gate's --min-trades counted three).
    fills = [
        order_fill("e1", "E", "BUY", 1, 10.0, 1, fee=0.3),
        order_fill("e2", "E", "BUY", 1, 10.0, 2, fee=0.3),
        order_fill("e3", "E", "BUY", 1, 11.0, 3, fee=0.3),
        order_fill("x1", "X", "SELL", 2, 12.0, 4, fee=0.4),
        order_fill("x2", "X", "SELL", 1, 13.0, 5, fee=0.2),
    ]
    r = build_result(fills, [], ticks("X", [10.0, 10.0, 11.0, 12.0, 13.0]), signals=2)
    [t] = r.trades.to_dict("records")
    assert (t["side"], t["qty"], t["entry_order_id"], t["exit_order_id"], t["fills"]) == (
        "LONG", 3.0, "E", "X", 3,
    )  # fmt: skip
    assert t["entry_price"] == pytest.approx(31 / 3) and t["exit_price"] == pytest.approx(37 / 3)
    assert (t["entry_ts"].value, t["exit_ts"].value) == (1, 5)
    assert t["pnl"] == pytest.approx(6.0)
    assert t["fees"] == pytest.approx(1.5)
    assert t["pnl_after_fees"] == pytest.approx(4.5)
    assert (r.summary["trades"], r.summary["wins"], r.summary["fills"]) == (1, 1, 5)


def test_wins_win_rate_and_sharpe_are_after_fees():
    # Two round trips, each +0.5 before fees and -0.1 after its 0.6 of fees: no win.
    fills = [
        order_fill("a", "A", "BUY", 1, 10.0, 1, fee=0.3),
        order_fill("b", "B", "SELL", 1, 10.5, 2, fee=0.3),
        order_fill("c", "C", "BUY", 1, 10.0, 3, fee=0.2),
        order_fill("d", "D", "SELL", 1, 10.5, 4, fee=0.4),
    ]
    s = build_result(fills, [], ticks("X", [10.0, 10.5, 10.0, 10.5]), signals=4).summary
    assert (s["trades"], s["wins"], s["losses"], s["win_rate"]) == (2, 0, 2, 0.0)
    assert s["sharpe"] == -math.inf  # equal losing trades: no spread
    assert s["net_pnl_after_fees"] == pytest.approx(-0.2)
    assert "after fees" in s["sharpe_basis"]


def test_a_flip_fills_fee_is_shared_between_the_trade_it_closes_and_the_lot_it_opens():
    fills = [
        order_fill("a", "A", "BUY", 2, 100.0, 1, fee=0.2),
        order_fill("b", "B", "SELL", 5, 103.0, 2, fee=1.0),  # closes 2 (0.4 of it), opens 3
        order_fill("c", "C", "BUY", 3, 101.0, 3, fee=0.6),  # covers 3 (0.6 + 0.6)
    ]
    r = build_result(fills, [], ticks("X", [100.0, 103.0, 101.0]), signals=3)
    assert list(r.trades["fees"]) == pytest.approx([0.6, 1.2])
    assert list(r.trades["pnl_after_fees"]) == pytest.approx([5.4, 4.8])
    assert r.trades["fees"].sum() == pytest.approx(r.summary["fees"])  # flat: every fee is in
