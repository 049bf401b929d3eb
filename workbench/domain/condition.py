"""The support/resistance condition: a small state machine over prices.

Its spec, states and events are in `workbench.domain.condition_spec` (re-exported here).

A BUY condition waits for the price to fall to its trigger (support), then for
a rebound of ``turning_point`` above it to enter, then exits at a take-profit
or a stop-loss distance from the entry price. A SELL condition mirrors every
comparison (resistance). With ``following`` the trigger trails new extremes
while triggered; with ``rearm`` an exit starts a new cycle instead of ending.

Pure: no I/O. The strategy turns ENTERED / EXITED events into signals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.domain.condition_spec import (
    ConditionEvent,
    ConditionEventKind,
    ConditionSpec,
    ConditionState,
)
from workbench.domain.model import Side

__all__ = [
    "Condition",
    "ConditionEvent",
    "ConditionEventKind",
    "ConditionSpec",
    "ConditionState",
    "price_blocks",
]

_INF = math.inf


def _level(x: float) -> float:
    """A price level summed from decimal values, without the sum's float noise.

    99.01 + 0.2 is 99.21000000000001 as floats: a tick at 99.21 (the level,
    inclusive) did not reach it. 15 significant digits, what a float holds
    exactly, keep any real price (65432.12355674) and drop the noise.
    """
    return float(f"{x:.15g}")


class Condition:
    """The mutable state machine of one `ConditionSpec`.

    Levels are absolute prices. They are always derived the same way from the
    spec and two state values, ``trigger`` and ``entry_price``: before entry
    ``entry_level = trigger + turning_point`` and the exits are measured from
    ``entry_level``; after entry the exits are measured from ``entry_price``
    (signs mirrored for SELL). Trailing sets ``trigger`` to the new extreme
    and re-derives the rest: all four levels shift by the same amount, with
    no rounding drift accumulated over many trails.

    Each state has an inert band (`band`) of prices that cannot change
    anything; `on_price` returns early inside it and `run` skips whole blocks
    of prices inside it.
    """

    __slots__ = (
        "_buy",
        "_hi",
        "_lo",
        "entry_level",
        "entry_price",
        "sl_level",
        "spec",
        "state",
        "tp_level",
        "trigger",
    )

    def __init__(self, spec: ConditionSpec) -> None:
        self.spec = spec
        self._buy = spec.side is Side.BUY
        self.state = ConditionState.WAITING
        self.entry_price: float | None = None
        self._arm(spec.trigger_price)
        self._set_band()

    @property
    def id(self) -> str:
        """The spec's id."""
        return self.spec.id

    def _arm(self, trigger: float) -> None:
        """Set ``trigger`` and the pre-entry levels derived from it."""
        s = self.spec
        self.trigger = trigger
        # Before entry, the take-profit and stop-loss levels are shown, never compared
        # (`_enter` sets them from the entry price): only the entry level is rounded.
        if self._buy:
            self.entry_level = _level(trigger + s.turning_point)
            self.tp_level = self.entry_level + s.take_profit
            self.sl_level = self.entry_level - s.stop_loss
        else:
            self.entry_level = _level(trigger - s.turning_point)
            self.tp_level = self.entry_level - s.take_profit
            self.sl_level = self.entry_level + s.stop_loss

    def _enter(self, price: float) -> None:
        s = self.spec
        self.state = ConditionState.ENTERED
        self.entry_price = price
        if self._buy:
            self.tp_level = _level(price + s.take_profit)
            self.sl_level = _level(price - s.stop_loss)
        else:
            self.tp_level = _level(price - s.take_profit)
            self.sl_level = _level(price + s.stop_loss)

    def _event(
        self, kind: ConditionEventKind, price: float, ts_ns: int, seq: int, reason: str = ""
    ) -> ConditionEvent:
        return ConditionEvent(
            self.spec.id,
            kind,
            self.state,
            ts_ns,
            price,
            seq,
            self.trigger,
            self.entry_level,
            self.tp_level,
            self.sl_level,
            reason,
        )

    def on_price(self, price: float, ts_ns: int = 0, seq: int = 0) -> ConditionEvent | None:
        """Advance by at most one step on one tick; return the change, if any."""
        if self._lo < price < self._hi:
            return None
        event = self._step(price, ts_ns, seq)
        if event is not None:
            self._set_band()
        return event

    def _step(self, price: float, ts_ns: int, seq: int) -> ConditionEvent | None:
        """The rules, written out; `on_price` filters by the band first."""
        state = self.state
        buy = self._buy
        if state is ConditionState.WAITING:
            if price <= self.trigger if buy else price >= self.trigger:
                self.state = ConditionState.TRIGGERED
                return self._event(ConditionEventKind.TRIGGERED, price, ts_ns, seq)
        elif state is ConditionState.TRIGGERED:
            if self.spec.following and (price < self.trigger if buy else price > self.trigger):
                self._arm(price)
                return self._event(ConditionEventKind.TRAILED, price, ts_ns, seq)
            if price >= self.entry_level if buy else price <= self.entry_level:
                self._enter(price)
                return self._event(ConditionEventKind.ENTERED, price, ts_ns, seq)
        elif state is ConditionState.ENTERED:
            if price >= self.tp_level if buy else price <= self.tp_level:
                reason = "take_profit"
            elif price <= self.sl_level if buy else price >= self.sl_level:
                reason = "stop_loss"
            else:
                return None
            if self.spec.rearm:
                self.state = ConditionState.WAITING
                self.entry_price = None
                self._arm(self.spec.trigger_price)
            else:
                self.state = ConditionState.DONE
            return self._event(ConditionEventKind.EXITED, price, ts_ns, seq, reason)
        return None

    def band(self) -> tuple[float, float] | None:
        """Prices ``(lo, hi)`` such that any ``lo < price < hi`` changes nothing.

        A price outside the band may still change nothing (`on_price` decides).
        None means no price ever changes anything (DONE).
        """
        if self.state is ConditionState.DONE:
            return None
        return self._lo, self._hi

    def _set_band(self) -> None:
        """Recompute the inert band; called after every state change."""
        state = self.state
        buy = self._buy
        lo, hi = -_INF, _INF
        if state is ConditionState.WAITING:
            if buy:
                lo = self.trigger
            else:
                hi = self.trigger
        elif state is ConditionState.TRIGGERED:
            # Strict trailing (<, >) as an inclusive bound: the next float inward.
            if buy:
                hi = self.entry_level
                if self.spec.following:
                    lo = math.nextafter(self.trigger, -_INF)
            else:
                lo = self.entry_level
                if self.spec.following:
                    hi = math.nextafter(self.trigger, _INF)
        elif state is ConditionState.ENTERED:
            lo, hi = (self.sl_level, self.tp_level) if buy else (self.tp_level, self.sl_level)
        self._lo, self._hi = lo, hi

    def run(
        self,
        prices: Sequence[float],
        ts_ns: Sequence[int],
        first_seq: int,
        blocks: Sequence[tuple[int, int, float, float]] | None = None,
    ) -> list[tuple[int, ConditionEvent]]:
        """Feed a run of prices; return ``(index, event)`` for every change.

        Equivalent to calling `on_price` for each price in order, but skips
        stretches where the price stays inside `band`.

        Args:
            prices: The prices, in tick order.
            ts_ns: Their timestamps.
            first_seq: Sequence number of ``prices[0]``.
            blocks: Optional ``(start, stop, min, max)`` over consecutive
                slices covering ``prices`` (see `price_blocks`); shared by
                the conditions scanning the same batch.
        """
        if blocks is None:
            blocks = price_blocks(prices)
        out: list[tuple[int, ConditionEvent]] = []
        if self.state is ConditionState.DONE:
            return out
        lo, hi = self._lo, self._hi
        step = self._step
        set_band = self._set_band
        done = ConditionState.DONE
        for start, stop, bmin, bmax in blocks:
            if lo < bmin and bmax < hi:
                continue
            for i in range(start, stop):
                p = prices[i]
                if not lo < p < hi:
                    event = step(p, ts_ns[i], first_seq + i)
                    if event is not None:
                        out.append((i, event))
                        set_band()
                        if event.state_after is done:
                            return out
                        lo, hi = self._lo, self._hi
        return out

    def snapshot(self) -> dict[str, Any]:
        """State as plain data; levels are included for display only."""
        return {
            "id": self.spec.id,
            "side": self.spec.side.value,
            "state": self.state.value,
            "trigger": self.trigger,
            "entry_price": self.entry_price,
            "entry_level": self.entry_level,
            "tp_level": self.tp_level,
            "sl_level": self.sl_level,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from a `snapshot`.

        Levels are re-derived from this condition's spec and the saved
        ``trigger`` and ``entry_price``, so a changed take-profit or stop-loss
        applies to a restored position.

        Raises:
            ValueError: the snapshot is malformed or belongs to another side.
        """
        try:
            st = ConditionState(state["state"])
            trigger = float(state["trigger"])
            raw_entry = state.get("entry_price")
            entry = None if raw_entry is None else float(raw_entry)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"condition {self.spec.id!r}: bad snapshot: {e}") from e
        if state.get("side", self.spec.side.value) != self.spec.side.value:
            raise ValueError(f"condition {self.spec.id!r}: snapshot is for the other side")
        if st is ConditionState.WAITING:
            self.state = st
            self.entry_price = None
            self._arm(self.spec.trigger_price)
            self._set_band()
            return
        entered = st in (ConditionState.ENTERED, ConditionState.DONE)
        if not math.isfinite(trigger) or (entered and (entry is None or not math.isfinite(entry))):
            raise ValueError(
                f"condition {self.spec.id!r}: {st.value} snapshot needs finite"
                f" trigger{' and entry_price' if entered else ''}"
            )
        self._arm(trigger)
        self.entry_price = None
        if entry is not None and entered:
            self._enter(entry)
        self.state = st
        self._set_band()


def price_blocks(prices: Sequence[float], size: int = 32) -> list[tuple[int, int, float, float]]:
    """``(start, stop, min, max)`` of consecutive slices of ``prices``."""
    n = len(prices)
    out = []
    for start in range(0, n, size):
        chunk = prices[start : start + size]
        out.append((start, min(start + size, n), min(chunk), max(chunk)))
    return out
