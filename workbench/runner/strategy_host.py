"""The strategy runner: ticks in (SUB), one `Strategy` object, signals out (PUSH).

The strategy object is user code and pure; this host owns everything around
it: batches, acks for the replay gateway's flow control, durable state, and
acknowledged delivery: each signal joins an `Outbox` saved with the state
*before* it is sent, and stays until the executor acknowledges it (``Ack`` on
``ack/<id>/``, once journaled). What stays unacknowledged goes again (after
``resend_after_s``, then ever less often), everything after either side
restarts; the executor's idempotency on signal id makes a re-send a no-op. A
queue to a down executor that is full never blocks the host: what it refuses
waits in the outbox. State is also saved every ``persist_interval_s`` and on close.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from workbench.domain.model import Signal, TickBatch
from workbench.domain.orders import OrderEvent
from workbench.messaging.codec import Ack, EndOfStream, Envelope, Marker, Resync, pack
from workbench.messaging.delivery import Outbox, Rejoin, StreamEnd
from workbench.messaging.heartbeat_extras import StrategyExtra
from workbench.messaging.ports import Receiver, Sender
from workbench.runner.base import Runner
from workbench.runner.sent_log import SentLog
from workbench.runner.state import FileStateStore, signal_from_state, signal_to_state
from workbench.runner.strategy_end import StreamEndMixin
from workbench.strategies.base import Strategy, check_seqs, levels_of, on_batch
from workbench.strategies.outcomes import OutcomeQueue, deliver, run_batch, wants_outcomes
from workbench.telemetry import BurstLog, Telemetry

MAX_MESSAGES_PER_STEP = 256
LOG_DELAY_NS = 50_000_000  # sent signals wait this long at most for an idle moment to be logged


class StrategyRunner(StreamEndMixin, Runner):
    """Hosts one strategy instance."""

    role = "strategy"
    counters = ("ticks_in", "signals_out")

    def __init__(
        self,
        strategy: Strategy,
        ticks: Receiver,
        signals: Sender,
        credits: Sender,
        state_store: FileStateStore,
        telemetry: Telemetry,
        heartbeats: Sender,
        heartbeat_interval_s: float,
        *,
        acks: Receiver | None = None,
        persist_interval_s: float = 0.2,
        resend_after_s: float = 1.0,
        exit_on_eos: bool = True,
        replay: bool = False,
    ) -> None:
        super().__init__(strategy.strategy_id, telemetry, heartbeats, heartbeat_interval_s)
        self.strategy = strategy
        self._ticks = ticks
        self._signals = signals
        self._credits = credits
        self._acks = acks
        self._store = state_store
        self._persist_interval_s = persist_interval_s
        self._exit_on_eos = exit_on_eos
        self._dirty = False
        self._broken = False
        self._last_persist = 0.0
        self.outbox: Outbox[Signal] = Outbox(resend_after_s)
        self._executor_epoch: int | None = None
        self._sent_log = SentLog(telemetry, self.log)  # logged when next idle
        self.last_signal_seq = 0
        self.ticks_processed = 0
        self.signals_sent = 0
        self.eos_seen = False
        self._eos: EndOfStream | None = None
        self._eos_confirmed = False
        self._last_eos_send = self._eos_sent_at = 0.0
        # Replay: ticks carry stable seqs; a restart skips seen ticks, asks for missed ones.
        self._replay = replay
        self.last_tick_seq = 0
        self._saved_tick_seq = 0
        # A replay strategy first answers a mark with a resync from its saved tick: never
        # ack ticks the dead process got unseen. Ticks are dropped until the echo (`Rejoin`).
        self._rejoin = Rejoin(secrets.randbits(62)) if replay else None
        self._end = StreamEnd() if replay else None  # when it may leave, after the end
        # Outcome hooks: in a replay, delivered at their tick position (see
        # workbench.strategies.outcomes); live, as they arrive.
        self._hooks = wants_outcomes(strategy) and acks is not None
        self._outcomes = OutcomeQueue()
        self._arrived: list[OrderEvent] = []
        self._next_hb, self._queue_full = 0.0, BurstLog("signals_queue_full", 5.0)

    def on_start(self) -> None:
        """Restore state and outbox if an earlier run left them; what the outbox kept goes now.

        Before any new signal: the executor then has them in seq order, with no gap to wait out.
        """
        state = self._store.load(self.runner_id)
        if state is None:
            return
        self.strategy.restore(state["strategy"])
        self.last_signal_seq = int(state.get("last_signal_seq", 0))
        self._sent_log.sent_before(self.last_signal_seq)
        pending = [signal_from_state(r) for r in state.get("outbox", [])]
        saved = [(s.seq, s, pack(signal_to_state(s))) for s in pending]
        self.outbox.restore(saved, int(state.get("acked_seq", 0)))
        if self._replay:
            self.last_tick_seq = self._saved_tick_seq = int(state.get("last_tick_seq", 0))
        if self._end is not None and (end := int(state.get("end_mark", 0))):
            # Past the end: nothing to rejoin for; the ack may have died with the process.
            self._end.restore(end, int(state.get("end_epoch", 0)))
            self.eos_seen, self._rejoin.joined = True, True  # type: ignore[union-attr]
            self._credits.send(Ack(self.runner_id, end))
        self.log.info(
            "state_restored",
            last_signal_seq=self.last_signal_seq,
            last_tick_seq=self.last_tick_seq,
            unacknowledged=len(self.outbox),
        )
        self._resend(self.outbox.due(time.monotonic()))

    def _persist(self) -> None:
        self._store.save(
            self.runner_id,
            {
                "strategy": self.strategy.snapshot(),
                "last_signal_seq": self.last_signal_seq,
                "last_tick_seq": self.last_tick_seq,
                "acked_seq": self.outbox.acked,
                "outbox": self.outbox.saved(),  # packed once each: a save only copies
                "end_mark": self._end.end_mark if self._end and self._end.acked else 0,
                "end_epoch": self._end.epoch if self._end else 0,
            },
        )
        self._saved_tick_seq = self.last_tick_seq
        self._dirty = False
        self._last_persist = time.monotonic()
        self.telemetry.inc("state_saves")

    def step(self, timeout_ms: int) -> None:
        """Handle up to a few hundred waiting messages, then acks and re-sends."""
        env = self._ticks.recv(0 if self._sent_log else timeout_ms)
        if self._sent_log and (
            env is None or time.time_ns() > self._sent_log.oldest_ns + LOG_DELAY_NS
        ):
            # Idle (or long behind): a log line now holds no tick back.
            self._sent_log.flush()
            if env is None:
                env = self._ticks.recv(timeout_ms)
        n = 0
        while env is not None:
            self._handle(env)
            n += 1
            if n >= MAX_MESSAGES_PER_STEP or self.finished:
                break
            env = self._ticks.recv(0)
        if self.outbox.holding:  # refused by a full queue: try again
            self._first_send([])
        self._drain_acks()
        now = time.monotonic()
        self._resend(self.outbox.due(now))
        if self._eos is not None:
            self._finish_when_delivered(now)
        if self._end is not None and self._end.done:
            self.finished = self._exit_on_eos
        if self._dirty and now - self._last_persist >= self._persist_interval_s:
            self._persist()

    # -- acknowledged delivery to the executor ----------------------------------------

    def _drain_acks(self, timeout_ms: int = 0) -> None:
        if self._acks is None:
            return
        env = self._acks.recv(timeout_ms)
        while env is not None:
            p = env.payload
            if isinstance(p, OrderEvent):
                if self._hooks and p.strategy_id == self.runner_id:
                    if self._replay:
                        self._arrived.append(p)
                    else:
                        deliver(self.strategy, p)
                env = self._acks.recv(0)
                continue
            if self._executor_epoch is not None and env.epoch != self._executor_epoch:
                # A new executor process: what the old one held in its queue is
                # gone, so everything unacknowledged goes again now.
                self.log.info("executor_restart_detected", unacknowledged=len(self.outbox))
                self._resend(self.outbox.everything(time.monotonic()))  # held too, in order
            self._executor_epoch = env.epoch
            if isinstance(p, Ack) and p.stream == self.runner_id:
                if self.outbox.on_ack(p.upto, p.missing):
                    self._dirty = True
            elif (
                isinstance(p, EndOfStream) and p.stream == self.runner_id and self._eos is not None
            ):
                self._eos_confirmed = p.last_seq >= self._eos.last_seq
            env = self._acks.recv(0)

    def _resend(self, signals: list[Signal]) -> None:
        sent = self._signals.send_many(signals) if signals else 0
        self._hold(signals[sent:])
        if not sent:
            return
        self.telemetry.inc("signals_resent", sent)
        self.log.info("signals_resent", signal_ids=[s.id for s in signals[:sent][:50]], count=sent)

    def _first_send(self, signals: list[Signal]) -> None:
        """What a full queue (executor down or far behind) refused goes first; then ``signals``."""
        outbox = self.outbox
        while outbox.holding:  # in chunks: a long outage may hold thousands
            batch = outbox.held(MAX_MESSAGES_PER_STEP)
            sent = self._signals.send_many(batch)
            outbox.release(sent, time.monotonic())
            self._sent_log.went(batch[:sent])
            if sent < len(batch):
                self._hold(signals)  # behind them
                return
        sent = self._signals.send_many(signals) if signals else 0  # back to back: one wake-up
        self._hold(signals[sent:])
        self._sent_log.went(signals[:sent])

    def _hold(self, refused: list[Signal]) -> None:
        if refused:
            self.telemetry.inc("signals_held_back", self.outbox.hold(s.seq for s in refused))
            self._queue_full(first_signal_id=refused[0].id, count=len(refused))

    # -- ticks --------------------------------------------------------------------------

    def _handle(self, env: Envelope) -> None:
        p = env.payload
        if isinstance(p, TickBatch):
            self._on_ticks(p, env.sent_ns)
        elif isinstance(p, Marker):
            self._on_marker(p, env.epoch)
        elif isinstance(p, EndOfStream):
            if self._rejoin is None or self._rejoin.joined:  # else the gateway sends it again
                self._on_eos(p, env.epoch)
        else:
            self.telemetry.inc("unexpected_messages")

    def _on_marker(self, marker: Marker, epoch: int) -> None:
        rejoin = self._rejoin
        if rejoin is not None and not rejoin.joined:
            if marker.resync_of == self.runner_id:
                rejoin.on_echo(marker.nonce)
            elif not marker.resync_of and rejoin.ask(time.monotonic()):
                # Not an ack: ask for the ticks after our saved state first; the
                # gateway echoes this, re-sends them, then repeats its mark.
                resync = Resync(self.runner_id, self.last_tick_seq, rejoin.nonce)
                self._credits.send(resync)
            return
        if marker.resync_of:
            return  # another subscriber's rejoin (or a repeat of ours): nothing to ack
        if self._end is not None and self.eos_seen:  # the end mark, done, or a new stream
            if (ack := self._end.on_mark(marker.mark, epoch)) is not None:
                self._ack_end(ack)
            return
        if self._replay and (self._dirty or self.last_tick_seq != self._saved_tick_seq):
            self._persist()  # an ack promises we never need what came before it
        self._credits.send(Ack(self.runner_id, marker.mark))

    def _on_ticks(self, batch: TickBatch, origin_ns: int) -> None:
        if self._rejoin is not None:  # a replay
            if not self._rejoin.joined:
                # Sent before our resync was served (a restart mid-stream): they
                # may start past our saved tick. It re-sends from there, these too.
                self.telemetry.inc("ticks_dropped_before_resync", len(batch))
                return
            skip = self.last_tick_seq - batch.first_seq + 1
            if skip > 0:
                self.telemetry.inc("ticks_skipped_seen", min(skip, len(batch)))
                if skip >= len(batch):
                    return
                batch = TickBatch(
                    batch.symbol,
                    batch.first_seq + skip,
                    batch.ts_ns[skip:],
                    batch.price[skip:],
                    batch.size[skip:],
                )
            self.last_tick_seq = batch.first_seq + len(batch) - 1
        try:
            if self._hooks and self._replay:
                signals = run_batch(
                    self.strategy, batch, self._outcomes, self._send_and_wait, origin_ns
                )
                self.last_tick_seq = batch.first_seq + len(batch) - 1
                self._count_ticks(batch)
                return
            signals = on_batch(self.strategy, batch, origin_ns)
            self._count_ticks(batch)
            if signals:
                self._emit(signals)
        except Exception:
            # The strategy may be half-advanced with its signals unsent: saving
            # that would make a restart believe in positions it never opened.
            self._broken = True
            raise

    def _count_ticks(self, batch: TickBatch) -> None:
        self.ticks_processed += len(batch)
        self.telemetry.inc("ticks_in", len(batch))
        self._dirty = True  # saved on the interval whatever the strategy reports

    def _send_and_wait(self, signals: list[Signal], tick_seq: int) -> list[OrderEvent]:
        """Send, then wait until the executor acks them: their orders' events are here then.

        The save before the send records ``tick_seq`` (the tick that made them), not the
        batch's last, as the last tick processed: a restart must see the others again.
        """
        self.last_tick_seq = tick_seq
        self._emit(signals)
        last = signals[-1].seq
        waited_since = time.monotonic()
        while self.outbox.acked < last and not self._stop_requested:
            self._drain_acks(20)
            self._sent_log.flush()
            now = time.monotonic()
            self._resend(self.outbox.due(now))
            self._first_send([])  # what a full queue held, if anything
            if now >= self._next_hb:  # a wait is not a hang
                self.send_heartbeat()
                self._next_hb = now + self._hb_interval
                if now - waited_since > 5.0:
                    self.log.warning("order_outcomes_awaited", signal_seq=last)
        arrived, self._arrived = self._arrived, []
        return arrived

    def _emit(self, signals: list[Signal]) -> None:
        # before anything is saved or sent
        self.last_signal_seq = check_seqs(
            self.runner_id, signals, self.last_signal_seq, self.outbox.acked
        )
        now_mono = time.monotonic()
        for s in signals:
            self.outbox.add(s.seq, s, now_mono, pack(signal_to_state(s)))
        self._persist()  # write-ahead: ids never reused, signals never lost
        self._first_send(signals)
        self.signals_sent += len(signals)
        self.telemetry.inc("signals_out", len(signals))

    def on_close(self) -> None:
        """Log what was sent, save state one last time, whatever the strategy reported."""
        self._sent_log.flush()
        if not self._broken and (self._dirty or self.ticks_processed):
            self._persist()
        self._store.close()

    def heartbeat_extra(self) -> dict[str, Any]:
        levels = levels_of(self.strategy)
        return StrategyExtra(
            last_signal_seq=self.last_signal_seq,
            eos=self.eos_seen,
            outbox=len(self.outbox),
            levels=tuple(levels) if levels is not None else None,
        ).to_wire()
