"""The kill switch cancels resting orders at the venue: halt, halt --flatten, resume."""

from __future__ import annotations

import pytest
from test_trading_state import DAY, NS, Harness

from workbench.config import RiskConfig
from workbench.domain.model import OrderType, Side, Signal, TimeInForce
from workbench.execution.broker import BrokerTimeout
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.killswitch import CancelRetries
from workbench.execution.risk import TradingState
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Event
from workbench.telemetry import Telemetry


def order_sig(seq: int, side=Side.BUY, otype=OrderType.MARKET, oprice=0.0, qty=1.0) -> Signal:
    return Signal(
        Signal.make_id("s", seq), "s", seq, "ABC", side, qty, 100.0, DAY + seq * NS, "r", "c",
        0, otype, oprice, TimeInForce.GTC,
    )  # fmt: skip


def resting(h: Harness) -> None:
    """A filled market buy, a resting buy limit at 95 and a resting sell stop at 90."""
    h.ex.on_signal(order_sig(1))
    h.ex.on_signal(order_sig(2, otype=OrderType.LIMIT, oprice=95.0))
    h.ex.on_signal(order_sig(3, Side.SELL, OrderType.STOP, 90.0))
    assert len(h.ex.broker.open_orders()) == 2  # type: ignore[attr-defined]


def statuses(h: Harness) -> dict[str, str]:
    return {o["signal_id"]: o["status"] for o in h.journal.orders()}


def test_halt_cancels_every_resting_order_through_the_broker_and_journals_it():
    h = Harness(Journal(":memory:"))
    resting(h)
    assert h.ex.halt("operator says stop") == 2
    assert h.ex.trading_state is TradingState.HALTED
    assert h.ex.broker.open_orders() == []  # type: ignore[attr-defined]
    assert statuses(h) == {"s:1": "FILLED", "s:2": "CANCELLED", "s:3": "CANCELLED"}
    for sid in ("s:2", "s:3"):
        order_id = next(o["order_id"] for o in h.journal.orders() if o["signal_id"] == sid)
        rows = [(r["status"], r["source"], r["reason"]) for r in h.journal.reports(order_id)]
        assert rows[-2:] == [
            ("ACCEPTED", "cancel", "cancel requested: operator says stop"),
            ("CANCELLED", "broker", "cancelled"),
        ]
    assert len(h.named("order_cancelled")) == 2
    assert len(h.ex.open) == 0


def test_resume_does_not_place_cancelled_orders_again():
    h = Harness(Journal(":memory:"))
    resting(h)
    h.ex.halt()
    h.ex.set_trading_state(TradingState.ACTIVE, "resume", "operator")
    h.ex.on_tick("ABC", 80.0, DAY + 10 * NS)  # would fill the limit and trigger the stop
    assert h.ex.poll() == []
    assert h.ex.broker.open_orders() == []  # type: ignore[attr-defined]
    assert statuses(h)["s:2"] == statuses(h)["s:3"] == "CANCELLED"
    assert h.ex.portfolio.position("ABC") == 1.0
    # Nor did the venue fill them after all (reconciliation would find it, too late).
    assert h.ex.broker.positions() == {"ABC": 1.0}  # type: ignore[attr-defined]
    assert h.ex.reconcile() == []


def test_a_cancelled_limit_order_never_fills_at_the_simulator_on_later_ticks():
    h = Harness(Journal(":memory:"))
    h.ex.on_signal(order_sig(1))  # a market buy: filled
    h.ex.on_signal(order_sig(2, otype=OrderType.LIMIT, oprice=95.0))  # rests
    h.ex.halt("stop")  # cancels it
    h.ex.on_tick("ABC", 80.0, DAY + 10 * NS)  # trades through 95
    assert h.ex.broker.positions() == {"ABC": 1.0}  # type: ignore[attr-defined]
    assert statuses(h)["s:2"] == "CANCELLED" and h.ex.reconcile() == []


def test_flatten_cancels_resting_orders_before_it_closes_positions():
    h = Harness(Journal(":memory:"), executor_id="ex")
    resting(h)
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    fills = h.ex.flatten()
    assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 1.0, 101.0)]
    h.ex.on_tick("ABC", 80.0, DAY + 11 * NS)  # the cancelled orders can no longer fill
    assert h.ex.poll() == [] and h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.broker.positions() == {"ABC": 0.0}  # type: ignore[attr-defined]
    assert statuses(h)["s:2"] == statuses(h)["s:3"] == "CANCELLED"


class CancelFails(SimulatedBroker):
    def cancel(self, client_order_id: str) -> None:
        raise ConnectionError("venue unreachable")


def test_a_cancel_the_venue_refuses_is_journaled_and_alerted_and_the_halt_holds():
    h = Harness(Journal(":memory:"))
    h.ex = Executor(
        CancelFails(), h.journal, RiskConfig(), make_breaker(3, 60), Telemetry(),
        lambda e: h.events.append(e) if isinstance(e, Event) else None,
    )  # fmt: skip
    resting(h)
    assert h.ex.halt() == 0
    assert h.ex.trading_state is TradingState.HALTED
    assert len(h.alerts("cancel_failed")) == 2
    assert statuses(h)["s:2"] == "ACCEPTED"
    order_id = next(o["order_id"] for o in h.journal.orders() if o["signal_id"] == "s:2")
    last = h.journal.reports(order_id)[-1]
    assert last["source"] == "cancel" and "venue unreachable" in last["reason"]


class Flaky(SimulatedBroker):
    """A venue whose submits can be made to fail (503s), as the breaker sees them."""

    failing = False
    cancels = 0

    def submit(self, order):
        if self.failing:
            raise ConnectionError("venue 503")
        return super().submit(order)

    def cancel(self, client_order_id: str) -> None:
        self.cancels += 1
        super().cancel(client_order_id)


def with_broker(broker, **kw) -> Harness:
    h = Harness(Journal(":memory:"), **kw)
    h.ex = Executor(
        broker, h.journal, RiskConfig(), make_breaker(3, 60), Telemetry(),
        lambda e: h.events.append(e) if isinstance(e, Event) else None, **kw,
    )  # fmt: skip
    return h


def open_the_breaker(h: Harness, venue: Flaky) -> None:
    venue.failing = True
    for seq in range(10, 14):
        h.ex.on_signal(order_sig(seq))
    assert h.ex.breaker.current_state == "open"
    venue.failing = False


def test_halt_cancels_at_the_venue_even_with_the_circuit_open():
    venue = Flaky()
    h = with_broker(venue)
    resting(h)
    open_the_breaker(h, venue)
    assert h.ex.halt() == 5 and venue.cancels == 5  # 2 resting, 3 in doubt after the 503s
    h.ex.on_tick("ABC", 80.0, DAY + 20 * NS)
    assert h.ex.poll() == [] and h.ex.portfolio.position("ABC") == 1.0


def test_flatten_sends_its_orders_even_with_the_circuit_open():
    venue = Flaky()
    h = with_broker(venue, executor_id="ex")
    h.ex.on_signal(order_sig(1))
    h.ex.on_tick("ABC", 101.0, DAY + 5 * NS)
    open_the_breaker(h, venue)
    assert [(f.side, f.qty) for f in h.ex.flatten()] == [(Side.SELL, 1.0)]
    assert h.ex.portfolio.position("ABC") == 0.0


class CancelFailsTwice(SimulatedBroker):
    failures = 2

    def cancel(self, client_order_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("venue unreachable")
        super().cancel(client_order_id)


def test_a_cancel_the_venue_did_not_take_is_asked_again_until_it_is(monkeypatch):
    monkeypatch.setattr(CancelRetries, "FIRST_S", 0.0)  # due at once: no sleeping in tests
    venue = CancelFailsTwice()
    h = with_broker(venue)
    h.ex.on_signal(order_sig(2, otype=OrderType.LIMIT, oprice=95.0))
    assert h.ex.halt() == 0 and len(h.ex.cancel_retries) == 1
    h.ex.poll()  # asked again: fails once more
    assert statuses(h)["s:2"] == "ACCEPTED" and len(h.ex.cancel_retries) == 1
    h.ex.poll()  # taken
    assert statuses(h)["s:2"] == "CANCELLED" and len(h.ex.cancel_retries) == 0
    assert len(h.alerts("cancel_failed")) == 2


def test_cancel_retries_back_off_doubling_up_to_a_cap_and_forget_closed_orders():
    r = CancelRetries()
    r.failed("a", 100.0)
    assert r.due(100.5, {"a"}) == set() and r.due(101.0, {"a"}) == {"a"}
    for _ in range(10):
        r.failed("a", 200.0)
    assert r.due(200.0 + CancelRetries.MAX_S - 0.1, {"a"}) == set()
    assert r.due(200.0 + CancelRetries.MAX_S, {"a"}) == {"a"}
    assert r.due(10_000.0, set()) == set() and len(r) == 0  # closed: forgotten
    r.failed("b", 0.0)
    r.done("b")
    assert len(r) == 0


def test_reduce_cancels_the_resting_orders_that_would_grow_a_position_only():
    h = Harness(Journal(":memory:"))
    resting(h)  # long 1; a resting buy limit (grows) and a resting sell stop (shrinks)
    assert h.ex.reduce() == 1
    assert h.ex.trading_state is TradingState.REDUCING
    assert statuses(h) == {"s:1": "FILLED", "s:2": "CANCELLED", "s:3": "ACCEPTED"}


def test_reduce_also_cancels_closing_orders_beyond_the_position():
    h = Harness(Journal(":memory:"))
    h.ex.on_signal(order_sig(1, qty=10))  # long 10
    h.ex.on_signal(order_sig(2, Side.SELL, OrderType.LIMIT, 150.0, qty=6))
    h.ex.on_signal(order_sig(3, Side.SELL, OrderType.LIMIT, 160.0, qty=6))  # 12 > 10 with s:2
    assert h.ex.reduce() == 1
    assert statuses(h) == {"s:1": "FILLED", "s:2": "ACCEPTED", "s:3": "CANCELLED"}


def test_flatten_counts_a_closing_order_it_could_not_cancel_and_never_flips_the_position():
    # Long 10 with a take-profit SELL 4 resting; the venue does not answer the cancel.
    h = with_broker(CancelFails(), executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=10.0))
    h.ex.on_signal(order_sig(2, Side.SELL, OrderType.LIMIT, 105.0, qty=4.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    fills = h.ex.flatten()
    assert [(f.side, f.qty) for f in fills] == [(Side.SELL, 6.0)]  # not 10: 4 still rest
    assert h.alerts("flatten_open_orders")
    h.ex.on_tick("ABC", 106.0, DAY + 11 * NS)  # the take-profit the venue kept fills
    h.ex.poll()
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.trading_state is TradingState.HALTED


def test_flatten_sends_nothing_while_closing_orders_still_open_cover_the_position():
    h = with_broker(CancelFails(), executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=10.0))
    h.ex.on_signal(order_sig(2, Side.SELL, OrderType.LIMIT, 105.0, qty=10.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    assert h.ex.flatten() == []
    assert [o["signal_id"] for o in h.journal.orders()] == ["s:1", "s:2"]
    assert "nothing sent" in h.ex.not_flattened["ABC"]  # the answer names what holds it back
    assert h.alerts("flatten_open_orders")
    h.ex.on_tick("ABC", 106.0, DAY + 11 * NS)
    h.ex.poll()
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.trading_state is TradingState.HALTED


class ReportsFailOnce(SimulatedBroker):
    """A venue whose next reports() call fails (a transient error: nothing taken)."""

    fail_next = False

    def reports(self):  # type: ignore[no-untyped-def]
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("transient")
        return super().reports()


def test_a_failed_reports_call_does_not_cut_a_flatten_short():
    broker = ReportsFailOnce()
    h = Harness(Journal(":memory:"))
    h.ex = Executor(broker, h.journal, RiskConfig(), make_breaker(3, 60), Telemetry())
    h.ex.on_signal(order_sig(1))
    h.ex.on_tick("ABC", 100.0, DAY + 10 * NS)
    broker.fail_next = True
    h.ex.flatten(wait_s=1.0)
    assert h.ex.portfolio.position("ABC") == 0.0 and h.ex.not_flattened == {}
    assert h.ex.in_doubt == []


class LosesReports(SimulatedBroker):
    """A venue whose next reports() call takes the reports, then fails (they are lost)."""

    lose: Exception | None = None

    def reports(self):  # type: ignore[no-untyped-def]
        taken = super().reports()
        if self.lose is not None:
            e, self.lose = self.lose, None
            raise e
        return taken


@pytest.mark.parametrize(
    "error",
    [BrokerTimeout("reports took longer than 5 s", started=True), ConnectionError("reset")],
)
def test_reports_a_failed_call_took_are_found_by_reconciliation_even_after_a_close(error):
    """A part fill lost with a failed reports() call; then the order is cancelled: the
    runner must still reconcile (in doubt) and find the venue's position."""
    broker = LosesReports(partial_fills=True)
    h = Harness(Journal(":memory:"))
    h.ex = Executor(broker, h.journal, RiskConfig(), make_breaker(3, 60), Telemetry())
    h.ex.on_signal(order_sig(1, otype=OrderType.LIMIT, oprice=95.0, qty=10.0))  # rests
    h.ex.on_tick("ABC", 94.0, DAY + 10 * NS, 4.0)  # the venue fills 4 of 10
    broker.lose = error
    h.ex.poll()
    assert len(h.ex.in_doubt) == 1
    h.ex.halt("stop")  # the rest cancelled: closed, but its lost fill is not known
    h.ex.poll()
    assert len(h.ex.in_doubt) == 1  # so the runner reconciles
    diffs = h.ex.reconcile()
    assert [(d["kind"], d["journal"], d["venue"]) for d in diffs] == [
        ("position_mismatch", 0.0, 4.0)
    ]
