"""The executor runner: signals in (PULL), orders out through the broker, events out (PUB).

Around the transport-free `Executor` it owns the executor's side of
acknowledged delivery: each strategy's signals go through an
`InboundSequence` (put back in seq order, holes reported), are journaled by
the executor, and only then acknowledged (``Ack`` on topic ``ack/<id>/``);
acks are repeated every ``ack_interval_s`` so a restarted or late strategy
learns where it stands. End-of-stream is journaled and echoed back the same
way. Operator commands (halt, resume, flatten, state) arrive on a REP socket
and are handled before the next signal is acted on.

Live, the executor's market (risk checks' prices and their age, a live
simulator's resting orders) is the gateway's conflated snapshots: per symbol
its newest tick (a `Tick`, kind ``last``), at most every
``gateway.market_snapshot_interval_ms``. Drained every ``MARKET_DRAIN_INTERVAL_S``,
each decoded, sequence-checked and counted like any message (``market_msgs_in``,
bad frames per socket): there are few of them, whatever the feed's rate. Each
price's age is judged by when the gateway sent it too, in this host's clock
(`SenderClock`: the gateway may run on a host whose clock is off).
"""

from __future__ import annotations

import time
from typing import Any

from workbench.domain.model import Signal, Tick
from workbench.execution import killswitch
from workbench.execution.executor import Executor
from workbench.execution.sender_clock import SenderClock
from workbench.messaging.codec import Ack, EndOfStream, Envelope, Event, Payload
from workbench.messaging.delivery import InboundSequence
from workbench.messaging.heartbeat_extras import EosSummary, ExecutorExtra
from workbench.messaging.ports import Receiver, Replier, Sender
from workbench.runner.base import Runner
from workbench.telemetry import Telemetry

MAX_MESSAGES_PER_STEP = 256
FINISH_LINGER_ACKS = 4
MARKET_DRAIN_INTERVAL_S = 0.02
MARKS_INTERVAL_S = 1.0
"""How often the market prices seen are journaled (a restart values positions at them)."""
MARKET_DRAIN_MAX = 2_000
"""Snapshots taken per drain at most: 100k/s, a thousand symbols at the default interval."""


class ExecutorRunner(Runner):
    """Hosts the `Executor`; finishes when every expected strategy's stream has ended."""

    role = "executor"
    counters = ("signals_in", "orders_out", "fills", "orders_rejected", "signal_gaps")

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
        market: Receiver | None = None,
        commands: Replier | None = None,
        gap_timeout_s: float = 10.0,
        ack_interval_s: float = 0.25,
        reconcile_interval_s: float = 5.0,
        run_id: str = "",
    ) -> None:
        super().__init__(runner_id, telemetry, heartbeats, heartbeat_interval_s)
        self.executor = executor
        self._signals = signals
        self._events = events
        self._market = market
        self._commands = commands
        self._expected = set(expected_streams)
        self._exit_on_eos = exit_on_eos
        self._gap_timeout_s = gap_timeout_s
        self._ack_interval_s = ack_interval_s
        self._last_acks = 0.0
        journal = executor.journal
        self.inbound: dict[str, InboundSequence[Signal]] = {
            sid: InboundSequence(sid, journal.last_signal_seq(sid) + 1, gap_timeout_s)
            for sid in sorted(self._expected)
        }
        for sid, ranges in journal.signal_gaps().items():  # still asked for after a restart
            if sid in self.inbound:
                arrived = journal.signal_seqs_in(sid, ranges)
                self.inbound[sid].remember(ranges, time.monotonic(), arrived)
                journal.set_signal_gaps(sid, self.inbound[sid].given_up)  # what is still missing
        self._gaps_filled: set[str] = set()  # streams whose given-up ranges a late one filled
        self._eos: dict[str, EndOfStream] = {
            sid: EndOfStream(sid, ticks, last)
            for sid, (ticks, last) in journal.stream_ends().items()
        }
        for sid, eos in self._eos.items():
            if sid in self.inbound:
                self.inbound[sid].ends_at(eos.last_seq, time.monotonic())
        self.eos_complete = False
        self._completed_ns = 0
        self._finish_at = 0.0
        self._market_drained = 0.0
        self._gateway_clock = SenderClock()  # the gateway's send times, in this host's clock
        self._reconcile_interval_s = reconcile_interval_s
        self.run_id = run_id
        self._reconciled = time.monotonic()
        self._marks_saved = time.monotonic()
        self._started = False
        executor.calls.on_wait = self._beat_while_waiting
        self._held: tuple[Envelope, float] | None = None  # taken between orders, served next
        self._empty_at = time.monotonic()  # the command socket was last seen empty
        if commands is not None:
            executor.command_waiting = self._command_waiting
            executor.serve_commands = self._serve_commands

    def _beat_while_waiting(self) -> None:
        """Heartbeats go on while a step waits for a slow venue (the runner is not hung)."""
        if self.state == "running":
            self.beat_if_due()

    # -- loop -----------------------------------------------------------------------

    def step(self, timeout_ms: int) -> None:
        """Commands first, then the signals waiting (up to a few hundred) as one group commit."""
        if not self._started:
            self._started = True
            self._reconcile_at_start()
        self._serve_commands()
        self._drain_market()
        env = self._signals.recv(timeout_ms)
        batch: list[tuple[Signal, int]] = []
        received_ns = 0
        n = 0
        now = time.monotonic()
        while env is not None:
            p = env.payload
            if isinstance(p, Signal):
                if not batch:  # as it left the socket: decoding is the executor's work
                    received_ns = self._signals.taken_ns
                batch.extend((s, env.sent_ns) for s in self._sequence(p, now))
            elif isinstance(p, EndOfStream):
                self._flush(batch, received_ns)
                batch = []
                self._on_eos(p)
            else:
                self.telemetry.inc("unexpected_messages")
            n += 1
            if n >= MAX_MESSAGES_PER_STEP or self.finished:
                break
            env = self._signals.recv(0)
        for seq in self.inbound.values():
            released, gap = seq.expire(now)
            batch.extend((s, 0) for s in released)
            if gap is not None:  # journaled before an ack lists it: a restart still asks
                self.executor.journal.set_signal_gaps(gap.stream, seq.given_up)
                self._on_gap(gap.stream, gap.first, gap.last)
        self._flush(batch, received_ns or time.time_ns())
        self._follow_orders()
        if time.monotonic() - self._marks_saved >= MARKS_INTERVAL_S:
            self._marks_saved = time.monotonic()
            self.executor.save_marks()
        if time.monotonic() - self._last_acks >= self._ack_interval_s:
            self._publish_acks(self.inbound)
        self._check_complete()

    def _reconcile_at_start(self) -> None:
        """The journal's open orders asked for at the venue before any signal is acted on.

        Here, not while the executor is built: a venue answering slowly (rate
        limits, dozens of orders in doubt) must not keep the first heartbeat
        back until the supervisor takes the runner for hung and restarts it
        into the same reconciliation. While the venue answers, heartbeats go on.
        """
        ex = self.executor
        if len(ex.open):
            ex.reconcile()
            killswitch.cancel_what_may_not_rest(ex, "before the restart")  # a halt's failed ones
        self._reconciled = time.monotonic()

    def _follow_orders(self) -> None:
        """Execution reports of open orders; orders in doubt asked for again now and then."""
        ex = self.executor
        ex.poll()
        if ex.in_doubt and time.monotonic() - self._reconciled >= self._reconcile_interval_s:
            self._reconciled = time.monotonic()
            ex.reconcile()

    def _sequence(self, s: Signal, now: float) -> list[Signal]:
        seq = self.inbound.get(s.strategy_id)
        if seq is None:
            return [s]  # not a configured strategy: the executor refuses it
        late = seq.late
        out = seq.offer(s.seq, s, now)
        if seq.late != late:  # a signal given up on came after all: traded now, out of order
            self._gaps_filled.add(s.strategy_id)
            self.telemetry.inc("signals_late")
            self.log.warning("signal_arrived_late", strategy_id=s.strategy_id, signal_id=s.id)
        return out

    def _flush(self, batch: list[tuple[Signal, int]], received_ns: int) -> None:
        if not batch:
            return
        self._serve_commands()  # a halt that arrived with these signals acts first
        self.executor.on_signals([s for s, _ in batch], received_ns)
        for sid in self._gaps_filled:  # only now that the late ones are journaled
            self.executor.journal.set_signal_gaps(sid, self.inbound[sid].given_up)
        self._gaps_filled.clear()
        now = time.time_ns()
        for s, sent_ns in batch:
            if s.origin_ns:
                self.telemetry.observe_latency_ns("tick_to_order", now - s.origin_ns)
            if sent_ns:
                self.telemetry.observe_latency_ns("signal_to_order", now - sent_ns)
        # Journaled: now, and only now, the strategies may forget them.
        touched = {s.strategy_id for s, _ in batch}
        self._publish_acks({k: v for k, v in self.inbound.items() if k in touched})

    def _publish_acks(self, streams: dict[str, InboundSequence[Signal]]) -> None:
        for sid, seq in streams.items():
            self._events.send(Ack(sid, seq.ack, seq.missing))
            eos = self._eos.get(sid)
            if eos is not None and seq.ack >= eos.last_seq:
                self._events.send(eos)  # the echo tells the strategy it may finish
        if len(streams) == len(self.inbound):
            self._last_acks = time.monotonic()

    def _on_gap(self, stream: str, first: int, last: int) -> None:
        missing = last - first + 1
        self.telemetry.inc("signal_gaps", missing)
        self.log.error(
            "signal_gap_detected",
            strategy_id=stream,
            first_seq=first,
            last_seq=last,
            missing=missing,
            waited_s=self._gap_timeout_s,
        )
        self._events.send(
            Event(
                "alert",
                {
                    "reason": "signal_gap",
                    "strategy_id": stream,
                    "first_seq": first,
                    "last_seq": last,
                },
            )
        )

    # -- market and commands ----------------------------------------------------------

    def _drain_market(self) -> None:
        if self._market is None:
            return
        now = time.monotonic()
        if now - self._market_drained < MARKET_DRAIN_INTERVAL_S:
            return  # prices a few ms old serve every risk check; signals go first
        self._market_drained = now
        n = 0
        received_ns = time.time_ns()
        env = self._market.recv(0)
        while env is not None:
            t = env.payload
            if isinstance(t, Tick):
                seen_ns = self._gateway_clock.local(env.sent_ns, received_ns, now)
                self.executor.on_tick(t.symbol, t.price, t.ts_ns, t.size, seen_ns)
            else:
                self.telemetry.inc("unexpected_messages")
            n += 1
            if n >= MARKET_DRAIN_MAX:
                break
            env = self._market.recv(0)
        if n and self.executor.risk.max_daily_loss:
            self.executor.check_daily_loss()

    def _command_waiting(self) -> bool:
        """Whether an operator command waits (taken off the socket and held for serving)."""
        if self._held is None and self._commands is not None:
            self._held = self._take_command()
        return self._held is not None

    def _take_command(self) -> tuple[Envelope, float] | None:
        """The next command, and the most it can have waited on the socket (ms, this clock:
        it came after the socket was last seen empty; the sender's clock may be off)."""
        assert self._commands is not None
        env, now = self._commands.recv(0), time.monotonic()
        if env is None:
            self._empty_at = now
            return None
        return env, (now - self._empty_at) * 1000

    def _serve_commands(self) -> None:
        if self._commands is None:
            return
        taken, self._held = self._held or self._take_command(), None
        while taken is not None:
            self._commands.reply(self._command(taken[0].payload, taken[1]))
            taken = self._take_command()

    def _command(self, p: Payload, waited_ms: float = 0.0) -> Event:
        obeyed = killswitch.obey(self.executor, p, self.run_id, waited_ms)
        if isinstance(obeyed, Event):
            return obeyed  # refused
        self.send_heartbeat()  # the supervisor and dashboards see the new state at once
        # A flatten's answer adds not_flattened: each symbol still open, and why.
        return Event("state", {**self.trading_view(), **obeyed})

    def trading_view(self) -> dict[str, Any]:
        """Trading state, reason and positions: the answer to every command (see `_command`)."""
        ex = self.executor
        return {
            "run_id": self.run_id,
            "trading_state": ex.trading_state.value,
            "reason": ex.state_reason,
            "positions": {s: p.qty for s, p in ex.portfolio.positions.items()},
            "realized_pnl": ex.portfolio.realized_pnl,
        }

    # -- end of stream ----------------------------------------------------------------

    def _on_eos(self, eos: EndOfStream) -> None:
        if eos.stream not in self.inbound:
            self.telemetry.inc("signals_refused")
            return
        self.inbound[eos.stream].ends_at(eos.last_seq, time.monotonic())  # a lost last one: a gap
        known = self._eos.get(eos.stream)
        if known is None or known != eos:
            self.executor.journal.end_stream(eos.stream, eos.count, eos.last_seq)
            self._eos[eos.stream] = eos
            self.log.info("end_of_stream_received", strategy_id=eos.stream, ticks=eos.count)
        self._publish_acks({eos.stream: self.inbound[eos.stream]})

    def _check_complete(self) -> None:
        if self._finish_at and time.monotonic() >= self._finish_at:
            self.finished = True
        if self.eos_complete or not self._expected <= set(self._eos):
            return
        now = time.monotonic()
        waiting = {
            sid: (seq.ack, self._eos[sid].last_seq)
            for sid, seq in self.inbound.items()
            if seq.ack < self._eos[sid].last_seq
            # Just given up on: the acks list them; the strategy's re-sends get a bound's time.
            or (seq.missing and now - seq.skipped_at < self._gap_timeout_s)
        }
        if waiting:
            return  # signals still on their way (re-sends fill the holes)
        self.eos_complete = True
        self._completed_ns = time.time_ns()
        summary = self.summary()
        self._events.send(Event("eos", summary))
        self.log.info("replay_completed", **summary)
        if self._exit_on_eos:
            # Stay a few ack intervals: a strategy that joined late still hears
            # its acks and the end-of-stream echo, and finishes cleanly.
            self._finish_at = time.monotonic() + FINISH_LINGER_ACKS * self._ack_interval_s
            self._publish_acks(self.inbound)

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
            "completed_ns": self._completed_ns,
        }

    def heartbeat_extra(self) -> dict[str, Any]:
        pf = self.executor.portfolio
        return ExecutorExtra(
            positions={s: p.qty for s, p in pf.positions.items()},
            realized_pnl=pf.realized_pnl,
            breaker=self.executor.breaker.current_state,
            eos=tuple(sorted(self._eos)),
            trading_state=self.executor.trading_state.value,
            trading_reason=self.executor.state_reason,
            signals_held=sum(s.held for s in self.inbound.values()),
            orders_in_doubt=tuple(self.executor.in_doubt[:20]),
            # Also on the heartbeat: a supervisor whose event subscription was
            # still reconnecting must not miss that the replay is complete.
            eos_summary=EosSummary.from_wire(self.summary()) if self.eos_complete else None,
        ).to_wire()

    def on_close(self) -> None:
        """Journal the last market prices seen, then close the journal."""
        try:
            self.executor.save_marks()
        finally:
            self.executor.journal.close()
