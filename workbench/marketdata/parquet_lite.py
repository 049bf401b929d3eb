"""A small Parquet reader for the replay gateway: numpy only, page by page, no pyarrow.

Importing pyarrow maps about 60 MB of shared libraries into a process, more
than the gateway needs for everything else. The gateway streams the common
files with this reader instead: flat schemas; columns of 32/64-bit integers,
timestamps, floats or UTF-8 text (annotated or plain binary); PLAIN or dictionary
encoding; data pages v1 and v2; uncompressed, GZIP or ZSTD (through the system's
libzstd). Anything else raises `Unsupported`, and the caller uses pyarrow as before.

`LiteParquet.columns` yields each column's values in pages (about 1 MB each);
`aligned` zips them into chunks of equal length, so memory stays a few pages
per column whatever the file's size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from workbench.marketdata.table import SymbolColumn
from workbench.marketdata.thrift_compact import Buf, Thrift


class Unsupported(Exception):
    """The file uses a Parquet feature this reader leaves to pyarrow."""


class HasNulls(Exception):
    """A column holds nulls (the row checks name them)."""


_INT32, _INT64, _FLOAT, _DOUBLE, _BYTE_ARRAY = 1, 2, 4, 5, 6
_NUMPY = {_INT32: "<i4", _INT64: "<i8", _FLOAT: "<f4", _DOUBLE: "<f8"}
_UNCOMPRESSED, _GZIP, _ZSTD = 0, 2, 6
_CODECS = {1: "SNAPPY", 3: "LZO", 4: "BROTLI", 5: "LZ4", 7: "LZ4_RAW"}  # left to pyarrow
_PLAIN, _PLAIN_DICTIONARY, _RLE_DICTIONARY = 0, 2, 8
_DATA_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 2, 3
_TS_UNITS = {1: 1_000_000, 2: 1_000, 3: 1}  # logicalType.TIMESTAMP.unit: ms, us, ns
_TS_CONVERTED = {9: 1_000_000, 10: 1_000}  # TIMESTAMP_MILLIS, TIMESTAMP_MICROS
_TEXT = (None, 0)  # converted types of text: none, UTF8
_SIGNED_INTS = (15, 16, 17, 18)  # INT_8 .. INT_64
_I64_MAX = (1 << 63) - 1
_SLICE = 65_536
_MAX_PAGE = 1 << 30  # bytes: a larger page size is a damaged header
# What decoding a damaged footer or page raises (besides OSError), made OSError or Unsupported.
_DAMAGED: tuple[type[Exception], ...] = (EOFError, LookupError, TypeError, ValueError)
_DAMAGED += (AttributeError, ArithmeticError, RecursionError, struct.error, zlib.error)


@cache
def _zstd() -> Any:
    name = ctypes.util.find_library("zstd")
    if name is None:
        raise Unsupported("ZSTD pages need the system's libzstd, which is not installed")
    lib = ctypes.CDLL(name)
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_decompress.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    return lib


def _decompress(codec: int, data: Buf, size: int) -> Buf:
    if codec == _UNCOMPRESSED:
        return data
    if codec == _GZIP:
        raw = zlib.decompress(data, 47)
        if len(raw) != size:
            raise OSError("corrupt GZIP page")
        return raw
    if codec == _ZSTD:
        lib = _zstd()
        if not 0 <= size <= _MAX_PAGE:
            raise OSError(f"a page of {size} bytes: a damaged page header")
        out = bytearray(size)
        got = lib.ZSTD_decompress((ctypes.c_char * size).from_buffer(out), size, data, len(data))
        if lib.ZSTD_isError(got) or got != size:
            raise OSError("corrupt ZSTD page")
        return out
    raise Unsupported(f"compression codec {_CODECS.get(codec, codec)}")


def _unpack_bits(data: Buf, width: int, count: int) -> np.ndarray:
    """``count`` little-endian bit-packed values of ``width`` bits (count is a multiple of 8).

    Each value is read as the 8 bytes from its first byte on (an unaligned
    uint64 view), shifted and masked: a few array operations per block.

    Raises:
        OSError: ``data`` holds fewer than ``count`` values.
    """
    out = np.zeros(count, np.int32)
    if width == 0 or count == 0:
        return out
    nbytes = count * width // 8
    if len(data) < nbytes:
        raise OSError("corrupt bit-packed data")
    buf = np.zeros(nbytes + 8, np.uint8)  # slack: the last values read 8 bytes too
    buf[:nbytes] = np.frombuffer(data, np.uint8, nbytes)
    words = np.ndarray((nbytes + 1,), np.dtype("<u8"), buf, 0, (1,))
    mask = np.uint64((1 << width) - 1)
    step = 1 << 16  # values per block: bounds the temporaries of a long page
    for lo in range(0, count, step):
        bit = np.arange(lo, min(lo + step, count), dtype=np.int64) * width
        shift = (bit & 7).astype(np.uint64)
        out[lo : lo + len(bit)] = (words[bit >> 3] >> shift) & mask
    return out


def _rle(data: Buf, pos: int, width: int, count: int) -> np.ndarray:
    """``count`` values of Parquet's RLE / bit-packed hybrid encoding from ``data[pos:]``.

    Only the run headers are walked in Python. Bit-packed runs are whole bytes
    (8 values a group), so their bytes joined are one bit stream, decoded at
    once; repeated runs become one `np.repeat`.
    """
    nbytes = (width + 7) // 8
    reader = Thrift(data, pos)
    takes: list[int] = []  # per run, how many of ``count`` it gives
    is_packed: list[bool] = []
    repeated: list[int] = []  # per repeated run, its value
    chunks: list[Buf] = []  # per bit-packed run, its bytes
    packed_values = 0
    i = 0
    end = len(data)
    while i < count:
        if reader.pos < end and data[reader.pos] < 0x80:  # a one-byte header: most are
            header = data[reader.pos]
            reader.pos += 1
        else:
            header = reader.varint()
        at = reader.pos
        if header & 1:
            take = min((header >> 1) * 8, count - i)
            groups = (take + 7) // 8  # a damaged last header may claim far more
            chunks.append(data[at : at + groups * width])
            reader.pos = at + (header >> 1) * width
            packed_values += groups * 8
        else:
            repeated.append(int.from_bytes(data[at : at + nbytes], "little"))
            reader.pos = at + nbytes
            take = min(header >> 1, count - i)
        if take <= 0:
            raise OSError("corrupt RLE data")
        is_packed.append(bool(header & 1))
        takes.append(take)
        i += take
    if not chunks:
        return np.repeat(np.array(repeated, np.int32), takes)
    out = np.empty(count, np.int32)
    where = np.repeat(np.array(is_packed), takes)
    decoded = _unpack_bits(b"".join(chunks), width, packed_values)
    out[where] = decoded[: count - sum(t for t, p in zip(takes, is_packed, strict=True) if not p)]
    if repeated:
        reps = [t for t, p in zip(takes, is_packed, strict=True) if not p]
        out[~where] = np.repeat(np.array(repeated, np.int32), reps)
    return out


def _strings(data: Buf, pos: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        (n,) = struct.unpack_from("<i", data, pos)
        try:
            out.append(data[pos + 4 : pos + 4 + n].decode("utf-8"))
        except UnicodeDecodeError as e:
            raise Unsupported(f"binary values that are not UTF-8 text: {e}") from e
        pos += 4 + n
    return out


class _Column:
    """One leaf column of the schema: how to turn its pages into numpy values."""

    def __init__(self, element: dict[int, Any]) -> None:
        self.name = element[4].decode("utf-8")
        self.physical: int = element.get(1, -1)
        self.optional = element.get(3, 0) == 1
        if element.get(3, 0) == 2:
            raise Unsupported(f"repeated column {self.name!r}")
        logical, converted = element.get(10), element.get(6)
        self.ts_scale: int | None = None
        self.text = False
        if self.physical == _BYTE_ARRAY:
            # UTF-8 strings, or plain binary (text as Hive or pandas bytes write it, decoded)
            if not (logical and 1 in logical) and not (logical is None and converted in _TEXT):
                raise Unsupported(f"binary column {self.name!r}")
            self.text = True
            return
        if self.physical not in _NUMPY:
            raise Unsupported(f"column {self.name!r} of physical type {self.physical}")
        if logical is not None:
            if 8 in logical and self.physical == _INT64:
                self.ts_scale = _TS_UNITS[next(iter(logical[8][2]))]
            elif not (10 in logical and logical[10].get(2, True)):  # signed INTEGER only
                raise Unsupported(f"column {self.name!r} of logical type {sorted(logical)}")
        elif converted in _TS_CONVERTED and self.physical == _INT64:
            self.ts_scale = _TS_CONVERTED[converted]
        elif converted is not None and converted not in _SIGNED_INTS:
            raise Unsupported(f"column {self.name!r} of converted type {converted}")

    @property
    def kind(self) -> str:
        """ "timestamp", "int", "float" or "string", as the loader's type checks see it."""
        if self.text:
            return "string"
        if self.ts_scale is not None:
            return "timestamp"
        return "float" if self.physical in (_FLOAT, _DOUBLE) else "int"


class LiteParquet:
    """A Parquet file's footer, read without pyarrow; use as a context manager.

    Raises:
        Unsupported: the file needs a feature this reader lacks.
        OSError: the file is unreadable or not Parquet.
    """

    def __init__(self, path: Path) -> None:
        self._f = path.open("rb")
        try:
            size = self._f.seek(0, 2)
            if size < 12:
                raise OSError("too small to be Parquet")
            self._f.seek(size - 8)
            tail = self._f.read(8)
            meta_len = int.from_bytes(tail[:4], "little")
            if tail[4:] != b"PAR1" or meta_len > size - 12:
                raise OSError("not a Parquet file")
            self._f.seek(size - 8 - meta_len)
            meta = Thrift(self._f.read(meta_len)).struct()
            if any(5 in e and e[5] for e in meta[2][1:]):
                raise Unsupported("nested columns")
            self._columns = [_Column(e) for e in meta[2][1:]]
            self.num_rows: int = meta[3]
            if any(1 in c for rg in meta.get(4, []) for c in rg[1]):
                raise Unsupported("columns in other files")
            self._row_groups: list[list[dict]] = [[c[3] for c in rg[1]] for rg in meta.get(4, [])]
            counts = [rg[3] for rg in meta.get(4, [])]  # flat columns: one value per row
            if sum(counts) != self.num_rows or any(
                c[5] != n for group, n in zip(self._row_groups, counts, strict=True) for c in group
            ):
                raise ValueError("row counts that do not add up")
        except _DAMAGED as e:
            self._f.close()
            raise Unsupported(f"unexpected metadata: {e!r}") from e
        except BaseException:
            self._f.close()
            raise
        self.names = [c.name for c in self._columns]
        self._fd = self._f.fileno()

    def __enter__(self) -> LiteParquet:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def kind(self, name: str) -> str:
        """The column's kind: "timestamp", "int", "float" or "string"."""
        return self._columns[self.names.index(name)].kind

    def columns(self, name: str) -> Iterator[Any]:
        """Column ``name`` in page-sized numpy arrays (int64 ns for timestamps,
        int64 or float64 for numbers) or `SymbolColumn`s (strings, codes shared
        across the whole file).

        Raises:
            HasNulls: a value is null.
            Unsupported: a page uses an encoding or codec this reader lacks.
            OSError: a page is damaged (it cannot be decoded).
        """
        try:
            yield from self._pages(name)
        except _DAMAGED as e:
            raise OSError(f"damaged page in column {name!r}: {e!r}") from e

    def _pages(self, name: str) -> Iterator[Any]:
        k = self.names.index(name)
        col = self._columns[k]
        symbols: dict[str, int] = {}
        for group in self._row_groups:
            meta = group[k]
            at = min(meta[9], meta[11]) if meta.get(11) else meta[9]
            left, dictionary = meta[5], None
            while left > 0:
                header, at = self._page_header(at)
                body = os.pread(self._fd, header[3], at)
                if len(body) != header[3]:
                    raise OSError(f"a page of {header[3]} bytes at byte {at}: the file ends")
                at += header[3]
                if header[1] == _DICTIONARY_PAGE:
                    raw = _decompress(meta[4], body, header[2])
                    dictionary = self._plain(col, raw, 0, header[7][1], symbols)
                    continue
                if header[1] not in (_DATA_PAGE, _DATA_PAGE_V2):
                    continue  # index pages
                if (header[5] if header[1] == _DATA_PAGE else header[8])[1] > left:
                    raise OSError(f"more values in column {name!r} than its footer says")
                values, coded = self._data_page(col, meta[4], header, body, dictionary, symbols)
                left -= len(values)
                if not coded:
                    yield values
                    continue
                # Dictionary codes: look the values up a slice at a time, not a whole page.
                for lo in range(0, len(values), _SLICE):
                    codes = values[lo : lo + _SLICE]
                    if isinstance(dictionary, SymbolColumn):
                        yield SymbolColumn(dictionary.names, dictionary.codes[codes])
                    elif dictionary is not None:
                        yield dictionary[codes]

    def _page_header(self, at: int) -> tuple[dict[int, Any], int]:
        """The page header at byte ``at`` and the byte after it (columns read independently)."""
        for size in (256, 4096, 1 << 16, 1 << 20):
            reader = Thrift(os.pread(self._fd, size, at))
            try:
                return reader.struct(), at + reader.pos
            except (EOFError, IndexError, struct.error):
                continue
        raise OSError(f"unreadable page header at byte {at}")

    def _data_page(
        self, col: _Column, codec: int, header: dict, body: bytes, dictionary: Any, symbols: dict
    ) -> tuple[Any, bool]:
        """A data page's values, or its dictionary codes (then True)."""
        if header[1] == _DATA_PAGE:
            page = header[5]
            count, encoding = page[1], page[2]
            data = _decompress(codec, body, header[2])
            pos = 0
            if col.optional:
                (n,) = struct.unpack_from("<i", data, 0)
                if not bool(np.all(_rle(data, 4, 1, count) == 1)):
                    raise HasNulls(col.name)
                pos = 4 + n
        else:
            page = header[8]
            count, encoding = page[1], page[4]
            if page[2]:
                raise HasNulls(col.name)
            levels = page[5] + page[6]
            rest: Buf = body[levels:]
            if page.get(7, True):
                rest = _decompress(codec, rest, header[2] - levels)
            data, pos = body[:levels] + rest, levels
        if encoding == _PLAIN:
            return self._plain(col, data, pos, count, symbols), False
        if encoding not in (_PLAIN_DICTIONARY, _RLE_DICTIONARY) or dictionary is None:
            raise Unsupported(f"encoding {encoding} in column {col.name!r}")
        if data[pos] > 31:
            raise OSError(f"bad dictionary index width {data[pos]}")
        return _rle(data, pos + 1, data[pos], count), True  # codes, looked up by `columns`

    def _plain(self, col: _Column, data: Buf, pos: int, count: int, symbols: dict) -> Any:
        if col.text:
            strings = _strings(data, pos, count)
            local = [symbols.setdefault(s, len(symbols)) for s in strings]
            return SymbolColumn(list(symbols), np.array(local, np.int32))
        values = np.frombuffer(data, _NUMPY[col.physical], count, pos)
        if col.ts_scale is not None:
            if col.ts_scale > 1 and count:
                limit = _I64_MAX // col.ts_scale
                if int(values.max()) > limit or int(values.min()) < -limit:
                    raise Unsupported(f"timestamps of {col.name!r} overflow nanoseconds")
            values = values.astype(np.int64, copy=False)
            return values * col.ts_scale if col.ts_scale > 1 else values
        if col.physical in (_FLOAT, _DOUBLE):
            return values.astype(np.float64, copy=False)
        return values.astype(np.int64, copy=False)


def aligned(columns: list[Iterator[Any]], chunk_rows: int) -> Iterator[list[Any]]:
    """Zip page streams of equal total length into chunks of equal length."""
    bufs: list[Any] = [None] * len(columns)
    while True:
        for k, it in enumerate(columns):
            while bufs[k] is None or len(bufs[k]) == 0:
                bufs[k] = next(it, None)
                if bufs[k] is None:
                    return
        m = min(chunk_rows, *(len(b) for b in bufs))
        yield [b[:m] for b in bufs]
        bufs = [b[m:] for b in bufs]
