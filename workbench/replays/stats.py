"""The numbers behind a `ReplayResult`: frames, trades, books (the equity curve is in equity.py).

Two accounting rules meet here, on purpose:

* Positions, realised PnL and the equity curve replay the fills through
  `workbench.domain.accounting.Portfolio` (average-cost method), so a report
  agrees with what the executor books.
* The trade list (`workbench.replays.trades`) pairs fills first-in first-out
  per symbol, because a round trip needs an entry and an exit; a trade's
  ``pnl`` is FIFO PnL.

The two methods only book PnL at different moments: once every position is
flat again, the trades' PnL sums to the realised PnL (both are sale proceeds
minus purchase costs). While a position is open they may differ.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.domain.accounting import Portfolio
from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable

FILL_COLUMNS = (
    "fill_id",
    "order_id",
    "signal_id",
    "strategy_id",
    "symbol",
    "side",
    "qty",
    "price",
    "fee",
    "ts",
    "ts_ns",
)
ORDER_COLUMNS = (
    "order_id",
    "signal_id",
    "symbol",
    "side",
    "qty",
    "price",
    "ts_ns",
    "status",
    "reason",
)
POSITION_COLUMNS = ("symbol", "qty", "avg_price", "realized_pnl", "last_price", "unrealized_pnl")


def utc(ts_ns: np.ndarray | list[int]) -> pd.DatetimeIndex:
    """Integer epoch nanoseconds as UTC datetimes (exact: ns resolution)."""
    return pd.to_datetime(np.asarray(ts_ns, dtype=np.int64), unit="ns", utc=True)


_SIDE_TEXT = {s.value: s.value for s in Side}
_BUY, _SELL = Side.BUY, Side.SELL


def side_text(side: Side | str) -> str:
    """``"BUY"`` or ``"SELL"`` for a `Side` or its value (a dict look-up, not ``Side(...)``).

    Raises:
        ValueError: ``side`` is neither.
    """
    if side is _BUY or side is _SELL:  # identity first: hashing a member calls Python code
        return side.value
    text = _SIDE_TEXT.get(side)
    return text if text is not None else Side(side).value


def strategy_of(signal_id: str) -> str:
    """The strategy id in a ``f"{strategy_id}:{seq}"`` signal id."""
    return signal_id.rsplit(":", 1)[0]


# -- ticks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolTicks:
    """Tick columns as numpy arrays, grouped by symbol, each group in time order.

    Group ``g`` is rows ``bounds[g]:bounds[g + 1]`` and holds ``symbols[g]``
    (symbols sorted). Ticks with equal timestamps keep their file order.
    """

    symbols: list[str]
    bounds: np.ndarray
    ts_ns: np.ndarray
    price: np.ndarray

    @classmethod
    def from_table(cls, ticks: TickTable) -> SymbolTicks:
        n = len(ticks)
        ts = np.asarray(ticks.ts_ns, dtype=np.int64)
        price = np.asarray(ticks.price, dtype=np.float64)
        if n and ticks.symbol.count(ticks.symbol[0]) == n:
            symbols = [ticks.symbol[0]]
            order = None if bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
            bounds = np.array([0, n])
        else:
            codes, uniques = pd.factorize(np.asarray(ticks.symbol, dtype=object), sort=True)
            symbols = [str(s) for s in uniques]
            order = np.lexsort((ts, codes))  # stable: file order survives on equal (code, ts)
            bounds = np.searchsorted(codes[order], np.arange(len(symbols) + 1))
        if order is not None:
            ts, price = ts[order], price[order]
        return cls(symbols, bounds, ts, price)

    def group(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ts_ns, price)`` of one symbol in time order (empty if it never ticked)."""
        try:
            g = self.symbols.index(symbol)
        except ValueError:
            return self.ts_ns[:0], self.price[:0]
        lo, hi = self.bounds[g], self.bounds[g + 1]
        return self.ts_ns[lo:hi], self.price[lo:hi]


# -- fills, orders, books -----------------------------------------------------------------------


def fills_frame(fills: list[Fill]) -> pd.DataFrame:
    """Fills as a frame, in the order given (callers pass them sorted)."""
    ts_ns = np.array([int(f.ts_ns) for f in fills], dtype=np.int64)
    return pd.DataFrame(
        {
            "fill_id": pd.Series([f.id for f in fills], dtype=str),
            "order_id": pd.Series([f.order_id for f in fills], dtype=str),
            "signal_id": pd.Series([f.signal_id for f in fills], dtype=str),
            "strategy_id": pd.Series([strategy_of(f.signal_id) for f in fills], dtype=str),
            "symbol": pd.Series([f.symbol for f in fills], dtype=str),
            "side": pd.Series([side_text(f.side) for f in fills], dtype=str),
            "qty": np.array([f.qty for f in fills], dtype=np.float64),
            "price": np.array([f.price for f in fills], dtype=np.float64),
            # In quote units, as every figure made of them (a third asset's is not valued).
            "fee": np.array([f.quote_fee for f in fills], dtype=np.float64),
            "ts": utc(ts_ns),
            "ts_ns": ts_ns,
        },
        columns=list(FILL_COLUMNS),
    )


def orders_frame(orders: list[dict]) -> pd.DataFrame:
    """Orders as the journal has them, sorted by ``(ts_ns, order_id)``.

    Only `ORDER_COLUMNS` are kept: the journal's ``updated_ns`` is wall-clock
    time and would make two replays of the same data differ.
    """
    df = pd.DataFrame(list(orders), columns=list(ORDER_COLUMNS))
    for col in ("side", "status"):  # enums become their plain string values
        values = df[col].tolist()
        if any(isinstance(v, enum.Enum) for v in values):
            df[col] = pd.Series([getattr(v, "value", v) for v in values], dtype=object)
    df = df.astype({"qty": np.float64, "price": np.float64})
    if df["ts_ns"].notna().all():
        df["ts_ns"] = df["ts_ns"].astype(np.int64)
    for col in ("order_id", "signal_id", "symbol", "side", "status", "reason"):
        if df[col].notna().all():
            df[col] = df[col].astype(str)
    return df.sort_values(["ts_ns", "order_id"], kind="stable").reset_index(drop=True)


@dataclass(slots=True)
class BookHistory:
    """One symbol's `Position` state after each of its fills, in fill order."""

    ts_ns: list[int] = field(default_factory=list)
    qty: list[float] = field(default_factory=list)
    avg_price: list[float] = field(default_factory=list)
    realized_pnl: list[float] = field(default_factory=list)
    fill_price: list[float] = field(default_factory=list)
    fees: list[float] = field(default_factory=list)
    """Fees paid on the symbol so far (cumulative)."""


def booking_order(f: Fill) -> tuple[int, str, int, int, str]:
    """Sort key of fills in the order they happened: time, then strategy, signal seq, fill number.

    A strategy's orders reach the venue in seq order and an order's fills come
    in number order, so fills of one time are booked so (as text, ``s:10``
    came before ``s:9``). Strategies of one time go by id: a fixed order, the
    same in fast and wire replay.
    """
    strategy, _, seq = f.signal_id.rpartition(":")
    prefix = f"F-{f.signal_id}-"
    n = f.id[len(prefix) :] if f.id.startswith(prefix) else "1"
    return (
        f.ts_ns,
        strategy,
        int(seq) if seq.isdigit() else -1,
        int(n) if n.isdigit() else 1,
        f.id,
    )


def replay_books(fills: list[Fill]) -> tuple[Portfolio, dict[str, BookHistory]]:
    """Apply time-ordered fills to a `Portfolio`, recording each symbol's state after every fill."""
    portfolio = Portfolio()
    history: dict[str, BookHistory] = {}
    for f in fills:
        portfolio.apply(f)
        pos = portfolio.positions[f.symbol]
        h = history.setdefault(f.symbol, BookHistory())
        h.ts_ns.append(int(f.ts_ns))
        h.qty.append(pos.qty)
        h.avg_price.append(pos.avg_price)
        h.realized_pnl.append(pos.realized_pnl)
        h.fill_price.append(float(f.price))
        h.fees.append(pos.fees)  # in quote units (a third asset's fees are not valued)
    return portfolio, history


def positions_frame(
    portfolio: Portfolio, history: dict[str, BookHistory], ticks: SymbolTicks
) -> pd.DataFrame:
    """One row per traded symbol (sorted), marked at its last tick price.

    A symbol that never ticked is marked at its last fill price (``last_price``
    then holds that), as the equity curve does.
    """
    rows = []
    for symbol in sorted(portfolio.positions):
        pos = portfolio.positions[symbol]
        _, prices = ticks.group(symbol)
        mark = float(prices[-1]) if len(prices) else history[symbol].fill_price[-1]
        rows.append((symbol, pos.qty, pos.avg_price, pos.realized_pnl, mark, pos.unrealized(mark)))
    df = pd.DataFrame(rows, columns=list(POSITION_COLUMNS))
    df["symbol"] = df["symbol"].astype(str)
    return df.astype({c: np.float64 for c in POSITION_COLUMNS[1:]})


# -- equity -------------------------------------------------------------------------------------


def rounded(x: float | None) -> float | None:
    """A float fit for stable JSON: 10 decimal places, no negative zero."""
    return None if x is None else round(float(x), 10) + 0.0


def json_ready(obj: Any) -> Any:
    """``obj`` with every infinite float (in dicts and lists) as ``"+inf"``/``"-inf"``, NaN None.

    JSON has no infinity: Python would write a bare ``Infinity``, which strict
    readers refuse. A ratio over a zero denominator is ``inf`` in memory and
    ``"+inf"`` in the files, told apart from a ratio there is none of (null);
    `from_json` reads it back.
    """
    if isinstance(obj, float):
        if math.isinf(obj):
            return "+inf" if obj > 0 else "-inf"
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return obj


def from_json(value: Any) -> Any:
    """A figure as `json_ready` wrote it: ``"+inf"``/``"-inf"`` are the floats again."""
    if isinstance(value, str):
        return {"+inf": math.inf, "-inf": -math.inf}.get(value, value)
    return value


# -- ratios -------------------------------------------------------------------------------------

NOISE = 1e-9
"""A figure within ``NOISE`` of zero, relative to its data's scale, is zero.

Prices in binary floats make equal trades differ in the 15th digit: their
stdev is ~1e-15, not 0, and a mean over it would be a ratio of 10^12."""


def is_noise(x: float, scale: float) -> bool:
    """Whether ``x`` is zero but for float noise on data whose largest ``|value|`` is ``scale``."""
    return abs(x) <= NOISE * abs(scale)


def unbounded(numerator: float, scale: float) -> float | None:
    """A ratio whose denominator is zero: ``+inf``/``-inf`` by ``numerator``'s sign,
    None when that is (within `NOISE`) zero too."""
    return None if is_noise(numerator, scale) else math.copysign(math.inf, numerator)
