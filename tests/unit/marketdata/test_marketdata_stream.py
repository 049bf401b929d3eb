"""Streaming a Parquet replay file cuts exactly the batches of the whole table."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.config import ReplayFeedConfig
from workbench.exceptions import DataError
from workbench.gateway.feeds import ReplayFeed
from workbench.marketdata import load_ticks, synth_ticks, write_ticks
from workbench.marketdata import stream as stream_mod


def runs_file(tmp_path: Path) -> Path:
    """Symbol runs of 1..40 rows, so runs cross every chunk boundary."""
    symbols, n = [], 0
    for k in range(60):
        length = 1 + (k * 7) % 40
        symbols += ["AAA" if k % 2 else "BBB"] * length
        n += length
    path = tmp_path / "runs.parquet"
    pq.write_table(
        pa.table(
            {
                "ts_ns": pa.array(range(1000, 1000 + n), pa.int64()),
                "symbol": symbols,
                "bid": [100.0 + (i % 13) * 0.01 for i in range(n)],
                "ask": [100.02 + (i % 13) * 0.01 for i in range(n)],
            }
        ),
        path,
    )
    return path


def drain(feed: ReplayFeed) -> list:
    out = []
    while not feed.exhausted:
        out += feed.poll(1 << 30)
    return out


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000, 65_536])
@pytest.mark.parametrize("batch_size", [1, 5, 16, 1000])
def test_streamed_batches_equal_the_whole_tables(monkeypatch, tmp_path, chunk_rows, batch_size):
    path = runs_file(tmp_path)
    monkeypatch.setattr(stream_mod, "CHUNK_ROWS", chunk_rows)
    expected = list(load_ticks(path).batches(batch_size, first_seq=1))
    feed = ReplayFeed(ReplayFeedConfig(path=str(path), batch_size=batch_size), str(path))
    assert feed.streamed
    assert feed.size == sum(len(b) for b in expected)
    assert drain(feed) == expected


def test_single_symbol_file_names_the_symbol_like_the_loader(monkeypatch, tmp_path):
    path = write_ticks(synth_ticks("ABC", 3000, 2), tmp_path / "abc.parquet")
    pq.write_table(pq.read_table(path).drop(["symbol"]), tmp_path / "xyz-ticks.parquet")
    path = tmp_path / "xyz-ticks.parquet"
    monkeypatch.setattr(stream_mod, "CHUNK_ROWS", 333)
    feed = ReplayFeed(ReplayFeedConfig(path=str(path), batch_size=100), str(path))
    assert feed.streamed
    assert drain(feed) == list(load_ticks(path).batches(100))
    assert drain(feed) == []


def test_backwards_time_across_chunks_is_not_streamed_and_fails_like_before(monkeypatch, tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"ts_ns": [1, 2, 3, 2, 5], "price": [1.0] * 5}), path)
    monkeypatch.setattr(stream_mod, "CHUNK_ROWS", 3)
    with pytest.raises(DataError) as e:
        ReplayFeed(ReplayFeedConfig(path=str(path), symbol="S"), str(path))
    assert (e.value.row, e.value.column) == (4, "ts_ns")
    feed = ReplayFeed(ReplayFeedConfig(path=str(path), symbol="S", repair=True), str(path))
    assert not feed.streamed and feed.size == 5


def test_csv_and_paced_replays_load_whole(tmp_path):
    csv = write_ticks(synth_ticks("ABC", 100, 2), tmp_path / "abc.csv")
    assert not ReplayFeed(ReplayFeedConfig(path=str(csv)), str(csv)).streamed
    pq_path = write_ticks(synth_ticks("ABC", 100, 2), tmp_path / "abc.parquet")
    assert not ReplayFeed(ReplayFeedConfig(path=str(pq_path), speed=1.0), str(pq_path)).streamed
