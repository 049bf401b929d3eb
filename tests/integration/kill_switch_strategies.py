"""A strategy for the kill switch tests: one market buy on its symbol's first tick, then quiet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.domain.model import Side, Signal, Tick


class BuyOnce:
    """Buys ``qty`` of ``symbol`` at its first tick and never trades again: a known position."""

    def __init__(self, strategy_id: str, symbol: str, qty: float = 1.0) -> None:
        self.strategy_id = strategy_id
        self.symbol = symbol
        self.qty = qty
        self.seq = 0

    def symbols(self) -> list[str]:
        return [self.symbol]

    def on_tick(self, tick: Tick) -> list[Signal]:
        if tick.symbol != self.symbol or self.seq:
            return []
        self.seq = 1
        sid = Signal.make_id(self.strategy_id, self.seq)
        return [
            Signal(sid, self.strategy_id, self.seq, tick.symbol, Side.BUY, self.qty,
                   tick.price, tick.ts_ns, "once", "")
        ]  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.seq = int(state["seq"])
