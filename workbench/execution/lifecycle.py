"""The executor's open orders: acknowledgements and execution reports become journal updates.

`OpenOrders` keeps one `OrderState` per order the venue may still act on,
applies what the broker says to it, and returns what the journal must record
(`OrderUpdate`) and what must be published (events), with the fills. A report
the state machine refuses, or one for an order the executor does not know, is
returned as an anomaly to be journaled and alerted, never applied.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.domain.model import Fill, Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.domain.orders import ExecutionReport, LifecycleError, OrderAck, OrderState
from workbench.execution.journal import OrderUpdate
from workbench.messaging.codec import Event, OrderEvent


@dataclass(slots=True)
class Tracked:
    """An order the venue may still act on, with its state machine."""

    order: Order
    strategy_id: str
    state: OrderState
    unconfirmed: tuple[float, ...] = ()
    """What reconciliation last reported of a venue's "filled" it could not confirm."""
    short: bool = False
    """The venue called it filled short of its qty: in doubt for that (`reconcile.doubt_short`)."""
    fill_ids: set[str] = field(default_factory=set)
    """Its fills so far: one reported again (a broker that reports at least once) is not new."""
    sent_ns: int = 0
    """Wall clock when its create last went (or this process restored it): doubt runs from it."""


@dataclass(slots=True)
class Outcome:
    """What a batch of acks and reports means: journal updates, events, fills, anomalies."""

    updates: dict[str, OrderUpdate] = field(default_factory=dict)
    events: list[tuple[OrderEvent, Fill | None]] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    """Orders the venue called filled before their fills made up their qty (see `on_report`)."""

    def update(self, t: Tracked) -> OrderUpdate:
        """The journal update of ``t``'s order, created on first use."""
        u = self.updates.get(t.order.id)
        if u is None:
            u = self.updates[t.order.id] = OrderUpdate(t.order.id, t.state.status)
        s = t.state
        u.status, u.venue_order_id = s.status, s.venue_order_id
        u.filled_qty, u.fees = s.filled_qty, s.fees
        return u


class OpenOrders:
    """Orders acknowledged or in flight, by client order id."""

    def __init__(self) -> None:
        self.by_client_id: dict[str, Tracked] = {}

    def __len__(self) -> int:
        return len(self.by_client_id)

    def working(self, symbol: str, side: Side) -> float:
        """What is left to fill of the open orders on ``side`` of ``symbol``."""
        return sum(
            t.order.qty - t.state.filled_qty
            for t in self.by_client_id.values()
            if t.order.symbol == symbol and t.order.side is side
        )

    def track(self, order: Order, strategy_id: str, state: OrderState | None = None) -> Tracked:
        """Follow ``order`` from now on (PENDING_NEW unless ``state`` says otherwise)."""
        t = Tracked(order, strategy_id, state or OrderState(order.client_order_id, order.qty))
        self.by_client_id[order.client_order_id] = t
        return t

    def restore(
        self, row: dict[str, Any], strategy_id: str, fill_ids: set[str] | None = None
    ) -> Tracked:
        """Follow an open order as the journal has it (executor start), with its fills' ids."""
        order = Order(
            row["order_id"],
            row["signal_id"],
            row["symbol"],
            Side(row["side"]),
            row["qty"],
            row["price"],
            row["ts_ns"],
            OrderType(row["order_type"]),
            row["order_price"],
            TimeInForce(row["tif"]),
            row["client_order_id"],
        )
        state = OrderState(
            order.client_order_id,
            order.qty,
            OrderStatus(row["status"]),
            row["filled_qty"],
            row["fees"],
            row["venue_order_id"],
        )
        t = self.track(order, strategy_id, state)
        t.fill_ids = fill_ids or set()
        t.sent_ns = time.time_ns()  # a create in doubt may have gone just before the restart
        return t

    def on_ack(self, t: Tracked, ack: OrderAck, out: Outcome, source: str = "ack") -> None:
        """Apply the submit's answer (``source`` "reconcile": the venue's answer to a query)."""
        status = t.state.on_ack(ack)
        u = out.update(t)
        u.reason = ack.reason if status is OrderStatus.REJECTED else ""
        u.reports.append((status, t.order.ts_ns, ack.venue_order_id, None, ack.reason, source))
        out.events.append((_event(t, status, t.order.ts_ns, None, ack.reason), None))
        if not t.state.open:
            del self.by_client_id[t.order.client_order_id]

    def on_report(self, r: ExecutionReport, out: Outcome, source: str = "broker") -> None:
        """Apply one execution report (unknown or impossible ones become anomalies)."""
        t = self.by_client_id.get(r.client_order_id)
        if t is None:
            out.anomalies.append(
                {"kind": "report_for_unknown_order", "client_order_id": r.client_order_id}
                | {"status": r.status.value, "ts_ns": r.ts_ns}
            )
            return
        if r.fill is not None and r.fill.side is not t.order.side:
            # Another order's trade under this client id (never applied: it
            # would move the position the wrong way).
            out.anomalies.append(
                {"kind": "fill_side_mismatch", "order_id": t.order.id, "fill_id": r.fill.id}
                | {"order_side": t.order.side.value, "fill_side": r.fill.side.value}
            )
            return
        if r.fill is not None and r.fill.id in t.fill_ids:
            out.anomalies.append(  # applied once already: never twice to the position
                {"kind": "duplicate_fill", "order_id": t.order.id, "fill_id": r.fill.id}
            )
            return
        try:
            status = t.state.on_report(r)
        except LifecycleError as e:
            out.anomalies.append(
                {"kind": "impossible_report", "order_id": t.order.id, "detail": str(e)}
            )
            return
        if r.status is OrderStatus.FILLED and status is OrderStatus.PARTIALLY_FILLED:
            # The venue says done, the fills say not yet: counted, kept open, and
            # asked for by reconciliation, which closes it if the venue took less.
            out.short.append(t.order.id)
        fill = r.fill
        if fill is not None and (fill.order_id, fill.signal_id) != (t.order.id, t.order.signal_id):
            # A venue knows the order by its client order id only (after a restart).
            fill = replace(fill, order_id=t.order.id, signal_id=t.order.signal_id)
            r = replace(r, fill=fill)
        u = out.update(t)
        if r.reason and status is not OrderStatus.FILLED:
            u.reason = r.reason
        u.reports.append((status, r.ts_ns, r.venue_order_id, r.fill, r.reason, source))
        if r.fill is not None:
            t.fill_ids.add(r.fill.id)
            u.fills.append(r.fill)
            out.fills.append(r.fill)
        out.events.append((_event(t, status, r.ts_ns, r.fill, r.reason), r.fill))
        if not t.state.open:
            del self.by_client_id[r.client_order_id]


def _event(
    t: Tracked, status: OrderStatus, ts_ns: int, fill: Fill | None, reason: str
) -> OrderEvent:
    o = t.order
    return OrderEvent(
        strategy_id=t.strategy_id,
        signal_id=o.signal_id,
        order_id=o.id,
        status=status.value,
        symbol=o.symbol,
        side=o.side.value,
        qty=fill.qty if fill else o.qty,
        price=fill.price if fill else (o.order_price or o.price),
        fee=fill.quote_fee if fill else 0.0,
        ts_ns=ts_ns,
        filled_qty=t.state.filled_qty,
        reason=reason,
    )


def event_data(e: OrderEvent) -> dict[str, Any]:
    """An order event as the plain dict the dashboards' events carry."""
    return {
        "order_id": e.order_id,
        "signal_id": e.signal_id,
        "strategy_id": e.strategy_id,
        "symbol": e.symbol,
        "side": e.side,
        "qty": e.qty,
        "price": e.price,
        "fee": e.fee,
        "ts_ns": e.ts_ns,
        "filled_qty": e.filled_qty,
        "reason": e.reason,
    }


EVENT_NAMES = {
    "ACCEPTED": "order_accepted",
    "PARTIALLY_FILLED": "order_filled",
    "FILLED": "order_filled",
    "CANCELLED": "order_cancelled",
    "EXPIRED": "order_expired",
    "REJECTED": "order_rejected",
}


def dashboard_event(e: OrderEvent) -> Event:
    """The `Event` supervisors, taps and dashboards read for an order event."""
    return Event(EVENT_NAMES[e.status], event_data(e))


def signal_data(s: Signal, received_ns: int) -> dict[str, Any]:
    """A received signal as the ``signal_received`` event's data."""
    return {
        "signal_id": s.id,
        "strategy_id": s.strategy_id,
        "symbol": s.symbol,
        "side": s.side.value,
        "qty": s.qty,
        "price": s.price,
        "ts_ns": s.ts_ns,
        "reason": s.reason,
        "condition_id": s.condition_id,
        "origin_ns": s.origin_ns,
        "received_ns": received_ns,
    }


def rejected_event(order: Order, strategy_id: str, reason: str) -> OrderEvent:
    """The event of an order rejected before it reached the venue (risk, circuit)."""
    return OrderEvent(
        strategy_id,
        order.signal_id,
        order.id,
        "REJECTED",
        order.symbol,
        order.side.value,
        order.qty,
        order.order_price or order.price,
        0.0,
        order.ts_ns,
        0.0,
        reason,
    )
