"""`load_ticks`: read a tick file into a `TickTable`, strictly or with repairs.

Formats (``fmt``):

- ``"csv"``: a header row; ``ts_ns`` (integer ns, UTC) or ``ts``/``timestamp``
  (ISO-8601; naive means UTC); ``price``, or ``bid`` and ``ask``; optional
  ``size`` (default 1.0) and ``symbol``. Column names are case-insensitive.
- ``"parquet"``: the same columns; ``ts``/``timestamp`` may also be an Arrow
  timestamp of any unit, naive (UTC) or with a time zone.
- ``"histdata"``: HistData.com's headerless ASCII tick files,
  ``YYYYMMDD HHMMSSmmm,bid,ask,volume``, stamped in EST (UTC-5, no daylight
  saving); the volume (always 0) is ignored and size is 1.0.
- ``"auto"``: Parquet by its magic bytes, HistData by its first line, else CSV.

The price is the file's ``price`` column if it has one, else the bid, the ask
or their mid, as ``price`` asks. A file with both ``bid`` and ``ask`` columns
(HistData files always) also keeps them as the table's ``bid``/``ask``.
The symbol is the file's ``symbol`` column, else the ``symbol`` argument,
else the file name's first token.

Rows keep file order; nothing is merged or dropped unless ``repair=True``, and
then every change is a line in `TickTable.notes` (and a ``ticks_repaired`` log
event). pandas is never imported; pyarrow only for Parquet files.
"""

from __future__ import annotations

import gc
import operator
import re
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import structlog

from workbench.exceptions import DataError
from workbench.marketdata.columns import (
    Issue,
    Problem,
    RawChunk,
    check_not_crossed,
    check_positive,
    check_size,
    check_symbols,
    check_ts_range,
    format_ns,
    histdata_to_ns,
    iso_to_ns,
    to_floats,
    to_ints,
)
from workbench.marketdata.heap import trim_heap
from workbench.marketdata.repairs import RepairLog
from workbench.marketdata.table import SymbolColumn, TickTable
from workbench.marketdata.textfiles import TextTicks, looks_like_histdata, sniff

FORMATS = ("auto", "csv", "parquet", "histdata")
PRICE_MODES = ("mid", "bid", "ask")
# Rows that exist as Python objects at a time (~400 bytes each while a chunk is
# converted). Small chunks keep a whole-file load's peak near the final table's
# size (a 1M-row CSV: 94 MB instead of 158 MB at 100,000 rows) and are no slower.
CHUNK_ROWS = 1_024

_TS_CONVERTERS = {"ns": to_ints, "iso": iso_to_ns, "histdata": histdata_to_ns}
_log = structlog.get_logger(__name__)


def load_ticks(
    path: str | Path,
    *,
    symbol: str | None = None,
    price: str = "mid",
    repair: bool = False,
    fmt: str = "auto",
) -> TickTable:
    """Load a tick file; see the module docstring for formats and conventions.

    Args:
        path: The CSV or Parquet file.
        symbol: The symbol when the file has no ``symbol`` column.
        price: "mid", "bid" or "ask": which quote becomes the price when the
            file has bid/ask columns and no ``price`` column.
        repair: Fix what can be fixed instead of raising: drop bad rows,
            stable-sort out-of-order timestamps. The table's ``notes`` say
            what changed.
        fmt: "auto", "csv", "parquet" or "histdata".

    Raises:
        DataError: the file is missing, unreadable, empty or lacks a required
            column (even with ``repair``), or, without ``repair``, a row is
            invalid; the error names the file, the 1-based data row and the
            column.
        ValueError: ``price`` or ``fmt`` is not one of the names above.
    """
    if price not in PRICE_MODES:
        raise ValueError(f"No price mode named {price!r}; use one of {PRICE_MODES}")
    if fmt not in FORMATS:
        raise ValueError(f"No tick file format named {fmt!r}; use one of {FORMATS}")
    path = Path(path)
    if path.is_dir():  # a recorded dataset (workbench.marketdata.recorder)
        from workbench.marketdata.dataset import load_dataset

        return load_dataset(path, symbol=symbol, repair=repair)
    started = time.perf_counter()
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else sniff(path)
    with _gc_paused():
        table, layout = _read(path, fmt, price, repair)
    trim_heap()  # the chunks' freed buffers: a 1M-row CSV leaves ~28 MB resident otherwise
    if layout.symbol is None:
        table.symbol = SymbolColumn.repeat(symbol or symbol_from_path(path), len(table))
    for note in table.notes:
        _log.warning("ticks_repaired", path=str(path), note=note)
    _log.debug(
        "ticks_loaded",
        path=str(path),
        fmt=fmt,
        rows=len(table),
        seconds=round(time.perf_counter() - started, 3),
    )
    return table


def _read(path: Path, fmt: str, price: str, repair: bool) -> tuple[TickTable, _Layout]:
    if fmt == "parquet":
        from workbench.marketdata.parquet_io import ParquetTicks

        with ParquetTicks(path) as source:
            layout = _layout(path, source.names, price, fmt)
            layout.ts_kind = source.ts_kind(layout.ts, layout.ts_kind)
            if layout.ts_kind == "ns":
                fast = source.vectorised(layout.roles(), layout.price_mode)
                if fast is not None:  # every row valid; otherwise the row path says where
                    return fast, layout
            chunks = source.chunks(layout.roles(), CHUNK_ROWS)
            return _assemble(path, layout, chunks, repair), layout
    with TextTicks(path, headerless=fmt == "histdata") as text:
        layout = _layout(path, text.names, price, fmt)
        return _assemble(path, layout, text.chunks(layout.roles(), CHUNK_ROWS), repair), layout


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading.

    Loading allocates millions of acyclic objects; the collections they would
    trigger cost about 40% of the load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def symbol_from_path(path: str | Path) -> str:
    """The symbol a file name implies: its first token before '-' or '_', uppercased.

    ``eurusd-quotes-2020-01.csv`` gives ``EURUSD``.
    """
    stem = Path(path).stem
    return (re.split(r"[-_]", stem)[0] or stem).upper()


@dataclass(slots=True)
class _Layout:
    """Which file column plays which role, and how timestamps are written."""

    ts: str
    ts_kind: str
    price_mode: str
    price: str | None = None
    bid: str | None = None
    ask: str | None = None
    size: str | None = None
    symbol: str | None = None

    def roles(self) -> dict[str, str]:
        """Role -> file column name, for the columns present."""
        roles = {"ts": self.ts}
        for role in ("price", "bid", "ask", "size", "symbol"):
            name = getattr(self, role)
            if name is not None:
                roles[role] = name
        return roles


def _layout(path: Path, names: list[str], price_mode: str, fmt: str) -> _Layout:
    """Match the file's columns to roles.

    Raises:
        DataError: a required column is missing or a name is duplicated.
    """
    by_key: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in by_key:
            raise DataError(f"duplicate column {name!r} in the header", str(path), column=name)
        by_key[key] = name
    ts_key = next((k for k in ("ts_ns", "ts", "timestamp") if k in by_key), None)
    if fmt == "histdata":
        layout = _Layout(by_key["timestamp"], "histdata", price_mode)
    elif ts_key is None:
        _missing(path, names, "ts_ns/ts/timestamp")
    else:
        layout = _Layout(by_key[ts_key], "ns" if ts_key == "ts_ns" else "iso", price_mode)
    get = by_key.get
    layout.size, layout.symbol = get("size"), get("symbol")
    if "bid" in by_key and "ask" in by_key:
        layout.bid, layout.ask = by_key["bid"], by_key["ask"]  # quotes kept with any price
    if "price" in by_key:
        layout.price = by_key["price"]
        return layout
    needed = {"mid": ("bid", "ask"), "bid": ("bid",), "ask": ("ask",)}[price_mode]
    absent = [k for k in needed if k not in by_key]
    if len(absent) == len(needed) and price_mode == "mid":
        absent = ["price"]
    if absent:
        _missing(path, names, "/".join(absent))
    layout.bid, layout.ask = get("bid"), get("ask")
    return layout


def _missing(path: Path, names: list[str], column: str) -> NoReturn:
    hint = ""
    if names and looks_like_histdata(names[0]):
        hint = "; this looks like a headerless HistData.com file: use fmt='histdata' or 'auto'"
    raise DataError(
        f"missing required column {column!r}; the file has columns {names}; required: "
        f"a timestamp (ts_ns, ts or timestamp) and price, or bid and ask{hint}",
        str(path),
        column=column,
    )


def _assemble(path: Path, layout: _Layout, chunks: Iterable[RawChunk], repair: bool) -> TickTable:
    """Convert, check and concatenate the chunks; then check the time order."""
    parts: dict[str, list] = {"symbol": [], "ts": [], "price": [], "size": [], "bid": [], "ask": []}
    rows = _RowMap()
    log = RepairLog()
    for chunk in chunks:
        columns, problems, bad = _convert(chunk, layout)
        if problems and not repair:
            first = min(problems, key=operator.attrgetter("row"))
            raise DataError(first.detail, str(path), first.row, first.column)
        if bad:
            log.removed(problems)
            keep = [i for i in range(len(columns["ts"])) if i not in bad]
            columns = {role: [values[i] for i in keep] for role, values in columns.items()}
            rows.extend([chunk.row(i) for i in keep])
        else:
            log.removed(problems)  # rows the reader could not split
            rows.extend(chunk.rows or range(chunk.first_row, chunk.first_row + len(columns["ts"])))
        _append(parts, columns, layout)
    if not sum(map(len, parts["ts"])):
        detail = f" (all {log.count} were removed as invalid)" if log.count else ""
        raise DataError(f"no data rows{detail}", str(path))
    # Column by column, each column's chunks dropped once joined: the load
    # peaks at the table plus one column, not at two tables.
    ts = np.concatenate(parts.pop("ts"))
    price = np.concatenate(parts.pop("price"))
    size = np.concatenate(parts.pop("size"))
    quotes = bool(parts["bid"] and parts["ask"])
    bid = np.concatenate(parts.pop("bid")) if quotes else None
    ask = np.concatenate(parts.pop("ask")) if quotes else None
    symbols = parts.pop("symbol")
    table = TickTable(
        SymbolColumn.concat(symbols) if symbols else SymbolColumn.repeat("", len(ts)),
        ts,
        price,
        size,
        bid=bid,
        ask=ask,
    )
    table = _check_order(path, table, layout, rows, log if repair else None)
    table.notes = log.notes()
    return table


def _convert(chunk: RawChunk, layout: _Layout) -> tuple[dict[str, list], list[Problem], set[int]]:
    """A chunk's columns as values, the problems found, and the bad entry indices."""
    raw = chunk.columns
    found: list[tuple[str | None, list[Issue]]] = []
    ts, issues = _TS_CONVERTERS[layout.ts_kind](raw["ts"])
    found.append((layout.ts, issues + check_ts_range(ts, raw["ts"])))
    columns: dict[str, list] = {"ts": ts}
    for role in ("price", "bid", "ask"):
        if role in raw:
            values, issues = to_floats(raw[role])
            issues += check_positive(values, role)
            found.append((getattr(layout, role), issues))
            columns[role] = values
    if "bid" in columns and "ask" in columns:
        found.append((layout.bid, check_not_crossed(columns["bid"], columns["ask"])))
        if layout.price_mode == "mid":  # two finite quotes near 1.8e308 make an infinite mid
            pairs = zip(columns["bid"], columns["ask"], strict=True)
            mids = [None if b is None or a is None else (b + a) / 2 for b, a in pairs]
            found.append((layout.bid, check_positive(mids, "the mid of bid and ask")))
    if "size" in raw:
        values, issues = to_floats(raw["size"])
        found.append((layout.size, issues + check_size(values)))
        columns["size"] = values
    if "symbol" in raw:
        found.append((layout.symbol, check_symbols(raw["symbol"])))
        columns["symbol"] = raw["symbol"]
    problems = list(chunk.problems)
    bad: set[int] = set()
    for column, issues in found:
        for i, reason, detail in issues:
            bad.add(i)
            problems.append(Problem(chunk.row(i), column, reason, detail))
    return columns, problems, bad


def _append(parts: dict[str, list], columns: dict[str, list], layout: _Layout) -> None:
    """Append converted, valid columns to ``parts``, as one numpy array per chunk."""
    n = len(columns["ts"])
    parts["ts"].append(np.array(columns["ts"], np.int64))
    if "price" in columns:
        price = columns["price"]
    elif layout.price_mode == "mid":
        bid, ask = columns["bid"], columns["ask"]
        price = [(b + a) / 2 for b, a in zip(bid, ask, strict=True)]
    else:
        price = columns[layout.price_mode]
    parts["price"].append(np.array(price, np.float64))
    parts["size"].append(np.array(columns["size"], np.float64) if "size" in columns else np.ones(n))
    if "symbol" in columns:
        parts["symbol"].append(SymbolColumn.of(columns["symbol"]))
    if layout.bid is not None and layout.ask is not None:
        parts["bid"].append(np.array(columns["bid"], np.float64))
        parts["ask"].append(np.array(columns["ask"], np.float64))


class _RowMap:
    """Table index -> file row, stored as runs of consecutive rows."""

    def __init__(self) -> None:
        self._starts: list[int] = []  # table index where each run starts
        self._rows: list[int] = []  # file row of that index
        self._n = 0

    def extend(self, rows: Iterable[int]) -> None:
        if isinstance(rows, range):
            if rows:
                self._add(rows.start)
                self._n += len(rows) - 1
            return
        for row in rows:
            self._add(row)

    def _add(self, row: int) -> None:
        last = len(self._starts) - 1
        if last < 0 or self._rows[last] + (self._n - self._starts[last]) != row:
            self._starts.append(self._n)
            self._rows.append(row)
        self._n += 1

    def __getitem__(self, index: int) -> int:
        run = bisect_right(self._starts, index) - 1
        return self._rows[run] + index - self._starts[run]


def _check_order(
    path: Path, table: TickTable, layout: _Layout, rows: _RowMap, log: RepairLog | None
) -> TickTable:
    """Raise on the first backwards timestamp, or (repairing) stable-sort the table."""
    ts = table.ts_ns
    back = np.flatnonzero(ts[1:] < ts[:-1])
    if not len(back):
        return table
    k = int(back[0]) + 1
    a, b = int(ts[k - 1]), int(ts[k])
    where = f"{format_ns(b)} ({b}) comes after {format_ns(a)} ({a}) on row {rows[k - 1]}"
    if log is None:
        raise DataError(
            f"timestamps go backwards: {where}; sort the file or load with repair=True",
            str(path),
            rows[k],
            layout.ts,
        )
    order = np.argsort(ts, kind="stable")
    moved = int(np.count_nonzero(order != np.arange(len(order))))
    log.note(
        rows[k],
        f"timestamps went backwards at {len(back):,} place(s), first at row {rows[k]}: {where}; "
        f"stable-sorted by timestamp, {moved:,} row(s) moved",
    )
    return table.take(order)
