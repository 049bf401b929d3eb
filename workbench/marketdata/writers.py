"""`write_ticks`: save a `TickTable` as CSV or Parquet, readable by `load_ticks`.

The CSV has the header ``ts_ns,symbol,price,size`` (then ``bid,ask`` when the
table keeps quotes) and writes floats with
``repr``, the shortest text that reads back as the same float, so a table
survives a CSV round trip exactly and the same table gives the same bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path

from workbench.marketdata.table import TickTable

CSV_COLUMNS = ("ts_ns", "symbol", "price", "size")


def write_ticks(table: TickTable, path: str | Path) -> Path:
    """Write ``table`` to ``path``; the suffix (.csv, .parquet or .pq) picks the format.

    Missing parent folders are created.

    Raises:
        ValueError: the suffix names no supported format.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"No tick file format for suffix {suffix!r}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            # csv writes floats with str(), which is repr() in Python 3.
            columns: tuple = (table.ts_ns, table.symbol, table.price, table.size)
            if table.bid is not None:
                writer.writerow((*CSV_COLUMNS, "bid", "ask"))
                columns = (*columns, table.bid, table.ask)
            else:
                writer.writerow(CSV_COLUMNS)
            writer.writerows(zip(*(c.tolist() for c in columns), strict=True))
    else:
        from workbench.marketdata.parquet_io import write_parquet

        write_parquet(table, path)
    return path
