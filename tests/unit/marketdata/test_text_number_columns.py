"""A valid Parquet tick file whose numbers are text gives the same ticks on every path.

`load_ticks` parses text numbers; the streamed path (the replay gateway and the
simulator's tape) crashed on them (TypeError, AttributeError). It now leaves
such a file to `load_ticks`: the same ticks, or the same DataError.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.config import ReplayFeedConfig, build_config
from workbench.exceptions import DataError
from workbench.gateway.feeds import ReplayFeed, load_replay_ticks
from workbench.marketdata import load_ticks
from workbench.marketdata.stream import open_stream

CASES = {
    "text-ts_ns": {"ts_ns": ["1", "2", "3"], "price": [1.0, 2.0, 3.0]},
    "text-price": {"ts_ns": [1, 2, 3], "price": ["1.0", "2.0", "3.0"]},
    "text-size": {"ts_ns": [1, 2, 3], "price": [1.0, 2.0, 3.0], "size": ["1", "2", "3"]},
    "text-bid-ask": {"ts_ns": [1, 2, 3], "bid": ["1", "2", "3"], "ask": [1.5, 2.5, 3.5]},
    "binary-price": {"ts_ns": [1, 2, 3], "price": pa.array([b"1", b"2", b"3"], pa.binary())},
    "text-symbol-ok": {"ts_ns": [1, 2, 3], "price": [1.0, 2.0, 3.0], "symbol": ["A", "B", "A"]},
}


def write(tmp_path: Path, cols: dict, compression: str) -> Path:
    path = tmp_path / "abc-ticks.parquet"
    pq.write_table(pa.table(cols), path, compression=compression)
    return path


def replay(path: Path, speed: float = 0.0) -> list:
    feed = ReplayFeed(ReplayFeedConfig(path=str(path), speed=speed), str(path))
    out = []
    while not feed.exhausted:
        out += feed.poll(1 << 30)
    return out


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("compression", ["zstd", "snappy"])  # the small reader, pyarrow
def test_text_numbers_replay_as_load_ticks_reads_them(tmp_path, name, compression):
    path = write(tmp_path, CASES[name], compression)
    whole = load_ticks(path)
    assert len(whole) == 3
    assert replay(path) == list(whole.batches(1000))
    cfg = build_config({"gateway": {"replay": {"path": str(path)}}})
    tape = load_replay_ticks(cfg, lite=True)  # the simulator's tape in a replay
    assert tape.ts_ns.tolist() == whole.ts_ns.tolist()
    assert tape.price.tolist() == whole.price.tolist()
    assert tape.size.tolist() == whole.size.tolist()


@pytest.mark.parametrize("compression", ["zstd", "snappy"])
def test_only_numeric_columns_are_streamed(tmp_path, compression):
    for name, cols in CASES.items():
        stream = open_stream(
            write(tmp_path, cols, compression), symbol=None, price="mid", fmt="auto"
        )
        assert (stream is not None) == (name == "text-symbol-ok"), name


@pytest.mark.parametrize("compression", ["zstd", "snappy"])
def test_text_that_is_no_number_is_the_same_error_on_every_path(tmp_path, compression):
    path = write(tmp_path, {"ts_ns": [1, 2, 3], "price": ["1.0", "two", "3.0"]}, compression)
    with pytest.raises(DataError) as whole:
        load_ticks(path)
    for speed in (0.0, 1e12):
        with pytest.raises(DataError) as streamed:
            replay(path, speed)
        assert str(streamed.value) == str(whole.value)
    assert (whole.value.row, whole.value.column) == (2, "price")
