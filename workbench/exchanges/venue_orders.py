"""What the ccxt venue client hands over: orders, fills and execution reports as values."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from workbench.domain.orders import qty_eps

log = structlog.get_logger(__name__)
TERMINAL = ("closed", "canceled", "rejected", "expired")
MAX_MISS_BACKOFF = 64
"""At most this many poll rounds between two polls of an order the exchange did not find."""


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
        """A ccxt order; a cancel's answer names the order in ``origClientOrderId``
        (Binance: its ``clientOrderId`` is the cancel request's own id)."""
        info = o.get("info")
        info = info if isinstance(info, dict) else {}
        return cls(
            client_order_id=info.get("origClientOrderId") or o.get("clientOrderId") or "",
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
    if abs(found.qty - qty) > qty_eps(qty):
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


class ReportBook:
    """Which orders are in flight and what was reported of each; thread-safe.

    Orders are noted from the caller's thread (REST answers) and the venue's
    loop (the stream, the poller); a report is queued only when an order's
    status or filled quantity moved on.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[ExecutionReport] = queue.Queue()
        self._seen: dict[str, tuple[str, float]] = {}  # client id -> (status, filled)
        self._in_flight: dict[str, str] = {}  # client id -> symbol, not yet terminal
        self._misses: dict[str, int] = {}  # client id -> polls in a row that did not find it
        self.rounds = 0
        """Poll rounds so far (calls of `poll_due`)."""
        self._lock = threading.Lock()

    def track(self, order: VenueOrder, symbol: str) -> None:
        """Follow ``order`` (placed or found) until it is terminal, and note it."""
        with self._lock:  # the stream may have told its end before the create's answer
            ended = self._seen.get(order.client_order_id, ("", 0.0))[0] in TERMINAL
            if order.status not in TERMINAL and not ended:
                self._in_flight[order.client_order_id] = symbol
        self.note(order, "rest")

    def in_flight(self) -> list[tuple[str, str]]:
        """(client id, symbol) of every order not yet terminal."""
        with self._lock:
            return list(self._in_flight.items())

    def poll_due(self) -> list[tuple[str, str]]:
        """(client id, symbol) of the orders in flight to poll this round.

        One the exchange did not find (archived, or lost) is polled once in
        2, 4, ... up to `MAX_MISS_BACKOFF` rounds, not every round for ever.
        """
        with self._lock:
            self.rounds += 1
            return [
                (cid, sym)
                for cid, sym in self._in_flight.items()
                if self.rounds % min(1 << self._misses.get(cid, 0), MAX_MISS_BACKOFF) == 0
            ]

    def not_found(self, client_id: str, exchange: str) -> None:
        """A poll did not find ``client_id``: logged at 1, 2, 4, ... misses in a row."""
        with self._lock:
            misses = self._misses[client_id] = self._misses.get(client_id, 0) + 1
        if misses & (misses - 1) == 0:
            log.warning(
                "venue_poll_order_not_found",
                exchange=exchange,
                client_order_id=client_id,
                misses_in_a_row=misses,
            )

    def note(self, o: VenueOrder, source: str) -> None:
        """Queue a report when the order's status or fills moved on (never back from its end)."""
        if not o.client_order_id:
            return
        with self._lock:
            self._misses.pop(o.client_order_id, None)  # found (a report or a poll): polled again
            prev_status, prev_filled = self._seen.get(o.client_order_id, ("", 0.0))
            if prev_status in TERMINAL:  # polled no more; an older answer never reopens it
                self._in_flight.pop(o.client_order_id, None)
                if o.status not in TERMINAL:
                    return
            if (o.status, o.filled) == (prev_status, prev_filled) or o.filled < prev_filled:
                return
            self._seen[o.client_order_id] = (o.status, o.filled)
            last_qty = o.filled - prev_filled
            self._queue.put(ExecutionReport(o, last_qty, o.average if last_qty else 0.0, source))
            if o.status in TERMINAL:
                self._in_flight.pop(o.client_order_id, None)

    def drain(self, timeout_s: float = 0.0) -> list[ExecutionReport]:
        """The reports queued since the last call (waits up to ``timeout_s`` for the first)."""
        out: list[ExecutionReport] = []
        try:
            out.append(
                self._queue.get(timeout=timeout_s) if timeout_s else self._queue.get_nowait()
            )
            while True:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return out


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


TRADES_PAGE = 1000
"""Binance's largest ``myTrades`` page (500 by default): one order can have more trades."""


def trade_pages(
    fetch: Callable[[dict[str, Any]], list[dict[str, Any]]],
    params: dict[str, Any],
    from_id: int = 0,
) -> list[VenueFill]:
    """Every trade ``fetch(params)`` lists, a page at a time from trade id ``fromId``.

    ``fetch`` asks for `TRADES_PAGE` trades with ``params`` and ``fromId``
    (Binance: trades with an id at or after it, ascending), first ``from_id``. A short page is the
    last; so is a page that brings no new trade (a venue that ignores ``fromId``)
    or trade ids that are not numbers.
    """
    out: list[VenueFill] = []
    seen: set[str] = set()
    while True:
        rows = fetch(params | {"fromId": from_id})
        page = [f for f in map(venue_fill, rows) if f.trade_id not in seen]
        out += page
        seen.update(f.trade_id for f in page)
        if len(rows) < TRADES_PAGE or not page or not all(f.trade_id.isdigit() for f in page):
            return out
        from_id = max(int(f.trade_id) for f in page) + 1
