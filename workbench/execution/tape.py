"""`MarketTape`: recorded ticks per symbol as arrays, for the simulator in a replay.

In a replay the simulated venue matches an order against the recorded ticks
that follow it, found here by time, not against whatever ticks happen to have
reached the executor: fast and wire replay therefore fill alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.marketdata.table import TickTable


@dataclass(frozen=True, slots=True)
class SymbolTape:
    """One symbol's ticks in time order, with bid and ask when the file has quotes."""

    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None

    def quote(self, k: int) -> tuple[float, float] | None:
        """``(bid, ask)`` of tick ``k``, or None without quotes."""
        if self.bid is None or self.ask is None:
            return None
        return float(self.bid[k]), float(self.ask[k])

    def index_of(self, ts_ns: int, price: float) -> int | None:
        """Index of the tick at ``ts_ns`` with ``price`` (a signal's tick); None if none is then.

        Files have runs of equal timestamps: the first tick of the run with
        that price, else the run's last tick.
        """
        lo = self.first_at_or_after(ts_ns)
        hi = self.first_after(ts_ns)
        if lo == hi:
            return None
        same = np.flatnonzero(self.price[lo:hi] == price)
        return lo + int(same[0]) if len(same) else hi - 1

    def first_at_or_after(self, ts_ns: int) -> int:
        """Index of the first tick at or after ``ts_ns`` (``len`` if none)."""
        return int(np.searchsorted(self.ts_ns, ts_ns, side="left"))

    def first_after(self, ts_ns: int) -> int:
        """Index of the first tick strictly after ``ts_ns`` (``len`` if none)."""
        return int(np.searchsorted(self.ts_ns, ts_ns, side="right"))

    def __len__(self) -> int:
        return len(self.ts_ns)


class MarketTape:
    """The ticks of a replay, by symbol."""

    def __init__(self, symbols: dict[str, SymbolTape]) -> None:
        self._symbols = symbols

    @classmethod
    def from_table(cls, table: TickTable) -> MarketTape:
        """Split a `TickTable` (rows in file order) into per-symbol arrays."""
        columns = [table.ts_ns, table.price, table.size]
        if table.bid is not None and table.ask is not None:
            columns += [table.bid, table.ask]
        out: dict[str, list[list[np.ndarray]]] = {}
        for sym, start, stop in table.symbol_runs():
            parts = out.setdefault(sym, [[] for _ in columns])
            for part, col in zip(parts, columns, strict=True):
                part.append(col[start:stop])
        tapes = {}
        for sym, parts in out.items():
            cols = [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]
            ts_a = cols[0]
            if len(ts_a) > 1 and not bool(np.all(ts_a[1:] >= ts_a[:-1])):
                order = np.argsort(ts_a, kind="stable")  # files are in time order; be sure
                cols = [c[order] for c in cols]
            tapes[sym] = SymbolTape(*cols)
        return cls(tapes)

    def symbol(self, symbol: str) -> SymbolTape | None:
        """The tape of ``symbol``, or None if the replay has no ticks of it."""
        return self._symbols.get(symbol)
