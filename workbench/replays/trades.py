"""Round trips: fills paired first-in first-out per symbol, grouped by entry and exit order.

A fill that closes part of a lot closes that part; a fill larger than the open
position closes it and opens the rest the other way. The pieces one entry
order and one exit order make are one round trip, however the venue split
their fills (an order filled in three pieces is one trade, not three). Each
piece carries its share of both fills' fees, by quantity, so a round trip's
``pnl_after_fees`` is what it made once its two orders' fees are paid. Lots
still open at the end are not trades.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.domain.accounting import is_drift
from workbench.replays.stats import utc

TRADE_COLUMNS = (
    "symbol",
    "side",
    "qty",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "pnl",
    "fees",
    "pnl_after_fees",
    "entry_order_id",
    "exit_order_id",
    "fills",
)
"""``pnl`` is before fees; ``fills`` counts the (entry, exit) fill pairs the round trip took."""


@dataclass(slots=True)
class _Lot:
    sign: int
    qty: float
    price: float
    ts_ns: int
    order_id: str
    fee_per_unit: float  # its fill's fee over that fill's qty
    size: float  # as it opened: the scale of its float drift


@dataclass(slots=True)
class _Trip:
    symbol: str
    side: str
    entry_order_id: str
    exit_order_id: str
    entry_ts: int
    exit_ts: int
    qty: float = 0.0
    entry_value: float = 0.0  # sum of qty x entry price
    exit_value: float = 0.0
    entry_prices: set[float] = field(default_factory=set)  # one: that price, exactly
    exit_prices: set[float] = field(default_factory=set)
    pnl: float = 0.0
    fees: float = 0.0
    fills: int = 0


def fifo_trades(fills: pd.DataFrame) -> pd.DataFrame:
    """The round trips of ``fills`` (a `stats.fills_frame`), in the order they first close."""
    trips: dict[tuple[str, str, str], _Trip] = {}
    books: dict[str, deque[_Lot]] = {}
    # Plain lists: iterating pandas' Arrow-backed string columns costs a call per value.
    cols = zip(
        fills["fill_id"].tolist(),
        fills["order_id"].tolist(),
        fills["symbol"].tolist(),
        fills["side"].tolist(),
        fills["qty"].tolist(),
        fills["price"].tolist(),
        fills["fee"].tolist(),
        fills["ts_ns"].tolist(),
        strict=True,
    )
    for fill_id, order_id, symbol, side, qty, price, fee, ts_ns in cols:
        order_id = order_id or fill_id  # a fill without its order is a trade of its own
        book = books.setdefault(symbol, deque())
        sign = 1 if side == "BUY" else -1
        fee_per_unit = float(fee) / float(qty) if qty else 0.0
        left = float(qty)
        while not is_drift(left, qty) and book and book[0].sign != sign:
            lot = book[0]
            q = min(left, lot.qty)
            key = (symbol, lot.order_id, order_id)
            trip = trips.get(key)
            if trip is None:
                side_text = "LONG" if lot.sign > 0 else "SHORT"
                trip = trips[key] = _Trip(symbol, side_text, lot.order_id, order_id, lot.ts_ns, 0)
            trip.entry_ts = min(trip.entry_ts, lot.ts_ns)
            trip.exit_ts = max(trip.exit_ts, int(ts_ns))
            trip.qty += q
            trip.entry_value += q * lot.price
            trip.exit_value += q * price
            trip.entry_prices.add(lot.price)
            trip.exit_prices.add(float(price))
            trip.pnl += (price - lot.price) * q * lot.sign
            trip.fees += q * (lot.fee_per_unit + fee_per_unit)
            trip.fills += 1
            lot.qty -= q
            left -= q
            if is_drift(lot.qty, lot.size, q):  # closed, but for a float's drift
                book.popleft()
        if not is_drift(left, qty):
            book.append(_Lot(sign, left, float(price), int(ts_ns), order_id, fee_per_unit, left))
    return _frame(list(trips.values()))


def _price(prices: set[float], value: float, qty: float) -> float:
    """The price of a round trip's side: the qty-weighted mean of its pieces' prices."""
    return next(iter(prices)) if len(prices) == 1 else value / qty


def _frame(trips: list[_Trip]) -> pd.DataFrame:
    qty = np.array([t.qty for t in trips], dtype=np.float64)
    pnl = np.array([t.pnl for t in trips], dtype=np.float64)
    fees = np.array([t.fees for t in trips], dtype=np.float64)
    df = pd.DataFrame(
        {
            "symbol": pd.Series([t.symbol for t in trips], dtype=str),
            "side": pd.Series([t.side for t in trips], dtype=str),
            "qty": qty,
            "entry_ts": utc([t.entry_ts for t in trips]),
            "entry_price": np.array(
                [_price(t.entry_prices, t.entry_value, t.qty) for t in trips], dtype=np.float64
            ),
            "exit_ts": utc([t.exit_ts for t in trips]),
            "exit_price": np.array(
                [_price(t.exit_prices, t.exit_value, t.qty) for t in trips], dtype=np.float64
            ),
            "pnl": pnl,
            "fees": fees,
            "pnl_after_fees": pnl - fees,
            "entry_order_id": pd.Series([t.entry_order_id for t in trips], dtype=str),
            "exit_order_id": pd.Series([t.exit_order_id for t in trips], dtype=str),
            "fills": np.array([t.fills for t in trips], dtype=np.int64),
        }
    )
    return df[list(TRADE_COLUMNS)]
