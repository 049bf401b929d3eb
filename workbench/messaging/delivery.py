"""Reliable delivery: windows, acknowledgements and re-sends, as small pure objects.

Two legs of the pipeline must not lose what they carry, and both are driven by
the objects here; the runners only move bytes and call them with the time.

- **gateway -> strategy (replay).** `CreditWindow` is the gateway's side: it
  numbers flow-control marks, keeps what each subscriber has acknowledged
  (`Ack` of a mark), bounds the batches in flight and retains the batches a
  restarted subscriber may ask for again (`Resync`). `Rejoin` is a
  subscriber's side of that request.
- **strategy -> executor (always).** `Outbox` is the strategy's side: every
  signal stays in it, saved with the strategy's state before it is sent, until
  the executor acknowledges it (`Ack` of a signal seq); what stays
  unacknowledged for ``resend_after_s`` is sent again. `InboundSequence` is the
  executor's side: it puts one strategy's signals back in seq order, says what
  may be acknowledged (everything up to the first hole), and reports a hole no
  re-send filled within ``gap_timeout_s``. A hole it gives up on is listed in
  its acks as missing, so the strategy keeps those signals and sends them again.

Nothing here touches a socket, a file or a clock: times are passed in, so the
unit tests drive every path with a fake clock.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from workbench.messaging.messages import MAX_ACK_MISSING

T = TypeVar("T")


# -- gateway -> strategy ----------------------------------------------------------


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

    def next_mark(self) -> int:
        """Number a new mark and forget what every subscriber is past."""
        self.mark += 1
        self._marks[self.mark] = self.batches_sent
        floor = self.min_acked()
        for m in [m for m in self._marks if m < floor]:
            del self._marks[m]
        done = self._marks.get(floor, 0)
        while self._retained and self._retained[0][0] <= done:
            self._retained.popleft()
        return self.mark

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


# -- strategy -> executor ---------------------------------------------------------


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    sent_at: float


class Outbox(Generic[T]):
    """What a sender has sent and the receiver has not yet acknowledged, by seq.

    Args:
        resend_after_s: An item unacknowledged this long is due again.
    """

    def __init__(self, resend_after_s: float) -> None:
        self.resend_after_s = resend_after_s
        self._items: dict[int, _Pending[T]] = {}
        self.acked = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, seq: int, item: T, now: float) -> None:
        """Keep ``item`` (about to be sent at ``now``) until ``seq`` is acknowledged.

        Seqs are added in increasing order (a sender numbers what it sends),
        so the items stay in seq order without sorting.
        """
        if seq > self.acked:
            if self._items and seq <= next(reversed(self._items)):
                self._items = dict(sorted({**self._items, seq: _Pending(item, now)}.items()))
            else:
                self._items[seq] = _Pending(item, now)

    def on_ack(self, upto: int, missing: Iterable[tuple[int, int]] = ()) -> int:
        """Everything up to ``upto`` arrived but the ``missing`` ranges; returns how many left.

        What the receiver gave up waiting for (``missing``) stays, to be sent
        again: a late copy is still better than a lost one.
        """
        if upto < self.acked:
            return 0
        self.acked = upto
        keep = tuple(missing)
        gone = 0
        for s in list(self._items):  # in seq order: stop at the first one kept
            if s > upto:
                break
            if keep and any(a <= s <= b for a, b in keep):
                continue
            del self._items[s]
            gone += 1
        return gone

    def __contains__(self, seq: int) -> bool:
        return seq in self._items

    def due(self, now: float) -> list[T]:
        """Items unacknowledged for ``resend_after_s``, in seq order; marked as sent now."""
        out = []
        for p in self._items.values():
            if now - p.sent_at >= self.resend_after_s:
                p.sent_at = now
                out.append(p.item)
        return out

    def everything(self, now: float) -> list[T]:
        """Every unacknowledged item in seq order (after a restart); marked as sent now."""
        out = []
        for p in self._items.values():
            p.sent_at = now
            out.append(p.item)
        return out

    def items(self) -> list[T]:
        """Unacknowledged items in seq order (to save them)."""
        return [p.item for p in self._items.values()]

    def restore(self, items: Iterable[tuple[int, T]], acked: int) -> None:
        """Reload saved items; they count as unsent, so the next `due` re-sends them.

        Every saved item comes back, those at or below ``acked`` too: they were
        kept because the receiver listed them as missing.
        """
        self.acked = acked
        ordered = sorted(items, key=lambda x: x[0])
        self._items = {s: _Pending(item, -math.inf) for s, item in ordered}


@dataclass(slots=True)
class Gap:
    """Seqs ``first``..``last`` of a stream never arrived within the bound."""

    stream: str
    first: int
    last: int

    @property
    def missing(self) -> int:
        """How many seqs the gap holds."""
        return self.last - self.first + 1


@dataclass(slots=True)
class InboundSequence(Generic[T]):
    """One sender's items put back in seq order, with the ack and gap bookkeeping.

    ``next_seq`` is the first seq not yet delivered. Items at or beyond it are
    held until the hole before them fills; a hole still open after
    ``gap_timeout_s`` is reported once as a `Gap` and skipped, so one lost item
    never stops a stream for good. A skipped range is remembered (`missing`):
    the ack lists it, so the sender keeps those items and sends them again, and
    one that arrives late is delivered then (counted in ``late``). Items below
    ``next_seq`` are passed straight on: re-sends, which the consumer ignores
    by id, or late ones.
    """

    stream: str
    next_seq: int
    gap_timeout_s: float
    max_held: int = 100_000
    late: int = 0
    skipped_at: float = -math.inf  # when a hole was last given up on
    _held: dict[int, T] = field(default_factory=dict)
    _hole_since: float | None = None
    _skipped: list[list[int]] = field(default_factory=list)  # [first, last], in order
    _end: int = 0  # the sender's last seq, once it said (end of stream)

    def offer(self, seq: int, item: T, now: float) -> list[T]:
        """Accept one item; returns the items now deliverable, in order."""
        if seq < self.next_seq:
            if self._skipped:
                self._fill(seq)
            return [item]
        if seq > self.next_seq:
            if seq not in self._held and len(self._held) >= self.max_held:
                return []  # bounded: the sender still has it and sends it again
            self._held[seq] = item
            if self._hole_since is None:
                self._hole_since = now
            return []
        out = [item]
        self.next_seq += 1
        out.extend(self._release(now))
        return out

    def ends_at(self, last_seq: int, now: float) -> None:
        """The sender's last seq is ``last_seq``: a hole at the end is timed too."""
        self._end = max(self._end, last_seq)
        if self.next_seq <= self._end and self._hole_since is None:
            self._hole_since = now

    def _fill(self, seq: int) -> None:
        for i, (a, b) in enumerate(self._skipped):
            if a <= seq <= b:
                self.late += 1
                parts = [[a, seq - 1]] if a < seq else []
                parts += [[seq + 1, b]] if seq < b else []
                self._skipped[i : i + 1] = parts
                return

    def _release(self, now: float) -> list[T]:
        """Deliver what follows ``next_seq``; a hole left behind gets a timer of its own."""
        out = []
        while self.next_seq in self._held:
            out.append(self._held.pop(self.next_seq))
            self.next_seq += 1
        if out or not self._held:
            waiting = self._held or self.next_seq <= self._end
            self._hole_since = now if waiting else None
        return out

    def expire(self, now: float) -> tuple[list[T], Gap | None]:
        """Skip a hole open longer than the bound: the held items and the gap."""
        if self._hole_since is None or now - self._hole_since < self.gap_timeout_s:
            return [], None
        first = self.next_seq
        self.next_seq = min(self._held) if self._held else self._end + 1
        gap = Gap(self.stream, first, self.next_seq - 1)
        self._skipped.append([gap.first, gap.last])
        self.skipped_at = now
        return self._release(now), gap

    def remember(
        self, ranges: Iterable[tuple[int, int]], now: float, arrived: Collection[int] = ()
    ) -> None:
        """Ranges given up on before a restart: missing again until they come.

        Args:
            ranges: The ranges as saved (they may lag what has arrived since).
            now: The clock: the sender's re-sends get a gap bound from now.
            arrived: Seqs that did arrive (journaled): they are not missing.
        """
        came = sorted(arrived)
        for a, b in sorted(ranges):
            b = min(b, self.next_seq - 1)
            i = bisect.bisect_left(came, a)
            while a <= b:  # the range cut at each seq that came: as many steps as those
                n = came[i] if i < len(came) else b + 1
                if n > a:
                    self._skipped.append([a, min(n - 1, b)])
                a, i = n + 1, i + 1
        if self._skipped:
            self.skipped_at = now

    @property
    def given_up(self) -> list[tuple[int, int]]:
        """Every skipped range not yet filled (`missing` lists the first few)."""
        return [(a, b) for a, b in self._skipped]

    @property
    def held(self) -> int:
        """Items waiting behind a hole."""
        return len(self._held)

    @property
    def ack(self) -> int:
        """The highest seq the sender may forget up to, except the `missing` ranges.

        At most `MAX_ACK_MISSING` ranges go in one ack; with more, the ack stops
        below the first range it cannot list.
        """
        if len(self._skipped) > MAX_ACK_MISSING:
            return self._skipped[MAX_ACK_MISSING][0] - 1
        return self.next_seq - 1

    @property
    def missing(self) -> tuple[tuple[int, int], ...]:
        """Skipped ranges not yet filled, as the ack lists them."""
        return tuple((a, b) for a, b in self._skipped[:MAX_ACK_MISSING])
