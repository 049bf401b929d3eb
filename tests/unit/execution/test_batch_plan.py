"""Position rules over a batch: room made by an earlier order on the other side is not counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_trading_state import DAY, NS

from workbench.config import RiskConfig
from workbench.domain.model import Fill, Order, OrderType, Side, Signal, TimeInForce
from workbench.exceptions import OrderRejected
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.simulator import SimulatedBroker
from workbench.telemetry import Telemetry


class RefusesSome(SimulatedBroker):
    """A venue that refuses the orders of some signals (insufficient balance, say)."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused
        self.sent: list[str] = []

    def submit(self, order: Order):
        self.sent.append(order.signal_id)
        if order.signal_id in self.refused:
            raise OrderRejected(order.id, "insufficient balance")
        return super().submit(order)


def make(refused: set[str] | None = None, **risk) -> Executor:
    ex = Executor(
        RefusesSome(refused or set()), Journal(":memory:"), RiskConfig(**risk),
        make_breaker(3, 60), Telemetry(), lambda e: None,
    )  # fmt: skip
    ex.on_tick("ABC", 100.0, DAY)
    return ex


def sig(seq: int, side: Side, qty: float, otype=OrderType.MARKET, oprice=0.0) -> Signal:
    return Signal(
        Signal.make_id("s", seq), "s", seq, "ABC", side, qty, 100.0, DAY + seq * NS, "r", "c",
        0, otype, oprice, TimeInForce.GTC,
    )  # fmt: skip


def statuses(ex: Executor) -> list[str]:
    return [o["status"] for o in ex.journal.orders()]


def test_a_refused_buy_does_not_make_room_for_two_sells_of_the_same_batch():
    batch = [sig(1, Side.BUY, 10), sig(2, Side.SELL, 10), sig(3, Side.SELL, 10)]
    ex = make({"s:1"}, max_position_qty=10)
    ex.on_signals(batch)
    assert ex.portfolio.position("ABC") == -10.0  # was -20: twice the limit
    assert statuses(ex) == ["REJECTED", "FILLED", "REJECTED"]
    assert "max_position_qty" in ex.journal.orders()[-1]["reason"]
    one_by_one = make({"s:1"}, max_position_qty=10)
    for s in batch:
        one_by_one.on_signals([s])
    assert statuses(one_by_one) == statuses(ex)


def test_a_resting_buy_does_not_make_room_for_sells_of_the_same_batch():
    ex = make(max_position_qty=10)
    ex.on_signals(
        [
            sig(1, Side.BUY, 10, OrderType.LIMIT, 50.0),  # rests far below the market
            sig(2, Side.SELL, 10),
            sig(3, Side.SELL, 10),
        ]
    )
    assert statuses(ex) == ["ACCEPTED", "FILLED", "REJECTED"]
    ex.on_tick("ABC", 49.0, DAY + 10 * NS)  # even if the buy fills now: within the limit
    ex.poll()
    assert ex.portfolio.position("ABC") == 0.0


def test_a_round_trip_in_one_batch_still_goes_out_as_one_batch():
    ex = make(max_position_qty=10)
    fills = ex.on_signals([sig(1, Side.BUY, 10), sig(2, Side.SELL, 10), sig(3, Side.BUY, 10)])
    assert len(fills) == 3 and ex.portfolio.position("ABC") == 10.0
    assert ex.broker.sent == ["s:1", "s:2", "s:3"]  # type: ignore[attr-defined]


orders = st.lists(st.tuples(st.sampled_from(Side), st.integers(1, 12)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(orders)
def test_when_every_order_fills_a_batch_decides_as_one_signal_per_call_would(sides_qtys):
    # What fast and wire replay rely on: their batch sizes differ.
    batch = [sig(i, side, qty) for i, (side, qty) in enumerate(sides_qtys, 1)]
    together, apart = make(max_position_qty=10), make(max_position_qty=10)
    together.on_signals(batch)
    for s in batch:
        apart.on_signals([s])
    assert statuses(together) == statuses(apart)
    assert together.portfolio.position("ABC") == apart.portfolio.position("ABC")


@settings(max_examples=300, deadline=None)
@given(orders, st.sets(st.integers(1, 6), max_size=3))
def test_whatever_the_venue_refuses_a_batch_never_passes_the_position_limit(sides_qtys, refused):
    batch = [sig(i, side, qty) for i, (side, qty) in enumerate(sides_qtys, 1)]
    ex = make({f"s:{i}" for i in refused}, max_position_qty=10)
    ex.on_signals(batch)
    assert abs(ex.portfolio.position("ABC")) <= 10


def test_a_batch_cut_thousands_of_times_goes_out_whole():
    # One cut per signal: recursing on the rest hit Python's recursion limit
    # mid-batch (an order left in doubt) at about 1,000 cuts. Each cut plans the rest
    # again: the test's time grows with the square of the batch, so 1,500, not more.
    n = 1500
    batch = [sig(i, Side.BUY if i % 2 else Side.SELL, 1) for i in range(1, n + 1)]
    ex = make(max_position_qty=1)
    assert len(ex.on_signals(batch)) == n
    assert statuses(ex) == ["FILLED"] * n and ex.portfolio.position("ABC") == 0.0


class LotsOfAThousandth(RefusesSome):
    """A venue that takes quantities in steps of 0.001 (`LotSized`)."""

    def lot_qty(self, symbol: str, qty: float) -> float:
        return int(qty * 1000 + 1e-6) / 1000


def test_an_order_rounded_to_its_lot_step_is_counted_once_when_the_batch_is_cut_before_it():
    ex = Executor(
        LotsOfAThousandth(set()), Journal(":memory:"), RiskConfig(max_position_qty=10),
        make_breaker(3, 60), Telemetry(), lambda e: None,
    )  # fmt: skip
    ex.on_tick("ABC", 100.0, DAY)
    # The third is cut (its room needs the first to fill) and planned again.
    ex.on_signals([sig(1, Side.BUY, 10), sig(2, Side.SELL, 10), sig(3, Side.SELL, 10.0004)])
    assert [o["qty"] for o in ex.journal.orders()] == [10, 10, 10]
    assert ex.telemetry.get("order_qty_rounded") == 1


def bought_one_leaving_a_fee() -> Executor:
    """An executor holding 0.999 of a buy of 1 whose fee the venue took out of the asset."""
    ex = make()
    ex.portfolio.apply(Fill("f0", "o0", "s0", "ABC", Side.BUY, 1.0, 100.0, DAY, 0.1, 0.001))
    return ex


def test_an_exit_asking_for_what_a_fee_took_is_cut_to_what_is_held():
    ex = bought_one_leaving_a_fee()
    ex.on_signals([sig(1, Side.SELL, 1.0)])
    assert [o["qty"] for o in ex.journal.orders()] == [pytest.approx(0.999)]
    assert ex.portfolio.position("ABC") == 0.0 and ex.telemetry.get("order_qty_cut_to_held") == 1


def test_no_cut_past_a_flip_the_batch_made_and_batch_and_single_calls_agree():
    """After a batch's sell closes the long, a buy is not cut by that long's fees."""
    batch = [sig(1, Side.SELL, 1.999), sig(2, Side.BUY, 1.0005)]
    together, apart = bought_one_leaving_a_fee(), bought_one_leaving_a_fee()
    together.on_signals(batch)
    for s in batch:
        apart.on_signals([s])
    for ex in (together, apart):
        assert [o["qty"] for o in ex.journal.orders()] == [1.999, 1.0005]
        assert ex.telemetry.get("order_qty_cut_to_held") == 0
