"""Strategies hear what became of their orders, at a defined tick position.

A strategy may define any of the optional hooks below; each gets the
`OrderEvent` (status, fill qty/price/fee, market time, reason) and returns
nothing. A strategy that defines none costs nothing: its host never waits.

Deterministic delivery in a replay (`run_batch`): a strategy with hooks runs
tick by tick. After a tick that produced signals, the host hands them over
and waits until it has every event of those orders (the executor journals an
order and publishes its events before it acknowledges the signal; in a replay
the simulator resolves an order against the recorded ticks when it arrives,
so all its events exist by then). Events are held in a queue and delivered,
in market-time order, right before the first tick whose time is after the
event's time (or at end of stream). Process timing never changes which tick
a strategy has seen when it hears an outcome, so fast and wire replay agree.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from workbench.domain.model import Signal, TickBatch
from workbench.domain.orders import OrderEvent
from workbench.exceptions import StrategyError
from workbench.strategies.base import Strategy, checked

HOOKS = {
    "ACCEPTED": "on_order_accepted",
    "PARTIALLY_FILLED": "on_fill",
    "FILLED": "on_fill",
    "REJECTED": "on_order_rejected",
    "CANCELLED": "on_order_cancelled",
    "EXPIRED": "on_order_expired",
}
"""Order status -> the optional strategy method called with its `OrderEvent`."""


def wants_outcomes(strategy: Strategy) -> bool:
    """True if the strategy defines at least one outcome hook."""
    return any(callable(getattr(strategy, h, None)) for h in set(HOOKS.values()))


def deliver(strategy: Strategy, event: OrderEvent) -> None:
    """Call the strategy's hook for ``event`` if it has one.

    Raises:
        StrategyError: the hook raised; the original is chained.
    """
    hook = getattr(strategy, HOOKS.get(event.status, ""), None)
    if hook is None:
        return
    try:
        hook(event)
    except Exception as e:
        raise StrategyError(
            f"strategy {strategy.strategy_id!r} {HOOKS[event.status]} raised "
            f"{type(e).__name__}: {e}"
        ) from e


class OutcomeQueue:
    """Events waiting for their tick position, in (market time, arrival) order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, OrderEvent]] = []
        self._n = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, events: list[OrderEvent]) -> None:
        """Hold events until their position."""
        for e in events:
            self._n += 1
            heapq.heappush(self._heap, (e.ts_ns, self._n, e))

    def due(self, before_ts_ns: int | None = None) -> list[OrderEvent]:
        """Events with a market time before ``before_ts_ns`` (all if None), removed."""
        out = []
        while self._heap and (before_ts_ns is None or self._heap[0][0] < before_ts_ns):
            out.append(heapq.heappop(self._heap)[2])
        return out


SendAndWait = Callable[[list[Signal], int], list[OrderEvent]]
"""Hands signals (and the seq of the tick that made them) on; returns their orders' events."""


def run_batch(
    strategy: Strategy,
    batch: TickBatch,
    queue: OutcomeQueue,
    send_and_wait: SendAndWait,
    origin_ns: int = 0,
) -> list[Signal]:
    """Run a strategy with hooks over a batch, tick by tick, delivering outcomes on time.

    Returns:
        Every signal the batch produced (already handed to ``send_and_wait``).

    Raises:
        StrategyError: the strategy or a hook raised.
    """
    out: list[Signal] = []
    on_tick = strategy.on_tick
    for i in range(len(batch)):
        ts = batch.ts_ns[i]
        if len(queue):
            for e in queue.due(ts):
                deliver(strategy, e)
        try:
            signals = on_tick(batch.tick(i))
        except Exception as e:
            raise StrategyError(
                f"strategy {strategy.strategy_id!r} raised {type(e).__name__}: {e}"
            ) from e
        if signals:
            checked(strategy, signals)
            if origin_ns:
                signals = [_with_origin(s, origin_ns) for s in signals]
            out.extend(signals)
            queue.add(send_and_wait(signals, batch.first_seq + i))
    return out


def _with_origin(s: Signal, origin_ns: int) -> Signal:
    from dataclasses import replace

    return replace(s, origin_ns=origin_ns)
