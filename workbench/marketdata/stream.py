"""Streaming a Parquet tick file in chunks, for the replay gateway.

`ParquetTickStream` never holds the whole file. It first reads it once chunk
by chunk and checks every row with the vectorised rules of `columnar`
(time order across chunks too), so a bad file still fails before the first
tick goes out; then `batches` reads it again and cuts exactly the batches
`TickTable.batches` would cut from the whole table (a new batch at every
symbol change and every ``batch_size`` rows of a run), with the same seqs.

Files are read with `parquet_lite` (numpy only: pyarrow alone would take
more than the gateway's memory budget), or with pyarrow when they use a
feature the small reader leaves out (snappy, nested columns, other encodings).

`open_stream` returns None when a file cannot be streamed this way (not
Parquet, damaged, text timestamps or numbers, or any row that breaks a rule):
the caller then loads it whole with `load_ticks`, which parses the text, names
the bad row and column or the damaged file, or repairs the file, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from workbench.domain.model import TickBatch
from workbench.exceptions import DataError
from workbench.marketdata.heap import keep_heap_small, trim_heap
from workbench.marketdata.parquet_lite import HasNulls, LiteParquet, Unsupported, aligned
from workbench.marketdata.table import SymbolColumn, TickTable

CHUNK_ROWS = 65_536
_NUMBERS = {"price", "bid", "ask", "size"}
_log = structlog.get_logger(__name__)


class ParquetTickStream:
    """A validated Parquet tick file, read again chunk by chunk for each `batches` call.

    ``lite`` says whether it is read with `parquet_lite` (no pyarrow in the
    process) or with pyarrow, for files the small reader does not handle.
    """

    def __init__(
        self, path: Path, roles: dict[str, str], price_mode: str, symbol: str, *, lite: bool
    ) -> None:
        self.path = path
        self._roles = roles
        self._price_mode = price_mode
        self._symbol = symbol
        self.lite = lite
        self.rows = 0
        keep_heap_small()
        if lite:
            try:
                self.valid = self._validate()
                return
            except (Unsupported, OSError, ValueError) as e:
                _log.info("parquet_read_with_pyarrow", path=str(path), reason=str(e))
                self.lite, self.rows = False, 0
        try:
            self.valid = self._validate()
        except OSError as e:  # pyarrow refuses it too: `load_ticks` says why, naming the file
            _log.info("parquet_not_streamed", path=str(path), reason=str(e))
            self.valid = False

    def _chunks(self) -> Iterator[tuple | None]:
        """``(ts, price, size | None, symbols | None, bid | None, ask | None)`` per chunk.

        None for a chunk with a row that breaks a rule. bid and ask are there
        when the file has both, as `load_ticks` keeps them.
        """
        from workbench.marketdata.columnar import arrow_floats, checked_columns, valid_columns

        names = list(dict.fromkeys(self._roles.values()))
        quotes = "bid" in self._roles and "ask" in self._roles
        if self.lite:
            with LiteParquet(self.path) as lite:
                pages = [lite.columns(name) for name in names]
                try:
                    for chunk in aligned(pages, CHUNK_ROWS):
                        by_name = dict(zip(names, chunk, strict=True))
                        cols = {role: by_name[name] for role, name in self._roles.items()}
                        for role in _NUMBERS.intersection(cols):  # as Arrow casts them
                            cols[role] = cols[role].astype(np.float64, copy=False)
                        checked = checked_columns(cols, self._price_mode)
                        bid_ask = (cols["bid"], cols["ask"]) if quotes else (None, None)
                        yield None if checked is None else (*checked, *bid_ask)
                except HasNulls:
                    yield None
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:  # a damaged file: Arrow's errors made OSError (as ArrowIOError is)
            with pq.ParquetFile(self.path, buffer_size=1 << 20, pre_buffer=False) as f:
                # One thread: the gateway streams; Arrow's pool threads would add ~25 MB.
                batches = f.iter_batches(batch_size=CHUNK_ROWS, columns=names, use_threads=False)
                for batch in batches:
                    checked = valid_columns(batch, self._roles, self._price_mode)
                    if checked is None:
                        yield None
                        continue
                    bid_ask = (None, None)
                    if quotes:
                        bid_ask = tuple(
                            arrow_floats(batch.column(self._roles[q])) for q in ("bid", "ask")
                        )
                    yield (*checked, *bid_ask)
        except (pa.ArrowException, ValueError) as e:  # ValueError: a name that is not UTF-8
            raise OSError(str(e)) from e

    def _validate(self) -> bool:
        last_ts = None
        for cols in self._chunks():
            if cols is None:
                return False
            ts = cols[0]
            if len(ts) and last_ts is not None and int(ts[0]) < last_ts:
                return False
            if len(ts):
                last_ts = int(ts[-1])
            self.rows += len(ts)
        trim_heap()
        return self.rows > 0

    def _again(self, what: str) -> Iterator[tuple]:
        """The validated chunks, read once more.

        Raises:
            DataError: the file changed since it was validated: a row breaks
                a rule, or the file cannot be read any more.
        """
        changed = f"the file changed while it was {what}"
        try:
            for cols in self._chunks():
                if cols is None:
                    raise DataError(changed, str(self.path))
                yield cols
        except (Unsupported, OSError, ValueError) as e:
            raise DataError(f"{changed}: {e}", str(self.path)) from e

    def table(self) -> TickTable:
        """The whole file as the `TickTable` `load_ticks` gives for it, read with this reader.

        No pyarrow in the process when the stream is `lite`.

        Raises:
            DataError: the file changed since it was validated.
        """
        parts: list[list] = [[], [], [], [], [], []]  # ts, price, size, symbol, bid, ask
        for cols in self._again("loaded"):
            ts, price, size, symbols, bid, ask = cols
            n = len(ts)
            size = np.ones(n) if size is None else size
            symbols = SymbolColumn.repeat(self._symbol, n) if symbols is None else symbols
            for part, col in zip(parts, (ts, price, size, symbols, bid, ask), strict=True):
                part.append(col)
        ts, price, size, symbols, bid, ask = parts
        quotes = bool(bid) and bid[0] is not None
        table = TickTable(
            SymbolColumn.concat(symbols),
            np.concatenate(ts),
            np.concatenate(price),
            np.concatenate(size),
            bid=np.concatenate(bid) if quotes else None,
            ask=np.concatenate(ask) if quotes else None,
        )
        trim_heap()
        return table

    def batches(self, batch_size: int, first_seq: int = 1) -> Iterator[TickBatch]:
        """The file's batches, as `TickTable.batches` cuts them.

        Raises:
            DataError: the file changed since it was validated.
        """
        pending: list[Any] | None = None  # [symbol, seq, ts, price, size] of a partial batch
        seq = first_seq
        for cols in self._again("replayed"):
            trim_heap()  # the previous chunk's lists are gone: return their pages
            ts, price, size, symbols = cols[:4]
            n = len(ts)
            if size is None:
                size = np.ones(n)
            # Python values exist for one batch at a time: slices of the arrays become lists.
            runs = [(self._symbol, 0, n)] if symbols is None else symbols.runs()
            for sym, lo, hi in runs:
                if pending is not None and pending[0] != sym:
                    yield TickBatch(*pending)
                    pending = None
                i = lo
                if pending is not None:  # the run goes on from the previous chunk
                    take = min(batch_size - len(pending[2]), hi - i)
                    pending[2] += ts[i : i + take].tolist()
                    pending[3] += price[i : i + take].tolist()
                    pending[4] += size[i : i + take].tolist()
                    i += take
                    seq += take
                    if len(pending[2]) == batch_size:
                        yield TickBatch(*pending)
                        pending = None
                while i < hi:
                    j = min(i + batch_size, hi)
                    part = [sym, seq, ts[i:j].tolist(), price[i:j].tolist(), size[i:j].tolist()]
                    seq += j - i
                    i = j
                    if len(part[2]) == batch_size:
                        yield TickBatch(*part)
                    else:
                        pending = part
        if pending is not None:
            yield TickBatch(*pending)


def open_stream(
    path: str | Path, *, symbol: str | None, price: str, fmt: str
) -> ParquetTickStream | None:
    """A validated stream of ``path``, or None when it must be loaded whole (see module doc)."""
    from workbench.marketdata.loaders import _layout, symbol_from_path
    from workbench.marketdata.textfiles import sniff

    path = Path(path)
    if path.is_dir():
        return None  # a recorded dataset: load_ticks reads it
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else sniff(path)
    if fmt != "parquet":
        return None
    try:
        shape = _lite_shape(path)
        if shape is None:
            shape = _arrow_shape(path)
        names, fits, lite = shape
        layout = _layout(path, names, price, fmt)
        if not fits(layout):
            return None  # text to parse (or a column to refuse): load_ticks does
    except DataError:
        return None  # load_ticks raises it again, with its context
    stream = ParquetTickStream(
        path, layout.roles(), price, symbol or symbol_from_path(path), lite=lite
    )
    return stream if stream.valid else None


def _lite_shape(path: Path) -> tuple | None:
    """Column names and a check of the columns' types from the small reader.

    None if it cannot read the file. The check is False unless every column
    the layout uses holds what the stream reads: integer or timestamp times
    (as `load_ticks` takes them), numbers, and text symbols.
    """
    try:
        with LiteParquet(path) as lite:
            if lite.num_rows == 0:
                raise DataError("no data rows", str(path))
            names = list(lite.names)
            kinds = {name: lite.kind(name) for name in names}
    except (Unsupported, OSError):
        return None

    def fits(layout: Any) -> bool:
        for role, name in layout.roles().items():
            kind = kinds[name]
            if role == "ts":
                ok = kind == "timestamp" or (kind == "int" and layout.ts_kind == "ns")
            else:
                ok = kind == "string" if role == "symbol" else kind in ("int", "float")
            if not ok:
                return False
        return True

    return names, fits, True


def _arrow_shape(path: Path) -> tuple:
    """Column names and a check of the time column from pyarrow.

    The stream's own checks (`columnar.valid_columns`) refuse other columns of
    types it does not read.
    """
    from workbench.marketdata.parquet_io import ParquetTicks

    with ParquetTicks(path) as source:
        names = list(source.names)

        def fits(layout: Any) -> bool:
            return source.ts_kind(layout.ts, layout.ts_kind) == "ns"

        return names, fits, False
