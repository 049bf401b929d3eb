"""`TickTable`: a whole tick file in memory, as plain Python columns.

No pandas and no pyarrow here: the gateway imports this and must stay small.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

from workbench.domain.model import TickBatch


@dataclass(slots=True)
class TickTable:
    """Ticks of one or more symbols in file order, one list per column.

    Row ``k`` is ``(symbol[k], ts_ns[k], price[k], size[k])``. Tables compare
    equal when all four columns are equal.

    Raises:
        ValueError: the columns differ in length.
    """

    symbol: list[str]
    ts_ns: list[int]
    price: list[float]
    size: list[float]
    notes: list[str] = field(default_factory=list, compare=False)
    """What `load_ticks(repair=True)` changed, one human-readable line each."""

    def __post_init__(self) -> None:
        n = len(self.ts_ns)
        lengths = {len(self.symbol), n, len(self.price), len(self.size)}
        if len(lengths) != 1:
            raise ValueError(
                f"columns differ in length: symbol={len(self.symbol)}, ts_ns={n}, "
                f"price={len(self.price)}, size={len(self.size)}"
            )

    def __len__(self) -> int:
        return len(self.ts_ns)

    @classmethod
    def empty(cls) -> TickTable:
        """A table with no rows."""
        return cls([], [], [], [])

    def symbol_runs(self) -> list[tuple[str, int, int]]:
        """Maximal runs of one symbol as ``(symbol, start, stop)``, in row order."""
        runs = []
        start = 0
        # groupby walks the list in C; only the (few) runs reach Python.
        for sym, group in groupby(self.symbol):
            stop = start + len(list(group))
            runs.append((sym, start, stop))
            start = stop
        return runs

    def batches(self, batch_size: int, first_seq: int = 1) -> Iterator[TickBatch]:
        """Cut the table into `TickBatch`es in row order.

        A batch holds at most ``batch_size`` rows and a single symbol: a new
        batch starts whenever the symbol changes. Row ``k`` gets sequence
        number ``first_seq + k``, so seqs run contiguously across batches.

        Raises:
            ValueError: ``batch_size`` is less than 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ts, price, size = self.ts_ns, self.price, self.size
        n = len(ts)
        if n and self.symbol.count(self.symbol[0]) == n:
            runs = [(self.symbol[0], 0, n)]  # one symbol: skip the run scan
        else:
            runs = self.symbol_runs()
        for sym, start, stop in runs:
            for i in range(start, stop, batch_size):
                j = min(i + batch_size, stop)
                yield TickBatch(sym, first_seq + i, ts[i:j], price[i:j], size[i:j])
