"""Support/resistance strategy: a list of `Condition`s turned into signals.

Each condition enters on its own side when its rebound completes and exits on
the opposite side at take-profit or stop-loss. Conditions are independent;
for each tick they are advanced in their configured order, and that order is
the order of the signals (and of the signal sequence numbers).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from workbench.domain.condition import (
    Condition,
    ConditionEvent,
    ConditionEventKind,
    ConditionSpec,
    price_blocks,
)
from workbench.domain.model import Signal, Tick, TickBatch

SNAPSHOT_VERSION = 1
EVENTS_MAX = 10_000
"""Events kept for `SupportResistance.pop_events`; older ones are dropped."""

_ENTERED = ConditionEventKind.ENTERED
_EXITED = ConditionEventKind.EXITED
_first = itemgetter(0)


class SupportResistance:
    """Trade support (BUY) and resistance (SELL) conditions.

    Args:
        strategy_id: Unique id; signal ids are ``f"{strategy_id}:{seq}"``, seq from 1.
        conditions: Condition specs, as `ConditionSpec` or plain dicts (as TOML
            gives them); ids must be unique.
        record_events: Keep condition events for `pop_events` (newest
            ``events_max`` only).
        events_max: How many unpopped events to keep.

    Raises:
        ValueError: a spec is invalid or an id repeats; the message names it.
    """

    def __init__(
        self,
        strategy_id: str,
        conditions: Iterable[Mapping[str, Any] | ConditionSpec],
        record_events: bool = True,
        events_max: int = EVENTS_MAX,
    ) -> None:
        self.strategy_id = strategy_id
        self.conditions: list[Condition] = []
        for i, raw in enumerate(conditions):
            try:
                spec = raw if isinstance(raw, ConditionSpec) else ConditionSpec.from_dict(raw)
            except (TypeError, ValueError) as e:
                raise ValueError(f"conditions[{i}].{e}") from e
            if any(c.spec.id == spec.id for c in self.conditions):
                raise ValueError(f"conditions[{i}].id: duplicate condition id {spec.id!r}")
            self.conditions.append(Condition(spec))
        self._by_symbol: dict[str, list[Condition]] = {}
        for cond in self.conditions:
            self._by_symbol.setdefault(cond.spec.symbol, []).append(cond)
        self._next_seq = 1
        self._record = record_events
        self._events: deque[ConditionEvent] = deque(maxlen=events_max)

    def symbols(self) -> list[str]:
        """Sorted symbols of the conditions."""
        return sorted(self._by_symbol)

    def levels(self) -> list[dict[str, object]]:
        """Each condition's state and price levels, for dashboards."""
        return [
            {
                "id": c.spec.id,
                "symbol": c.spec.symbol,
                "side": c.spec.side.value,
                "state": c.state.value,
                "trigger": c.trigger,
                "entry_level": c.entry_level,
                "tp_level": c.tp_level,
                "sl_level": c.sl_level,
                "entry_price": c.entry_price,
            }
            for c in self.conditions
        ]

    def pop_events(self) -> list[ConditionEvent]:
        """Condition events since the last call, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    def on_tick(self, tick: Tick) -> list[Signal]:
        """Advance every condition of the tick's symbol, in configured order."""
        conds = self._by_symbol.get(tick.symbol)
        if not conds:
            return []
        out: list[Signal] = []
        for cond in conds:
            event = cond.on_price(tick.price, tick.ts_ns, tick.seq)
            if event is not None:
                self._emit(cond, event, tick.symbol, 0, out)
        return out

    def on_batch(self, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
        """Same signals, state and events as `on_tick` per tick, much faster.

        Each condition scans the batch on its own, skipping blocks of prices
        that stay inside its inert band; the events are then merged back into
        tick order (conditions in configured order within a tick).
        """
        conds = self._by_symbol.get(batch.symbol)
        if not conds or not batch.price:
            return []
        prices = batch.price
        blocks = price_blocks(prices)
        # Sort key tick_index * n + position-in-symbol: tick order, then config order.
        n = len(conds)
        found: list[tuple[int, Condition, ConditionEvent]] = []
        for pos, cond in enumerate(conds):
            found.extend(
                (i * n + pos, cond, event)
                for i, event in cond.run(prices, batch.ts_ns, batch.first_seq, blocks)
            )
        if not found:
            return []
        if n > 1:
            found.sort(key=_first)
        out: list[Signal] = []
        symbol = batch.symbol
        emit = self._emit
        for _, cond, event in found:
            emit(cond, event, symbol, origin_ns, out)
        return out

    def _emit(
        self,
        cond: Condition,
        event: ConditionEvent,
        symbol: str,
        origin_ns: int,
        out: list[Signal],
    ) -> None:
        """Record ``event``; append the signal it causes, if any, to ``out``."""
        if self._record:
            self._events.append(event)
        if event.kind is _ENTERED:
            side, reason = cond.spec.side, "entry"
        elif event.kind is _EXITED:
            side, reason = cond.spec.side.opposite, event.reason
        else:
            return
        seq = self._next_seq
        self._next_seq = seq + 1
        out.append(
            Signal(
                id=Signal.make_id(self.strategy_id, seq),
                strategy_id=self.strategy_id,
                seq=seq,
                symbol=symbol,
                side=side,
                qty=cond.spec.qty,
                price=event.price,
                ts_ns=event.ts_ns,
                reason=reason,
                condition_id=cond.spec.id,
                origin_ns=origin_ns,
            )
        )

    def snapshot(self) -> dict[str, Any]:
        """Every condition's state and the next signal sequence number."""
        return {
            "version": SNAPSHOT_VERSION,
            "strategy_id": self.strategy_id,
            "next_seq": self._next_seq,
            "conditions": [c.snapshot() for c in self.conditions],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from a `snapshot`; signal numbering continues where it stopped.

        Conditions are matched by id: a configured condition missing from the
        snapshot starts fresh, a saved one no longer configured is ignored.

        Raises:
            ValueError: the snapshot is malformed or of another version.
        """
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"version: snapshot version {state.get('version')!r}, expected {SNAPSHOT_VERSION}"
            )
        next_seq = state.get("next_seq")
        if not isinstance(next_seq, int) or isinstance(next_seq, bool) or next_seq < 1:
            raise ValueError(f"next_seq: must be an int >= 1, got {next_seq!r}")
        try:
            saved = {c["id"]: c for c in state.get("conditions", [])}
        except (KeyError, TypeError) as e:
            raise ValueError(f"conditions: malformed condition snapshots: {e!r}") from e
        # Restore into scratch objects first so a bad snapshot changes nothing.
        restored = []
        for cond in self.conditions:
            scratch = Condition(cond.spec)
            if cond.spec.id in saved:
                scratch.restore(saved[cond.spec.id])
            restored.append(scratch.snapshot())
        for cond, snap in zip(self.conditions, restored, strict=True):
            cond.restore(snap)
        self._next_seq = next_seq
