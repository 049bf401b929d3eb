"""The simulator at its edges: the signal tick, ticks of one time, stale ticks, the tape end."""

from __future__ import annotations

from workbench.domain.model import Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.execution.simulator import SimulatedBroker
from workbench.execution.tape import MarketTape
from workbench.marketdata.table import TickTable

MS = 1_000_000
PRICES = [100.0, 100.2, 100.4, 99.9, 99.7, 100.1, 100.6]
TS = [1_000 * MS + i * 10 * MS for i in range(len(PRICES))]
TABLE = TickTable(["ABC"] * len(PRICES), TS, PRICES, [1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 1.0])


def order(price: float, ts: int, qty=1.0, otype=OrderType.MARKET, oprice=0.0, tif=TimeInForce.GTC):
    s = Signal("s:1", "s", 1, "ABC", Side.BUY, qty, price, ts, "", "", 0, otype, oprice, tif)
    return Order.from_signal(s)


def on_tape(table: TickTable, **params) -> SimulatedBroker:
    b = SimulatedBroker(**params)
    b.use_tape(lambda: MarketTape.from_table(table))
    return b


def fills(b: SimulatedBroker):
    return [(r.status, r.fill.qty, r.fill.price, r.fill.ts_ns) for r in b.reports() if r.fill]


def test_with_no_latency_partial_fills_bound_the_signal_tick_by_its_size():
    b = on_tape(TABLE, partial_fills=True)
    b.submit(order(PRICES[0], TS[0], qty=3.0))
    assert fills(b) == [
        (OrderStatus.PARTIALLY_FILLED, 1.0, 100.0, TS[0]),  # tick 0 has 1
        (OrderStatus.FILLED, 2.0, 100.2, TS[1]),
    ]


def test_ticks_of_the_signal_time_that_came_after_it_can_fill_the_order():
    table = TickTable(["ABC"] * 4, [0, 10, 10, 20], [100.0, 100.0, 99.0, 101.0], [1.0] * 4)
    b = on_tape(table)
    b.submit(order(100.0, 10, otype=OrderType.LIMIT, oprice=99.5))  # on the first tick at 10
    assert fills(b) == [(OrderStatus.FILLED, 1.0, 99.5, 10)]  # the second one trades through


def test_an_ioc_order_that_reaches_the_venue_after_the_last_tick_expires():
    b = on_tape(TABLE, latency_ms=100)
    o = order(PRICES[5], TS[5], otype=OrderType.LIMIT, oprice=100.0, tif=TimeInForce.IOC)
    b.submit(o)
    snap = b.order(o.client_order_id)
    assert snap is not None and snap.status is OrderStatus.EXPIRED
    assert b.open_orders() == []
    [report] = b.reports()
    assert report.status is OrderStatus.EXPIRED and report.ts_ns == TS[5] + 100 * MS


def test_live_a_tick_from_before_the_order_never_fills_it():
    live = SimulatedBroker()
    live.submit(order(99.9, TS[3], otype=OrderType.LIMIT, oprice=99.8))  # rests
    live.on_tick("ABC", 99.0, TS[1])  # the executor read an older snapshot after the signal
    assert fills(live) == []
    live.on_tick("ABC", 99.0, TS[4])
    assert fills(live) == [(OrderStatus.FILLED, 1.0, 99.8, TS[4])]


def test_live_a_tick_before_a_latent_order_arrives_is_not_its_arrival():
    live = SimulatedBroker(latency_ms=15, partial_fills=True)
    live.submit(order(PRICES[0], TS[0], qty=2.0))
    live.on_tick("ABC", 100.2, TS[1])  # 10 ms: not there yet
    assert fills(live) == []
    live.on_tick("ABC", 100.4, TS[2], 0.5)  # 20 ms: arrives, fills what the tick has
    live.on_tick("ABC", 99.0, TS[1])  # stale: nothing
    live.on_tick("ABC", 99.9, TS[3], 3.0)
    assert fills(live) == [
        (OrderStatus.PARTIALLY_FILLED, 0.5, 100.4, TS[2]),
        (OrderStatus.FILLED, 1.5, 99.9, TS[3]),
    ]
