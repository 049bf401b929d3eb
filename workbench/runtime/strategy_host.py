"""The strategy runner: ticks in (SUB), one `Strategy` object, signals out (PUSH).

The strategy object is user code and pure; this host owns everything around
it: batches, credits for the replay gateway's flow control, durable state
written before any signal leaves (so signal ids are never reused after a
restart), end-of-stream forwarding.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.domain.model import Signal, TickBatch
from workbench.messaging.codec import Credit, EndOfStream, Envelope, Marker
from workbench.messaging.ports import Receiver, Sender
from workbench.runtime.runner import Runner
from workbench.runtime.state import FileStateStore
from workbench.runtime.telemetry import Telemetry
from workbench.strategies.base import Strategy, on_batch

MAX_MESSAGES_PER_STEP = 256


class StrategyRunner(Runner):
    """Hosts one strategy instance."""

    role = "strategy"

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
        persist_interval_s: float = 0.2,
        exit_on_eos: bool = True,
        replay: bool = False,
    ) -> None:
        super().__init__(strategy.strategy_id, telemetry, heartbeats, heartbeat_interval_s)
        self.strategy = strategy
        self._ticks = ticks
        self._signals = signals
        self._credits = credits
        self._store = state_store
        self._persist_interval_s = persist_interval_s
        self._exit_on_eos = exit_on_eos
        self._dirty = False
        self._broken = False
        self._last_persist = 0.0
        self.last_signal_seq = 0
        self.ticks_processed = 0
        self.signals_sent = 0
        self.eos_seen = False
        self._pop_events = getattr(strategy, "pop_events", None)
        # Replay: ticks carry stable seqs, so a restart on either side is
        # repaired by skipping seen ticks and asking for the missed ones.
        self._replay = replay
        self.last_tick_seq = 0
        self._saved_tick_seq = 0
        self._resync_pending = False

    def on_start(self) -> None:
        """Restore the strategy's state if an earlier run left one."""
        state = self._store.load(self.runner_id)
        if state is not None:
            self.strategy.restore(state["strategy"])
            self.last_signal_seq = int(state.get("last_signal_seq", 0))
            if self._replay:
                self.last_tick_seq = self._saved_tick_seq = int(state.get("last_tick_seq", 0))
                self._resync_pending = self.last_tick_seq > 0
            self.log.info(
                "state_restored",
                last_signal_seq=self.last_signal_seq,
                last_tick_seq=self.last_tick_seq,
            )

    def _persist(self) -> None:
        self._store.save(
            self.runner_id,
            {
                "strategy": self.strategy.snapshot(),
                "last_signal_seq": self.last_signal_seq,
                "last_tick_seq": self.last_tick_seq,
            },
        )
        self._saved_tick_seq = self.last_tick_seq
        self._dirty = False
        self._last_persist = time.monotonic()
        self.telemetry.inc("state_saves")

    def step(self, timeout_ms: int) -> None:
        """Handle up to a few hundred waiting messages."""
        env = self._ticks.recv(timeout_ms)
        n = 0
        while env is not None:
            self._handle(env)
            n += 1
            if n >= MAX_MESSAGES_PER_STEP or self.finished:
                break
            env = self._ticks.recv(0)
        if self._dirty and time.monotonic() - self._last_persist >= self._persist_interval_s:
            self._persist()

    def _handle(self, env: Envelope) -> None:
        p = env.payload
        if isinstance(p, TickBatch):
            self._on_ticks(p, env.sent_ns)
        elif isinstance(p, Marker):
            self._on_marker(p)
        elif isinstance(p, EndOfStream):
            self._on_eos(p)
        else:
            self.telemetry.inc("unexpected_messages")

    def _on_marker(self, marker: Marker) -> None:
        if self._resync_pending:
            # Not an ack: ask for the ticks after our saved state first; the
            # gateway repeats its mark after re-sending them.
            self._resync_pending = False
            self._credits.send(Credit(self.runner_id, self.last_tick_seq, resync=True))
            return
        if self._replay and (self._dirty or self.last_tick_seq != self._saved_tick_seq):
            self._persist()  # an ack promises we never need what came before it
        self._credits.send(Credit(self.runner_id, marker.mark))

    def _on_ticks(self, batch: TickBatch, origin_ns: int) -> None:
        if self._replay:
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
            signals: list[Signal] = on_batch(self.strategy, batch, origin_ns)
        except Exception:
            # The strategy may be half-advanced with its signals unsent: saving
            # that would make a restart believe in positions it never opened.
            self._broken = True
            raise
        self.ticks_processed += len(batch)
        self.telemetry.inc("ticks_in", len(batch))
        if self._pop_events is not None and self._pop_events():
            self._dirty = True
        if not signals:
            return
        self.last_signal_seq = signals[-1].seq
        self._persist()  # write-ahead: a restart must never reuse these ids
        now = time.time_ns()
        for s in signals:
            self._signals.send(s)
            if s.origin_ns:
                self.telemetry.observe_latency_ns("tick_to_signal", now - s.origin_ns)
        self.signals_sent += len(signals)
        self.telemetry.inc("signals_out", len(signals))

    def _on_eos(self, eos: EndOfStream) -> None:
        if self.eos_seen:
            return
        self._persist()
        self._signals.send(EndOfStream(self.runner_id, self.ticks_processed, self.last_signal_seq))
        self.eos_seen = True
        self.log.info(
            "end_of_stream_forwarded",
            ticks=self.ticks_processed,
            gateway_ticks=eos.count,
            signals=self.signals_sent,
            last_signal_seq=self.last_signal_seq,
        )
        if self._exit_on_eos:
            self.finished = True

    def on_close(self) -> None:
        """Save state one last time."""
        if self._dirty and not self._broken:
            self._persist()
        self._store.close()

    def heartbeat_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"last_signal_seq": self.last_signal_seq, "eos": self.eos_seen}
        levels = getattr(self.strategy, "levels", None)
        if levels is not None:
            extra["levels"] = levels()
        return extra
