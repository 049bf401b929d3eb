"""A halt that comes while a batch's orders go out stops the rest; marks journaled on stop.

The real `ExecutorRunner`, `Executor`, SQLite journal and simulator; the
signals and the operator's commands come over in-process channels. The
broker puts the operator's command on the channel while it takes the batch's
first order, as a user pressing halt while a slow venue answers would.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config import RiskConfig
from workbench.domain.model import Order, Side, Signal
from workbench.domain.orders import OrderAck
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.risk import TradingState
from workbench.execution.runner import ExecutorRunner
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Command, Envelope, Event, Payload
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.telemetry import Telemetry


class Desk:
    """The operator's end of the command channel, and the executor's (a `Replier`)."""

    def __init__(self) -> None:
        self.requests, self.replies = Channel(), Channel()
        self._in = InprocReceiver(self.requests)
        self._out = InprocSender(self.replies, "executor")
        self.operator = InprocSender(self.requests, "operator")

    def recv(self, timeout_ms: int) -> Envelope | None:
        return self._in.recv(timeout_ms)

    def reply(self, payload: Payload) -> None:
        self._out.send(payload)

    def answers(self) -> list[Payload]:
        rx, out = InprocReceiver(self.replies), []
        while (env := rx.recv(0)) is not None:
            out.append(env.payload)
        return out


class CommandDuringFirstSubmit(SimulatedBroker):
    """Takes orders as the simulator does; the operator's command arrives during the first."""

    def __init__(self, desk: Desk, command: Command | None) -> None:
        super().__init__()
        self.desk, self.command, self.submitted = desk, command, []

    def submit(self, order: Order) -> OrderAck:
        ack = super().submit(order)
        self.submitted.append(order.signal_id)
        if self.command is not None:
            self.desk.operator.send(self.command)
            self.command = None
        return ack


@dataclass
class Batch:
    ex: Executor
    broker: CommandDuringFirstSubmit
    desk: Desk
    statuses: dict[str, tuple[str, str]]
    runner: ExecutorRunner


def run_batch(
    tmp_path, command: Command | None, signals: list[Signal], records: list | None = None
) -> Batch:
    """The signals in one runner step; ``records`` collects the journal's order commits."""
    desk = Desk()
    journal = Journal(tmp_path / "journal.sqlite")
    broker = CommandDuringFirstSubmit(desk, command)
    ex = Executor(
        broker, journal, RiskConfig(), make_breaker(3, 60), Telemetry(), allowed_strategies={"sr"},
        executor_id="executor",
    )  # fmt: skip
    ex.on_tick("ABC", 100.0, 1)
    signals_in, events, beats = Channel(), Channel(), Channel()
    runner = ExecutorRunner(
        "executor", ex, InprocReceiver(signals_in), InprocSender(events, "executor"),
        ex.telemetry, InprocSender(beats, "executor"), 0.5, expected_streams=["sr"],
        exit_on_eos=False, commands=desk,
    )  # fmt: skip
    if records is not None:
        record = journal.record
        journal.record = lambda *a, **k: (records.append(a), record(*a, **k))[1]  # type: ignore[method-assign]
    strategy = InprocSender(signals_in, "sr")
    for s in signals:
        strategy.send(s)
    runner.step(0)  # the whole batch in one step
    statuses = {o["signal_id"]: (o["status"], o["reason"]) for o in journal.orders()}
    return Batch(ex, broker, desk, statuses, runner)


def sig(seq: int, side: Side = Side.BUY, qty: float = 1.0) -> Signal:
    return Signal(f"sr:{seq}", "sr", seq, "ABC", side, qty, 100.0, 1_000 + seq, "r", "c")


def test_a_halt_during_a_batch_stops_its_remaining_orders(tmp_path):
    b = run_batch(tmp_path, Command("halt", {"reason": "stop now"}), [sig(1), sig(2), sig(3)])
    assert b.broker.submitted == ["sr:1"]  # nothing after the halt reached the venue
    assert b.statuses["sr:1"][0] == "FILLED"
    assert b.statuses["sr:2"] == b.statuses["sr:3"] == ("REJECTED", "trading halted")
    journal = Journal(tmp_path / "journal.sqlite")
    for sid in ("sr:2", "sr:3"):  # decided here, not by the venue
        assert [(r["status"], r["source"]) for r in journal.reports(f"O-{sid}")] == [
            ("REJECTED", "risk")
        ]
    assert b.ex.trading_state is TradingState.HALTED and b.ex.portfolio.position("ABC") == 1.0
    [answer] = b.desk.answers()  # the operator was answered with the new state
    assert isinstance(answer, Event) and answer.data["trading_state"] == "HALTED"
    # and a restarted executor is still halted, with the same journal
    again = Executor(SimulatedBroker(), Journal(tmp_path / "journal.sqlite"), RiskConfig(),
                     make_breaker(3, 60), Telemetry())  # fmt: skip
    assert again.trading_state is TradingState.HALTED


def test_a_flatten_during_a_batch_unwinds_what_went_out_and_stops_the_rest(tmp_path):
    b = run_batch(tmp_path, Command("halt", {"flatten": True}), [sig(1), sig(2), sig(3)])
    assert b.broker.submitted == ["sr:1", "executor:1"]  # the entry, then the flatten order
    assert b.statuses["sr:2"][0] == b.statuses["sr:3"][0] == "REJECTED"
    assert b.statuses["executor:1"][0] == "FILLED"
    assert b.ex.portfolio.position("ABC") == 0.0
    assert b.ex.trading_state is TradingState.HALTED


def test_reduce_during_a_batch_lets_only_its_shrinking_orders_out(tmp_path):
    b = run_batch(tmp_path, Command("reduce", {}), [sig(1, qty=2.0), sig(2), sig(3, Side.SELL)])
    assert b.broker.submitted == ["sr:1", "sr:3"]
    assert b.statuses["sr:2"][0] == "REJECTED"
    assert b.statuses["sr:2"][1].startswith("trading state REDUCING")
    assert b.statuses["sr:3"][0] == "FILLED"
    assert b.ex.portfolio.position("ABC") == 1.0
    assert b.ex.trading_state is TradingState.REDUCING


def test_a_state_question_during_a_batch_changes_nothing(tmp_path):
    records: list = []
    b = run_batch(tmp_path, Command("state", {}), [sig(n) for n in range(1, 7)], records)
    assert b.broker.submitted == [f"sr:{n}" for n in range(1, 7)]
    assert {v[0] for v in b.statuses.values()} == {"FILLED"}
    assert b.desk.answers()[0].data["trading_state"] == "ACTIVE"
    # Still ACTIVE: what went out before the question is one commit, the rest one more.
    assert len(records) == 2


def test_the_runner_journals_the_market_prices_it_saw_when_it_stops(tmp_path):
    b = run_batch(tmp_path, None, [sig(1)])
    b.ex.on_tick("ABC", 103.5, 2)
    b.runner.on_close()
    assert Journal(tmp_path / "journal.sqlite").marks() == {"ABC": (103.5, 2)}
