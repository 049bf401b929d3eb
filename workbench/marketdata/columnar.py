"""The vectorised path for Parquet tick files: whole columns through numpy, no per-row Python.

`vectorised_table` reads the needed columns with pyarrow, converts them with
Arrow casts and checks every rule of the row path (no nulls, finite prices
> 0, sizes finite and >= 0, bid <= ask, non-empty symbols, timestamps in
order) as numpy reductions. A clean file, the common case, never reaches
Python per row. When any check fails it returns None and the loader takes the
row-by-row path, which names the first bad row and column exactly as before
(or repairs): errors and repairs are unchanged, only clean files got faster.
"""

from __future__ import annotations

import sys
from typing import Any

from workbench.marketdata.table import SymbolColumn, TickTable


def vectorised_table(file: Any, roles: dict[str, str], price_mode: str) -> TickTable | None:
    """The whole file as a `TickTable` if every row is valid, else None.

    Args:
        file: An open ``pyarrow.parquet.ParquetFile``.
        roles: Role (``ts``, ``price``, ``bid``, ``ask``, ``size``, ``symbol``)
            -> column name, as the loader's layout has them.
        price_mode: ``mid``, ``bid`` or ``ask`` when there is no price column.
    """
    import numpy as np

    names = list(dict.fromkeys(roles.values()))
    arrow = file.read(columns=names)
    cols = valid_columns(arrow, roles, price_mode)
    if cols is None:
        return None
    ts, price, size, symbol = cols
    n = len(ts)
    quotes = {}
    if "bid" in roles and "ask" in roles:  # checked by valid_columns: numbers, bid <= ask
        quotes = {q: arrow_floats(arrow.column(roles[q])) for q in ("bid", "ask")}
    return TickTable(
        symbol if symbol is not None else SymbolColumn.repeat("", n),  # the loader names it
        ts,
        price,
        size if size is not None else np.ones(n),
        **quotes,
    )


def arrow_floats(array: Any) -> Any:
    """A numeric (possibly dictionary-encoded) Arrow column as a float64 numpy array."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return as_numpy(array.cast(pa.float64(), safe=False), np.float64)


def valid_columns(table: Any, roles: dict[str, str], price_mode: str) -> tuple | None:
    """``(ts_ns, price, size | None, symbols | None)`` of an Arrow table or record batch.

    ``ts_ns`` is int64 and ``price``/``size`` float64 numpy arrays; ``symbols``
    a `SymbolColumn`. None when any row breaks a rule (see the module
    docstring), including timestamps going backwards within ``table``.
    """
    import numpy as np
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for role, name in roles.items():
        array = table.column(name)
        if array.null_count:
            return None
        kind = array.type
        if pa.types.is_dictionary(kind):
            array = array.cast(kind.value_type)
            kind = array.type
        if role == "symbol":
            if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
                try:  # text without the UTF8 annotation (Hive, Impala, pandas bytes)
                    text = pa.large_string() if pa.types.is_large_binary(kind) else pa.string()
                    array = array.cast(text)
                except pa.ArrowInvalid:
                    return None  # not UTF-8: the row path names the row
                kind = array.type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                return None
            cols[role] = _symbols(array)
            continue
        if role == "ts":
            if pa.types.is_timestamp(kind):
                array = array.cast(pa.timestamp("ns", tz=kind.tz)).cast(pa.int64())
            elif pa.types.is_integer(kind):
                array = array.cast(pa.int64())
            else:
                return None
            cols[role] = as_numpy(array, np.int64)
            continue
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            return None  # text or decimals: the row path parses and reports them
        cols[role] = as_numpy(array.cast(pa.float64(), safe=False), np.float64)
    return checked_columns(cols, price_mode)


def checked_columns(cols: dict[str, Any], price_mode: str) -> tuple | None:
    """The rules of the row path on numpy columns keyed by role (see `valid_columns`).

    ``cols["ts"]`` is int64 nanoseconds, the numeric roles are numbers and
    ``cols["symbol"]`` (if any) a `SymbolColumn`.
    """
    import numpy as np

    ts = cols["ts"]
    with np.errstate(invalid="ignore"):
        for role in ("price", "bid", "ask"):
            if role in cols and not bool(np.all((cols[role] > 0) & np.isfinite(cols[role]))):
                return None
        if "bid" in cols and "ask" in cols and not bool(np.all(cols["bid"] <= cols["ask"])):
            return None
        if "size" in cols and not bool(np.all((cols["size"] >= 0) & np.isfinite(cols["size"]))):
            return None
    if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        return None
    if len(ts) and int(ts.min()) < 0:  # before 1970 (int64 cannot pass 2262)
        return None
    if "price" in cols:
        price = cols["price"]
    elif price_mode == "mid":
        with np.errstate(over="ignore"):
            price = (cols["bid"] + cols["ask"]) / 2  # the same IEEE operations as the row path
        if not bool(np.all(np.isfinite(price))):
            return None  # an overflowing mid: the row path names it
    else:
        price = cols[price_mode]
    symbol = cols.get("symbol")
    if symbol is not None and (symbol.count("") or any(s != s.strip() for s in symbol.names)):
        return None  # an empty symbol, or spaces around one: the row path names it
    return ts, price, cols.get("size"), symbol


def _symbols(array: Any) -> SymbolColumn:
    """The symbols as codes into their distinct (interned) strs."""
    import numpy as np
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = array.dictionary_encode()
    values = [sys.intern(s) for s in encoded.dictionary.to_pylist()]
    if len(values) == 1:
        return SymbolColumn.repeat(values[0], len(encoded))
    indices = encoded.indices
    codes = as_numpy(indices, np.dtype(f"int{indices.type.bit_width}"))
    return SymbolColumn(values, codes.astype(np.int32, copy=False))


def as_numpy(array: Any, dtype: Any) -> Any:
    """A null-free primitive Arrow array as a numpy view of its data buffer.

    ``Array.to_numpy`` imports pandas (about 45 MB in the gateway); the
    buffer view does not, and copies nothing for a single chunk.
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    dtype = np.dtype(dtype)
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )
