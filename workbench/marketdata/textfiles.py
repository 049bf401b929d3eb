"""Reading CSV tick files (with a header, or HistData.com's headerless one) in chunks.

Chunks bound the memory of a big file: only ``chunk_rows`` rows exist as
Python strings at a time. Rows are numbered from 1 after any header; blank
lines are not ticks and are skipped, but they keep their number so that row
``n`` is always line ``n`` (plus the header line) in an editor.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO

from workbench.exceptions import DataError
from workbench.marketdata.columns import WRONG_FIELDS, Problem, RawChunk

HISTDATA_COLUMNS = ("timestamp", "bid", "ask", "volume")
"""Names used in messages for HistData.com's headerless columns."""

_HISTDATA_LINE = re.compile(r"\s*\d{8} \d{9}\s*,")
_SNIFF_BYTES = 65536


def sniff(path: Path) -> str:
    """Guess a file's format from its content: "parquet", "histdata" or "csv".

    Raises:
        DataError: the file is missing, unreadable, empty or binary.
    """
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", str(path)) from e
    if head.startswith(b"PAR1"):
        return "parquet"
    text = _decode_head(path, head)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise DataError("file is empty", str(path))
    return "histdata" if _HISTDATA_LINE.match(first) else "csv"


def _decode_head(path: Path, head: bytes) -> str:
    if b"\x00" in head:
        raise DataError("binary content: not a CSV or Parquet file", str(path))
    try:
        # final=False: a multi-byte character cut at the sniff boundary is fine.
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text: not a CSV or Parquet file ({e.reason})", str(path)) from e


def looks_like_histdata(name: str) -> bool:
    """Whether a header field is really a HistData.com timestamp."""
    return _HISTDATA_LINE.match(name + ",") is not None


class TextTicks:
    """A CSV tick file opened for chunked reading; use as a context manager.

    ``names`` are the header's column names (HistData: `HISTDATA_COLUMNS`).
    """

    def __init__(self, path: Path, *, headerless: bool = False) -> None:
        self.path = path
        self._headerless = headerless
        self._file: IO[str] | None = None
        self._header_lines = 0
        self.names: list[str] = []

    def __enter__(self) -> TextTicks:
        if sniff(self.path) == "parquet":  # missing, empty or binary: fail before csv does
            raise DataError("this is a Parquet file: use fmt='parquet' or 'auto'", str(self.path))
        try:
            self._file = self.path.open(encoding="utf-8-sig", newline="")
        except OSError as e:
            raise DataError(f"cannot read file: {e.strerror or e}", str(self.path)) from e
        self._reader = csv.reader(self._file)
        if self._headerless:
            self.names = list(HISTDATA_COLUMNS)
        else:
            self.names = [name.strip() for name in self._read_header()]
            self._header_lines = self._reader.line_num
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def _read_header(self) -> list[str]:
        try:
            for record in self._reader:
                if any(field.strip() for field in record):
                    return record
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"cannot read the header: {e}", str(self.path)) from e
        raise DataError("file is empty", str(self.path))

    def chunks(self, roles: dict[str, str], chunk_rows: int) -> Iterator[RawChunk]:
        """Yield the data rows as `RawChunk`s holding the columns named in ``roles``.

        Raises:
            DataError: the text cannot be read as CSV (bad encoding, broken quoting).
        """
        width = len(self.names)
        getters = {role: itemgetter(self.names.index(name)) for role, name in roles.items()}
        first = 1
        while True:
            try:
                records = list(islice(self._reader, chunk_rows))
            except (csv.Error, UnicodeDecodeError) as e:
                row = self._reader.line_num - self._header_lines
                raise DataError(f"not readable as CSV: {e}", str(self.path), row) from e
            if not records:
                return
            if set(map(len, records)) == {width}:
                columns = {role: list(map(get, records)) for role, get in getters.items()}
                yield RawChunk(first, columns)
            else:
                yield self._ragged_chunk(records, first, width, getters)
            first += len(records)

    @staticmethod
    def _ragged_chunk(
        records: list[list[str]], first: int, width: int, getters: dict[str, itemgetter]
    ) -> RawChunk:
        """A chunk with blank lines or rows of the wrong width (the slow path)."""
        good: list[list[str]] = []
        rows: list[int] = []
        problems: list[Problem] = []
        for i, record in enumerate(records):
            if len(record) == width:
                good.append(record)
                rows.append(first + i)
            elif any(field.strip() for field in record):
                detail = f"expected {width} fields, found {len(record)}: {','.join(record)!r}"
                problems.append(Problem(first + i, None, WRONG_FIELDS, detail[:200]))
        columns = {role: list(map(get, good)) for role, get in getters.items()}
        return RawChunk(first, columns, rows, problems)
