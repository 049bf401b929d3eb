"""What the simulator knows of one order, and the orders it keeps (`SimulatedBroker`)."""

from __future__ import annotations

import math

from workbench.domain.model import Fill, Order, OrderStatus, OrderType
from workbench.domain.orders import OrderSnapshot

KEEP_DONE = 10_000
"""Finished orders (and fills) a live simulator remembers: for look-ups of recent orders and
duplicate client ids. A paper run trades for weeks; every order kept cost about 1 KB."""

Quote = tuple[float, float] | None
"""A tick's ``(bid, ask)``, or None when it has only a price."""


class VenueOrder:
    """An order as the simulated venue holds it."""

    __slots__ = (
        "arrival_ns",
        "arrived",
        "filled",
        "fills",
        "order",
        "reason",
        "status",
        "triggered",
        "venue_id",
    )

    def __init__(self, order: Order, venue_id: str, arrival_ns: int) -> None:
        self.order = order
        self.venue_id = venue_id
        self.arrival_ns = arrival_ns
        self.arrived = False
        self.status = OrderStatus.ACCEPTED
        self.filled = 0.0
        self.fills: list[Fill] = []
        self.triggered = False
        self.reason = ""

    @property
    def open(self) -> bool:
        return not self.status.terminal

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            self.order.client_order_id,
            self.venue_id,
            self.status,
            self.filled,
            list(self.fills),
            self.reason,
            self.order.qty,
        )


def invalid(order: Order) -> str:
    if order.order_type is not OrderType.MARKET and not (
        math.isfinite(order.order_price) and order.order_price > 0
    ):
        return f"{order.order_type} order needs a positive order_price, got {order.order_price!r}"
    return ""
