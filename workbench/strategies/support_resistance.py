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
from workbench.domain.model import OrderType, Signal, Tick, TickBatch, TimeInForce
from workbench.domain.orders import OrderEvent

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
        entry_order: ``"market"`` (the default) or ``"limit"``: entries as IOC
            limit orders at most ``entry_limit_offset`` worse than the entry
            tick's price, so latency cannot make an entry fill far away. What
            does not fill expires; the strategy then hears (outcome hooks)
            how much its entry filled and sizes the exit to that, sending none
            for an entry that did not fill.
        entry_limit_offset: Price units an entry limit may be worse than its tick.

    Raises:
        ValueError: a spec is invalid or an id repeats; the message names it.
    """

    def __init__(
        self,
        strategy_id: str,
        conditions: Iterable[Mapping[str, Any] | ConditionSpec],
        record_events: bool = True,
        events_max: int = EVENTS_MAX,
        entry_order: str = "market",
        entry_limit_offset: float = 0.0,
    ) -> None:
        if entry_order not in ("market", "limit"):
            raise ValueError(f"entry_order: 'market' or 'limit', got {entry_order!r}")
        if not (isinstance(entry_limit_offset, int | float) and entry_limit_offset >= 0):
            raise ValueError(f"entry_limit_offset: a number >= 0, got {entry_limit_offset!r}")
        self.strategy_id = strategy_id
        self._limit_entries = entry_order == "limit"
        self._offset = float(entry_limit_offset)
        self._entry_of: dict[str, str] = {}  # open entry signal id -> condition id
        self._filled: dict[str, float] = {}  # condition id -> qty its entry filled
        if self._limit_entries:  # outcome hooks, only where they change anything
            self.on_fill = self._on_fill
            self.on_order_rejected = self.on_order_expired = self._on_unfilled
            self.on_order_cancelled = self._on_unfilled
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
        if len(prices) == 1:  # a live feed's usual batch: the scan's set-up costs more
            return self._one(conds, batch, origin_ns)
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

    def _one(self, conds: list[Condition], batch: TickBatch, origin_ns: int) -> list[Signal]:
        """`on_batch` of a batch of one tick: each condition's `on_price`, in configured order."""
        out: list[Signal] = []
        price, ts_ns, seq = batch.price[0], batch.ts_ns[0], batch.first_seq
        for cond in conds:
            event = cond.on_price(price, ts_ns, seq)
            if event is not None:
                self._emit(cond, event, batch.symbol, origin_ns, out)
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
        qty = cond.spec.qty
        limit = OrderType.MARKET, 0.0, TimeInForce.GTC
        if event.kind is _ENTERED:
            side, reason = cond.spec.side, "entry"
            if self._limit_entries:
                price = event.price + side.sign * self._offset
                limit = OrderType.LIMIT, price, TimeInForce.IOC
                self._filled[cond.spec.id] = 0.0
        elif event.kind is _EXITED:
            side, reason = cond.spec.side.opposite, event.reason
            if self._limit_entries:
                qty = self._filled.pop(cond.spec.id, 0.0)
                if qty <= 0:
                    return  # the entry never filled: nothing to close
        else:
            return
        seq = self._next_seq
        self._next_seq = seq + 1
        sid = Signal.make_id(self.strategy_id, seq)
        if limit[0] is OrderType.LIMIT:
            self._entry_of[sid] = cond.spec.id
        sig = Signal(sid, self.strategy_id, seq, symbol, side, qty, event.price, event.ts_ns,
                     reason, cond.spec.id, origin_ns, *limit)  # fmt: skip
        out.append(sig)

    def _on_fill(self, e: OrderEvent) -> None:
        cid = self._entry_of.get(e.signal_id)
        if cid is not None:
            self._filled[cid] = self._filled.get(cid, 0.0) + e.qty
            if e.status == "FILLED":
                del self._entry_of[e.signal_id]

    def _on_unfilled(self, e: OrderEvent) -> None:
        self._entry_of.pop(e.signal_id, None)

    def snapshot(self) -> dict[str, Any]:
        """Every condition's state and the next signal sequence number."""
        return {
            "version": SNAPSHOT_VERSION,
            "strategy_id": self.strategy_id,
            "next_seq": self._next_seq,
            "conditions": [c.snapshot() for c in self.conditions],
            **(
                {"entries": dict(self._entry_of), "filled": dict(self._filled)}
                if self._limit_entries
                else {}
            ),
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
        self._entry_of = {str(k): str(v) for k, v in state.get("entries", {}).items()}
        self._filled = {str(k): float(v) for k, v in state.get("filled", {}).items()}
