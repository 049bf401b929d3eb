"""Read a recorded tick dataset (`workbench.marketdata.recorder`) as one table.

Two readers give the same table. pyarrow.dataset reads any dataset; the
replay runners use a numpy-only one (``lite=True``) built on `parquet_lite`,
because importing pyarrow.dataset alone takes a gateway from about 60 MB of
RSS to about 150 MB. It reads what the recorder writes: hive partitions
``symbol=<uri-escaped>/date=...`` (the symbol is only in the path, not in the
files), ZSTD-compressed files with int64 ``ts_ns`` and ``seq`` and float
``price`` and ``size``. It lists and orders the files as pyarrow.dataset does
(every file under the folder except names starting with ``.`` or ``_``,
sorted by path) and sorts by ``(ts_ns, seq)`` stably, so ties keep the same
order. Both read the partition values as text, with the recorder's own
partitioning schema, so a symbol such as ``0700`` stays ``0700``. Anything
else (a snappy file from an older recording, nulls, a null partition, a stray
file) is left to pyarrow, with a log line saying why: a replay of an old
recording still runs, in a heavier gateway.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import structlog

from workbench.exceptions import DataError
from workbench.marketdata.columns import INVALID_PRICE, INVALID_SIZE, TS_OUT_OF_RANGE, Problem
from workbench.marketdata.parquet_lite import HasNulls, LiteParquet, Unsupported
from workbench.marketdata.repairs import RepairLog
from workbench.marketdata.table import SymbolColumn, TickTable

_IGNORED = (".", "_")  # pyarrow.dataset's default selector_ignore_prefixes
_KINDS = {"ts_ns": "int", "price": "float", "size": "float", "seq": "int"}
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_log = structlog.get_logger(__name__)


class _NotLite(Exception):
    """The dataset needs pyarrow (the message says why)."""


def load_dataset(
    path: str | Path, *, symbol: str | None = None, lite: bool = False, repair: bool = False
) -> TickTable:
    """Every tick under ``path``, ordered by time (ties keep the gateway's seq order).

    Args:
        path: The dataset folder (hive partitions ``symbol=.../date=...``).
        symbol: Only this symbol.
        lite: Read it without pyarrow when the files allow (see the module
            docstring); otherwise log why and read it with pyarrow.
        repair: Drop rows with a time stamp before 1970, a price not finite
            and > 0 or a size not finite and >= 0, each named in
            `TickTable.notes` and a ``ticks_repaired`` log line, instead of
            raising.

    Raises:
        DataError: no Parquet files, files without the recorder's columns, or
            (without ``repair``) a bad row, named by its file and row in it.
    """
    path = Path(path)
    if not any(path.rglob("*.parquet")):
        raise DataError(
            "cannot read file: a folder, and no recorded tick dataset (no Parquet files "
            "under symbol=.../date=...)",
            str(path),
        )
    notes: list[str] = []
    table = None
    if lite:
        try:
            table = _load_lite(path, symbol, notes if repair else None)
        except _NotLite as e:
            _log.warning("dataset_read_with_pyarrow", path=str(path), reason=str(e))
    if table is None:
        table = _load_arrow(path, symbol, notes if repair else None)
    table.notes = notes
    return table


def _load_arrow(path: Path, symbol: str | None, notes: list[str] | None) -> TickTable:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from workbench.marketdata.recorder import PARTITIONING

    try:
        # Text partitions, as the recorder writes them: inferred, '0700' would become 700.
        hive = ds.partitioning(PARTITIONING, flavor="hive")
        dataset = ds.dataset(path, format="parquet", partitioning=hive)
        filt = pc.field("symbol") == symbol if symbol else None
        columns = ["symbol", "ts_ns", "price", "size", "seq"]
        table = dataset.to_table(columns=columns, filter=filt)
        if _any_bad(table):
            # Bad rows are named by file and row there: read again with each row's file
            # (only now: one Python string per row, 1.4 GB for 2M rows instead of 0.6).
            table = dataset.to_table(columns=[*columns, "__filename"], filter=filt)
            table = _screened(table, notes, path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"not a recorded tick dataset: {e}", str(path)) from e
    if table.num_rows == 0:
        raise DataError("no ticks in the dataset", str(path))
    table = table.sort_by([("ts_ns", "ascending"), ("seq", "ascending")])
    # Columns stay numpy (the table is columnar); only the symbols become strings.
    ts, price, size = (table.column(c).to_numpy() for c in ("ts_ns", "price", "size"))
    return TickTable(
        symbol=[str(s) for s in table.column("symbol").to_pylist()],
        ts_ns=ts,
        price=price,
        size=size,
    )


def _any_bad(table: Any) -> bool:
    """Does a row of ``table`` break a rule? (Its columns' copies go before the sort.)"""
    ts, price, size = (table.column(c).to_numpy() for c in ("ts_ns", "price", "size"))
    return any(mask.any() for mask, _, _ in _bad_rows(ts, price, size).values())


def _screened(table: Any, notes: list[str] | None, path: Path) -> Any:
    """``table`` (with ``__filename``; each file's rows together) without its bad rows.

    Raises:
        DataError: (``notes`` None) the first bad row, by file and row in it; or
            every row was bad.
    """
    import pyarrow as pa

    files = table.column("__filename").to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(files[1:] != files[:-1]) + 1).tolist(), len(files)]
    ts, price, size = (table.column(c).to_numpy() for c in ("ts_ns", "price", "size"))
    keep = np.ones(len(files), bool)
    for a, b in itertools.pairwise(starts):
        if (k := screen(ts[a:b], price[a:b], size[a:b], str(files[a]), notes)) is not None:
            keep[a:b] = k
    table = table.filter(pa.array(keep)).drop_columns(["__filename"])
    if table.num_rows == 0:
        raise DataError("no ticks in the dataset (all were removed as invalid)", str(path))
    return table


def _bad_rows(ts: np.ndarray, price: np.ndarray, size: np.ndarray) -> dict[str, tuple]:
    """Per column: the mask of rows breaking the single-file loaders' rule, the rule, the reason."""
    with np.errstate(invalid="ignore"):
        return {
            "ts_ns": (ts < 0, "must be ns since 1970 (>= 0)", TS_OUT_OF_RANGE),
            "price": (~((price > 0) & np.isfinite(price)), "must be a finite number > 0",
                      INVALID_PRICE),
            "size": (~((size >= 0) & np.isfinite(size)), "must be a finite number >= 0",
                     INVALID_SIZE),
        }  # fmt: skip


def check_values(ts: np.ndarray, price: np.ndarray, size: np.ndarray, where: str) -> None:
    """The single-file loaders' rules on one file's columns.

    Raises:
        DataError: naming the first row whose time stamp is before 1970, whose
            price is not finite and > 0, or whose size is not finite and >= 0.
    """
    screen(ts, price, size, where, None)


def screen(
    ts: np.ndarray, price: np.ndarray, size: np.ndarray, where: str, notes: list[str] | None
) -> np.ndarray | None:
    """The rows of one file to keep, or None if all are good.

    Args:
        notes: Where a repair's notes go (each prefixed by ``where``); None to raise instead.

    Raises:
        DataError: (``notes`` None) naming the first bad row of the file.
    """
    values = {"ts_ns": ts, "price": price, "size": size}
    log, bad = RepairLog(), np.zeros(len(ts), bool)
    for column, (mask, rule, reason) in _bad_rows(ts, price, size).items():
        if not mask.any():
            continue
        if notes is None:
            i = int(np.argmax(mask))
            value = values[column][i].item()
            raise DataError(f"{column} {rule}, got {value!r}", where, row=i + 1, column=column)
        log.removed(
            Problem(
                int(i) + 1, column, reason, f"{column} {rule}, got {values[column][i].item()!r}"
            )
            for i in np.flatnonzero(mask & ~bad)
        )
        bad |= mask
    if notes is None or not bad.any():
        return None
    for note in log.notes():
        _log.warning("ticks_repaired", path=where, note=note)
        notes.append(f"{where}: {note}")
    return ~bad


def dataset_files(root: Path) -> list[tuple[str, Path]]:
    """``(path relative to root, path)`` of the files pyarrow.dataset reads, in its order."""
    files = []
    for file in root.rglob("*"):
        rel = file.relative_to(root).as_posix()
        if file.is_file() and not any(part.startswith(_IGNORED) for part in rel.split("/")):
            files.append((rel, file))
    return sorted(files, key=lambda f: f[0])


def partition_symbol(rel: str) -> str:
    """The symbol of the file at ``rel`` (relative to the dataset folder), from its path.

    Raises:
        _NotLite: the path has no single ``symbol=`` directory, or one pyarrow
            would read as null.
    """
    values = [d[7:] for d in rel.split("/")[:-1] if d.startswith("symbol=")]
    if len(values) != 1:
        raise _NotLite(f"{rel}: not one symbol=... directory")
    try:
        symbol = unquote(values[0], errors="strict")
    except UnicodeDecodeError as e:
        raise _NotLite(f"{rel}: {e}") from e
    if symbol == _NULL_PARTITION:
        raise _NotLite(f"{rel}: symbol {symbol!r} is null to pyarrow")
    return symbol


def _read_file(rel: str, file: Path) -> list[np.ndarray] | None:
    """The file's ``ts_ns, price, size, seq`` columns; None when it has no rows."""
    try:
        with LiteParquet(file) as pq:
            if "symbol" in pq.names:
                raise _NotLite(f"{rel}: a symbol column in the file as well as in its path")
            for name, kind in _KINDS.items():
                if name not in pq.names:
                    raise _NotLite(f"{rel}: no {name} column")
                if pq.kind(name) != kind:
                    raise _NotLite(f"{rel}: {name} is {pq.kind(name)}, not {kind}")
            if pq.num_rows == 0:
                return None
            cols = [np.concatenate(list(pq.columns(name))) for name in _KINDS]
    except (Unsupported, HasNulls, OSError) as e:
        what = "nulls in column" if isinstance(e, HasNulls) else type(e).__name__
        raise _NotLite(f"{rel}: {what}: {e}") from e
    if any(len(c) != len(cols[0]) for c in cols):
        raise _NotLite(f"{rel}: columns of different lengths")
    return cols


def _load_lite(root: Path, symbol: str | None, notes: list[str] | None) -> TickTable:
    names: dict[str, int] = {}
    parts: list[list[np.ndarray]] = []
    codes: list[int] = []
    lengths: list[int] = []
    for rel, file in dataset_files(root):
        sym = partition_symbol(rel)
        if symbol and sym != symbol:
            continue
        cols = _read_file(rel, file)
        if cols is None:
            continue
        keep = screen(cols[0], cols[1], cols[2], str(file), notes)
        if keep is not None:
            cols = [c[keep] for c in cols]
        if not len(cols[0]):
            continue
        parts.append(cols)
        codes.append(names.setdefault(sym, len(names)))
        lengths.append(len(cols[0]))
    if not parts:
        detail = " (all were removed as invalid)" if notes else ""
        raise DataError(f"no ticks in the dataset{detail}", str(root))
    ts, price, size, seq = (np.concatenate(col) for col in zip(*parts, strict=True))
    order = np.lexsort((seq, ts))  # stable, as Arrow's sort: ties keep file order
    rows = np.repeat(np.array(codes, np.int32), lengths)
    return TickTable(
        symbol=SymbolColumn(list(names), rows[order]),
        ts_ns=ts[order],
        price=price[order],
        size=size[order],
    )
