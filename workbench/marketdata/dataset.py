"""Read a recorded tick dataset (`workbench.marketdata.recorder`) as one table."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

from workbench.exceptions import DataError
from workbench.marketdata.table import TickTable


def load_dataset(path: str | Path, *, symbol: str | None = None) -> TickTable:
    """Every tick under ``path``, ordered by time (ties keep the gateway's seq order).

    Args:
        path: The dataset folder (hive partitions ``symbol=.../date=...``).
        symbol: Only this symbol.

    Raises:
        DataError: no Parquet files, or files without the recorder's columns.
    """
    path = Path(path)
    if not any(path.rglob("*.parquet")):
        raise DataError(
            "cannot read file: a folder, and no recorded tick dataset (no Parquet files "
            "under symbol=.../date=...)",
            str(path),
        )
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        filt = pc.field("symbol") == symbol if symbol else None
        table = dataset.to_table(columns=["symbol", "ts_ns", "price", "size", "seq"], filter=filt)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"not a recorded tick dataset: {e}", str(path)) from e
    if table.num_rows == 0:
        raise DataError("no ticks in the dataset", str(path))
    table = table.sort_by([("ts_ns", "ascending"), ("seq", "ascending")])
    # Columns stay numpy (the table is columnar); only the symbols become strings.
    return TickTable(
        symbol=[str(s) for s in table.column("symbol").to_pylist()],
        ts_ns=table.column("ts_ns").to_numpy(),
        price=table.column("price").to_numpy(),
        size=table.column("size").to_numpy(),
    )
