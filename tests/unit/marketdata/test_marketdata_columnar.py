"""The vectorised Parquet path gives exactly the row path's table, and defers bad files to it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.exceptions import DataError
from workbench.marketdata import load_ticks, synth_ticks, write_ticks
from workbench.marketdata import parquet_io as pio


def row_path(monkeypatch, path: Path, **kw):
    with monkeypatch.context() as m:
        m.setattr(pio.ParquetTicks, "vectorised", lambda self, roles, mode: None)
        return load_ticks(path, **kw)


def spy(monkeypatch) -> list:
    taken: list = []
    original = pio.ParquetTicks.vectorised

    def wrapped(self, roles, mode):
        out = original(self, roles, mode)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(pio.ParquetTicks, "vectorised", wrapped)
    return taken


def write(tmp_path: Path, columns: dict) -> Path:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_clean_file_takes_the_vectorised_path_and_matches(monkeypatch, tmp_path):
    path = write_ticks(synth_ticks("ABC", 20_000, 3), tmp_path / "abc.parquet")
    expected = row_path(monkeypatch, path)
    taken = spy(monkeypatch)
    assert load_ticks(path) == expected
    assert taken == [True]


@pytest.mark.parametrize("mode", ["mid", "bid", "ask"])
def test_bid_ask_symbols_and_int_sizes_match_the_row_path(monkeypatch, tmp_path, mode):
    path = write(
        tmp_path,
        {
            "ts_ns": pa.array([1, 2, 2, 5], pa.int64()),
            "symbol": pa.array(["X", "Y", "X", "Y"]).dictionary_encode(),
            "bid": [1.0, 2.5, 3.25, 0.1],
            "ask": [1.5, 2.75, 3.25, 0.3],
            "size": pa.array([1, 0, 7, 2], pa.int32()),
        },
    )
    expected = row_path(monkeypatch, path, price=mode)
    taken = spy(monkeypatch)
    got = load_ticks(path, price=mode)
    assert got == expected and taken == [True]
    assert got.symbol[0] is got.symbol[2]  # one shared str per symbol


@pytest.mark.parametrize(
    ("columns", "row", "column"),
    [
        ({"ts_ns": [1, 2, 3], "price": [1.0, -2.0, 3.0]}, 2, "price"),
        ({"ts_ns": [1, 2, 3], "price": [1.0, float("nan"), 3.0]}, 2, "price"),
        ({"ts_ns": [1, 3, 2], "price": [1.0, 2.0, 3.0]}, 3, "ts_ns"),
        ({"ts_ns": [1, 2, 3], "price": [1.0, None, 3.0]}, 2, "price"),
        ({"ts_ns": [1, 2], "bid": [1.0, 2.0], "ask": [1.5, 1.9]}, 2, "bid"),
        ({"ts_ns": [1, 2], "price": [1.0, 2.0], "size": [1.0, -1.0]}, 2, "size"),
        ({"ts_ns": [1, 2], "price": [1.0, 2.0], "symbol": ["A", ""]}, 2, "symbol"),
    ],
)
def test_bad_rows_still_name_row_and_column(tmp_path, columns, row, column):
    path = write(tmp_path, columns)
    with pytest.raises(DataError) as e:
        load_ticks(path, symbol="S")
    assert (e.value.row, e.value.column) == (row, column)


def test_repair_still_works_through_the_row_path(tmp_path):
    path = write(tmp_path, {"ts_ns": [1, 3, 2], "price": [1.0, 2.0, 3.0]})
    table = load_ticks(path, repair=True, symbol="S")
    assert table.ts_ns.tolist() == [1, 2, 3] and table.notes


def test_an_integer_beyond_a_floats_exact_range_reads_alike_on_every_path(tmp_path, monkeypatch):
    # The gateway's numpy reader rounded 2**53 + 1; load_ticks (fast replay, sweeps) refused
    # it with ArrowInvalid, naming the first row of its chunk.
    from workbench.config import ReplayFeedConfig
    from workbench.gateway.feeds import ReplayFeed

    n = 3000
    price = [100] * n
    price[2999] = 2**53 + 1
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"ts_ns": list(range(10**18, 10**18 + n)), "price": price}), path)
    want = float(2**53)  # the float nearest, as numpy's astype gives
    assert load_ticks(path).price[2999] == want
    assert row_path(monkeypatch, path).price[2999] == want
    feed = ReplayFeed(ReplayFeedConfig(path=str(path)), str(path))
    assert feed.streamed and feed.size == n
