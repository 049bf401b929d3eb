"""The kill switch cancels resting orders at the venue: halt, halt --flatten, resume."""

from __future__ import annotations

from test_trading_state import DAY, NS, Harness

from workbench.config import RiskConfig
from workbench.domain.model import OrderType, Side, Signal, TimeInForce
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
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


def test_flatten_cancels_resting_orders_before_it_closes_positions():
    h = Harness(Journal(":memory:"), executor_id="ex")
    resting(h)
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    fills = h.ex.flatten()
    assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 1.0, 101.0)]
    h.ex.on_tick("ABC", 80.0, DAY + 11 * NS)  # the cancelled orders can no longer fill
    assert h.ex.poll() == [] and h.ex.portfolio.position("ABC") == 0.0
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
