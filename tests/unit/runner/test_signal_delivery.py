"""Signals the executor gave up waiting for: listed in its acks, kept and re-sent, traded late.

The real `ExecutorRunner`, `Executor`, SQLite journal and simulator, and the
real strategy host (`test_strategy_host.Host`), joined by in-process channels.
"""

from __future__ import annotations

import time

import pytest
from test_strategy_host import Host

from workbench.config import RiskConfig
from workbench.domain.model import Side, Signal
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.runner import ExecutorRunner
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging import codec
from workbench.messaging.codec import Ack, EndOfStream, Event, decode
from workbench.messaging.delivery import Outbox
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.runner import strategy_end
from workbench.telemetry import Telemetry

GAP_S = 0.05


class Exec:
    """An executor runner whose strategy stream "sr" is fed by hand."""

    def __init__(self, path, stream: str = "sr") -> None:
        self.signals, self.events, self.beats = Channel(), Channel(), Channel()
        self.telemetry = Telemetry()
        self.journal = Journal(path)
        ex = Executor(
            SimulatedBroker(), self.journal, RiskConfig(), make_breaker(3, 60), self.telemetry,
            allowed_strategies={stream},
        )  # fmt: skip
        self.runner = ExecutorRunner(
            "executor", ex, InprocReceiver(self.signals), InprocSender(self.events, "executor"),
            self.telemetry, InprocSender(self.beats, "executor"), 0.5,
            expected_streams=[stream], gap_timeout_s=GAP_S, exit_on_eos=False,
        )  # fmt: skip
        self.strategy = InprocSender(self.signals, stream)
        self._out = InprocReceiver(self.events)

    def deliver(self, *payloads) -> None:
        for p in payloads:
            self.strategy.send(p)
        self.runner.step(0)

    def wait_out_the_gap(self) -> None:
        time.sleep(GAP_S * 1.5)
        self.runner.step(0)

    def published(self) -> list:
        out, env = [], self._out.recv(0)
        while env is not None:
            out.append(env.payload)
            env = self._out.recv(0)
        return out

    def journaled(self) -> list[str]:
        return sorted(o["signal_id"] for o in self.journal.orders())


def sig(seq: int, side: Side = Side.BUY) -> Signal:
    return Signal(f"sr:{seq}", "sr", seq, "ABC", side, 1.0, 100.0, 1_000 + seq, "r", "c")


def test_a_signal_given_up_on_is_listed_missing_in_acks_and_traded_when_it_comes():
    e = Exec(":memory:")
    e.deliver(sig(2, Side.SELL))  # sr:1 lost on the way
    e.wait_out_the_gap()
    assert e.journaled() == ["sr:2"] and e.telemetry.get("signal_gaps") == 1
    acks = [p for p in e.published() if isinstance(p, Ack)]
    assert acks[-1] == Ack("sr", 2, ((1, 1),))  # the strategy must keep sr:1
    e.deliver(sig(1))  # its re-send
    assert e.journaled() == ["sr:1", "sr:2"] and e.telemetry.get("signals_late") == 1
    assert [p for p in e.published() if isinstance(p, Ack)][-1] == Ack("sr", 2)


def test_a_strategy_down_longer_than_the_gap_bound_still_gets_its_signal_traded(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5, 101.6])  # sr:1 entry, then sr:2 take-profit
    sent = host.sent()
    assert [s.id for s in sent] == ["sr:1", "sr:2"]
    e = Exec(tmp_path / "journal.sqlite")
    e.deliver(sent[1])  # sr:1 died in the old executor's queue; the strategy died too
    e.wait_out_the_gap()
    acks = [p for p in e.published() if isinstance(p, Ack)]

    again = Host(tmp_path)  # the strategy restarts with its saved outbox
    for a in acks:  # the executor's acks wait for it; read before its re-sends
        again.executor.send(a)
    again.runner.step(0)
    resent = again.sent()
    assert "sr:1" in [s.id for s in resent] and len(again.runner.outbox) == 1
    e.deliver(*resent)
    assert e.journaled() == ["sr:1", "sr:2"]  # traded late, not lost
    for a in e.published():
        if isinstance(a, Ack):
            again.executor.send(a)
    again.runner.step(0)
    assert len(again.runner.outbox) == 0


def test_a_lost_last_signal_before_end_of_stream_is_a_counted_gap():
    e = Exec(":memory:")
    e.deliver(sig(1), sig(2, Side.SELL), EndOfStream("sr", 10, 3))  # sr:3 never comes
    assert e.telemetry.get("signal_gaps") == 0
    e.wait_out_the_gap()
    assert e.telemetry.get("signal_gaps") == 1
    gaps = [p for p in e.published() if isinstance(p, Event) and p.name == "alert"]
    assert [(g.data["first_seq"], g.data["last_seq"]) for g in gaps] == [(3, 3)]


def test_two_copies_of_one_id_in_a_batch_that_differ_are_a_conflict():
    e = Exec(":memory:")
    e.runner.executor.on_signals([sig(1), Signal("sr:1", "sr", 1, "ABC", Side.SELL, 5.0, 1.0, 9)])
    assert e.telemetry.get("signal_id_conflicts") == 1
    assert e.journaled() == ["sr:1"]


def test_a_replay_does_not_complete_until_a_given_up_signal_had_a_bounds_time_to_come():
    e = Exec(":memory:")
    e.deliver(sig(2, Side.SELL), EndOfStream("sr", 10, 2))  # sr:1 lost
    e.wait_out_the_gap()
    assert e.telemetry.get("signal_gaps") == 1 and not e.runner.eos_complete
    e.deliver(sig(1))  # the strategy's re-send, on the ack that listed it
    assert e.runner.eos_complete and e.journaled() == ["sr:1", "sr:2"]


def test_a_replay_completes_a_bound_after_giving_up_when_no_re_send_comes():
    e = Exec(":memory:")
    e.deliver(sig(2, Side.SELL), EndOfStream("sr", 10, 2))
    e.wait_out_the_gap()
    assert not e.runner.eos_complete
    e.wait_out_the_gap()
    assert e.runner.eos_complete and e.journaled() == ["sr:2"]


def test_a_strategy_finishes_once_only_signals_the_executor_gave_up_on_are_left(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(strategy_end, "EOS_CONFIRM_TIMEOUT_S", 0.0)
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5, 101.6])  # sr:1, sr:2
    host.gateway.send(EndOfStream("gateway", 4, 4))
    host.runner.step(0)
    assert not host.runner.finished
    host.executor.send(Ack("sr", 2, ((1, 1),)))  # the executor finished without sr:1
    host.executor.send(EndOfStream("sr", 4, 2))
    host.runner.step(0)
    assert [s.id for s in host.runner.outbox.items()] == ["sr:1"]
    assert host.runner.finished


def test_a_restarted_strategy_left_with_given_up_signals_finishes_without_an_executor(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(strategy_end, "EOS_CONFIRM_TIMEOUT_S", 0.0)
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5, 101.6])  # sr:1, sr:2
    host.executor.send(Ack("sr", 2, ((1, 1),)))
    host.runner.step(0)
    host.runner.on_close()
    again = Host(tmp_path)  # the executor has finished and gone: nothing answers
    assert [s.id for s in again.runner.outbox.items()] == ["sr:1"]
    again.gateway.send(EndOfStream("gateway", 4, 4))
    again.runner.step(0)
    again.runner.step(0)
    assert again.runner.finished


def test_a_restarted_executor_still_lists_the_signals_it_gave_up_on(tmp_path):
    path = tmp_path / "journal.sqlite"
    e = Exec(path)
    e.deliver(sig(2, Side.SELL))  # sr:1 lost on the way
    e.wait_out_the_gap()
    e.journal.close()
    again = Exec(path)  # the executor restarts while the strategy is away
    again.runner.step(0)
    again.runner._publish_acks(again.runner.inbound)  # its periodic acks
    acks = [p for p in again.published() if isinstance(p, Ack)]
    assert acks[-1] == Ack("sr", 2, ((1, 1),))  # not Ack("sr", 2): the strategy keeps sr:1
    again.deliver(sig(1))  # the strategy's re-send, when it is back
    assert again.journaled() == ["sr:1", "sr:2"] and again.telemetry.get("signals_late") == 1
    again.journal.close()
    third = Exec(path)  # filled: nothing is asked for any more
    assert third.runner.inbound["sr"].missing == ()
    assert third.journal.signal_gaps() == {}


# -- given-up ranges across executor restarts ------------------------------------------


def acks(e: Exec) -> list[Ack]:
    return [p for p in e.published() if isinstance(p, Ack)]


def killed(*args, **kwargs):
    raise SystemExit("SIGKILL")


def test_a_tail_range_whose_re_sends_came_in_order_after_a_restart_is_not_asked_for_again(
    tmp_path,
):
    path = tmp_path / "j.sqlite"
    e = Exec(path)
    e.deliver(sig(1), EndOfStream("sr", 10, 3))  # sr:2 and sr:3 lost
    e.wait_out_the_gap()
    assert e.journal.signal_gaps() == {"sr": [(2, 3)]}
    e.journal.close()
    again = Exec(path)
    again.deliver(sig(2, Side.SELL), sig(3))  # the re-sends, in order
    assert again.journaled() == ["sr:1", "sr:2", "sr:3"] and acks(again)[-1] == Ack("sr", 3)
    assert again.journal.signal_gaps() == {}
    again.journal.close()
    assert Exec(path).runner.inbound["sr"].missing == ()


def test_a_range_journaled_before_its_held_signals_is_not_asked_for_once_they_are(tmp_path):
    path = tmp_path / "j.sqlite"
    e = Exec(path)
    e.deliver(sig(2, Side.SELL))  # held behind sr:1
    e.runner.executor.on_signals = killed  # dies after journaling the gap, before sr:2
    with pytest.raises(SystemExit):
        e.wait_out_the_gap()
    e.journal.close()
    again = Exec(path)
    again.deliver(sig(1), sig(2, Side.SELL))
    again.journal.close()
    assert Exec(path).runner.inbound["sr"].missing == ()


def test_a_crash_between_a_late_signal_and_rewriting_the_ranges_loses_nothing(tmp_path):
    path = tmp_path / "j.sqlite"
    box: Outbox[int] = Outbox(60.0)  # the strategy's outbox
    for n in range(1, 5):
        box.add(n, n, 0.0)
    e = Exec(path)
    e.deliver(sig(1), EndOfStream("sr", 10, 4))  # sr:2..4 lost
    e.wait_out_the_gap()
    for a in acks(e):
        box.on_ack(a.upto, a.missing)
    assert list(box.items()) == [2, 3, 4]
    e.journal.set_signal_gaps = killed  # sr:3 comes late: journaled, then the executor dies
    with pytest.raises(SystemExit):
        e.deliver(sig(3))
    assert "sr:3" in e.journaled()
    e.journal.close()
    again = Exec(path)  # the strategy is away across the restart
    again.runner.step(0)
    again.wait_out_the_gap()
    again.runner._publish_acks(again.runner.inbound)
    for a in acks(again):  # back, it reads the new executor's acks first
        box.on_ack(a.upto, a.missing)
    assert 2 in box and 4 in box and 3 not in box  # sr:2 is still kept: it will be traded
    assert again.journal.signal_gaps() == {"sr": [(2, 2), (4, 4)]}


def test_a_gap_is_journaled_before_an_ack_lists_it(tmp_path):
    e = Exec(tmp_path / "j.sqlite")
    e.deliver(sig(2, Side.SELL))
    e.published()
    e.journal.set_signal_gaps = killed
    with pytest.raises(SystemExit):
        e.wait_out_the_gap()
    assert [a for a in acks(e) if a.upto >= 2] == []  # nothing told the strategy to drop sr:1


def test_an_executor_restarted_just_after_giving_up_still_waits_a_bound_for_re_sends(tmp_path):
    path = tmp_path / "j.sqlite"
    e = Exec(path)
    e.deliver(sig(2, Side.SELL), EndOfStream("sr", 10, 2))  # sr:1 lost
    e.wait_out_the_gap()
    assert not e.runner.eos_complete
    e.journal.close()
    again = Exec(path)
    again.runner.step(0)
    assert not again.runner.eos_complete  # the strategy's re-send gets its bound
    again.deliver(sig(1))
    assert again.runner.eos_complete


def test_ranges_saved_for_signals_that_are_journaled_do_not_hold_the_ack_back(tmp_path):
    path = tmp_path / "j.sqlite"
    e = Exec(path)
    n = 2 * 65 + 1
    e.deliver(*[sig(k) for k in range(1, n + 1)], EndOfStream("sr", 10, n))
    e.journal.set_signal_gaps("sr", [(k, k) for k in range(2, n, 2)])  # 65 stale rows
    e.journal.close()
    again = Exec(path)
    again.runner.step(0)
    assert again.runner.inbound["sr"].ack == n and again.runner.eos_complete


def test_signal_received_is_stamped_as_the_signal_left_the_socket_not_after_decoding(
    monkeypatch: pytest.MonkeyPatch,
):
    def slow_decode(frames):  # 20 ms of decoding after the receiver took the frames
        time.sleep(0.02)
        return decode(frames)

    monkeypatch.setattr(codec, "decode", slow_decode)
    signals, events, beats, telemetry = Channel(), Channel(), Channel(), Telemetry()
    published = InprocSender(events, "executor")
    ex = Executor(
        SimulatedBroker(), Journal(":memory:"), RiskConfig(), make_breaker(3, 60), telemetry,
        published.send, allowed_strategies={"sr"},
    )  # fmt: skip
    slow = InprocReceiver(signals)
    runner = ExecutorRunner(
        "executor", ex, slow, published, telemetry, InprocSender(beats, "executor"), 0.5,
        expected_streams=["sr"], exit_on_eos=False,
    )  # fmt: skip
    InprocSender(signals, "sr").send(sig(1))
    runner.step(0)
    monkeypatch.undo()
    out, got = InprocReceiver(events), []
    while (env := out.recv(0)) is not None:
        got.append(env.payload)
    received = [p for p in got if isinstance(p, Event) and p.name == "signal_received"]
    assert [r.data["received_ns"] for r in received] == [slow.taken_ns]
    assert time.time_ns() - slow.taken_ns >= 20_000_000  # the decoding came after the stamp
