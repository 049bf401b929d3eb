"""The venue simulator: deterministic fills in market time, on recorded ticks or live ticks."""

from __future__ import annotations

import pytest

from workbench.domain.model import Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.execution.simulator import SimulatedBroker
from workbench.execution.tape import MarketTape
from workbench.marketdata.table import TickTable

MS = 1_000_000
PRICES = [100.0, 100.2, 100.4, 99.9, 99.7, 100.1, 100.6]
TABLE = TickTable(
    ["ABC"] * len(PRICES),
    [1_000 * MS + i * 10 * MS for i in range(len(PRICES))],
    PRICES,
    [1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 1.0],
)


def order(i: int, side=Side.BUY, qty=1.0, otype=OrderType.MARKET, oprice=0.0, tif=TimeInForce.GTC):
    s = Signal(
        f"s:{i}", "s", i, "ABC", side, qty, PRICES[i], TABLE.ts_ns[i], "", "", 0, otype, oprice, tif
    )
    return Order.from_signal(s)


def broker(**params) -> SimulatedBroker:
    b = SimulatedBroker(**params)
    b.use_tape(lambda: MarketTape.from_table(TABLE))
    return b


def fills(b: SimulatedBroker):
    return [(r.status, r.fill.qty, r.fill.price, r.fill.ts_ns) for r in b.reports() if r.fill]


def test_defaults_fill_at_once_in_full_at_the_signal_price_without_touching_the_tape():
    b = SimulatedBroker()
    b.use_tape(lambda: pytest.fail("the default market order needs no recorded ticks"))
    ack = b.submit(order(2))
    assert ack.accepted and ack.venue_order_id
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 100.4, TABLE.ts_ns[2])]


def test_latency_fills_against_the_first_tick_at_or_after_signal_plus_latency():
    b = broker(latency_ms=15)
    b.submit(order(0))
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 100.4, TABLE.ts_ns[2])]  # t0 + 15 ms -> tick 2


def test_fees_in_bps_and_per_order_on_the_first_fill_only():
    b = broker(fee_bps=10, fee_per_order=0.5, partial_fills=True, latency_ms=10)
    b.submit(order(0, qty=3.0))  # arrives at tick 1 (size 2), then tick 2 (size 0.5), tick 3
    reports = [r for r in b.reports() if r.fill]
    assert [r.fill.qty for r in reports] == [2.0, 0.5, 0.5]
    assert reports[0].fill.fee == pytest.approx(2 * 100.2 * 0.001 + 0.5)
    assert reports[1].fill.fee == pytest.approx(0.5 * 100.4 * 0.001)
    assert [r.status for r in reports][-1] is OrderStatus.FILLED
    assert [r.fill.id for r in reports] == ["F-s:0", "F-s:0-2", "F-s:0-3"]


def test_buy_limit_rests_until_the_price_trades_through_and_fills_at_the_limit():
    b = broker()
    b.submit(order(0, otype=OrderType.LIMIT, oprice=99.8))
    # 99.9 does not reach it, 99.7 trades through 99.8: filled at the limit
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 99.8, TABLE.ts_ns[4])]


def test_marketable_limit_fills_on_arrival_at_the_tick_price():
    b = broker()
    b.submit(order(3, side=Side.SELL, otype=OrderType.LIMIT, oprice=99.5))
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 99.9, TABLE.ts_ns[3])]


def test_stop_triggers_at_or_through_its_price_and_fills_as_market_with_slippage():
    b = broker(slippage=0.05)
    b.submit(order(0, side=Side.SELL, otype=OrderType.STOP, oprice=99.9))
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 99.85, TABLE.ts_ns[3])]


def test_ioc_limit_not_marketable_on_arrival_expires():
    b = broker()
    b.submit(order(1, otype=OrderType.LIMIT, oprice=99.0, tif=TimeInForce.IOC))
    rs = b.reports()
    assert [r.status for r in rs] == [OrderStatus.EXPIRED]
    assert b.order(order(1).client_order_id).status is OrderStatus.EXPIRED


def test_a_resting_order_never_reached_stays_open_and_can_be_cancelled():
    b = broker()
    o = order(0, otype=OrderType.LIMIT, oprice=90.0)
    b.submit(o)
    assert b.reports() == [] and [s.client_order_id for s in b.open_orders()] == [o.client_order_id]
    b.cancel(o.client_order_id)
    assert [r.status for r in b.reports()] == [OrderStatus.CANCELLED]
    assert b.open_orders() == []


def test_the_venue_deduplicates_on_the_client_order_id():
    b = broker()
    first = b.submit(order(0))
    again = b.submit(order(0))
    assert again.accepted and again.venue_order_id == first.venue_order_id
    assert len(fills(b)) == 1 and b.positions() == {"ABC": 1.0}


def test_live_ticks_fill_like_the_tape():
    live = SimulatedBroker(latency_ms=15)
    live.submit(order(0))
    assert live.reports() == []
    for i in range(1, len(PRICES)):
        live.on_tick("ABC", PRICES[i], TABLE.ts_ns[i], TABLE.size[i])
    taped = broker(latency_ms=15)
    taped.submit(order(0))
    assert fills(live) == fills(taped)


def test_bad_order_price_is_rejected_and_bad_params_refused():
    ack = broker().submit(order(0, otype=OrderType.LIMIT, oprice=0.0))
    assert not ack.accepted and "order_price" in ack.reason
    with pytest.raises(ValueError, match="latency_ms"):
        SimulatedBroker(latency_ms=-1)


def test_tape_puts_each_symbol_in_time_order():
    table = TickTable(["A", "B", "A", "A"], [5, 1, 3, 9], [1.0, 2.0, 3.0, 4.0], [1.0] * 4)
    tape = MarketTape.from_table(table)
    a = tape.symbol("A")
    assert a is not None and a.ts_ns.tolist() == [3, 5, 9] and a.price.tolist() == [3.0, 1.0, 4.0]
    assert tape.symbol("C") is None and a.first_after(5) == 2 and a.first_at_or_after(5) == 1


def test_a_live_paper_venue_forgets_finished_orders_beyond_a_bound():
    """Every order and fill was kept for ever: about 1 KB each, a paper run of weeks grew
    without end (and `open_orders`, `positions` scanned the whole history)."""
    from workbench.execution.sim_orders import KEEP_DONE

    b = SimulatedBroker(latency_ms=1)  # live: orders wait for the next tick
    n = KEEP_DONE + 500
    for i in range(1, n + 1):
        side = Side.BUY if i % 3 else Side.SELL
        s = Signal(f"s:{i}", "s", i, "ABC", side, 1.0, 100.0, i * MS)
        b.submit(Order.from_signal(s))
        b.on_tick("ABC", 100.0, i * MS + 2 * MS)
    low = Signal(
        "s:0", "s", n + 1, "ABC", Side.BUY, 1.0, 90.0, n * MS, "", "", 0, OrderType.LIMIT, 90.0
    )
    resting = Order.from_signal(low)
    b.submit(resting)
    assert len(b._orders) == KEEP_DONE + 1 and len(b._fills) == KEEP_DONE
    assert [o.client_order_id for o in b.open_orders()] == [resting.client_order_id]
    assert b.positions() == {"ABC": float(sum(1 if i % 3 else -1 for i in range(1, n + 1)))}
    last = Order.from_signal(Signal(f"s:{n}", "s", n, "ABC", Side.BUY, 1.0, 100.0, n * MS))
    assert b.order(last.client_order_id).status is OrderStatus.FILLED  # recent: still known
    again = b.submit(last)  # and still deduplicated
    assert again.accepted and again.reason == "duplicate client order id"
    first = Order.from_signal(Signal("s:1", "s", 1, "ABC", Side.BUY, 1.0, 100.0, MS))
    assert b.order(first.client_order_id) is None  # long finished: forgotten
