"""`TickTable`: a whole tick file in memory, as numpy columns.

No pandas and no pyarrow here: the gateway imports this and must stay small.
Timestamps are an int64 array, prices and sizes float64 arrays, and symbols a
`SymbolColumn` (one small code per row into the few distinct symbols). Only
the batches handed to strategies become Python lists, one batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workbench.domain.model import TickBatch


class SymbolColumn:
    """One symbol per row, stored as int32 codes into the distinct symbols.

    Behaves like a read-only list of str: ``len``, indexing (a slice or an
    index array gives a `SymbolColumn`), iteration, ``count``, ``==`` with a
    list or another column, and ``np.asarray`` (an object array).
    """

    __slots__ = ("codes", "names")

    def __init__(self, names: Sequence[str], codes: np.ndarray) -> None:
        self.names: list[str] = list(names)
        self.codes: np.ndarray = codes

    @classmethod
    def of(cls, symbols: Iterable[str]) -> SymbolColumn:
        """A column of ``symbols`` (a `SymbolColumn` is returned as is)."""
        if isinstance(symbols, SymbolColumn):
            return symbols
        values = symbols if isinstance(symbols, list) else list(symbols)
        if not values:
            return cls([], np.zeros(0, np.int32))
        if values.count(values[0]) == len(values):
            return cls.repeat(values[0], len(values))
        index: dict[str, int] = {}
        codes = np.fromiter(
            (index.setdefault(s, len(index)) for s in values), np.int32, len(values)
        )
        return cls(list(index), codes)

    @classmethod
    def concat(cls, columns: Sequence[SymbolColumn]) -> SymbolColumn:
        """The columns one after the other."""
        index: dict[str, int] = {}
        parts = []
        for col in columns:
            remap = np.array([index.setdefault(s, len(index)) for s in col.names], np.int32)
            parts.append(remap[col.codes] if len(remap) else col.codes)
        return cls(list(index), np.concatenate(parts) if parts else np.zeros(0, np.int32))

    @classmethod
    def repeat(cls, symbol: str, n: int) -> SymbolColumn:
        """``symbol`` on ``n`` rows."""
        return cls([symbol], np.zeros(n, np.int32))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return self.names[int(self.codes[key])]
        return SymbolColumn(self.names, self.codes[key])

    def __iter__(self) -> Iterator[str]:
        names = self.names
        if len(names) == 1:
            return iter([names[0]] * len(self.codes))
        return map(names.__getitem__, self.codes.tolist())

    def tolist(self) -> list[str]:
        """The symbols as a list of str (shared objects)."""
        return list(self)

    def count(self, symbol: str) -> int:
        """Rows holding ``symbol``."""
        if symbol not in self.names:
            return 0
        return int(np.count_nonzero(self.codes == self.names.index(symbol)))

    def runs(self) -> list[tuple[str, int, int]]:
        """Maximal runs of one symbol as ``(symbol, start, stop)``, in row order."""
        n = len(self.codes)
        if n == 0:
            return []
        if len(self.names) == 1:
            return [(self.names[0], 0, n)]
        edges = (np.flatnonzero(self.codes[1:] != self.codes[:-1]) + 1).tolist()
        starts, stops = [0, *edges], [*edges, n]
        names, codes = self.names, self.codes
        return [(names[int(codes[a])], a, b) for a, b in zip(starts, stops, strict=True)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.array(self.names, dtype=object)[self.codes]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SymbolColumn):
            return len(self) == len(other) and self.tolist() == other.tolist()
        if isinstance(other, list | tuple):
            return self.tolist() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SymbolColumn({self.names!r}, {len(self)} rows)"


class TickTable:
    """Ticks of one or more symbols in file order, one column each.

    Row ``k`` is ``(symbol[k], ts_ns[k], price[k], size[k])``. Any sequences
    are accepted and stored as ``int64``/``float64`` arrays and a
    `SymbolColumn`. Quote files also keep ``bid`` and ``ask`` (float64 arrays,
    both or neither; None when the file has no quotes), for a simulator that
    charges the spread. Tables compare equal when all columns are equal;
    ``notes`` (what `load_ticks(repair=True)` changed, one line each) do not count.

    Raises:
        ValueError: the columns differ in length, or only one of bid and ask is given.
    """

    __slots__ = ("ask", "bid", "notes", "price", "size", "symbol", "ts_ns")

    def __init__(
        self,
        symbol: Iterable[str],
        ts_ns: ArrayLike,
        price: ArrayLike,
        size: ArrayLike,
        notes: list[str] | None = None,
        *,
        bid: ArrayLike | None = None,
        ask: ArrayLike | None = None,
    ) -> None:
        self.symbol = SymbolColumn.of(symbol)
        self.ts_ns: np.ndarray = np.asarray(ts_ns, dtype=np.int64)
        self.price: np.ndarray = np.asarray(price, dtype=np.float64)
        self.size: np.ndarray = np.asarray(size, dtype=np.float64)
        self.notes: list[str] = notes if notes is not None else []
        if (bid is None) != (ask is None):
            raise ValueError("bid and ask go together: give both or neither")
        self.bid: np.ndarray | None = None if bid is None else np.asarray(bid, dtype=np.float64)
        self.ask: np.ndarray | None = None if ask is None else np.asarray(ask, dtype=np.float64)
        n = len(self.ts_ns)
        lengths = {len(self.symbol), n, len(self.price), len(self.size)}
        quotes = ""
        if self.bid is not None and self.ask is not None:
            lengths |= {len(self.bid), len(self.ask)}
            quotes = f", bid={len(self.bid)}, ask={len(self.ask)}"
        if len(lengths) != 1:
            raise ValueError(
                f"columns differ in length: symbol={len(self.symbol)}, ts_ns={n}, "
                f"price={len(self.price)}, size={len(self.size)}{quotes}"
            )

    @property
    def has_quotes(self) -> bool:
        """Whether the table keeps bid and ask."""
        return self.bid is not None

    def __repr__(self) -> str:
        return f"TickTable({len(self)} rows, symbols {self.symbol.names!r})"

    def __len__(self) -> int:
        return len(self.ts_ns)

    @property
    def span_s(self) -> float:
        """Seconds from the first tick to the last (rows in time order; 0 for fewer than 2)."""
        return (int(self.ts_ns[-1]) - int(self.ts_ns[0])) / 1e9 if len(self) > 1 else 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TickTable):
            return NotImplemented
        return (
            self.symbol == other.symbol
            and np.array_equal(self.ts_ns, other.ts_ns)
            and np.array_equal(self.price, other.price, equal_nan=True)
            and np.array_equal(self.size, other.size, equal_nan=True)
            and _same(self.bid, other.bid)
            and _same(self.ask, other.ask)
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def empty(cls) -> TickTable:
        """A table with no rows."""
        return cls([], [], [], [])

    def rows(self, lo: int, hi: int) -> TickTable:
        """Rows ``lo:hi`` as a new table sharing this one's memory."""
        return self._pick(slice(lo, hi), None)

    def take(self, order: np.ndarray) -> TickTable:
        """The rows at the indices ``order``, as a new table (notes kept)."""
        return self._pick(order, self.notes)

    def _pick(self, key: Any, notes: list[str] | None) -> TickTable:
        quotes = (
            {"bid": self.bid[key], "ask": self.ask[key]}  # type: ignore[index]
            if self.bid is not None
            else {}
        )
        return TickTable(
            self.symbol[key], self.ts_ns[key], self.price[key], self.size[key], notes, **quotes
        )

    def symbol_runs(self) -> list[tuple[str, int, int]]:
        """Maximal runs of one symbol as ``(symbol, start, stop)``, in row order."""
        return self.symbol.runs()

    def batches(self, batch_size: int, first_seq: int = 1) -> Iterator[TickBatch]:
        """Cut the table into `TickBatch`es in row order.

        A batch holds at most ``batch_size`` rows and a single symbol: a new
        batch starts whenever the symbol changes. Row ``k`` gets sequence
        number ``first_seq + k``, so seqs run contiguously across batches.
        Each batch's columns are fresh Python lists.

        Raises:
            ValueError: ``batch_size`` is less than 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ts, price, size = self.ts_ns, self.price, self.size
        for sym, start, stop in self.symbol.runs():
            for i in range(start, stop, batch_size):
                j = min(i + batch_size, stop)
                yield TickBatch(
                    sym, first_seq + i, ts[i:j].tolist(), price[i:j].tolist(), size[i:j].tolist()
                )


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(a, b, equal_nan=True)
