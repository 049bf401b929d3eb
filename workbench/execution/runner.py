"""The executor runner: signals in (PULL), orders out through the broker, events out (PUB)."""

from __future__ import annotations

import time
from typing import Any

from workbench.domain.model import Signal
from workbench.execution.executor import Executor
from workbench.messaging.codec import EndOfStream, Event
from workbench.messaging.ports import Receiver, Sender
from workbench.runtime.runner import Runner
from workbench.runtime.telemetry import Telemetry

MAX_MESSAGES_PER_STEP = 256


class ExecutorRunner(Runner):
    """Hosts the `Executor`; finishes when every expected strategy sent end-of-stream."""

    role = "executor"

    def __init__(
        self,
        runner_id: str,
        executor: Executor,
        signals: Receiver,
        events: Sender,
        telemetry: Telemetry,
        heartbeats: Sender,
        heartbeat_interval_s: float,
        *,
        expected_streams: list[str],
        exit_on_eos: bool = True,
    ) -> None:
        super().__init__(runner_id, telemetry, heartbeats, heartbeat_interval_s)
        self.executor = executor
        self._signals = signals
        self._events = events
        self._expected = set(expected_streams)
        self._eos: dict[str, EndOfStream] = {}
        self._exit_on_eos = exit_on_eos
        self.eos_complete = False

    def step(self, timeout_ms: int) -> None:
        """Handle the signals waiting (up to a few hundred) as one group commit."""
        env = self._signals.recv(timeout_ms)
        batch: list[tuple[Signal, int]] = []
        received_ns = 0
        n = 0
        while env is not None:
            p = env.payload
            if isinstance(p, Signal):
                if not batch:
                    received_ns = time.time_ns()
                batch.append((p, env.sent_ns))
            else:
                self._flush(batch, received_ns)
                batch = []
                if isinstance(p, EndOfStream):
                    self._on_eos(p)
                else:
                    self.telemetry.inc("unexpected_messages")
            n += 1
            if n >= MAX_MESSAGES_PER_STEP or self.finished:
                break
            env = self._signals.recv(0)
        self._flush(batch, received_ns)

    def _flush(self, batch: list[tuple[Signal, int]], received_ns: int) -> None:
        if not batch:
            return
        self.executor.on_signals([s for s, _ in batch], received_ns)
        now = time.time_ns()
        for s, sent_ns in batch:
            if s.origin_ns:
                self.telemetry.observe_latency_ns("tick_to_order", now - s.origin_ns)
            self.telemetry.observe_latency_ns("signal_to_order", now - sent_ns)

    def _on_eos(self, eos: EndOfStream) -> None:
        if self.eos_complete:
            return  # a restarted strategy may forward it again
        self._eos[eos.stream] = eos
        journaled = self.executor.journal.last_signal_seq(eos.stream)
        if journaled != eos.last_seq:
            self.log.error(
                "signals_missing",
                strategy_id=eos.stream,
                sent_last_seq=eos.last_seq,
                journaled_last_seq=journaled,
            )
        self.log.info("end_of_stream_received", strategy_id=eos.stream, ticks=eos.count)
        if self._expected <= set(self._eos):
            self.eos_complete = True
            summary = self.summary()
            self._events.send(Event("eos", summary))
            self.log.info("replay_complete", **summary)
            if self._exit_on_eos:
                self.finished = True

    def summary(self) -> dict[str, Any]:
        """Counts and PnL so far."""
        j = self.executor.journal
        pf = self.executor.portfolio
        return {
            "signals": j.count("signals"),
            "orders": j.count("orders"),
            "fills": j.count("fills"),
            "realized_pnl": pf.realized_pnl,
            "positions": {s: p.qty for s, p in pf.positions.items()},
            "ticks": {k: v.count for k, v in self._eos.items()},
        }

    def heartbeat_extra(self) -> dict[str, Any]:
        pf = self.executor.portfolio
        return {
            "positions": {s: p.qty for s, p in pf.positions.items()},
            "realized_pnl": pf.realized_pnl,
            "breaker": self.executor.breaker.current_state,
            "eos": sorted(self._eos),
            **({"orders_in_doubt": self.executor.in_doubt[:20]} if self.executor.in_doubt else {}),
            # Also on the heartbeat: a supervisor whose event subscription was
            # still reconnecting must not miss that the replay is complete.
            **({"eos_summary": self.summary()} if self.eos_complete else {}),
        }

    def on_close(self) -> None:
        """Close the journal."""
        self.executor.journal.close()
