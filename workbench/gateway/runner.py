"""The gateway runner: publishes a feed's ticks, with flow control in replay.

In replay no tick may be lost, so the gateway waits until every expected
strategy has proved it is subscribed, then keeps at most ``window_batches``
batches in flight: after every few batches it publishes a `Marker`, each
strategy acks markers with a `Credit` once it has processed what came before,
and the gateway waits for the slowest strategy's ack before running ahead.
The stream ends with a final marker, then `EndOfStream`.

Restarts lose nothing. A strategy saves its state before it acks, so the
gateway keeps only the batches after the slowest ack. A restarted strategy
asks for a resync from its last saved tick, and the gateway re-sends those
batches (everyone else skips ticks it has seen, by tick seq). A restarted
gateway starts the file again, and strategies skip what they have processed.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from workbench.domain.model import TickBatch
from workbench.exceptions import GatewayStartTimeout
from workbench.gateway.feeds import Feed
from workbench.messaging.codec import Credit, EndOfStream, Marker
from workbench.messaging.ports import Receiver, Sender
from workbench.runtime.runner import Runner
from workbench.runtime.telemetry import Telemetry

HANDSHAKE_INTERVAL_S = 0.05


class GatewayRunner(Runner):
    """Publishes ticks from a `Feed`.

    Args:
        subscribers: Strategy ids that must ack markers (flow control); empty
            means live mode: no handshake, no credit, publish as ticks come.
    """

    role = "gateway"

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
    ) -> None:
        super().__init__(runner_id, telemetry, heartbeats, heartbeat_interval_s)
        self.feed = feed
        self._ticks = ticks
        self._credits = credits
        self._subscribers = list(subscribers)
        self._acked: dict[str, int] = {s: -1 for s in self._subscribers}
        self._window = window_batches
        self._mark_every = max(1, window_batches // 4)
        self._marks: dict[int, int] = {0: 0}  # mark -> batches sent when it went out
        self._mark = 0
        self._batches_sent = 0
        self._start_timeout_s = start_timeout_s
        self._ready = not self._subscribers
        self._eos_sent = False
        self._retained: collections.deque[tuple[int, TickBatch]] = collections.deque()
        self._last_handshake = 0.0
        self._started_at = 0.0
        self.first_tick_ns = 0
        self.last_tick_ns = 0

    # -- flow control -------------------------------------------------------------

    def _drain_credits(self, timeout_ms: int) -> None:
        env = self._credits.recv(timeout_ms)
        while env is not None:
            p = env.payload
            if not isinstance(p, Credit) or p.subscriber not in self._acked:
                self.telemetry.inc("credits_unknown_subscriber")
            elif p.resync:
                self._resync(p.subscriber, p.acked_seq)
            elif p.acked_seq > self._mark:
                # An ack for a mark this gateway never sent: left over from the
                # stream of an earlier gateway process. Trusting it would stall us.
                self.telemetry.inc("credits_stale")
            elif p.acked_seq > self._acked[p.subscriber]:
                self._acked[p.subscriber] = p.acked_seq
            env = self._credits.recv(0)

    def _resync(self, subscriber: str, after_tick_seq: int) -> None:
        """A restarted strategy asks for every tick after its last saved one."""
        self._acked[subscriber] = max(self._acked[subscriber], 0)
        if not self._ready:
            return  # a fresh stream from tick 1 is coming anyway; it skips what it has
        resend = [b for _, b in self._retained if b.first_seq + len(b) - 1 > after_tick_seq]
        oldest = self._retained[0][1].first_seq if self._retained else None
        if oldest is not None and oldest > after_tick_seq + 1:
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
            "resync", subscriber=subscriber, after_tick_seq=after_tick_seq, batches=len(resend)
        )
        self._ticks.send(Marker(self._mark))
        if self._eos_sent:
            total = self.feed.total
            self._ticks.send(EndOfStream(self.runner_id, total, total))

    def _republish_mark(self) -> None:
        """Repeat the current mark now and then, so a restarted strategy can rejoin."""
        now = time.monotonic()
        if now - self._last_handshake >= HANDSHAKE_INTERVAL_S:
            self._ticks.send(Marker(self._mark))
            self._last_handshake = now

    def _min_acked(self) -> int:
        return min(self._acked.values()) if self._acked else self._mark

    def _in_flight(self) -> int:
        acked = self._min_acked()
        return self._batches_sent - self._marks.get(acked, 0) if acked >= 0 else self._batches_sent

    def _handshake(self, timeout_ms: int) -> None:
        now = time.monotonic()
        if not self._started_at:
            self._started_at = now
            self.log.info("waiting_for_subscribers", subscribers=self._subscribers)
        if now - self._last_handshake >= HANDSHAKE_INTERVAL_S:
            self._ticks.send(Marker(0))
            self._last_handshake = now
        self._drain_credits(min(timeout_ms, int(HANDSHAKE_INTERVAL_S * 1000)))
        if self._min_acked() >= 0:
            self._ready = True
            self.log.info("subscribers_ready", waited_s=round(time.monotonic() - now, 3))
        elif now - self._started_at > self._start_timeout_s:
            missing = [s for s, a in self._acked.items() if a < 0]
            raise GatewayStartTimeout(
                f"replay did not start: no answer within {self._start_timeout_s} s from "
                f"strategies {missing}"
            )

    def _publish_mark(self) -> None:
        self._mark += 1
        self._marks[self._mark] = self._batches_sent
        self._ticks.send(Marker(self._mark))
        # Forget marks, and batches, that every subscriber is past: a subscriber
        # saves its state before it acks, so it never needs them again.
        floor = self._min_acked()
        for m in [m for m in self._marks if m < floor]:
            del self._marks[m]
        done = self._marks.get(floor, 0)
        while self._retained and self._retained[0][0] <= done:
            self._retained.popleft()

    # -- loop ---------------------------------------------------------------------

    def step(self, timeout_ms: int) -> None:
        """Handshake, publish what is due within the window, or wait for credit."""
        if not self._ready:
            self._handshake(timeout_ms)
            return
        if self._eos_sent:
            self._drain_credits(timeout_ms)
            if self._min_acked() >= self._mark:
                self.finished = True
            else:
                self._republish_mark()
            return
        if self.feed.exhausted:
            self._finish_stream()
            return
        flow = bool(self._subscribers)
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.feed.exhausted:
            if flow:
                self._drain_credits(0)
                if self._in_flight() >= self._window:
                    self._drain_credits(max(1, int((deadline - time.monotonic()) * 1000)))
                    if self._in_flight() >= self._window:
                        self.telemetry.inc("credit_waits")
                        self._republish_mark()
                        return
            batches = self.feed.poll(1 << 30)
            if not batches:
                wait = min(self.feed.seconds_to_next(), deadline - time.monotonic())
                if wait > 0:
                    time.sleep(wait)
                return
            for b in batches:
                self._ticks.send(b)
                self.telemetry.inc("ticks_out", len(b))
                self._batches_sent += 1
                if flow:
                    self._retained.append((self._batches_sent, b))
                if not self.first_tick_ns:
                    self.first_tick_ns = time.time_ns()
                if flow and self._batches_sent % self._mark_every == 0:
                    self._publish_mark()
            if time.monotonic() >= deadline:
                return

    def _finish_stream(self) -> None:
        if self._subscribers:
            self._publish_mark()
        self.last_tick_ns = time.time_ns()
        total = self.feed.total
        self._ticks.send(EndOfStream(self.runner_id, total, total))
        self._eos_sent = True
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

    def heartbeat_extra(self) -> dict[str, Any]:
        return {
            "ticks_total": self.feed.total,
            "eos": self._eos_sent,
            "mark": self._mark,
            "first_tick_ns": self.first_tick_ns,
            "last_tick_ns": self.last_tick_ns,
        }
