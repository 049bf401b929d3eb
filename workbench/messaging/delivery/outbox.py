"""strategy -> executor: the sender's side, what waits for an acknowledgement."""

from __future__ import annotations

import bisect
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
    saved: bytes = b""  # what the sender saves for it (its encoded form)
    held: bool = False  # never sent: a full queue refused it (see `hold`)


class Outbox(Generic[T]):
    """What a sender has sent and the receiver has not yet acknowledged, by seq.

    An item is due again ``resend_after_s`` after it was sent, and each time it
    goes again its wait doubles, up to ``max_resend_after_s``: a receiver that
    is down is not sent the whole outbox every second (its queue would fill).
    One that restarts is sent everything at once (`everything`); waits start over.

    An item a full queue refused is held (`hold`): not sent, so its wait does
    not grow (nor is it reset); it goes before any later first send, in seq
    order, once there is room (`held`, `release`), so a receiver that was only
    slow or away gets them in order, without a gap to give up on.
    """

    def __init__(self, resend_after_s: float, max_resend_after_s: float = 30.0) -> None:
        self.resend_after_s = resend_after_s
        self.max_resend_after_s = max(resend_after_s, max_resend_after_s)
        self._items: dict[int, _Pending[T]] = {}
        self.acked = 0
        self._next_due = math.inf  # no item is due before (a step asks every time)
        self._held: list[int] = []  # seqs, in order

    def __len__(self) -> int:
        return len(self._items)

    def add(self, seq: int, item: T, now: float, saved: bytes = b"") -> None:
        """Keep ``item`` (about to be sent at ``now``) until ``seq`` is acknowledged.

        Seqs are added in increasing order (a sender numbers what it sends),
        so the items stay in seq order without sorting. ``saved``: see `saved`.
        """
        if seq > self.acked:
            p = _Pending(item, now, self.resend_after_s, saved)
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
        gone = held = 0
        for s in list(self._items):  # in seq order: stop at the first one kept
            if s > upto:
                break
            if keep and any(a <= s <= b for a, b in keep):
                p = self._items[s]  # asked for: again a wait from the start
                p.wait_s = self.resend_after_s
                self._next_due = min(self._next_due, p.sent_at + p.wait_s)
                continue
            held += self._items.pop(s).held
            gone += 1
        if held:  # one pass, not a list removal each (an outage may hold thousands)
            self._held = [s for s in self._held if s in self._items]
        return gone

    def __contains__(self, seq: int) -> bool:
        return seq in self._items

    def due(self, now: float) -> list[T]:
        """Items whose wait is over, in seq order; marked as sent now, to wait twice as long."""
        if now < self._next_due:
            return []
        out, next_due = [], math.inf
        for p in self._items.values():
            if p.held:
                continue  # its first send comes first (`held`)
            if now - p.sent_at >= p.wait_s:
                out.append(p.item)
                if p.sent_at > -math.inf:  # a restored one's first send is not a re-send
                    p.wait_s = min(2 * p.wait_s, self.max_resend_after_s)
                p.sent_at = now
            next_due = min(next_due, p.sent_at + p.wait_s)
        self._next_due = next_due
        return out

    def everything(self, now: float) -> list[T]:
        """Every unacknowledged item, held ones too, in seq order (after a restart); waits reset."""
        out = []
        for p in self._items.values():
            p.held, p.sent_at, p.wait_s = False, now, self.resend_after_s
            out.append(p.item)
        self._held = []  # a sender holds again what the queue refuses of these
        self._next_due = now + self.resend_after_s if out else math.inf
        return out

    def hold(self, seqs: Iterable[int]) -> int:
        """These were not sent (a full queue): out of `due`, in `held`; returns how many new."""
        new = 0
        for s in seqs:
            p = self._items.get(s)
            if p is not None and not p.held:
                p.held = True
                bisect.insort(self._held, s)  # a refused re-send may be older than the rest
                new += 1
        return new

    @property
    def holding(self) -> int:
        """How many items are held."""
        return len(self._held)

    def held(self, limit: int) -> list[T]:
        """The first ``limit`` held items, in seq order: to send before anything new."""
        return [self._items[s].item for s in self._held[:limit]]

    def release(self, n: int, now: float) -> None:
        """The first ``n`` held items were sent at ``now``; each waits as long as before."""
        for s in self._held[:n]:
            p = self._items[s]
            p.held, p.sent_at = False, now  # a re-send's grown wait stays grown
            self._next_due = min(self._next_due, now + p.wait_s)
        del self._held[:n]

    def items(self) -> list[T]:
        """Unacknowledged items in seq order (to save them)."""
        return [p.item for p in self._items.values()]

    def saved(self) -> list[bytes]:
        """Each unacknowledged item's ``saved`` form, in seq order: a save copies, never encodes."""
        return [p.saved for p in self._items.values()]

    def restore(self, items: Iterable[tuple[int, T, bytes]], acked: int) -> None:
        """Reload saved (seq, item, saved form); the next `due` sends them all.

        Every saved item comes back, those at or below ``acked`` too: they were
        kept because the receiver listed them as missing.
        """
        self.acked = acked
        ordered = sorted(items, key=lambda x: x[0])
        wait = self.resend_after_s
        self._items = {s: _Pending(item, -math.inf, wait, saved) for s, item, saved in ordered}
        self._next_due = -math.inf if self._items else math.inf
        self._held = []
