"""Support/resistance strategy: a list of `Condition`s turned into signals.

Each condition enters on its own side when its rebound completes and exits on
the opposite side at take-profit or stop-loss. Conditions are independent;
for each tick they are advanced in their configured order, and that order is
the order of the signals (and of the signal sequence numbers).
"""

from __future__ import annotations

import math
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
from workbench.domain.model import OrderType, Side, Signal, Tick, TickBatch, TimeInForce
from workbench.domain.orders import OrderEvent

SNAPSHOT_VERSION = 2
"""2: what each open entry holds, by its signal id, in both modes (1: limit fills by condition)."""
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
            for an entry that did not fill. An exit due before the entry's
            outcome is heard waits for it, and goes on the symbol's next tick.
        entry_limit_offset: Price units an entry limit may be worse than its tick.

    An exit closes what its entry holds (a market entry: the qty it asked
    for), saved with the state: a restart with another ``qty`` or
    ``entry_order`` closes what was opened, not the new size.

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
        if not (
            isinstance(entry_limit_offset, int | float)
            and not isinstance(entry_limit_offset, bool)
            and math.isfinite(entry_limit_offset)
            and entry_limit_offset >= 0
        ):
            raise ValueError(f"entry_limit_offset: a number >= 0, got {entry_limit_offset!r}")
        self.strategy_id = strategy_id
        self._limit_entries = entry_order == "limit"
        self._offset = float(entry_limit_offset)
        self._entry_of: dict[str, str] = {}  # limit entry signal id -> condition, until resolved
        self._open: dict[str, str] = {}  # condition id -> its open entry's signal id
        self._held: dict[str, float] = {}  # entry signal id -> qty it holds (filled so far)
        # entry -> (condition id, symbol, reason, exit side): all a held exit needs. It goes
        # on its symbol's next tick once the entry is resolved (no longer in `_entry_of`).
        self._exit_due: dict[str, tuple[str, str, str, str]] = {}
        if self._limit_entries:  # outcome hooks, only where they change anything
            self.on_fill = self._on_fill
            self.on_order_rejected = self.on_order_expired = self._on_unfilled
            self.on_order_cancelled = self._on_unfilled
        # "x" read as a list of one condition: "conditions[0].x: unknown condition key".
        if isinstance(conditions, str | bytes | Mapping) or not isinstance(conditions, Iterable):
            raise ValueError(f"conditions: must be a list of tables (got {_kind(conditions)})")
        self.conditions: list[Condition] = []
        for i, raw in enumerate(conditions):
            if not isinstance(raw, ConditionSpec | Mapping):
                raise ValueError(f"conditions[{i}]: must be a table (got {_kind(raw)})")
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
        if self._exit_due:
            self._held_exits(tick.symbol, tick.price, tick.ts_ns, 0, out)
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
        if self._exit_due:
            held: list[Signal] = []
            self._held_exits(batch.symbol, batch.price[0], batch.ts_ns[0], origin_ns, held)
            if held:
                return held + self.on_batch(batch, origin_ns)
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
        cid = cond.spec.id
        if event.kind is _ENTERED:
            sid = self._signal(cid, cond.spec.side, cond.spec.qty, "entry", event, symbol,
                               origin_ns, out, entry=True)  # fmt: skip
            self._open[cid] = sid
            self._held[sid] = 0.0 if self._limit_entries else cond.spec.qty
            if self._limit_entries:
                self._entry_of[sid] = cid
        elif event.kind is _EXITED:
            entry = self._open.pop(cid, None)
            if entry is None:  # a state saved without its entry (market, version 1)
                qty = cond.spec.qty
            elif entry in self._entry_of and self._limit_entries:  # outcome not heard yet
                side = cond.spec.side.opposite.value
                self._exit_due[entry] = (cid, symbol, event.reason, side)  # it waits for it
                return
            elif entry in self._entry_of:  # a limit entry restored into market mode: no
                del self._entry_of[entry]  # outcome will come; as a market entry, its qty
                qty = cond.spec.qty
                self._held.pop(entry, None)
            else:
                qty = self._held.pop(entry, 0.0)
            if qty > 0:  # else the entry never filled: nothing to close
                self._signal(cid, cond.spec.side.opposite, qty, event.reason, event, symbol,
                             origin_ns, out, closes=entry)  # fmt: skip

    def _signal(self, cid: str, side: Side, qty: float, reason: str,
                event: ConditionEvent | tuple[float, int], symbol: str, origin_ns: int,
                out: list[Signal], *, entry: bool = False,
                closes: str | None = None) -> str:  # fmt: skip
        """Append the next signal to ``out``; its id.

        ``closes``: the entry an exit closes, named on the signal if it is one of ours
        (a version-1 snapshot's stand-in is not), so the executor sends no more than it holds.
        """
        price, ts_ns = (event.price, event.ts_ns) if isinstance(event, ConditionEvent) else event
        limit = OrderType.MARKET, 0.0, TimeInForce.GTC
        if entry and self._limit_entries:
            limit = OrderType.LIMIT, price + side.sign * self._offset, TimeInForce.IOC
        seq = self._next_seq
        self._next_seq = seq + 1
        sid = Signal.make_id(self.strategy_id, seq)
        if closes and not Signal.seq_in(closes, self.strategy_id):  # a v1 stand-in
            closes = None
        out.append(Signal(sid, self.strategy_id, seq, symbol, side, qty, price, ts_ns, reason,
                          cid, origin_ns, *limit, closes or ""))  # fmt: skip
        return sid

    def _held_exits(
        self, symbol: str, price: float, ts_ns: int, origin_ns: int, out: list[Signal]
    ) -> None:
        """The exits that waited for their entry's outcome, at this tick of their symbol.

        Whether or not their condition is still configured: the position is real.
        """
        for entry, (cid, sym, reason, side) in list(self._exit_due.items()):
            if sym != symbol or entry in self._entry_of:  # another symbol's, or still waiting
                continue
            del self._exit_due[entry]
            qty = self._held.pop(entry, 0.0)
            if qty > 0:
                self._signal(cid, Side(side), qty, reason, (price, ts_ns), symbol, origin_ns,
                             out, closes=entry)  # fmt: skip

    def _on_fill(self, e: OrderEvent) -> None:
        if e.signal_id in self._entry_of:
            self._held[e.signal_id] = self._held.get(e.signal_id, 0.0) + e.qty
            if e.status == "FILLED":  # resolved: an exit that waited goes on the next tick
                del self._entry_of[e.signal_id]

    def _on_unfilled(self, e: OrderEvent) -> None:
        self._entry_of.pop(e.signal_id, None)

    def snapshot(self) -> dict[str, Any]:
        """Every condition's state, what each open entry holds, and the next signal number."""
        return {
            "version": SNAPSHOT_VERSION,
            "strategy_id": self.strategy_id,
            "next_seq": self._next_seq,
            "conditions": [c.snapshot() for c in self.conditions],
            "entries": dict(self._entry_of),
            "open": dict(self._open),
            "held": dict(self._held),
            "exit_due": {k: list(v) for k, v in self._exit_due.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from a `snapshot`; signal numbering continues where it stopped.

        Conditions are matched by id: a configured condition missing from the
        snapshot starts fresh, a saved one no longer configured is ignored.
        Everything is checked before anything changes.

        Raises:
            ValueError: the snapshot is malformed or of another version; names the key.
        """
        version = state.get("version")
        if version not in (1, SNAPSHOT_VERSION):
            raise ValueError(f"version: snapshot version {version!r}, expected {SNAPSHOT_VERSION}")
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
        entries = _texts(state, "entries")
        if version == 1:  # limit fills by condition: each open entry of the condition
            filled = _numbers(state, "filled")
            opened = {cid: sid for sid, cid in entries.items()}
            opened |= {cid: f"{cid}@v1" for cid in filled if cid not in opened}
            held = {sid: filled.get(cid, 0.0) for cid, sid in opened.items()}
            due: dict[str, tuple[str, str, str, str]] = {}
        else:
            opened, held = _texts(state, "open"), _numbers(state, "held")
            try:
                due = {str(k): (str(c), str(y), str(r), Side(d).value)
                       for k, (c, y, r, d) in state.get("exit_due", {}).items()}  # fmt: skip
            except (AttributeError, TypeError, ValueError) as e:
                raise ValueError(f"exit_due: malformed held exits: {e!r}") from e
        for cond, snap in zip(self.conditions, restored, strict=True):
            cond.restore(snap)
        self._next_seq = next_seq
        self._entry_of, self._open, self._held = entries, opened, held
        self._exit_due = due


def _texts(state: Mapping[str, Any], key: str) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in state.get(key, {}).items()}
    except AttributeError as e:
        raise ValueError(f"{key}: a map of ids, got {state.get(key)!r}") from e


def _numbers(state: Mapping[str, Any], key: str) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in state.get(key, {}).items()}
    except (AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{key}: a map of quantities, got {state.get(key)!r}") from e


def _kind(value: object) -> str:
    """What a params value is, in TOML's words: "a string", "a table", "an integer"."""
    names = {
        str: "a string",
        dict: "a table",
        int: "an integer",
        float: "a float",
        bool: "a boolean",
    }
    if value is None:
        return "nothing"
    return names.get(type(value), f"a {type(value).__name__}")
