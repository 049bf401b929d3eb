"""The gateway runner: publishes a feed's ticks, with flow control in replay.

In replay no tick may be lost, so the gateway waits until every expected
strategy has proved it is subscribed, then keeps at most ``window_batches``
batches in flight: after every few batches it publishes a `Marker`, each
strategy acks markers with a `Credit` once it has processed what came before,
and the gateway waits for the slowest strategy's ack before running ahead.
The stream ends with a final marker, then `EndOfStream`, then the end mark: a
strategy acks that once the executor has confirmed its own end-of-stream, and
once every strategy has, the gateway publishes one more mark (done) and
finishes. Until then it repeats the end mark, so a strategy restarted near
the end rejoins and gets the end-of-stream again; and strategies stay until
done, so a gateway restarted near the end finds all of them to start again.

Restarts lose nothing. A strategy saves its state before it acks, so the
gateway keeps only the batches after the slowest ack. A restarted strategy
asks for a resync from its last saved tick, and the gateway re-sends those
batches (everyone else skips ticks it has seen, by tick seq). A restarted
gateway starts the file again, and strategies skip what they have processed.

Live, the gateway also publishes conflated market data for the executor: per
symbol its newest tick at most every ``market_snapshot_interval_ms`` and only
when it changed (`MarketSnapshots`), on topic ``last/<symbol>/``.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.domain.model import Tick, TickBatch
from workbench.exceptions import GatewayStartTimeout
from workbench.gateway.feeds import Feed
from workbench.gateway.snapshots import MarketSnapshots
from workbench.messaging.codec import Ack, EndOfStream, Marker, Resync
from workbench.messaging.delivery import CreditWindow
from workbench.messaging.heartbeat_extras import FeedHealth, GatewayExtra
from workbench.messaging.ports import Receiver, Sender
from workbench.runner.base import Runner
from workbench.telemetry import Telemetry

HANDSHAKE_INTERVAL_S = 0.05
LIVE_CONTROL_DRAIN_S = 0.005
"""Live mode: how often the control socket (read by no one but bad-frame counting) is drained."""


class GatewayRunner(Runner):
    """Publishes ticks from a `Feed`.

    Args:
        subscribers: Strategy ids that must ack markers (flow control); empty
            means live mode: no handshake, no credit, publish as ticks come
            (the control socket is still drained every ``LIVE_CONTROL_DRAIN_S``
            and its bad frames counted, not looked at on every tick).
        market_snapshot_interval_ms: Live only: publish each symbol's newest
            tick (kind ``last``) at most this often, when it changed; 0 = none.
    """

    role = "gateway"
    counters = ("ticks_out",)

    def __init__(
        self,
        runner_id: str,
        feed: Feed,
        ticks: Sender,
        credits: Receiver,
        telemetry: Telemetry,
        heartbeats: Sender,
        heartbeat_interval_s: float,
        *,
        subscribers: list[str],
        window_batches: int = 32,
        start_timeout_s: float = 30.0,
        market_snapshot_interval_ms: float = 0,
    ) -> None:
        super().__init__(runner_id, telemetry, heartbeats, heartbeat_interval_s)
        self.feed = feed
        self._ticks = ticks
        self._credits = credits
        self._subscribers = list(subscribers)
        self.window: CreditWindow[TickBatch] = CreditWindow(
            self._subscribers, window_batches, window_batches // 4
        )
        self._start_timeout_s = start_timeout_s
        self._ready = not self._subscribers
        self._eos_sent = False
        self._last_handshake = 0.0
        self._started_at = 0.0
        self._next_control_drain = 0.0
        live = not self._subscribers
        self.snapshots = (
            MarketSnapshots(market_snapshot_interval_ms / 1000)
            if live and market_snapshot_interval_ms > 0
            else None
        )
        self.first_tick_ns = 0
        self.last_tick_ns = 0

    # -- flow control -------------------------------------------------------------

    def _drain_credits(self, timeout_ms: int) -> None:
        env = self._credits.recv(timeout_ms)
        while env is not None:
            p = env.payload
            if isinstance(p, Resync):
                if self.window.knows(p.subscriber):
                    self._resync(p)
                else:  # not flow-controlled (not in replay.subscribers): it just joins
                    self._ticks.send(Marker(self.window.mark, p.subscriber, p.nonce))
                    self._repeat_eos()
                    self.telemetry.inc("credits_unknown_subscriber")
            elif isinstance(p, Ack):
                verdict = self.window.on_ack(p.stream, p.upto)
                if verdict == "unknown":
                    self.telemetry.inc("credits_unknown_subscriber")
                elif verdict == "stale":
                    self.telemetry.inc("credits_stale")
            else:
                self.telemetry.inc("credits_unknown_subscriber")
            env = self._credits.recv(0)

    def _drain_control_now_and_then(self) -> None:
        """Live: nothing may pile up unread and uncounted, but every tick is too often."""
        now = time.monotonic()
        if now >= self._next_control_drain:
            self._next_control_drain = now + LIVE_CONTROL_DRAIN_S
            self._drain_credits(0)

    def _resync(self, request: Resync) -> None:
        """A restarted strategy asks for every tick after its last saved one.

        The echo goes first: what the strategy gets before it was sent before
        this request was served, and it drops that.
        """
        subscriber, after_tick_seq = request.subscriber, request.after_seq
        # What its ack covered: a strategy of some symbols saves its last tick of those.
        covered = self.window.acked_upto(subscriber)
        self.window.on_resync(subscriber)
        self._ticks.send(Marker(self.window.mark, subscriber, request.nonce))
        if not self._ready:
            return  # a fresh stream from tick 1 is coming anyway; it skips what it has
        retained = self.window.retained()
        resend = [b for b in retained if b.first_seq + len(b) - 1 > after_tick_seq]
        oldest = retained[0].first_seq if retained else None
        if oldest is not None and oldest > max(after_tick_seq, covered) + 1:
            self.telemetry.inc("resync_incomplete")
            self.log.error(
                "resync_incomplete",
                subscriber=subscriber,
                after_tick_seq=after_tick_seq,
                oldest_retained_seq=oldest,
            )
        for b in resend:
            self._ticks.send(b)
        self.telemetry.inc("batches_resent", len(resend))
        self.log.warning(
            "resync_served",
            subscriber=subscriber,
            after_tick_seq=after_tick_seq,
            batches=len(resend),
        )
        self._repeat_eos()  # before the mark: after the end, the mark is the end mark
        self._ticks.send(Marker(self.window.mark))

    def _repeat_eos(self) -> None:
        """After a resync: the end-of-stream again, if it went out before."""
        if self._eos_sent:
            total = self.feed.total
            self._ticks.send(EndOfStream(self.runner_id, total, total))

    def _republish_mark(self) -> None:
        """Repeat the current mark now and then, so a restarted strategy can rejoin."""
        now = time.monotonic()
        if now - self._last_handshake >= HANDSHAKE_INTERVAL_S:
            self._ticks.send(Marker(self.window.mark))
            self._last_handshake = now

    def _handshake(self, timeout_ms: int) -> None:
        now = time.monotonic()
        if not self._started_at:
            self._started_at = now
            self.log.info("subscribers_awaited", subscribers=self._subscribers)
        if now - self._last_handshake >= HANDSHAKE_INTERVAL_S:
            self._ticks.send(Marker(0))
            self._last_handshake = now
        self._drain_credits(min(timeout_ms, int(HANDSHAKE_INTERVAL_S * 1000)))
        if self.window.all_joined():
            self._ready = True
            self.log.info("subscribers_ready", waited_s=round(time.monotonic() - now, 3))
        elif now - self._started_at > self._start_timeout_s:
            raise GatewayStartTimeout(
                f"replay did not start: no answer within {self._start_timeout_s} s from "
                f"strategies {self.window.missing()}"
            )

    def _publish_mark(self) -> None:
        self._ticks.send(Marker(self.window.next_mark(upto=self.feed.total)))

    # -- loop ---------------------------------------------------------------------

    def step(self, timeout_ms: int) -> None:
        """Handshake, publish what is due within the window, or wait for credit."""
        if not self._ready:
            self._handshake(timeout_ms)
            return
        if self._eos_sent:
            self._drain_credits(timeout_ms)
            if self.window.done():  # every strategy's end-of-stream is at the executor
                self._ticks.send(Marker(self.window.mark + 1))  # done: they may go now
                self.finished = True
            else:
                self._republish_mark()
            return
        if self.feed.exhausted:
            self._finish_stream()
            return
        flow = self.window.active
        snaps = self.snapshots
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.feed.exhausted:
            if flow:
                self._drain_credits(0)
            else:
                self._drain_control_now_and_then()
            if flow and not self.window.can_send():
                self._drain_credits(max(1, int((deadline - time.monotonic()) * 1000)))
                if not self.window.can_send():
                    self.telemetry.inc("credit_waits")
                    self._republish_mark()
                    return
            batches = self.feed.poll(1 << 30)
            if not batches:
                now = time.monotonic()
                wait = min(self.feed.seconds_to_next(), deadline - now)
                if snaps is not None:  # a silent symbol's last tick must not wait for the next
                    self._send_snapshots(snaps.due(now))
                    wait = min(wait, snaps.seconds_to_due(now))
                if wait > 0:
                    time.sleep(wait)
                return
            for b in batches:
                self._ticks.send(b)
                self.telemetry.inc("ticks_out", len(b))
                if not self.first_tick_ns:
                    self.first_tick_ns = time.time_ns()
                if self.window.sent(b):
                    self._publish_mark()
                if snaps is not None:
                    snaps.offer(b)
            now = time.monotonic()
            if snaps is not None:
                self._send_snapshots(snaps.due(now))
            if now >= deadline:
                return

    def _send_snapshots(self, ticks: list[Tick]) -> None:
        for t in ticks:
            self._ticks.send(t)
        if ticks:
            self.telemetry.inc("snapshots_out", len(ticks))

    def _finish_stream(self) -> None:
        if self._subscribers:
            self._publish_mark()
        if self.snapshots is not None:  # the newest ticks go out before the stream ends
            self._send_snapshots(self.snapshots.flush(time.monotonic()))
        self.last_tick_ns = time.time_ns()
        total = self.feed.total
        self._ticks.send(EndOfStream(self.runner_id, total, total))
        self._eos_sent = True
        if self._subscribers:  # the end mark: acked once the executor has a strategy's end
            self._publish_mark()
        elapsed = max(1e-9, (self.last_tick_ns - (self.first_tick_ns or self.last_tick_ns)) / 1e9)
        self.log.info(
            "end_of_stream_sent",
            first_tick_ns=self.first_tick_ns,
            last_tick_ns=self.last_tick_ns,
            ticks=total,
            elapsed_s=round(elapsed, 3),
            ticks_per_s=round(total / elapsed) if total else 0,
        )
        if not self._subscribers:
            self.finished = True

    def on_close(self) -> None:
        close = getattr(self.feed, "close", None)  # a live feed's connections, a recorder
        if close is not None:
            close()

    def heartbeat_extra(self) -> dict[str, Any]:
        health = getattr(self.feed, "health", None)  # a live exchange feed's state
        return GatewayExtra(
            ticks_total=self.feed.total,
            eos=self._eos_sent,
            mark=self.window.mark,
            first_tick_ns=self.first_tick_ns,
            last_tick_ns=self.last_tick_ns,
            feed=FeedHealth.from_wire(health()) if health is not None else None,
        ).to_wire()
