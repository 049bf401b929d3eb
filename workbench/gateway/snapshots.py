"""Conflated market data: per symbol, its newest tick at most every interval, only on change.

The live executor needs the current price and its age per symbol (price
collar, stale data, daily loss, a live simulator's resting orders), not every
tick. The gateway offers each batch it publishes to `MarketSnapshots` and
sends what `due` returns on the ``last/<symbol>/`` topic (`Tick` payloads,
each with its own exchange ``ts_ns``), so the executor's socket takes at most
``1 / interval`` messages per symbol per second whatever the feed's rate.

Per symbol it is a throttle with a leading and a trailing edge: a tick after a
quiet spell goes out at once; ticks within the interval after a snapshot wait
until the interval is over, and then only the newest of them goes out. The
last tick of a burst is never withheld: it is due ``interval`` after the
previous snapshot whether or not another tick follows (the gateway wakes for
it, see `seconds_to_due`). Nothing goes out for a symbol without a new tick.

Pure: the caller passes its clock (monotonic seconds) in.
"""

from __future__ import annotations

import math

from workbench.domain.model import Tick, TickBatch


class MarketSnapshots:
    """Which symbols' newest ticks are due to be published, and when the next one is.

    Args:
        interval_s: The least time between two snapshots of one symbol (> 0).
    """

    def __init__(self, interval_s: float) -> None:
        if not interval_s > 0:
            raise ValueError(f"snapshot interval must be > 0 s, not {interval_s!r}")
        self.interval_s = interval_s
        self._pending: dict[str, TickBatch] = {}  # symbol -> its newest batch not yet snapshot
        self._sent_at: dict[str, float] = {}  # symbol -> when its last snapshot went out
        self._next_due = math.inf

    def offer(self, batch: TickBatch) -> None:
        """Remember ``batch`` as its symbol's newest ticks (one dict store: the hot path)."""
        if not len(batch):
            return
        sym = batch.symbol
        self._pending[sym] = batch
        at = self._sent_at.get(sym, -math.inf) + self.interval_s
        if at < self._next_due:
            self._next_due = at

    def due(self, now: float) -> list[Tick]:
        """The snapshots to publish at ``now``: each pending symbol whose interval is over."""
        if now < self._next_due:
            return []
        out: list[Tick] = []
        next_due = math.inf
        for sym in list(self._pending):
            at = self._sent_at.get(sym, -math.inf) + self.interval_s
            if at <= now:
                out.append(_newest(self._pending.pop(sym)))
                self._sent_at[sym] = now
            elif at < next_due:
                next_due = at
        self._next_due = next_due
        return out

    def flush(self, now: float) -> list[Tick]:
        """Every pending snapshot at once, interval or not (the stream ends)."""
        out = [_newest(b) for b in self._pending.values()]
        for sym in self._pending:
            self._sent_at[sym] = now
        self._pending.clear()
        self._next_due = math.inf
        return out

    def seconds_to_due(self, now: float) -> float:
        """Seconds until the next snapshot is due: 0 = now, ``inf`` = none pending."""
        return max(0.0, self._next_due - now)

    @property
    def pending(self) -> int:
        """Symbols with a tick newer than their last snapshot."""
        return len(self._pending)


def _newest(b: TickBatch) -> Tick:
    return Tick(b.symbol, b.ts_ns[-1], b.price[-1], b.size[-1], b.first_seq + len(b) - 1)
