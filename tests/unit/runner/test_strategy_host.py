"""The strategy host with in-process channels: outbox, acks, re-sends, saves, end-of-stream."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
import structlog

from workbench.domain.model import Side, Signal, Tick, TickBatch
from workbench.domain.orders import OrderEvent
from workbench.exceptions import StrategyError
from workbench.messaging.codec import Ack, EndOfStream, Heartbeat
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.runner import strategy_host
from workbench.runner.state import FileStateStore
from workbench.runner.strategy_host import StrategyRunner
from workbench.strategies.support_resistance import SupportResistance
from workbench.telemetry import Telemetry

CONDITION = {
    "id": "b",
    "symbol": "XYZ",
    "side": "BUY",
    "trigger_price": 100.0,
    "turning_point": 0.5,
    "take_profit": 1.0,
    "stop_loss": 1.0,
}


class Bare:
    """A strategy with only the required methods: no pop_events, levels or on_batch."""

    def __init__(self, strategy_id: str) -> None:
        self.strategy_id = strategy_id
        self.inner = SupportResistance(strategy_id, [CONDITION], record_events=False)

    def on_tick(self, tick: Tick) -> list[Signal]:
        return self.inner.on_tick(tick)

    def snapshot(self) -> dict[str, Any]:
        return self.inner.snapshot()

    def restore(self, state: dict[str, Any]) -> None:
        self.inner.restore(state)


class Host:
    def __init__(self, tmp_path, strategy=None, **options) -> None:
        self.ticks, self.signals, self.credits = Channel(), Channel(), Channel()
        self.acks, self.beats = Channel(), Channel()
        self.executor = InprocSender(self.acks, "executor")
        self.strategy = strategy or Bare("sr")
        self.runner = StrategyRunner(
            self.strategy,
            InprocReceiver(self.ticks),
            InprocSender(self.signals, "sr"),
            InprocSender(self.credits, "sr"),
            FileStateStore(tmp_path / "state"),
            Telemetry(),
            InprocSender(self.beats, "sr"),
            0.5,
            acks=InprocReceiver(self.acks),
            **options,
        )
        self.gateway = InprocSender(self.ticks, "gateway")
        self.runner.on_start()

    def join(self, mark: int = 0) -> None:
        """The gateway's mark, the replay strategy's answer (a resync) and its echo."""
        from workbench.messaging.codec import Marker, Resync

        self.gateway.send(Marker(mark))
        self.runner.step(0)
        (resync,) = self.credit_payloads()
        assert isinstance(resync, Resync)
        self.gateway.send(Marker(mark, resync.subscriber, resync.nonce))
        self.runner.step(0)

    def credit_payloads(self) -> list[Any]:
        """What the strategy sent the gateway since the last call."""
        rx = InprocReceiver(self.credits)
        return [rx.recv(0).payload for _ in range(len(self.credits.frames))]

    def send_ticks(self, prices: list[float], first_seq: int = 1) -> None:
        n = len(prices)
        self.gateway.send(TickBatch("XYZ", first_seq, list(range(first_seq, first_seq + n)),
                                    prices, [1.0] * n))  # fmt: skip
        self.runner.step(0)

    def sent(self) -> list[Any]:
        rx = InprocReceiver(self.signals)
        return [rx.recv(0).payload for _ in range(len(self.signals.frames))]


def test_state_is_saved_on_close_for_a_strategy_that_reports_no_events(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0])  # triggers; no signal yet, and no events to report
    assert host.strategy.inner.conditions[0].state.value == "TRIGGERED"
    host.runner.on_close()  # a clean SIGTERM ends here
    again = Host(tmp_path)
    assert again.strategy.inner.conditions[0].state.value == "TRIGGERED"


def test_state_is_saved_on_the_interval_without_events(tmp_path):
    host = Host(tmp_path, persist_interval_s=0.0)
    host.send_ticks([101.0, 100.0])
    again = Host(tmp_path)  # as after a SIGKILL: no on_close
    assert again.strategy.inner.conditions[0].state.value == "TRIGGERED"


def test_a_signal_stays_in_the_outbox_until_acked_and_is_resent_after_the_timeout(tmp_path):
    host = Host(tmp_path, resend_after_s=0.05)
    host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1
    assert [s.id for s in host.sent()] == ["sr:1"]
    host.runner.step(0)
    assert host.sent() == []  # not yet due
    time.sleep(0.06)
    host.runner.step(0)  # unacked past the timeout: sent again
    assert [s.id for s in host.sent()] == ["sr:1"]
    host.executor.send(Ack("sr", 1))
    host.runner.step(0)
    assert host.sent() == [] and len(host.runner.outbox) == 0


def test_sent_signals_are_logged_when_the_host_is_next_idle_and_on_close(tmp_path):
    with structlog.testing.capture_logs() as logs:
        host = Host(tmp_path)
        host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1
        assert [s.id for s in host.sent()] == ["sr:1"]
        assert not [e for e in logs if e["event"] == "signals_sent"]  # still in flight
        host.runner.step(0)  # nothing waits: idle
        assert [e["signal_ids"] for e in logs if e["event"] == "signals_sent"] == [["sr:1"]]
        host.send_ticks([101.6])  # take-profit: sr:2, then a clean stop
        host.runner.on_close()
        assert [e["signal_ids"] for e in logs if e["event"] == "signals_sent"][-1] == ["sr:2"]


def test_a_sent_signal_is_logged_when_no_tick_waits_or_after_the_delay_bound(tmp_path, monkeypatch):
    with structlog.testing.capture_logs() as logs:
        host = Host(tmp_path)
        host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1
        host.gateway.send(TickBatch("XYZ", 9, [9], [100.6], [1.0]))  # a tick waits already
        host.runner.step(0)
        assert host.runner.ticks_processed == 4  # the tick first: a log line would hold it
        assert not [e for e in logs if e["event"] == "signals_sent"]
        host.runner.step(0)  # nothing waits: now
        assert [e["signal_ids"] for e in logs if e["event"] == "signals_sent"] == [["sr:1"]]
        host.send_ticks([101.6])  # take-profit: sr:2
        monkeypatch.setattr(strategy_host, "LOG_DELAY_NS", 0)  # behind for too long
        host.gateway.send(TickBatch("XYZ", 11, [11], [101.0], [1.0]))
        host.runner.step(0)
        assert [e["signal_ids"] for e in logs if e["event"] == "signals_sent"][-1] == ["sr:2"]


class FullQueue(InprocSender):
    """A sender whose queue takes ``room`` more messages (None: any number): a full PUSH."""

    room: int | None = None

    def send(self, payload: Any) -> bool:
        return self.send_many([payload]) == 1

    def send_many(self, payloads: Any) -> int:
        n = len(payloads) if self.room is None else min(self.room, len(payloads))
        if self.room is not None:
            self.room -= n
        for p in payloads[:n]:
            InprocSender.send(self, p)
        return n


def test_a_full_queue_never_blocks_and_what_it_refused_goes_first_in_seq_order(tmp_path):
    host = Host(tmp_path, resend_after_s=0.05)
    queue = host.runner._signals = FullQueue(host.signals, "sr")
    queue.room = 0  # the executor is down and its queue full
    host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1, refused
    host.send_ticks([101.6], 4)  # take-profit: sr:2, refused, held behind sr:1
    assert host.sent() == [] and host.runner.outbox.holding == 2
    assert host.runner.telemetry.get("signals_held_back") == 2
    time.sleep(0.06)
    host.runner.step(0)  # never sent, so never "due again": they keep their place
    assert host.sent() == []
    queue.room = 1
    host.runner.step(0)
    assert [s.id for s in host.sent()] == ["sr:1"]
    queue.room = None
    host.runner.step(0)
    assert [s.id for s in host.sent()] == ["sr:2"]
    assert host.runner.outbox.holding == 0 and len(host.runner.outbox) == 2  # until acked
    again = Host(tmp_path)  # what was held survives a restart too (saved before the send)
    assert [s.id for s in again.sent()] == ["sr:1", "sr:2"]


def test_a_signal_a_full_queue_held_is_logged_as_sent_only_once_it_went(tmp_path):
    """An operator reading the log during an outage must not see held signals as sent."""
    with structlog.testing.capture_logs() as logs:
        host = Host(tmp_path)
        queue = host.runner._signals = FullQueue(host.signals, "sr")
        queue.room = 1
        host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1, sent
        queue.room = 0
        host.send_ticks([101.6], 4)  # take-profit: sr:2, held
        host.runner.step(0)
        sent = [e["signal_ids"] for e in logs if e["event"] == "signals_sent"]
        assert sent == [["sr:1"]] and host.runner.outbox.holding == 1
        assert [e["first_signal_id"] for e in logs if e["event"] == "signals_queue_full"] == [
            "sr:2"
        ]
        queue.room = None
        host.runner.step(0)  # room again: sr:2 goes, and is logged when the host is idle
        host.runner.step(0)
        sent = [e["signal_ids"] for e in logs if e["event"] == "signals_sent"]
        assert sent == [["sr:1"], ["sr:2"]] and [s.id for s in host.sent()] == ["sr:1", "sr:2"]


def test_a_held_re_send_is_not_logged_as_sent_twice(tmp_path):
    with structlog.testing.capture_logs() as logs:
        host = Host(tmp_path, resend_after_s=0.05)
        queue = host.runner._signals = FullQueue(host.signals, "sr")
        host.send_ticks([101.0, 100.0, 100.5])  # sr:1 sent
        host.runner.step(0)  # logged when idle
        queue.room = 0
        time.sleep(0.06)
        host.runner.step(0)  # its re-send refused: held
        assert host.runner.outbox.holding == 1
        queue.room = None
        host.send_ticks([101.6], 4)  # sr:2: the held re-send of sr:1 goes first
        host.runner.step(0)
        sent = [e["signal_ids"] for e in logs if e["event"] == "signals_sent"]
        assert sent == [["sr:1"], ["sr:2"]]


def test_a_signal_held_when_the_strategy_died_is_logged_when_it_goes_after_the_restart(
    tmp_path, monkeypatch
):
    host = Host(tmp_path)
    queue = host.runner._signals = FullQueue(host.signals, "sr")
    queue.room = 0  # the executor down, its queue full
    host.send_ticks([101.0, 100.0, 100.5])  # sr:1: saved (written ahead), refused, held
    assert host.sent() == [] and host.runner.outbox.holding == 1
    start = StrategyRunner.on_start  # the strategy dies; it restarts, the queue still full
    monkeypatch.setattr(StrategyRunner, "on_start", lambda self: None)
    again = Host(tmp_path)
    monkeypatch.setattr(StrategyRunner, "on_start", start)
    queue = again.runner._signals = FullQueue(again.signals, "sr")
    queue.room = 0
    with structlog.testing.capture_logs() as logs:
        again.runner.on_start()  # its re-send refused: held
        queue.room = None  # the executor is back
        again.runner.step(0)  # the held sr:1 goes
        again.runner.step(0)
    assert [s.id for s in again.sent()] == ["sr:1"]
    lines = [(e["event"], e.get("signal_ids")) for e in logs if e["event"].startswith("signals_")]
    assert ("signals_resent", ["sr:1"]) in lines, lines


def test_a_re_send_a_full_queue_refused_goes_as_soon_as_there_is_room(tmp_path):
    """The executor stopped reading (no restart to see): not 30 s later, after a gap alert."""
    host = Host(tmp_path, resend_after_s=0.05)
    queue = host.runner._signals = FullQueue(host.signals, "sr")
    host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1, sent
    assert [s.id for s in host.sent()] == ["sr:1"]
    queue.room = 0
    for _ in range(4):  # unacknowledged: due again and again, refused each time
        time.sleep(0.06)
        host.runner.step(0)
    assert host.runner.outbox.holding == 1 and host.sent() == []
    host.send_ticks([101.6], 4)  # take-profit: sr:2, behind sr:1
    assert host.runner.telemetry.get("signals_held_back") == 2
    queue.room = None
    host.runner.step(0)
    assert [s.id for s in host.sent()] == ["sr:1", "sr:2"]


def test_end_of_stream_never_overtakes_held_signals(tmp_path):
    """Ahead of them, it would make the executor wait out a gap for the held ones."""
    host = Host(tmp_path, resend_after_s=0.05)
    queue = host.runner._signals = FullQueue(host.signals, "sr")
    queue.room = 0
    host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1, held
    queue.room = 1  # room for one message: the held signal's
    host.gateway.send(EndOfStream("gateway", 3, 3))
    host.runner.step(0)
    assert [type(p).__name__ for p in host.sent()] == ["Signal"]
    queue.room = None
    time.sleep(0.06)
    host.runner.step(0)
    (eos,) = [p for p in host.sent() if isinstance(p, EndOfStream)]
    assert eos.last_seq == 1


def test_a_restarted_executor_gets_the_held_signals_first(tmp_path):
    host = Host(tmp_path, resend_after_s=10.0)
    queue = host.runner._signals = FullQueue(host.signals, "sr")
    host.send_ticks([101.0, 100.0, 100.5])  # entry: sr:1, sent
    host.executor.send(Ack("sr", 0))
    host.runner.step(0)
    queue.room = 0
    host.send_ticks([101.6], 4)  # take-profit: sr:2, held
    host.sent()
    queue.room = None
    host.executor = InprocSender(host.acks, "executor")  # a new process: a new epoch
    host.executor.send(Ack("sr", 0))
    host.runner._drain_acks()
    assert [s.id for s in host.sent()] == ["sr:1", "sr:2"]  # everything, held too, in order
    assert host.runner.outbox.holding == 0


def test_a_restarted_strategy_resends_what_was_never_acked_before_anything_new(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5])
    assert [s.id for s in host.sent()] == ["sr:1"]
    again = Host(tmp_path)  # the first died before any ack
    again.send_ticks([101.6], 4)  # its first tick at once: take-profit, sr:2
    sent = again.sent()
    assert [s.id for s in sent] == ["sr:1", "sr:2"] and sent[0].side is Side.BUY


def test_a_new_executor_epoch_triggers_a_resend_of_everything(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5])
    host.sent()
    host.executor.send(Ack("sr", 0))
    host.runner.step(0)
    host.executor = InprocSender(host.acks, "executor")  # a new process: a new epoch
    host.executor.send(Ack("sr", 0))
    host.runner.step(0)
    assert [s.id for s in host.sent()] == ["sr:1"]


def test_end_of_stream_finishes_only_once_the_executor_confirms_it(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5])
    host.gateway.send(EndOfStream("gateway", 3, 3))
    host.runner.step(0)
    assert not host.runner.finished
    host.executor.send(Ack("sr", 1))
    host.executor.send(EndOfStream("sr", 3, 1))  # the executor's echo
    host.runner.step(0)
    assert host.runner.finished


def test_heartbeats_report_the_outbox(tmp_path):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5])
    host.runner.send_heartbeat()
    hb = InprocReceiver(host.beats).recv(0).payload
    assert isinstance(hb, Heartbeat) and hb.extra["outbox"] == 1 and "levels" not in hb.extra


@pytest.mark.parametrize("acked", [0, 1])
def test_the_outbox_is_saved_with_the_state(tmp_path, acked):
    host = Host(tmp_path)
    host.send_ticks([101.0, 100.0, 100.5])
    if acked:
        host.executor.send(Ack("sr", 1))
        host.runner.step(0)
    host.runner.on_close()
    assert len(Host(tmp_path).runner.outbox) == 1 - acked


# -- outcome hooks --------------------------------------------------------------------


class Hooked(Bare):
    """Records which tick it had seen last when it heard each outcome."""

    def __init__(self, strategy_id: str) -> None:
        super().__init__(strategy_id)
        self.seen = 0
        self.heard: list[tuple[str, int, int]] = []

    def on_tick(self, tick: Tick) -> list[Signal]:
        self.seen = tick.ts_ns
        return super().on_tick(tick)

    def on_fill(self, e) -> None:
        self.heard.append((e.signal_id, e.ts_ns, self.seen))


class LoopbackExecutor(InprocReceiver):
    """The executor's events socket: fills each signal 2 ticks later, then acks it."""

    def __init__(self, channel: Channel, signals: Channel) -> None:
        super().__init__(channel)
        self.signals = InprocReceiver(signals)
        self.events = InprocSender(channel, "executor")

    def recv(self, timeout_ms: int):
        env = self.signals.recv(0)
        while env is not None:
            s = env.payload
            if isinstance(s, Signal):
                at = s.ts_ns + 2
                fill = OrderEvent(
                    s.strategy_id, s.id, f"O-{s.id}", "FILLED", s.symbol, s.side.value, s.qty,
                    s.price, 0.0, at, s.qty,
                )  # fmt: skip
                self.events.send(fill)
                self.events.send(Ack(s.strategy_id, s.seq))
            env = self.signals.recv(0)
        return super().recv(0)


def test_replay_host_with_hooks_waits_for_outcomes_and_delivers_them_at_their_tick(tmp_path):
    strategy = Hooked("sr")
    host = Host(tmp_path, strategy, replay=True)
    host.join()
    host.runner._acks = LoopbackExecutor(host.acks, host.signals)
    host.runner._hooks = True
    host.send_ticks([101.0, 100.0, 100.5, 100.6, 100.7, 100.8, 100.9])  # ts 1..7, entry at 3
    assert strategy.heard == [("sr:1", 5, 5)]  # filled at 5: heard after tick 5, before 6
    assert len(host.runner.outbox) == 0  # every signal acked before the next tick ran


class Killed(BaseException):
    """The process killed where this is raised."""


def test_a_replay_host_with_hooks_killed_mid_batch_sees_the_batchs_later_ticks_again(tmp_path):
    prices = [101.0, 100.0, 100.5, 101.6, 100.8, 100.7, 100.6]  # entry at tick 3, exit at 4

    def hooked_host(folder):
        host = Host(folder, Hooked("sr"), replay=True)
        host.runner._acks = LoopbackExecutor(host.acks, host.signals)
        host.runner._hooks = True
        host.join()
        return host

    clean = hooked_host(tmp_path / "clean")
    clean.send_ticks(prices)
    assert clean.runner.last_signal_seq == 2

    crashed = hooked_host(tmp_path / "crashed")
    real_send = crashed.runner._signals.send_many

    def send_then_die(signals):
        real_send(signals)
        raise Killed  # while sr:1 waits for its ack, after its save

    crashed.runner._signals.send_many = send_then_die
    with pytest.raises(Killed):
        crashed.send_ticks(prices)
    saved = FileStateStore(tmp_path / "crashed" / "state").load("sr")
    assert saved["last_tick_seq"] == 3  # the tick that made sr:1, not the batch's last

    again = hooked_host(tmp_path / "crashed")
    assert again.runner.last_tick_seq == 3
    again.send_ticks(prices[3:], first_seq=4)  # what the gateway re-sends after the resync
    assert again.runner.last_signal_seq == 2
    assert again.strategy.inner.snapshot() == clean.strategy.inner.snapshot()


def test_a_state_save_the_disk_cuts_short_raises_and_the_previous_one_stays(tmp_path):
    script = f"""
import resource, signal
from pathlib import Path
from workbench.runner.state import FileStateStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
st = FileStateStore(Path({str(tmp_path)!r}))
st.save("sr", {{"next_seq": 1}})
st.save("sr", {{"next_seq": 2}})
resource.setrlimit(resource.RLIMIT_FSIZE, (120, resource.RLIM_INFINITY))  # a full disk
try:
    st.save("sr", {{"next_seq": 3, "outbox": ["x" * 200]}})
except OSError as e:
    print("raised:", e)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "raised:" in r.stdout and "wrote 120 of" in r.stdout
    assert FileStateStore(tmp_path).load("sr") == {"next_seq": 2}


def test_a_replay_strategy_drops_ticks_until_its_resync_and_asks_from_its_saved_tick(tmp_path):
    # Restarted mid-stream without state: batches 500.. came before the next mark.
    # Processing them moved last_tick_seq to 502 and the resync asked for the
    # ticks after 502: ticks 1-499 were never traded.
    from workbench.messaging.codec import Marker, Resync

    host = Host(tmp_path, replay=True)
    host.send_ticks([101.0, 100.5, 100.0], first_seq=500)
    host.gateway.send(Marker(20))
    host.runner.step(0)
    (resync,) = host.credit_payloads()
    assert resync == Resync("sr", 0, host.runner._rejoin.nonce)
    assert host.runner.ticks_processed == 0
    assert host.runner.telemetry.get("ticks_dropped_before_resync") == 3


def test_ticks_sent_before_the_gateway_served_the_resync_are_dropped_until_its_echo(tmp_path):
    # The race: the gateway had batches 100.. in flight when the resync reached it.
    # Processed, they moved last_tick_seq past the re-sent ticks 1-3, which were
    # then skipped as seen: ticks 1-99 never reached the strategy.
    from workbench.messaging.codec import EndOfStream, Marker

    host = Host(tmp_path, replay=True)
    host.gateway.send(Marker(20))
    host.runner.step(0)
    (resync,) = host.credit_payloads()
    host.send_ticks([101.0, 100.5, 100.0], first_seq=100)  # sent before the resync was served
    host.gateway.send(EndOfStream("gateway", 102, 102))  # the stream had ended, too
    host.gateway.send(Marker(20))  # a plain mark meanwhile: no ack, and not asked again yet
    host.gateway.send(Marker(20, "other", resync.nonce))  # another strategy's echo
    host.runner.step(0)
    assert host.runner.ticks_processed == 0 and not host.runner.eos_seen
    assert host.credit_payloads() == []
    host.gateway.send(Marker(20, "sr", resync.nonce))  # served: the echo, then the re-sent
    host.send_ticks([101.0, 100.5, 100.0], first_seq=1)
    host.send_ticks([101.0, 100.5, 100.0], first_seq=100)
    assert host.runner.ticks_processed == 6 and host.runner.last_tick_seq == 102
    assert host.runner.telemetry.get("ticks_dropped_before_resync") == 3


class Numbered(Bare):
    """Signals numbered by the strategy as ``number(n)`` says (the n-th it makes)."""

    def __init__(self, strategy_id: str, number) -> None:
        super().__init__(strategy_id)
        self.number, self.made = number, 0

    def on_tick(self, tick: Tick) -> list[Signal]:
        out = []
        for s in self.inner.on_tick(tick):
            self.made += 1
            seq = self.number(self.made)
            out.append(Signal(Signal.make_id(self.strategy_id, seq), self.strategy_id, seq,
                              s.symbol, s.side, s.qty, s.price, s.ts_ns))  # fmt: skip
        return out


def test_signal_seqs_that_skip_are_refused_before_anything_is_saved_or_sent(tmp_path):
    # Numbered 10, 20, 30: each hole held every later signal at the executor for its gap
    # timeout (71 signals ran 14.8 s late at a 0.2 s timeout) and raised a false gap alert.
    host = Host(tmp_path, strategy=Numbered("sr", lambda n: 10 * n))
    with pytest.raises(StrategyError, match=r"signal 'sr:10' with seq 10; the next must be 1"):
        host.send_ticks([101.0, 100.0, 100.5])
    assert host.sent() == [] and len(host.runner.outbox) == 0
    host.runner.on_close()  # broken: its advanced state is not saved
    assert Host(tmp_path).strategy.inner.conditions[0].state.value == "WAITING"


def test_a_strategy_whose_numbering_starts_over_after_a_restart_is_refused(tmp_path):
    # Its snapshot left out the counter: after the restart it made sr:1 again, which the
    # host dropped from the outbox as acknowledged and the executor refused as reused.
    host = Host(tmp_path, strategy=Numbered("sr", lambda n: n))
    host.send_ticks([101.0, 100.0, 100.5])
    assert [s.id for s in host.sent()] == ["sr:1"]
    host.executor.send(Ack("sr", 1))
    host.runner.step(0)
    host.runner.on_close()
    again = Host(tmp_path, strategy=Numbered("sr", lambda n: n))
    assert again.runner.last_signal_seq == 1
    with pytest.raises(StrategyError, match=r"'sr:1' with seq 1; the next must be 2.*counter"):
        again.send_ticks([102.0, 101.0, 101.5, 100.0, 99.0, 99.5], first_seq=4)


def test_a_strategy_whose_state_is_older_than_the_executors_journal_is_refused(tmp_path):
    # Its state folder lost: it numbers from 1 again while the executor journaled up to 5.
    host = Host(tmp_path, strategy=Numbered("sr", lambda n: n))
    host.executor.send(Ack("sr", 5))
    host.runner.step(0)
    with pytest.raises(StrategyError, match=r"journaled its signals up to seq 5: .* older"):
        host.send_ticks([101.0, 100.0, 100.5])
    assert host.sent() == []


def test_fast_replay_refuses_seqs_that_skip_as_the_host_does(tmp_path):
    # A strategy numbering 10, 20, 30 passed a fast replay and a sweep, then failed under
    # the wire replay: fast and wire must agree.
    from workbench.config import build_config
    from workbench.marketdata import TickTable
    from workbench.replays.session import run_fast

    cfg = build_config({"gateway": {"feed": "replay"}, "strategies": [
        {"id": "sr", "class_path": f"{__name__}:Tens", "params": {}}]}, base_dir=tmp_path,
        environment=False)  # fmt: skip
    prices = [101.0, 100.0, 100.5]
    table = TickTable(["XYZ"] * 3, [1, 2, 3], prices, [1.0] * 3)
    with pytest.raises(StrategyError, match=r"'sr:10' with seq 10; the next must be 1"):
        run_fast(cfg, table)


class Tens(Numbered):
    def __init__(self, strategy_id: str) -> None:
        super().__init__(strategy_id, lambda n: 10 * n)
