"""gateway -> strategy (replay): the gateway's credit window and a subscriber's rejoin."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class CreditWindow(Generic[T]):
    """The replay gateway's flow control over its subscribers.

    The gateway publishes a mark every ``mark_every`` batches; each subscriber
    acks a mark once it has processed (and saved) everything before it. At most
    ``window`` batches may be in flight past the slowest subscriber's ack.

    Args:
        subscribers: Ids that must ack; empty means no flow control.
    """

    def __init__(self, subscribers: Iterable[str], window: int, mark_every: int) -> None:
        self.acked: dict[str, int] = {s: -1 for s in subscribers}
        self.window = window
        self.mark_every = max(1, mark_every)
        self.mark = 0
        self.batches_sent = 0
        self._marks: dict[int, int] = {0: 0}  # mark -> batches sent when it went out
        self._upto: dict[int, int] = {}  # mark -> the caller's position then (`next_mark`)
        self._retained: collections.deque[tuple[int, T]] = collections.deque()

    @property
    def active(self) -> bool:
        """True when anyone must ack (replay); False in live mode."""
        return bool(self.acked)

    def knows(self, subscriber: str) -> bool:
        """True for an expected subscriber."""
        return subscriber in self.acked

    def all_joined(self) -> bool:
        """Every subscriber has acked at least the handshake mark 0."""
        return self.min_acked() >= 0

    def missing(self) -> list[str]:
        """Subscribers that never answered."""
        return [s for s, a in self.acked.items() if a < 0]

    def min_acked(self) -> int:
        """The slowest subscriber's ack (the current mark when nobody must ack)."""
        return min(self.acked.values()) if self.acked else self.mark

    def on_ack(self, subscriber: str, mark: int) -> str:
        """Record an ack; returns ``"ok"``, ``"unknown"`` or ``"stale"``.

        An ack for a mark this window never sent is left over from an earlier
        gateway process's stream: trusting it would stall us (``"stale"``).
        """
        if subscriber not in self.acked:
            return "unknown"
        if mark > self.mark:
            return "stale"
        if mark > self.acked[subscriber]:
            self.acked[subscriber] = mark
        return "ok"

    def in_flight(self) -> int:
        """Batches sent after the slowest subscriber's ack."""
        acked = self.min_acked()
        if acked < 0:
            return self.batches_sent
        return self.batches_sent - self._marks.get(acked, 0)

    def can_send(self) -> bool:
        """True while the window has room."""
        return not self.active or self.in_flight() < self.window

    def sent(self, item: T) -> bool:
        """Record a sent batch; returns True when a mark is due now."""
        self.batches_sent += 1
        if self.active:
            self._retained.append((self.batches_sent, item))
        return self.active and self.batches_sent % self.mark_every == 0

    def next_mark(self, upto: int = 0) -> int:
        """Number a new mark and forget what every subscriber is past.

        ``upto``: the caller's position at this mark (the gateway's last tick
        seq), kept while a subscriber may still ack the mark (`acked_upto`).
        """
        self.mark += 1
        self._marks[self.mark] = self.batches_sent
        self._upto[self.mark] = upto
        floor = self.min_acked()
        for m in [m for m in self._marks if m < floor]:
            del self._marks[m]
            self._upto.pop(m, None)
        done = self._marks.get(floor, 0)
        while self._retained and self._retained[0][0] <= done:
            self._retained.popleft()
        return self.mark

    def acked_upto(self, subscriber: str) -> int:
        """The ``upto`` of `next_mark` that ``subscriber``'s last ack covers; 0 if none."""
        return self._upto.get(self.acked.get(subscriber, -1), 0)

    def retained(self) -> list[T]:
        """Batches kept for a resync, oldest first."""
        return [b for _, b in self._retained]

    def on_resync(self, subscriber: str) -> None:
        """A restarted subscriber rejoined: it counts as past the handshake again."""
        if subscriber in self.acked:
            self.acked[subscriber] = max(self.acked[subscriber], 0)

    def done(self) -> bool:
        """Every subscriber acked the last mark."""
        return self.min_acked() >= self.mark


class Rejoin:
    """A replay subscriber's way into the stream when it starts (or restarts).

    It answers marks with a `Resync` carrying ``nonce`` (again every
    ``retry_s``: a restarted gateway loses the request) and drops ticks until
    the gateway's echo of that nonce: batches sent before the request was
    served may run past the saved tick, and the re-sent ones follow the echo.
    """

    def __init__(self, nonce: int, retry_s: float = 0.5) -> None:
        self.nonce, self.retry_s = nonce, retry_s
        self.joined = False
        self._asked_at = -math.inf

    def ask(self, now: float) -> bool:
        """A plain mark came before the echo: True when the resync is to be sent now."""
        if self.joined or now - self._asked_at < self.retry_s:
            return False
        self._asked_at = now
        return True

    def on_echo(self, nonce: int) -> None:
        """The gateway served a resync of ours; what follows is the stream again."""
        self.joined = self.joined or nonce == self.nonce
