"""Outcome hooks: delivered in market-time order at a defined tick position."""

from __future__ import annotations

import pytest

from workbench.domain.model import OrderType, Side, Signal, Tick, TickBatch, TimeInForce
from workbench.domain.orders import OrderEvent
from workbench.exceptions import StrategyError
from workbench.strategies.outcomes import OutcomeQueue, deliver, run_batch, wants_outcomes
from workbench.strategies.support_resistance import SupportResistance


def event(status: str, ts: int, signal_id: str = "t:1", qty: float = 1.0) -> OrderEvent:
    return OrderEvent(
        "t", signal_id, f"O-{signal_id}", status, "ABC", "BUY", qty, 10.0, 0.0, ts, qty
    )


class Recorder:
    """Signals on ticks 2 and 5; records what it heard before which tick."""

    strategy_id = "t"

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.seq = 0

    def on_tick(self, tick: Tick) -> list[Signal]:
        self.log.append(("tick", tick.ts_ns))
        if tick.ts_ns not in (2, 5):
            return []
        self.seq += 1
        return [Signal(f"t:{self.seq}", "t", self.seq, "ABC", Side.BUY, 1.0, 10.0, tick.ts_ns)]

    def on_fill(self, e: OrderEvent) -> None:
        self.log.append(("fill", e.signal_id, e.ts_ns))

    def on_order_rejected(self, e: OrderEvent) -> None:
        self.log.append(("rejected", e.signal_id))

    def snapshot(self):
        return {}

    def restore(self, state) -> None:
        pass


def test_outcomes_arrive_before_the_first_tick_after_their_time_whatever_the_batching():
    venue = {1: [event("ACCEPTED", 2, "t:1"), event("FILLED", 4, "t:1")], 2: []}

    def send_and_wait(signals, tick_seq):
        return venue[signals[0].seq]

    def run(cut: int) -> list[tuple]:
        s, q = Recorder(), OutcomeQueue()
        ts = [1, 2, 3, 4, 4, 5, 6]
        for a, b in ((0, cut), (cut, len(ts))):
            batch = TickBatch("ABC", a + 1, ts[a:b], [10.0] * (b - a), [1.0] * (b - a))
            run_batch(s, batch, q, send_and_wait)
        return s.log

    logs = [run(cut) for cut in range(1, 7)]
    assert all(log == logs[0] for log in logs)
    # filled at t=4: heard after both ticks at 4, before the tick at 5
    assert logs[0] == [
        ("tick", 1), ("tick", 2), ("tick", 3), ("tick", 4), ("tick", 4),
        ("fill", "t:1", 4), ("tick", 5), ("tick", 6),
    ]  # fmt: skip


def test_queue_orders_by_market_time_then_arrival():
    q = OutcomeQueue()
    q.add([event("FILLED", 5, "a"), event("ACCEPTED", 3, "b"), event("FILLED", 3, "c")])
    assert [e.signal_id for e in q.due(4)] == ["b", "c"]
    assert [e.signal_id for e in q.due()] == ["a"] and len(q) == 0


def test_hooks_are_optional_and_a_raising_hook_is_a_strategy_error():
    assert wants_outcomes(Recorder())
    assert not wants_outcomes(SupportResistance("sr", []))  # market entries: no waiting
    deliver(SupportResistance("sr", []), event("FILLED", 1))  # no hook: nothing happens

    class Bad(Recorder):
        def on_fill(self, e):
            raise RuntimeError("boom")

    with pytest.raises(StrategyError, match="on_fill raised RuntimeError"):
        deliver(Bad(), event("FILLED", 1))


def cond(**kw):
    return {
        "id": "b", "symbol": "ABC", "side": "BUY", "trigger_price": 99.9, "turning_point": 0.05,
        "take_profit": 0.2, "stop_loss": 0.15, "following": True, "rearm": True, **kw,
    }  # fmt: skip


def drive(sr: SupportResistance, prices: list[float]) -> list[Signal]:
    out = []
    for i, p in enumerate(prices):
        out.extend(sr.on_tick(Tick("ABC", i + 1, p, 1.0, i + 1)))
    return out


PRICES = [100.0, 99.85, 99.8, 99.9, 100.0, 100.1, 100.2]


def test_support_resistance_limit_entries_are_ioc_limits_capped_by_the_offset():
    market = drive(SupportResistance("sr", [cond()]), PRICES)
    assert [s.reason for s in market][:1] == ["entry"] and market[0].order_type is OrderType.MARKET
    sr = SupportResistance("sr", [cond()], entry_order="limit", entry_limit_offset=0.01)
    assert wants_outcomes(sr)
    signals = drive(sr, PRICES[:4])
    entry = signals[0]
    assert (entry.order_type, entry.tif) == (OrderType.LIMIT, TimeInForce.IOC)
    assert entry.order_price == pytest.approx(entry.price + 0.01)


def test_support_resistance_sizes_its_exit_to_what_the_entry_filled():
    def run(outcome: str, qty: float) -> list[Signal]:
        sr = SupportResistance("sr", [cond(qty=2.0)], entry_order="limit")
        out = []
        for i, p in enumerate(PRICES):
            got = sr.on_tick(Tick("ABC", i + 1, p, 1.0, i + 1))
            for s in got:
                if s.reason == "entry":
                    e = OrderEvent("sr", s.id, "O", outcome, "ABC", "BUY", qty, p, 0.0, i + 1, qty)
                    deliver(sr, e)
                    sr.restore(sr.snapshot())  # what it heard survives a restart
                    if outcome == "PARTIALLY_FILLED":  # an IOC's rest then expires
                        deliver(sr, OrderEvent("sr", s.id, "O", "EXPIRED", "ABC", "BUY", 0.0,
                                               p, 0.0, i + 1, qty))  # fmt: skip
            out.extend(got)
        return [s for s in out if s.reason != "entry"]

    assert [s.qty for s in run("FILLED", 2.0)] == [2.0]
    assert [s.qty for s in run("PARTIALLY_FILLED", 0.5)] == [0.5]
    assert run("EXPIRED", 0.0) == []  # nothing filled: nothing to close
    with pytest.raises(ValueError, match="entry_order"):
        SupportResistance("sr", [], entry_order="stop")


@pytest.mark.parametrize(
    ("made", "says"),
    [
        (Signal("other:1", "t", 1, "ABC", Side.BUY, 1.0, 10.0, 2), r"Signal\.make_id"),
        (Signal("u:1", "u", 1, "ABC", Side.BUY, 1.0, 10.0, 2), r"Signal\.make_id"),
        (Signal("t-1", "t", 1, "ABC", Side.BUY, 1.0, 10.0, 2), r"Signal\.make_id"),
        # The codec refuses these as bad frames: the outbox re-sent them for ever.
        (Signal("t:1", "t", 1, "ABC", Side.BUY, 0.0, 10.0, 2), "qty 0.0 must be finite"),
        (Signal("t:1", "t", 1, "ABC", Side.BUY, 1.0, float("nan"), 2), "price nan"),
        (Signal("t:1", "t", 1, "ABC", Side.BUY, 1.0, 10.0, 2**63), "ts_ns 9223372036854775808"),
        (Signal("t:0", "t", 0, "ABC", Side.BUY, 1.0, 10.0, 2), "seq 0 outside"),
        (
            Signal("t:1", "t", 1, "ABC", Side.BUY, 1.0, 10.0, 2, order_type=OrderType.LIMIT),
            "a LIMIT signal needs a positive order_price",
        ),
    ],
)
def test_a_strategy_making_a_signal_the_executor_would_refuse_fails_where_it_is_made(made, says):
    from workbench.strategies.base import on_batch

    class Careless(Recorder):
        def on_tick(self, tick):
            return [made] if tick.ts_ns == 2 else []

    batch = TickBatch("ABC", 1, [1, 2, 3], [10.0] * 3, [1.0] * 3)
    with pytest.raises(StrategyError, match=says):
        on_batch(Careless(), batch)
    sent: list = []
    with pytest.raises(StrategyError, match=says):
        run_batch(Careless(), batch, OutcomeQueue(), lambda s, seq: sent.append(s) or [])
    assert sent == []  # never handed over
