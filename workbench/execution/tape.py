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
    """One symbol's ticks in time order."""

    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray

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
        out: dict[str, tuple[list, list, list]] = {}
        for sym, start, stop in table.symbol_runs():
            cols = out.setdefault(sym, ([], [], []))
            cols[0].append(np.asarray(table.ts_ns[start:stop], dtype=np.int64))
            cols[1].append(np.asarray(table.price[start:stop], dtype=np.float64))
            cols[2].append(np.asarray(table.size[start:stop], dtype=np.float64))
        tapes = {}
        for sym, (ts, px, sz) in out.items():
            one = len(ts) == 1
            ts_a = ts[0] if one else np.concatenate(ts)
            px_a = px[0] if one else np.concatenate(px)
            sz_a = sz[0] if one else np.concatenate(sz)
            if len(ts_a) > 1 and not bool(np.all(ts_a[1:] >= ts_a[:-1])):
                order = np.argsort(ts_a, kind="stable")  # files are in time order; be sure
                ts_a, px_a, sz_a = ts_a[order], px_a[order], sz_a[order]
            tapes[sym] = SymbolTape(ts_a, px_a, sz_a)
        return cls(tapes)

    def symbol(self, symbol: str) -> SymbolTape | None:
        """The tape of ``symbol``, or None if the replay has no ticks of it."""
        return self._symbols.get(symbol)
