"""Executor: one order per signal ever, risk limits, circuit breaker, journal."""

from __future__ import annotations

from dataclasses import replace

import pybreaker
import pytest

from workbench.config import RiskConfig
from workbench.domain.model import Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.domain.orders import OrderAck
from workbench.exceptions import OrderRejected
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.risk import TradingState
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Event
from workbench.telemetry import Telemetry


def sig(seq: int, side: Side = Side.BUY, price: float = 100.0, qty: float = 1.0) -> Signal:
    return Signal(f"s:{seq}", "s", seq, "ABC", side, qty, price, 1_000 + seq, "entry", "c")


class CountingBroker(SimulatedBroker):
    """A simulator that records what it was sent; optionally fails or rejects."""

    def __init__(self, fail: bool = False, reject: bool = False) -> None:
        super().__init__()
        self.orders: list[Order] = []
        self.fail = fail
        self.reject = reject

    def submit(self, order: Order) -> OrderAck:
        self.orders.append(order)
        if self.fail:
            raise ConnectionError("broker down")
        if self.reject:
            raise OrderRejected(order.id, "market closed")
        return super().submit(order)


def make(tmp_path, broker=None, risk=None, breaker=None):
    events: list[Event] = []
    ex = Executor(
        broker or CountingBroker(),
        Journal(tmp_path / "j.sqlite"),
        risk or RiskConfig(),
        breaker or make_breaker(3, 60),
        Telemetry(),
        lambda e: events.append(e) if isinstance(e, Event) else None,
    )
    return ex, events


def test_simulated_broker_fills_at_price_plus_slippage_against_the_trader():
    b = SimulatedBroker(slippage=0.5)
    assert b.submit(Order.from_signal(sig(1, Side.BUY, 100.0))).accepted
    b.submit(Order.from_signal(sig(2, Side.SELL, 100.0)))
    buy, sell = (r.fill for r in b.reports())
    assert buy is not None and sell is not None
    assert (buy.price, sell.price) == (100.5, 99.5)
    assert buy.id == "F-s:1" and buy.ts_ns == 1_001


def test_signal_becomes_one_filled_order_with_events(tmp_path):
    ex, events = make(tmp_path)
    fills = ex.on_signal(sig(1))
    assert [f.price for f in fills] == [100.0]
    assert [e.name for e in events] == ["signal_received", "order_accepted", "order_filled"]
    assert ex.journal.orders()[0]["status"] == OrderStatus.FILLED
    assert ex.portfolio.position("ABC") == 1.0


def test_redelivered_signal_never_becomes_a_second_order(tmp_path):
    broker = CountingBroker()
    ex, _ = make(tmp_path, broker)
    ex.on_signal(sig(1))
    assert ex.on_signal(sig(1)) == []
    assert len(broker.orders) == 1 and ex.journal.count("orders") == 1
    assert ex.telemetry.get("signals_duplicate") == 1


def test_restarted_executor_resumes_from_journal_and_never_resends(tmp_path):
    broker = CountingBroker()
    ex, _ = make(tmp_path, broker)
    ex.on_signal(sig(1))
    ex.on_signal(sig(2, Side.SELL, 101.0))
    ex.journal.close()
    ex2, _ = make(tmp_path, broker)
    ex2.on_signal(sig(2, Side.SELL, 101.0))
    assert len(broker.orders) == 2
    assert ex2.portfolio.realized_pnl == pytest.approx(1.0)


def test_order_left_pending_by_a_crash_is_flagged_not_resent(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    s = sig(1)
    j.begin_order(s, Order.from_signal(s), OrderStatus.PENDING_NEW)
    j.close()
    broker = CountingBroker()
    ex, events = make(tmp_path, broker)
    ex.on_signal(s)
    assert broker.orders == []
    assert events[0] == Event("alert", {"reason": "orders_in_doubt", "order_ids": ["O-s:1"]})


def test_a_replay_places_again_what_a_killed_executor_left_pending(tmp_path):
    """The replay's simulator died with that executor: the order was filled nowhere.

    Placed again on restart, it fills as in a run without the crash; never twice.
    """
    s1, s2 = sig(1), sig(2, Side.SELL, 101.0)

    def replay_executor(path, broker):
        events: list[Event] = []
        ex = Executor(
            broker, Journal(path), RiskConfig(), make_breaker(3, 60), Telemetry(),
            events.append, replay=True,
        )  # fmt: skip
        return ex, events

    clean, _ = replay_executor(tmp_path / "clean.sqlite", CountingBroker())
    clean.on_signals([s1, s2])
    j = Journal(tmp_path / "j.sqlite")
    j.begin_order(s1, Order.from_signal(s1), OrderStatus.PENDING_NEW)  # then SIGKILL
    j.close()
    broker = CountingBroker()
    ex, events = replay_executor(tmp_path / "j.sqlite", broker)
    assert [o.id for o in broker.orders] == ["O-s:1"] and ex.in_doubt == []
    assert not [e for e in events if isinstance(e, Event) and e.name == "alert"], events
    ex.on_signals([s1, s2])  # the strategy's re-send, then what it had not sent
    assert [o.id for o in broker.orders] == ["O-s:1", "O-s:2"]
    assert ex.journal.fills() == clean.journal.fills()
    assert ex.portfolio.realized_pnl == clean.portfolio.realized_pnl == pytest.approx(1.0)


def test_a_replay_restarted_with_positions_raises_no_false_mismatch(tmp_path):
    # The restarted simulator is born empty: comparing its positions with the journal's
    # alerted every symbol held, in every chaos test and CI replay that killed an executor.
    j = Journal(tmp_path / "j.sqlite")
    ex = Executor(SimulatedBroker(), j, RiskConfig(), make_breaker(3, 60), Telemetry(), replay=True)
    ex.on_signals([sig(1)])  # long 1
    s2 = sig(2)
    j.begin_order(s2, Order.from_signal(s2, j.client_id_salt), OrderStatus.PENDING_NEW)  # SIGKILL
    j.close()
    events: list[Event] = []
    again = Executor(
        SimulatedBroker(), Journal(tmp_path / "j.sqlite"), RiskConfig(), make_breaker(3, 60),
        Telemetry(), events.append, replay=True,
    )  # fmt: skip
    assert again.portfolio.position("ABC") == 2.0
    assert [e for e in events if isinstance(e, Event) and e.name == "alert"] == []
    assert again.journal.reconciliations() == []


def test_a_replay_halted_before_the_kill_rejects_what_it_left_pending(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    s1 = sig(1)
    j.begin_order(s1, Order.from_signal(s1), OrderStatus.PENDING_NEW)
    j.set_trading_state("HALTED", "operator", "operator")  # then SIGKILL
    j.close()
    broker = CountingBroker()
    ex = Executor(
        broker, Journal(tmp_path / "j.sqlite"), RiskConfig(), make_breaker(3, 60), Telemetry(),
        replay=True,
    )  # fmt: skip
    assert broker.orders == []
    (row,) = ex.journal.orders()
    assert (row["status"], row["reason"]) == (OrderStatus.REJECTED, "trading halted")


def test_a_replay_killed_mid_flatten_closes_the_position_after_the_restart(tmp_path):
    """The flatten's order went out with HALTED journaled: it is placed again, HALTED stays."""

    class Killed(BaseException):
        pass

    class DiesOnTheFlatten(SimulatedBroker):
        def submit(self, order):
            if order.signal_id.startswith("executor:"):
                raise Killed  # the process dies with the flatten's order journaled
            return super().submit(order)

    def replay_executor(broker):
        journal = Journal(tmp_path / "j.sqlite")
        return Executor(broker, journal, RiskConfig(), make_breaker(3, 60), Telemetry(),
                        replay=True)  # fmt: skip

    ex = replay_executor(DiesOnTheFlatten())
    ex.on_signals([sig(1)])
    with pytest.raises(Killed):
        ex.flatten()
    ex.journal.close()
    again = replay_executor(SimulatedBroker())
    assert again.portfolio.position("ABC") == 0.0  # before: rejected, "trading halted"
    assert again.trading_state is TradingState.HALTED


def test_order_over_max_qty_is_rejected_and_journaled(tmp_path):
    broker = CountingBroker()
    ex, events = make(tmp_path, broker, RiskConfig(max_order_qty=1))
    ex.on_signal(sig(1, qty=2))
    assert broker.orders == []
    assert ex.journal.orders()[0]["status"] == OrderStatus.REJECTED
    assert events[-1].name == "order_rejected" and "max_order_qty" in events[-1].data["reason"]


def test_position_limit_rejects_the_order_that_would_breach_it(tmp_path):
    ex, _ = make(tmp_path, risk=RiskConfig(max_position_qty=1))
    ex.on_signal(sig(1))
    ex.on_signal(sig(2))
    assert [o["status"] for o in ex.journal.orders()] == ["FILLED", "REJECTED"]


def test_broker_rejection_is_an_event_not_a_breaker_failure(tmp_path):
    breaker = make_breaker(1, 60)
    ex, events = make(tmp_path, CountingBroker(reject=True), breaker=breaker)
    ex.on_signal(sig(1))
    ex.on_signal(sig(2))
    assert breaker.current_state == pybreaker.STATE_CLOSED
    assert events[-1].data["reason"] == "market closed"


def test_breaker_opens_after_failures_and_fails_fast_with_alert(tmp_path):
    broker = CountingBroker(fail=True)
    ex, events = make(tmp_path, broker, breaker=make_breaker(2, 60))
    for i in range(1, 5):
        ex.on_signal(sig(i))
    assert len(broker.orders) == 2  # the rest never reached the broker
    reasons = [e.data.get("reason") for e in events if e.name == "order_rejected"]
    assert reasons[-1] == "circuit_open"
    assert any(e.name == "alert" and e.data["reason"] == "circuit_open" for e in events)


def test_breaker_half_open_probe_recovers(tmp_path):
    broker = CountingBroker(fail=True)
    breaker = make_breaker(1, 60)
    ex, _ = make(tmp_path, broker, breaker=breaker)
    ex.on_signal(sig(1))
    assert breaker.current_state == pybreaker.STATE_OPEN
    broker.fail = False
    breaker.half_open()
    assert ex.on_signal(sig(2))
    assert breaker.current_state == pybreaker.STATE_CLOSED


def test_a_batch_is_one_order_per_new_signal_with_duplicates_inside_it_ignored(tmp_path):
    broker = CountingBroker()
    ex, _events = make(tmp_path, broker)
    ex.on_signal(sig(1))
    fills = ex.on_signals([sig(1), sig(2, Side.SELL), sig(2, Side.SELL), sig(3)])
    assert [f.signal_id for f in fills] == ["s:2", "s:3"]
    assert [o.signal_id for o in broker.orders] == ["s:1", "s:2", "s:3"]
    assert ex.telemetry.get("signals_duplicate") == 2


def test_position_limit_sees_earlier_signals_of_the_same_batch(tmp_path):
    ex, _ = make(tmp_path, risk=RiskConfig(max_position_qty=1))
    ex.on_signals([sig(1), sig(2), sig(3, Side.SELL), sig(4, Side.SELL), sig(5, Side.SELL)])
    assert [o["status"] for o in ex.journal.orders()] == [
        "FILLED",
        "REJECTED",
        "FILLED",
        "FILLED",
        "REJECTED",
    ]


def test_events_follow_the_commit_and_carry_the_receive_time(tmp_path):
    seen: list[tuple[str, int]] = []
    journal = Journal(tmp_path / "j.sqlite")

    def publish(e) -> None:
        name = e.name if isinstance(e, Event) else f"ord:{e.status}"
        seen.append((name, journal.count("fills")))  # what is durable when it is published

    ex = Executor(
        SimulatedBroker(), journal, RiskConfig(), make_breaker(3, 60), Telemetry(), publish
    )
    ex.on_signals([sig(1), sig(2, Side.SELL)], received_ns=42)
    assert all(n == 2 for _, n in seen)
    names = [n for n, _ in seen]
    assert names[:2] == ["signal_received"] * 2
    assert sorted(names[2:]) == sorted(
        ["order_accepted", "ord:ACCEPTED", "order_filled", "ord:FILLED"] * 2
    )


def test_batch_and_one_by_one_give_the_same_journal(tmp_path):
    signals = [sig(i, Side.BUY if i % 2 else Side.SELL, 100.0 + i) for i in range(1, 9)]
    a, _ = make(tmp_path / "a")
    b, _ = make(tmp_path / "b")
    a.on_signals(signals)
    for s in signals:
        b.on_signal(s)
    assert a.journal.fills() == b.journal.fills()
    assert a.portfolio.realized_pnl == b.portfolio.realized_pnl


def test_a_reused_signal_id_with_other_content_raises_an_alert(tmp_path):
    ex, events = make(tmp_path)
    ex.on_signal(sig(1, price=100.0))
    assert ex.on_signal(sig(1, price=105.0)) == []  # still never a second order
    assert ex.telemetry.get("signal_id_conflicts") == 1
    assert events[-1] == Event("alert", {"reason": "signal_id_reused", "signal_id": "s:1"})


def test_a_true_redelivery_is_no_conflict(tmp_path):
    ex, _ = make(tmp_path)
    ex.on_signal(sig(1))
    ex.on_signal(sig(1))
    assert ex.telemetry.get("signal_id_conflicts") == 0


def test_an_in_process_signal_whose_integers_cannot_be_journaled_is_refused(tmp_path):
    # A strategy that scaled a nanosecond stamp by 1000: the journal's insert raised
    # OverflowError, and the executor died with the batch unjournaled.
    ex, _ = make(tmp_path)
    big = replace(sig(1), ts_ns=2**63)
    ex.on_signals([big, sig(2)])
    assert [o["signal_id"] for o in ex.journal.orders()] == ["s:2"]
    assert ex.telemetry.counters.get("signals_invalid") == 1


class Redelivers(SimulatedBroker):
    """A venue adapter that reports at least once: each partial fill comes twice."""

    sent: list = []

    def reports(self):
        out = super().reports() or self.sent  # nothing new: the last ones again
        self.sent = [r for r in out if r.status is OrderStatus.PARTIALLY_FILLED]
        return out + self.sent


def test_a_fill_reported_twice_is_applied_once_and_journaled_as_an_anomaly(tmp_path):
    # It was applied to the position twice, then the journal's unique fill id killed the commit.
    broker = Redelivers(partial_fills=True)
    ex, events = make(tmp_path, broker)
    ex.on_tick("ABC", 100.0, 1_000)
    limit = Signal("s:1", "s", 1, "ABC", Side.BUY, 3.0, 100.0, 1_001, "entry", "c", 0,
                   OrderType.LIMIT, 99.0, TimeInForce.GTC)  # fmt: skip
    ex.on_signal(limit)
    broker.on_tick("ABC", 98.0, 2_000, 1.0)  # fills 1 of 3
    ex.poll()
    assert ex.portfolio.position("ABC") == 1.0 == broker.positions()["ABC"]
    assert len(ex.journal.fills()) == 1
    assert [a.data["kind"] for a in events if a.name == "alert"] == ["duplicate_fill"]
    ex.journal.close()
    again, events = make(tmp_path, broker)  # a restart: the journal's fill is known too
    again.poll()  # the venue reports it once more
    assert again.portfolio.position("ABC") == 1.0 and len(again.journal.fills()) == 1
    assert [a.data["kind"] for a in events if a.name == "alert"] == ["duplicate_fill"] * 2
