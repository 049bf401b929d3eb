"""A HALTED or REDUCING executor that restarts cancels again what its state may not leave resting.

The cancels a halt asks for can fail (the venue busy) and their retries lived
in the process that died; or the process died between the journaled state and
the cancels. The real `ExecutorRunner`, `Executor`, SQLite journal and a
simulator that outlives the executor (a venue does), over in-process channels.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import RiskConfig
from workbench.domain.model import Order, OrderType, Side, Signal, TimeInForce
from workbench.domain.orders import OrderAck
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.risk import TradingState
from workbench.execution.runner import ExecutorRunner
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.telemetry import Telemetry

DAY = 1_709_283_600 * 1_000_000_000


class Venue(SimulatedBroker):
    """The simulator, as a venue that outlives the executor; its cancels can fail."""

    cancel_fails = False
    hold_market = False  # orders wait at the venue (a market order too) until told otherwise

    def submit(self, order: Order) -> OrderAck:
        if not self.hold_market:
            return super().submit(order)
        self.latency_ns = 10**18  # arrives long after any tick of the test
        try:
            return super().submit(order)
        finally:
            self.latency_ns = 0

    def cancel(self, client_order_id: str) -> None:
        if self.cancel_fails:
            raise ConnectionError("venue busy")
        super().cancel(client_order_id)


def sig(seq: int, side=Side.BUY, qty=1.0, otype=OrderType.MARKET, oprice=0.0, sid="s") -> Signal:
    return Signal(
        Signal.make_id(sid, seq), sid, seq, "ABC", side, qty, 100.0, DAY + seq, "r", "c", 0,
        otype, oprice, TimeInForce.GTC,
    )  # fmt: skip


def executor(path: Path, venue: Venue) -> Executor:
    return Executor(
        venue, Journal(path), RiskConfig(), make_breaker(3, 60), Telemetry(),
        allowed_strategies={"s"}, executor_id="executor",
    )  # fmt: skip


def restart(path: Path, venue: Venue) -> Executor:
    """A new executor process on the same journal, its runner's first step (no signals)."""
    ex = executor(path, venue)
    runner = ExecutorRunner(
        "executor", ex, InprocReceiver(Channel()), InprocSender(Channel(), "executor"),
        ex.telemetry, InprocSender(Channel(), "executor"), 0.5, expected_streams=["s"],
        exit_on_eos=False,
    )  # fmt: skip
    runner.step(0)
    return ex


def statuses(ex: Executor) -> dict[str, str]:
    return {o["signal_id"]: o["status"] for o in ex.journal.orders()}


def test_a_halt_whose_cancel_failed_cancels_again_after_a_restart(tmp_path):
    venue = Venue()
    ex = executor(tmp_path / "j.sqlite", venue)
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, otype=OrderType.LIMIT, oprice=95.0))  # rests
    venue.cancel_fails = True
    assert ex.halt("stop") == 0 and len(ex.cancel_retries) == 1
    ex.journal.close()  # the process dies with its retries
    venue.cancel_fails = False
    ex = restart(tmp_path / "j.sqlite", venue)
    assert ex.trading_state is TradingState.HALTED
    assert statuses(ex) == {"s:1": "CANCELLED"} and len(ex.open) == 0
    venue.on_tick("ABC", 90.0, DAY + 10)  # trades through the limit: nothing of ours is left
    assert venue.positions() == {} and ex.portfolio.position("ABC") == 0.0


def test_a_restart_after_a_flatten_keeps_its_closing_orders(tmp_path):
    venue = Venue()
    ex = executor(tmp_path / "j.sqlite", venue)
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))  # long 2
    ex.on_signal(sig(2, otype=OrderType.LIMIT, oprice=95.0))  # rests
    venue.cancel_fails = True  # neither the halt's cancel nor ...
    venue.hold_market = True  # ... the closing order's fill comes before the restart
    ex.flatten(wait_s=0)
    ex.journal.close()
    venue.cancel_fails = venue.hold_market = False
    ex = restart(tmp_path / "j.sqlite", venue)
    kinds = statuses(ex)
    assert kinds["s:2"] == "CANCELLED"
    assert kinds["executor:1"] != "CANCELLED"  # the kill switch's own: kept


def test_reducing_after_a_restart_cancels_what_would_grow_a_position(tmp_path):
    venue = Venue()
    ex = executor(tmp_path / "j.sqlite", venue)
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1))  # long 1
    ex.on_signal(sig(2, otype=OrderType.LIMIT, oprice=95.0))  # grows it
    ex.on_signal(sig(3, Side.SELL, otype=OrderType.STOP, oprice=90.0))  # its stop-loss
    venue.cancel_fails = True
    ex.reduce()
    ex.journal.close()
    venue.cancel_fails = False
    ex = restart(tmp_path / "j.sqlite", venue)
    assert ex.trading_state is TradingState.REDUCING
    assert statuses(ex) == {"s:1": "FILLED", "s:2": "CANCELLED", "s:3": "ACCEPTED"}


def test_an_active_restart_cancels_nothing(tmp_path):
    venue = Venue()
    ex = executor(tmp_path / "j.sqlite", venue)
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, otype=OrderType.LIMIT, oprice=95.0))
    ex.journal.close()
    assert statuses(restart(tmp_path / "j.sqlite", venue)) == {"s:1": "ACCEPTED"}


def test_reduce_keeps_a_stop_loss_a_floats_drift_below_the_position(tmp_path):
    # 0.7 - 0.4 = 0.29999999999999993: the stop-loss for 0.3 was cancelled as a flip.
    ex = executor(tmp_path / "j.sqlite", Venue())
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=0.7))
    ex.on_signal(sig(2, Side.SELL, qty=0.4))
    ex.on_signal(sig(3, Side.SELL, qty=0.3, otype=OrderType.STOP, oprice=90.0))
    assert ex.reduce() == 0
    assert statuses(ex)["s:3"] == "ACCEPTED"
