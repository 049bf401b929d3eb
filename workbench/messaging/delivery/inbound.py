"""strategy -> executor: the receiver's side, one sender's items back in seq order."""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from workbench.messaging.messages import MAX_ACK_MISSING

T = TypeVar("T")


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
