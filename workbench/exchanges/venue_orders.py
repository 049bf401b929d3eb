"""What the ccxt venue client hands over: orders, fills and execution reports as values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TERMINAL = ("closed", "canceled", "rejected", "expired")


@dataclass(frozen=True)
class VenueOrder:
    """An order as the exchange reports it (ccxt's unified statuses)."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    status: str  # open | closed | canceled | rejected | expired
    filled: float
    average: float
    ts_ms: int

    @classmethod
    def from_ccxt(cls, o: dict[str, Any]) -> VenueOrder:
        return cls(
            client_order_id=o.get("clientOrderId") or "",
            venue_order_id=str(o.get("id") or ""),
            symbol=o.get("symbol") or "",
            side=o.get("side") or "",
            qty=float(o.get("amount") or 0.0),
            price=float(o.get("price") or 0.0),
            status=o.get("status") or "open",
            filled=float(o.get("filled") or 0.0),
            average=float(o.get("average") or 0.0),
            ts_ms=int(o.get("lastUpdateTimestamp") or o.get("timestamp") or 0),
        )


def mismatch(found: VenueOrder, symbol: str, side: str, qty: float) -> str:
    """How ``found`` differs from the order being placed (symbol, side, qty); "" if not.

    ``qty`` is the amount as sent (rounded to the market's precision).
    """
    out = []
    if found.symbol != symbol:
        out.append(f"symbol {found.symbol} != {symbol}")
    if found.side.lower() != side.lower():
        out.append(f"side {found.side.lower()} != {side.lower()}")
    if abs(found.qty - qty) > 1e-9 * max(1.0, abs(qty)):
        out.append(f"qty {found.qty:g} != {qty:g}")
    return ", ".join(out)


@dataclass(frozen=True)
class SubmitResult:
    """The exchange's answer to a new order: accepted with its order, or rejected."""

    accepted: bool
    order: VenueOrder | None = None
    reason: str = ""


@dataclass(frozen=True)
class VenueFill:
    """One of the account's trades."""

    trade_id: str
    venue_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    fee: float
    fee_currency: str
    ts_ms: int


@dataclass(frozen=True)
class ExecutionReport:
    """A change of an order: new fills (``last_qty`` at ``last_price``) or a new status."""

    order: VenueOrder
    last_qty: float
    last_price: float
    source: str  # "ws" | "poll"


def venue_fill(t: dict[str, Any]) -> VenueFill:
    """One of ccxt's trades as a `VenueFill`."""
    fee = t.get("fee") or {}
    return VenueFill(
        trade_id=str(t["id"]),
        venue_order_id=str(t.get("order") or ""),
        symbol=t["symbol"],
        side=t["side"],
        qty=float(t["amount"]),
        price=float(t["price"]),
        fee=float(fee.get("cost") or 0.0),
        fee_currency=fee.get("currency") or "",
        ts_ms=int(t["timestamp"]),
    )
