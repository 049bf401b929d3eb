"""Slippage as a fraction of the spread: MARKET and triggered STOP fills priced off bid and ask."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.domain.model import Order, OrderType, Side, Signal
from workbench.execution.simulator import SimulatedBroker
from workbench.execution.tape import MarketTape
from workbench.marketdata.table import TickTable

MS = 1_000_000
BID = [99.9, 100.0, 100.2, 99.6, 99.5]
ASK = [100.1, 100.4, 100.4, 100.2, 99.9]
MID = [(b + a) / 2 for b, a in zip(BID, ASK, strict=True)]
TS = [1_000 * MS + i * 10 * MS for i in range(len(BID))]
QUOTES = TickTable(["ABC"] * len(BID), TS, MID, [1.0] * len(BID), bid=BID, ask=ASK)
TRADES = TickTable(["ABC"] * len(BID), TS, MID, [1.0] * len(BID))


def order(i: int, side=Side.BUY, otype=OrderType.MARKET, oprice=0.0) -> Order:
    s = Signal(f"s:{i}", "s", i, "ABC", side, 1.0, MID[i], TS[i], "", "", 0, otype, oprice)
    return Order.from_signal(s)


def fill_prices(table: TickTable, o: Order, **params) -> list[tuple[float, int]]:
    b = SimulatedBroker(**params)
    b.use_tape(lambda: MarketTape.from_table(table))
    b.submit(o)
    return [(r.fill.price, r.fill.ts_ns) for r in b.reports() if r.fill]


def test_one_half_spread_buys_at_the_ask_and_sells_at_the_bid_of_the_signal_tick():
    assert fill_prices(QUOTES, order(1), slippage_half_spreads=1.0) == [(100.4, TS[1])]
    assert fill_prices(QUOTES, order(1, Side.SELL), slippage_half_spreads=1.0) == [(100.0, TS[1])]


@pytest.mark.parametrize(("frac", "buy", "sell"), [(0.0, 100.2, 100.2), (0.5, 100.3, 100.1)])
def test_the_fraction_scales_the_half_spread_from_the_mid(frac, buy, sell):
    assert fill_prices(QUOTES, order(1), slippage_half_spreads=frac)[0][0] == pytest.approx(buy)
    got = fill_prices(QUOTES, order(1, Side.SELL), slippage_half_spreads=frac)[0][0]
    assert got == pytest.approx(sell)


def test_with_latency_the_quote_of_the_arrival_tick_counts_and_fixed_slippage_does_not():
    got = fill_prices(QUOTES, order(0), latency_ms=15, slippage=5.0, slippage_half_spreads=1.0)
    assert got == [(100.4, TS[2])]  # tick 2's ask; the fixed 5.0 is only the fallback


def test_ticks_without_bid_and_ask_fall_back_to_the_fixed_slippage():
    got = fill_prices(TRADES, order(1), slippage=0.05, slippage_half_spreads=1.0)
    assert got == [(pytest.approx(100.25), TS[1])]
    live = SimulatedBroker(latency_ms=15, slippage=0.05, slippage_half_spreads=1.0)
    live.submit(order(0))
    live.on_tick("ABC", MID[2], TS[2])  # live ticks carry one price
    assert [r.fill.price for r in live.reports() if r.fill] == [pytest.approx(100.35)]


def test_a_triggered_stop_pays_the_spread_and_a_limit_fills_at_its_limit():
    stop = order(0, Side.SELL, OrderType.STOP, 99.95)  # mids 100.3, 99.9: triggers at tick 3
    assert fill_prices(QUOTES, stop, slippage_half_spreads=1.0) == [(99.6, TS[3])]
    limit = order(0, Side.BUY, OrderType.LIMIT, 99.8)  # trades through at tick 4 (mid 99.7)
    assert fill_prices(QUOTES, limit, slippage_half_spreads=1.0) == [(99.8, TS[4])]


def test_defaults_ignore_the_quotes():
    assert fill_prices(QUOTES, order(1)) == [(100.2, TS[1])]


def test_equal_timestamps_take_the_quote_of_the_tick_with_the_signal_price():
    table = TickTable(
        ["ABC"] * 3, [TS[0]] * 3, [100.0, 101.0, 102.0], [1.0] * 3,
        bid=[99.0, 100.0, 101.0], ask=[101.0, 102.0, 103.0],
    )  # fmt: skip
    s = Signal("s:1", "s", 1, "ABC", Side.BUY, 1.0, 101.0, TS[0])
    assert fill_prices(table, Order.from_signal(s), slippage_half_spreads=1.0) == [(102.0, TS[0])]


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_bad_fraction_is_refused(bad):
    with pytest.raises(ValueError, match="slippage_half_spreads"):
        SimulatedBroker(slippage_half_spreads=bad)


def test_tape_carries_bid_and_ask_per_symbol_in_time_order():
    table = TickTable(["A", "B", "A"], [5, 1, 3], [1.0, 2.0, 3.0], [1.0] * 3,
                      bid=[0.9, 1.9, 2.9], ask=[1.1, 2.1, 3.1])  # fmt: skip
    a = MarketTape.from_table(table).symbol("A")
    assert a is not None and np.array_equal(a.bid, [2.9, 0.9]) and a.quote(1) == (0.9, 1.1)
    assert MarketTape.from_table(TRADES).symbol("ABC").quote(0) is None  # type: ignore[union-attr]
