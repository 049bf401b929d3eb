"""``halt --flatten`` says what it could not close, per symbol and why, and halts all the same.

A freshly restarted executor has seen no market price yet: it cannot send a
closing order (never blind), and the operator's answer must name the symbol
rather than report success. The same for closing orders held back by ones
still open, and for a closing order the venue rejects, leaves resting, or
never answers. The runner-level tests use the real `ExecutorRunner`, SQLite
journal and simulator, with the operator's command on an in-process channel.
"""

from __future__ import annotations

import pytest
from helpers import ccxt_binance
from test_halt_mid_batch import Desk
from test_kill_switch_cancels import CancelFails, order_sig, with_broker
from test_trading_state import DAY, NS, Harness, sig

from workbench.config import RiskConfig
from workbench.domain.model import Fill, Order, OrderStatus, OrderType, Side
from workbench.domain.orders import ExecutionReport, OrderAck
from workbench.exceptions import OrderRejected
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.risk import TradingState
from workbench.execution.runner import ExecutorRunner
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Command, Event
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.telemetry import Telemetry

RUN = "paper"
NO_PRICE = "no market price seen yet: no closing order sent (never sent blind)"


def runner_for(ex: Executor, desk: Desk) -> ExecutorRunner:
    signals, events, beats = Channel(), Channel(), Channel()
    return ExecutorRunner(
        "executor", ex, InprocReceiver(signals), InprocSender(events, "executor"),
        ex.telemetry, InprocSender(beats, "executor"), 0.5, expected_streams=["s"],
        exit_on_eos=False, commands=desk, run_id=RUN,
    )  # fmt: skip


def executor(journal: Journal) -> Executor:
    return Executor(
        SimulatedBroker(), journal, RiskConfig(), make_breaker(3, 60), Telemetry(),
        allowed_strategies={"s"}, executor_id="executor",
    )  # fmt: skip


def ask(runner: ExecutorRunner, desk: Desk, command: Command) -> Event:
    desk.operator.send(command)
    runner.step(0)
    [answer] = desk.answers()
    assert isinstance(answer, Event)
    return answer


def test_a_restarted_executor_without_a_market_price_answers_a_flatten_naming_the_symbol(
    tmp_path,
):
    # Long 2 ABC, the market seen and its marks journaled; then the executor restarts.
    first = executor(Journal(tmp_path / "journal.sqlite"))
    first.on_tick("ABC", 100.0, DAY)
    first.on_signal(sig(1, qty=2.0))
    first.save_marks()
    first.journal.close()
    ex = executor(Journal(tmp_path / "journal.sqlite"))  # no price yet: marks only value
    desk = Desk()
    answer = ask(runner_for(ex, desk), desk, Command("halt", {"flatten": True, "run_id": RUN}))
    assert answer.name == "state"
    assert answer.data["trading_state"] == "HALTED"  # halting never depends on flattening
    assert answer.data["positions"] == {"ABC": 2.0}
    # Failed on the old code: the answer had no not_flattened (KeyError), so
    # `workbench halt --flatten` printed the open position and exited 0.
    assert answer.data["not_flattened"] == {"ABC": NO_PRICE}
    assert ex.journal.trading_state() == ("HALTED", "flatten requested")
    assert ex.journal.count("orders") == 1  # nothing sent blind


def test_a_flatten_that_closes_everything_answers_an_empty_not_flattened(tmp_path):
    ex = executor(Journal(tmp_path / "journal.sqlite"))
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))
    desk = Desk()
    runner = runner_for(ex, desk)
    answer = ask(runner, desk, Command("halt", {"flatten": True, "run_id": RUN}))
    assert answer.data["not_flattened"] == {}
    assert answer.data["positions"] == {"ABC": 0.0}
    # Other commands' answers are as before: no not_flattened.
    for name in ("state", "halt", "resume"):
        assert "not_flattened" not in ask(runner, desk, Command(name, {"run_id": RUN})).data


def test_only_the_symbols_left_open_are_named():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1, qty=2))
    h.ex.on_signal(sig(2, symbol="XYZ"))
    h.ex.on_tick("XYZ", 10.0, DAY)
    h.ex.flatten()
    assert h.ex.not_flattened == {"ABC": NO_PRICE}
    assert h.ex.trading_state is TradingState.HALTED
    [alert] = h.alerts("flatten_incomplete")
    assert alert.data["not_flattened"] == {"ABC": NO_PRICE}
    h.ex.on_tick("ABC", 101.0, DAY + NS)  # the price comes: flattening again closes it
    h.ex.flatten()
    assert h.ex.not_flattened == {} and h.ex.portfolio.position("ABC") == 0.0


def test_closing_orders_still_open_are_named_with_what_they_held_back():
    # Long 10 with a take-profit SELL 4 the venue will not cancel: 6 sent, 4 left.
    h = with_broker(CancelFails(), executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=10.0))
    h.ex.on_signal(order_sig(2, Side.SELL, OrderType.LIMIT, 105.0, qty=4.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    h.ex.flatten()
    assert h.ex.portfolio.position("ABC") == 4.0
    assert h.ex.not_flattened == {
        "ABC": "closing orders for 4 still open (their cancel failed or is not confirmed): "
        "6 sent; flatten again once they have closed"
    }


class Venue(SimulatedBroker):
    """Takes strategy orders as the simulator does; the kill switch's as ``answer`` says."""

    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer
        self.late: list[Order] = []
        self.report_calls = 0

    def submit(self, order: Order) -> OrderAck:
        if not order.signal_id.startswith("ex:"):
            return super().submit(order)
        if self.answer == "late":  # accepted now, its fill reported a few calls later
            self.late.append(order)
            return OrderAck(order.client_order_id, True, venue_order_id="V-1")
        if self.answer == "reject":
            return OrderAck(order.client_order_id, False, reason="insufficient balance")
        if self.answer == "rest":  # accepted, never filled
            return OrderAck(order.client_order_id, True, venue_order_id="V-1")
        raise ConnectionError("connection reset")  # sent or not: in doubt

    def reports(self) -> list[ExecutionReport]:
        out = super().reports()
        self.report_calls += 1
        if self.late and self.report_calls >= 4:
            o = self.late.pop()
            ts = DAY + 11 * NS
            fill = Fill("F-late", o.id, o.signal_id, o.symbol, o.side, o.qty, 101.0, ts)
            out.append(ExecutionReport(o.client_order_id, OrderStatus.FILLED, ts, "V-1", fill))
        return out


def flatten_on(venue: Venue) -> Harness:
    h = with_broker(venue, executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=2.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    assert h.ex.flatten(wait_s=0.1) == []
    assert h.ex.trading_state is TradingState.HALTED
    assert h.ex.portfolio.position("ABC") == 2.0
    return h


def test_a_closing_order_the_venue_fills_after_its_answer_is_waited_for():
    venue = Venue("late")
    h = with_broker(venue, executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=2.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    [fill] = h.ex.flatten()
    assert (fill.id, fill.side, fill.qty) == ("F-late", Side.SELL, 2.0)
    assert h.ex.not_flattened == {} and not h.alerts("flatten_incomplete")
    assert h.ex.portfolio.position("ABC") == 0.0 and h.ex.trading_state is TradingState.HALTED
    assert not len(h.ex.open) and venue.report_calls >= 4


def test_a_closing_order_the_venue_rejects_is_named_with_its_reason():
    h = flatten_on(Venue("reject"))
    assert h.ex.not_flattened == {"ABC": "closing order rejected: insufficient balance"}


def test_a_closing_order_left_resting_at_the_venue_is_named():
    h = flatten_on(Venue("rest"))
    assert h.ex.not_flattened == {"ABC": "closing order for 2 open at the venue, not filled yet"}


def test_a_closing_order_in_doubt_is_named():
    h = flatten_on(Venue("doubt"))
    assert list(h.ex.not_flattened) == ["ABC"]
    assert h.ex.not_flattened["ABC"].startswith("closing order in doubt")


def test_a_flatten_that_fails_still_halts_and_names_every_open_position():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1, qty=2))
    h.ex.on_tick("ABC", 100.0, DAY)

    def broken(*a, **k):
        raise OSError("disk full")

    h.journal.begin_orders = broken  # type: ignore[method-assign]
    assert h.ex.flatten() == []
    assert h.ex.trading_state is TradingState.HALTED
    assert h.ex.not_flattened["ABC"].startswith("flatten failed: OSError('disk full')")


class LotVenue(SimulatedBroker):
    """A venue trading in lots (`LotSized`); ``refuse`` makes every qty too small."""

    refuse = False

    def lot_qty(self, symbol: str, qty: float) -> float:
        if self.refuse:
            raise OrderRejected("", f"qty {qty!r} is below {symbol}'s smallest order")
        return qty


def test_a_closing_order_refused_for_its_lot_size_is_named_as_rejected_not_as_sent():
    venue = LotVenue()
    h = with_broker(venue, executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=2.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    venue.refuse = True
    assert h.ex.flatten() == []
    assert h.ex.not_flattened == {
        "ABC": "closing order rejected: qty 2.0 is below ABC's smallest order"
    }


class CcxtLots(SimulatedBroker):
    """The simulator, with ccxt's own lot rounding of a Binance market (``step``, offline)."""

    def __init__(self, step: float) -> None:
        super().__init__()
        pytest.importorskip("ccxt")
        self.ex = ccxt_binance("ABC", step, base_quote=("A", "BC"))

    def lot_qty(self, symbol: str, qty: float) -> float:
        from workbench.exchanges.connect import lot_qty  # ccxt: an optional extra

        return lot_qty(self.ex, symbol, qty)


@pytest.mark.parametrize(
    ("step", "buys"),
    [(1e-8, [5.0, 5.0]), (1e-8, [10.0]), (1.0, [2e10]), (0.001, [0.7, -0.4])],
)
def test_a_flatten_in_lot_steps_closes_exactly_what_is_held(step, buys):
    h = with_broker(CcxtLots(step), executor_id="ex")
    for seq, qty in enumerate(buys, 1):
        side = Side.BUY if qty > 0 else Side.SELL
        h.ex.on_signal(order_sig(seq, side, qty=abs(qty)))
    held = h.ex.portfolio.position("ABC")
    assert held == sum(buys)  # nothing was sent above what was asked
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    h.ex.flatten()
    assert h.ex.not_flattened == {} and abs(h.ex.portfolio.position("ABC")) < 1e-12 * abs(held)


@pytest.mark.parametrize("flatten", ["False", "no", 1, 0, None, [True]])
def test_a_halt_whose_flatten_is_not_a_bool_halts_and_closes_nothing(tmp_path, flatten):
    # {"flatten": "False"} was truthy: every position closed. The halt itself holds.
    ex = executor(Journal(tmp_path / "journal.sqlite"))
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))
    desk = Desk()
    answer = ask(runner_for(ex, desk), desk, Command("halt", {"flatten": flatten, "run_id": RUN}))
    assert answer.name == "error"
    assert answer.data["error"] == (
        f"halt: flatten must be true or false, got {flatten!r}; halted, nothing closed"
    )
    assert ex.engine.state is TradingState.HALTED
    assert ex.portfolio.positions["ABC"].qty == 2.0
    assert ex.journal.count("orders") == 1


def test_a_halt_with_flatten_false_halts_without_closing(tmp_path):
    ex = executor(Journal(tmp_path / "journal.sqlite"))
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))
    desk = Desk()
    answer = ask(runner_for(ex, desk), desk, Command("halt", {"flatten": False, "run_id": RUN}))
    assert answer.data["trading_state"] == "HALTED"
    assert answer.data["positions"] == {"ABC": 2.0}


def test_an_order_that_would_reopen_the_position_is_named_when_its_cancel_failed():
    # Long 1 and a resting BUY 2 the venue will not cancel: the flatten closed the 1 and
    # answered "all flat" (exit 0); the BUY then filled while HALTED (a review's repro).
    h = with_broker(CancelFails(), executor_id="ex")
    h.ex.on_signal(order_sig(1, qty=1.0))
    h.ex.on_signal(order_sig(2, otype=OrderType.LIMIT, oprice=95.0, qty=2.0))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    h.ex.flatten()
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.not_flattened == {"ABC": "order O-s:2 (BUY 2) still open: its cancel not confirmed"}


def test_a_resume_or_reduce_that_may_have_waited_out_its_sender_is_refused_a_halt_holds(tmp_path):
    # The executor sat in a slow venue call; the CLI gave up and said "nothing was done",
    # then the resume was served and trading went on, unknown to the operator. How long a
    # command may have waited is the executor's own measure (the sender's clock may be off).
    import time

    from workbench.execution import killswitch

    ex = executor(Journal(tmp_path / "journal.sqlite"))
    desk = Desk()
    runner = runner_for(ex, desk)
    ask(runner, desk, Command("halt", {"run_id": RUN}))
    for name in ("resume", "reduce"):
        runner._empty_at = time.monotonic() - 2.0  # busy 2 s since it last saw no command
        late = ask(runner, desk, Command(name, {"run_id": RUN, "expires_in_ms": 3000}))
        assert late.name == "error" and "its sender waits 3000 ms" in late.data["error"]
        assert ex.trading_state is TradingState.HALTED
    halt = Command("halt", {"run_id": RUN, "expires_in_ms": 1000})
    assert killswitch.obey(ex, halt, RUN, 5000.0) == {} and ex.trading_state.name == "HALTED"
    in_time = ask(runner, desk, Command("resume", {"run_id": RUN, "expires_in_ms": 3000}))
    assert in_time.name == "state" and ex.trading_state is TradingState.ACTIVE
    plain = ask(runner, desk, Command("halt", {"run_id": RUN}))  # an older sender: no expiry
    assert plain.data["trading_state"] == "HALTED"
    assert ask(runner, desk, Command("resume", {"run_id": RUN})).name == "state"


class DiskFillsAfterSubmit(SimulatedBroker):
    """The venue takes the flatten order; then the journal's disk is full (SQLite refuses)."""

    journal: Journal
    full = False

    def submit(self, order: Order) -> OrderAck:
        ack = super().submit(order)
        if self.full:
            self.journal._db.execute("PRAGMA query_only = ON")  # every write fails from here
        return ack


def test_a_journal_failing_during_a_flatten_stops_the_executor_not_reports_flat(tmp_path):
    # The failure was caught with everything else: the answer said all flat (in memory the
    # fill was applied), while the journal kept the position and the order PENDING_NEW.
    import sqlite3

    journal = Journal(tmp_path / "journal.sqlite")
    broker = DiskFillsAfterSubmit()
    broker.journal = journal
    ex = Executor(
        broker, journal, RiskConfig(), make_breaker(3, 60), Telemetry(),
        allowed_strategies={"s"}, executor_id="executor",
    )  # fmt: skip
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))
    broker.full = True
    desk = Desk()
    runner = runner_for(ex, desk)
    desk.operator.send(Command("halt", {"flatten": True, "run_id": RUN}))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        runner.step(0)  # the runner dies; its restart reconciles with the venue
    assert desk.answers() == []  # no answer at all rather than a false "flat"
    journal._db.execute("PRAGMA query_only = OFF")
    assert journal.trading_state() == ("HALTED", "flatten requested")  # on record before


def test_a_halt_the_journal_cannot_record_holds_in_the_running_executor(tmp_path):
    # Ended on the journal error, its restart read ACTIVE from the journal and traded again.
    journal = Journal(tmp_path / "journal.sqlite")
    ex = executor(journal)
    ex.on_tick("ABC", 100.0, DAY)
    ex.on_signal(sig(1, qty=2.0))
    journal._db.execute("PRAGMA query_only = ON")  # the disk is full from here
    desk = Desk()
    answer = ask(runner_for(ex, desk), desk, Command("halt", {"run_id": RUN}))
    assert answer.name == "error" and "HALTED here, but the journal failed" in answer.data["error"]
    assert ex.trading_state is TradingState.HALTED  # this process trades nothing more
