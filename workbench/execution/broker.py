"""The Broker port and the deterministic simulated broker.

A broker adapter is one class with ``submit(order) -> list[Fill]``: it raises
`OrderRejected` for a refusal (not counted against the circuit breaker) and
any other exception for a failure (counted).
"""

from __future__ import annotations

from typing import Protocol

from workbench.domain.model import Fill, Order


class Broker(Protocol):
    """Places orders somewhere."""

    def submit(self, order: Order) -> list[Fill]:
        """Place a market order; return its fills.

        Raises:
            OrderRejected: the broker refused the order.
        """
        ...


class SimulatedBroker:
    """Fills every market order at once, in full, at its reference price plus slippage.

    Deterministic: the fill's price is ``order.price + slippage`` for a BUY and
    ``order.price - slippage`` for a SELL, its time the order's (the tick's)
    time, its id ``F-<signal id>``.
    """

    def __init__(self, slippage: float = 0.0) -> None:
        self.slippage = slippage

    def submit(self, order: Order) -> list[Fill]:
        price = round(order.price + order.side.sign * self.slippage, 10)
        return [
            Fill(
                id=f"F-{order.signal_id}",
                order_id=order.id,
                signal_id=order.signal_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                price=price,
                ts_ns=order.ts_ns,
            )
        ]
