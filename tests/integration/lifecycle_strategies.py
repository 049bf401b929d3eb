"""A strategy for the lifecycle parity tests: every order type, and it acts on its outcomes.

`OrderMix` sends, every ``every`` ticks of its symbol, a MARKET, a LIMIT (better
than the market, so it rests) or a STOP (beyond the market, so it waits to
trigger), in turn. The side of each order depends on the position its
``on_fill`` hook has heard of, so a replay that delivered outcomes at a
different tick would send different orders: equal fills in fast and wire
replay prove the delivery does not depend on process timing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.domain.model import OrderType, Side, Signal, Tick, TimeInForce
from workbench.domain.orders import OrderEvent


class OrderMix:
    """MARKET, LIMIT and STOP orders in turn; sides follow the position heard of."""

    def __init__(
        self, strategy_id: str, symbol: str, every: int = 97, offset: float = 0.02, qty=1.0
    ) -> None:
        self.strategy_id = strategy_id
        self.symbol = symbol
        self.every = every
        self.offset = offset
        self.qty = qty
        self.n = 0
        self.seq = 0
        self.position = 0.0
        self.heard: dict[str, int] = {}

    def symbols(self) -> list[str]:
        return [self.symbol]

    def on_tick(self, tick: Tick) -> list[Signal]:
        if tick.symbol != self.symbol:
            return []
        self.n += 1
        if self.n % self.every:
            return []
        kind = (self.n // self.every) % 3
        side = Side.SELL if self.position > 0 else Side.BUY
        if kind == 0:
            otype, oprice = OrderType.MARKET, 0.0
        elif kind == 1:  # better than the market: rests until it trades through
            otype, oprice = OrderType.LIMIT, round(tick.price - side.sign * self.offset, 10)
        else:  # beyond the market: waits for it to get there
            otype, oprice = OrderType.STOP, round(tick.price + side.sign * self.offset, 10)
        self.seq += 1
        return [
            Signal(
                Signal.make_id(self.strategy_id, self.seq), self.strategy_id, self.seq,
                tick.symbol, side, self.qty, tick.price, tick.ts_ns, otype.value.lower(), "",
                0, otype, oprice, TimeInForce.GTC,
            )
        ]  # fmt: skip

    def _heard(self, e: OrderEvent) -> None:
        self.heard[e.status] = self.heard.get(e.status, 0) + 1

    def on_fill(self, e: OrderEvent) -> None:
        self._heard(e)
        self.position += (1 if e.side == "BUY" else -1) * e.qty

    def on_order_accepted(self, e: OrderEvent) -> None:
        self._heard(e)

    def on_order_rejected(self, e: OrderEvent) -> None:
        self._heard(e)

    def snapshot(self) -> dict[str, Any]:
        return {"n": self.n, "seq": self.seq, "position": self.position, "heard": self.heard}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.n, self.seq = int(state["n"]), int(state["seq"])
        self.position, self.heard = float(state["position"]), dict(state["heard"])
