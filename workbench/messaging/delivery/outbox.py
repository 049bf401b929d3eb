"""strategy -> executor: the sender's side, what waits for an acknowledgement."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    sent_at: float
    wait_s: float  # unacknowledged this long after ``sent_at``: due again


class Outbox(Generic[T]):
    """What a sender has sent and the receiver has not yet acknowledged, by seq.

    An item is due again ``resend_after_s`` after it was sent, and each time it
    goes again its wait doubles, up to ``max_resend_after_s``: a receiver that
    is down is not sent the whole outbox every second (its queue would fill).
    One that restarts is sent everything at once (`everything`); waits start over.
    """

    def __init__(self, resend_after_s: float, max_resend_after_s: float = 30.0) -> None:
        self.resend_after_s = resend_after_s
        self.max_resend_after_s = max(resend_after_s, max_resend_after_s)
        self._items: dict[int, _Pending[T]] = {}
        self.acked = 0
        self._next_due = math.inf  # no item is due before (a step asks every time)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, seq: int, item: T, now: float) -> None:
        """Keep ``item`` (about to be sent at ``now``) until ``seq`` is acknowledged.

        Seqs are added in increasing order (a sender numbers what it sends),
        so the items stay in seq order without sorting.
        """
        if seq > self.acked:
            p = _Pending(item, now, self.resend_after_s)
            if self._items and seq <= next(reversed(self._items)):
                self._items = dict(sorted({**self._items, seq: p}.items()))
            else:
                self._items[seq] = p
            self._next_due = min(self._next_due, now + p.wait_s)

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
                p = self._items[s]  # asked for: again a wait from the start
                p.wait_s = self.resend_after_s
                self._next_due = min(self._next_due, p.sent_at + p.wait_s)
                continue
            del self._items[s]
            gone += 1
        return gone

    def __contains__(self, seq: int) -> bool:
        return seq in self._items

    def due(self, now: float) -> list[T]:
        """Items whose wait is over, in seq order; marked as sent now, to wait twice as long."""
        if now < self._next_due:
            return []
        out, next_due = [], math.inf
        for p in self._items.values():
            if now - p.sent_at >= p.wait_s:
                out.append(p.item)
                if p.sent_at > -math.inf:  # a restored one's first send is not a re-send
                    p.wait_s = min(2 * p.wait_s, self.max_resend_after_s)
                p.sent_at = now
            next_due = min(next_due, p.sent_at + p.wait_s)
        self._next_due = next_due
        return out

    def everything(self, now: float) -> list[T]:
        """Every unacknowledged item in seq order (after a restart); sent now, waits reset."""
        out = []
        for p in self._items.values():
            p.sent_at, p.wait_s = now, self.resend_after_s
            out.append(p.item)
        self._next_due = now + self.resend_after_s if out else math.inf
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
        self._items = {s: _Pending(item, -math.inf, self.resend_after_s) for s, item in ordered}
        self._next_due = -math.inf if self._items else math.inf
