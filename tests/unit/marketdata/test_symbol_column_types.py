"""A Parquet ``symbol`` column of another type than UTF-8 strings.

Hive, Impala, old Spark and pandas bytes write text as BINARY without the
UTF8 annotation: it is text (ticks carried b'ABC' and a replay traded
nothing). A column that holds no text (integers) is a DataError naming the
file and the column, on the whole-file and the streamed path alike.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.config import ReplayFeedConfig
from workbench.exceptions import DataError
from workbench.gateway.feeds import ReplayFeed
from workbench.marketdata import load_ticks
from workbench.marketdata.stream import open_stream


def write(tmp_path: Path, symbols: pa.Array, compression: str = "zstd") -> Path:
    path = tmp_path / "ticks.parquet"
    n = len(symbols)
    table = pa.table({"ts_ns": pa.array(range(1, n + 1), pa.int64()), "price": [1.0] * n})
    pq.write_table(table.append_column("symbol", symbols), path, compression=compression)
    return path


def replay(path: Path) -> list:
    feed = ReplayFeed(ReplayFeedConfig(path=str(path)), str(path))
    out = []
    while not feed.exhausted:
        out += feed.poll(1 << 30)
    return out


BINARY = [b"ABC", b"XYZ", b"XYZ", b"ABC"]


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
@pytest.mark.parametrize("compression", ["zstd", "snappy"])  # snappy: the pyarrow stream
@pytest.mark.parametrize("repair", [False, True])  # True: the row path
def test_binary_symbols_are_text(tmp_path, kind, compression, repair):
    path = write(tmp_path, pa.array(BINARY, kind), compression)
    table = load_ticks(path, repair=repair)
    assert list(table.symbol) == ["ABC", "XYZ", "XYZ", "ABC"]
    assert all(type(name) is str for name in table.symbol.names)
    batches = replay(path)
    assert [b.symbol for b in batches] == ["ABC", "XYZ", "ABC"]
    assert batches == list(table.batches(1000))


def test_dictionary_encoded_binary_symbols_are_text(tmp_path):
    path = write(tmp_path, pa.array(BINARY, pa.binary()).dictionary_encode())
    assert list(load_ticks(path).symbol) == ["ABC", "XYZ", "XYZ", "ABC"]
    assert [b.symbol for b in replay(path)] == ["ABC", "XYZ", "ABC"]


def test_the_gateway_streams_binary_symbols_with_its_own_reader(tmp_path):
    stream = open_stream(write(tmp_path, pa.array(BINARY)), symbol=None, price="mid", fmt="auto")
    assert stream is not None and stream.lite
    assert [b.symbol for b in stream.batches(1000)] == ["ABC", "XYZ", "ABC"]


@pytest.mark.parametrize("compression", ["zstd", "snappy"])
def test_binary_symbols_that_are_not_utf8_are_refused_by_row(tmp_path, compression):
    path = write(tmp_path, pa.array([b"ABC", b"\xff\xfe"], pa.binary()), compression)
    for load in (load_ticks, replay):
        with pytest.raises(DataError) as e:
            load(path)
        assert (e.value.path, e.value.row, e.value.column) == (str(path), 2, "symbol")
        assert "not UTF-8 text" in str(e.value)


@pytest.mark.parametrize(
    "symbols", [pa.array([7, 8]), pa.array([1.5, 2.5]), pa.array([True, False])]
)
@pytest.mark.parametrize("repair", [False, True])
def test_a_symbol_column_without_text_names_the_file_and_column(tmp_path, symbols, repair):
    path = write(tmp_path, symbols)
    with pytest.raises(DataError) as e:
        load_ticks(path, repair=repair)
    assert (e.value.path, e.value.column) == (str(path), "symbol")
    assert "cannot hold symbols" in str(e.value)
    with pytest.raises(DataError) as e:
        ReplayFeed(ReplayFeedConfig(path=str(path)), str(path))
    assert (e.value.path, e.value.column) == (str(path), "symbol")
