"""Streaming a Parquet tick file in chunks, for the replay gateway.

`ParquetTickStream` never holds the whole file. It first reads it once chunk
by chunk and checks every row with the vectorised rules of `columnar`
(time order across chunks too), so a bad file still fails before the first
tick goes out; then `batches` reads it again and cuts exactly the batches
`TickTable.batches` would cut from the whole table (a new batch at every
symbol change and every ``batch_size`` rows of a run), with the same seqs.

`open_stream` returns None when a file cannot be streamed this way (not
Parquet, text timestamps, or any row that breaks a rule): the caller then
loads it whole with `load_ticks`, which names the bad row and column or
repairs the file, exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from workbench.domain.model import TickBatch
from workbench.exceptions import DataError

CHUNK_ROWS = 65_536


class ParquetTickStream:
    """A validated Parquet tick file, read again chunk by chunk for each `batches` call."""

    def __init__(self, path: Path, roles: dict[str, str], price_mode: str, symbol: str) -> None:
        self.path = path
        self._roles = roles
        self._price_mode = price_mode
        self._symbol = symbol
        self.rows = 0
        self.valid = self._validate()

    def _chunks(self) -> Iterator[tuple | None]:
        import pyarrow.parquet as pq

        from workbench.marketdata.columnar import valid_columns

        names = list(dict.fromkeys(self._roles.values()))
        with pq.ParquetFile(self.path, buffer_size=1 << 20, pre_buffer=False) as f:
            # One thread: the gateway streams; Arrow's pool threads would add ~25 MB of heaps.
            for batch in f.iter_batches(batch_size=CHUNK_ROWS, columns=names, use_threads=False):
                yield valid_columns(batch, self._roles, self._price_mode)

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
        return self.rows > 0

    def batches(self, batch_size: int, first_seq: int = 1) -> Iterator[TickBatch]:
        """The file's batches, as `TickTable.batches` cuts them.

        Raises:
            DataError: the file changed since it was validated.
        """
        pending: list[Any] | None = None  # [symbol, seq, ts, price, size] of a partial batch
        seq = first_seq
        for cols in self._chunks():
            if cols is None:
                raise DataError("the file changed while it was replayed", str(self.path))
            ts_a, price_a, size_a, symbols = cols
            n = len(ts_a)
            ts, price = ts_a.tolist(), price_a.tolist()
            size = size_a.tolist() if size_a is not None else [1.0] * n
            if symbols is None:
                runs = [(self._symbol, 0, n)]
            else:
                runs, start = [], 0
                for sym, group in groupby(symbols):
                    stop = start + sum(1 for _ in group)
                    runs.append((sym, start, stop))
                    start = stop
            for sym, lo, hi in runs:
                if pending is not None and pending[0] != sym:
                    yield TickBatch(*pending)
                    pending = None
                i = lo
                if pending is not None:  # the run goes on from the previous chunk
                    take = min(batch_size - len(pending[2]), hi - i)
                    pending[2] += ts[i : i + take]
                    pending[3] += price[i : i + take]
                    pending[4] += size[i : i + take]
                    i += take
                    seq += take
                    if len(pending[2]) == batch_size:
                        yield TickBatch(*pending)
                        pending = None
                while i < hi:
                    j = min(i + batch_size, hi)
                    part = [sym, seq, ts[i:j], price[i:j], size[i:j]]
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
    from workbench.marketdata.parquet_io import ParquetTicks
    from workbench.marketdata.textfiles import sniff

    path = Path(path)
    if path.is_dir():
        return None  # a recorded dataset: load_ticks reads it
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else sniff(path)
    if fmt != "parquet":
        return None
    try:
        with ParquetTicks(path) as source:
            layout = _layout(path, source.names, price, fmt)
            if source.ts_kind(layout.ts, layout.ts_kind) != "ns":
                return None
    except DataError:
        return None  # load_ticks raises it again, with its context
    stream = ParquetTickStream(path, layout.roles(), price, symbol or symbol_from_path(path))
    return stream if stream.valid else None
