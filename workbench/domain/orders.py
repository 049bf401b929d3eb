"""An order's lifecycle: what a venue answers, and the state machine it drives.

Pure data and a small pure object: the executor feeds `OrderState` the
acknowledgement and the execution reports a broker sends; the state machine
says which state the order is in and refuses what cannot happen (a fill after
a cancel, more quantity than ordered), so the executor journals and alerts
such reports instead of trusting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.domain.model import Fill, OrderStatus

QTY_TOLERANCE = 1e-9
"""Two quantities closer than this times their size are equal (see `qty_eps`)."""


def qty_eps(*sizes: float) -> float:
    """How far apart quantities of these sizes may be and still be equal.

    Relative: float sums of a venue's exact decimal fills miss a few million
    units by more than any fixed epsilon (never less than 1e-9 absolute).
    """
    return QTY_TOLERANCE * max(1.0, *(abs(x) for x in sizes))


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue's answer to a submit: accepted with its own id, or rejected with a reason."""

    client_order_id: str
    accepted: bool
    venue_order_id: str = ""
    reason: str = ""
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """Something that happened to an order at the venue, after its acknowledgement.

    ``status`` is the order's state after the report: PARTIALLY_FILLED or
    FILLED with ``fill`` set, CANCELLED, EXPIRED or REJECTED (the venue
    dropped an order it had accepted) with ``reason``.
    """

    client_order_id: str
    status: OrderStatus
    ts_ns: int
    venue_order_id: str = ""
    fill: Fill | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What a venue says about one order when asked (reconciliation).

    ``qty``: the amount the venue holds the order for (0: not reported).
    """

    client_order_id: str
    venue_order_id: str
    status: OrderStatus
    filled_qty: float
    fills: list[Fill] = field(default_factory=list)
    reason: str = ""
    qty: float = 0.0


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """What happened to a strategy's order, as the strategy hears it (hooks, wire kind ``ord``).

    ``status`` is the order's state after the event (an `OrderStatus` value);
    for a fill ``qty``/``price``/``fee`` are the fill's, otherwise the order's.
    ``ts_ns`` is the market time it happened at.
    """

    strategy_id: str
    signal_id: str
    order_id: str
    status: str
    symbol: str
    side: str
    qty: float
    price: float
    fee: float
    ts_ns: int
    filled_qty: float
    reason: str = ""


class LifecycleError(ValueError):
    """A report the order's state does not allow."""


_AFTER_ACK = {OrderStatus.PENDING_NEW}
_OPEN = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}


class OrderState:
    """One order's state machine.

    PENDING_NEW -> ACCEPTED | REJECTED; ACCEPTED or PARTIALLY_FILLED ->
    PARTIALLY_FILLED | FILLED | CANCELLED | EXPIRED | REJECTED. A fill report
    may also arrive while PENDING_NEW (a venue that fills at once, or one
    whose acknowledgement was lost): it implies the acceptance.
    """

    __slots__ = ("client_order_id", "fees", "filled_qty", "qty", "status", "venue_order_id")

    def __init__(
        self,
        client_order_id: str,
        qty: float,
        status: OrderStatus = OrderStatus.PENDING_NEW,
        filled_qty: float = 0.0,
        fees: float = 0.0,
        venue_order_id: str = "",
    ) -> None:
        self.client_order_id = client_order_id
        self.qty = qty
        self.status = status
        self.filled_qty = filled_qty
        self.fees = fees
        self.venue_order_id = venue_order_id

    @property
    def open(self) -> bool:
        """Still able to fill."""
        return not self.status.terminal

    @property
    def remaining(self) -> float:
        """Quantity not yet filled."""
        return max(0.0, self.qty - self.filled_qty)

    def on_ack(self, ack: OrderAck) -> OrderStatus:
        """Apply the submit's answer; returns the new state.

        Raises:
            LifecycleError: the order was already acknowledged.
        """
        if self.status not in _AFTER_ACK:
            raise LifecycleError(f"{self.client_order_id}: acknowledged again in {self.status}")
        if ack.accepted:
            self.status = OrderStatus.ACCEPTED
            self.venue_order_id = ack.venue_order_id
        else:
            self.status = OrderStatus.REJECTED
        return self.status

    def on_report(self, report: ExecutionReport) -> OrderStatus:
        """Apply an execution report; returns the new state.

        Raises:
            LifecycleError: the report cannot happen in the current state
                (nothing is changed).
        """
        st = report.status
        if self.status.terminal:
            raise LifecycleError(f"{self.client_order_id}: {st} after {self.status}")
        eps = qty_eps(self.qty)
        f = report.fill
        if st in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            if f is None or f.qty <= 0:
                raise LifecycleError(f"{self.client_order_id}: {st} without a fill")
        elif st not in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
            raise LifecycleError(f"{self.client_order_id}: {st} is not an execution report")
        elif f is not None and f.qty <= 0:
            raise LifecycleError(f"{self.client_order_id}: {st} with an empty fill")
        if f is not None:  # a close may carry its last fill: counted and checked as any fill
            filled = self.filled_qty + f.qty
            if filled > self.qty + eps:
                raise LifecycleError(
                    f"{self.client_order_id}: fills of {filled} exceed the order's {self.qty}"
                )
            done = filled >= self.qty - eps
            if st is OrderStatus.FILLED and not done:
                st = OrderStatus.PARTIALLY_FILLED  # venues report the fill, we count
            if done:  # a close that came with the last fill: filled all the same
                st = OrderStatus.FILLED
            self.filled_qty = filled
            self.fees += f.quote_fee
        if report.venue_order_id:
            self.venue_order_id = report.venue_order_id
        self.status = st
        return st
