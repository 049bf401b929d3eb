"""The gateway's small Parquet reader gives pyarrow's ticks exactly, or leaves the file to it."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.config import ReplayFeedConfig
from workbench.exceptions import DataError
from workbench.gateway.feeds import ReplayFeed
from workbench.marketdata import load_ticks
from workbench.marketdata import stream as stream_mod
from workbench.marketdata.parquet_lite import LiteParquet, Unsupported
from workbench.marketdata.stream import open_stream

ROOT = Path(__file__).resolve().parents[3]
N = 5_000


def ticks(ts_type: pa.DataType | None = None, ts_name: str = "ts_ns") -> pa.Table:
    """Two symbols in runs, bid/ask with repeats, int32 sizes, rising times."""
    base = 1_700_000_000
    return pa.table(
        {
            ts_name: pa.array([base + k for k in range(N)], pa.int64()).cast(ts_type or pa.int64()),
            "symbol": ["EURUSD" if (k // 37) % 3 else "USDJPY" for k in range(N)],
            "bid": pa.array([1.0 + (k % 17) * 0.25 for k in range(N)], pa.float32()),
            "ask": [1.5 + (k % 17) * 0.25 for k in range(N)],
            "size": pa.array([k % 5 for k in range(N)], pa.int32()),
        }
    )


def drain(feed: ReplayFeed) -> list:
    out = []
    while not feed.exhausted:
        out += feed.poll(1 << 30)
    return out


def check_same(path: Path, *, lite: bool, batch_size: int = 64) -> None:
    stream = open_stream(path, symbol=None, price="mid", fmt="auto")
    assert stream is not None and stream.lite is lite
    expected = list(load_ticks(path).batches(batch_size))
    got = list(stream.batches(batch_size))
    assert got == expected
    assert list(stream.batches(batch_size)) == expected  # read again for a second pass
    types = {(type(b.ts_ns[0]), type(b.price[0]), type(b.size[0])) for b in got}
    assert types == {(int, float, float)}  # 1 == 1.0, so equality alone cannot tell
    whole, table = load_ticks(path), stream.table()  # what runners load at speed > 0
    assert table.symbol == whole.symbol and whole.bid is not None
    for column in ("ts_ns", "price", "size", "bid", "ask"):
        mine, theirs = getattr(table, column), getattr(whole, column)
        assert mine.dtype == theirs.dtype and mine.tolist() == theirs.tolist()


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_pages_codecs_and_encodings_read_like_pyarrow(
    monkeypatch, tmp_path, compression, page_version, dictionary
):
    path = tmp_path / "t.parquet"
    pq.write_table(
        ticks(),
        path,
        compression=compression,
        data_page_version=page_version,
        use_dictionary=dictionary,
        row_group_size=1_234,
        data_page_size=2_000,  # many pages per column chunk, not aligned across columns
    )
    monkeypatch.setattr(stream_mod, "CHUNK_ROWS", 700)
    check_same(path, lite=True)


@pytest.mark.parametrize(
    "ts_type",
    [pa.timestamp("ns"), pa.timestamp("us", tz="UTC"), pa.timestamp("ms", tz="UTC"), pa.int32()],
)
def test_timestamp_units_and_int32_times_read_like_pyarrow(tmp_path, ts_type):
    path = tmp_path / "t.parquet"
    name = "ts_ns" if ts_type == pa.int32() else "ts"
    pq.write_table(ticks(ts_type, name), path, compression="zstd")
    check_same(path, lite=True)


def test_snappy_and_decimals_go_through_pyarrow(tmp_path):
    path = tmp_path / "snappy.parquet"
    pq.write_table(ticks(), path, compression="snappy")
    check_same(path, lite=False)

    dec = tmp_path / "dec.parquet"
    table = pa.table({"ts_ns": [1, 2], "price": pa.array([Decimal("1.5"), Decimal("2.5")])})
    pq.write_table(table, dec)
    with pytest.raises(Unsupported), LiteParquet(dec) as lite:
        list(lite.columns("price"))
    assert open_stream(dec, symbol="X", price="mid", fmt="auto") is None  # loaded whole


def test_a_price_only_file_without_symbols_loads_like_load_ticks(tmp_path):
    path = tmp_path / "abc-ticks.parquet"
    sizes = pa.array([1, 2, 3], pa.int32())
    pq.write_table(
        pa.table({"ts_ns": [1, 2, 3], "price": [1.0, 2.0, 1.5], "size": sizes}),
        path,
        compression="zstd",
    )
    stream = open_stream(path, symbol=None, price="mid", fmt="auto")
    assert stream is not None and stream.lite
    table = stream.table()
    assert table == load_ticks(path) and table.bid is None
    assert table.symbol == ["ABC"] * 3 and table.size.tolist() == [1.0, 2.0, 3.0]


def test_nulls_and_empty_symbols_are_loaded_whole_and_named(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"ts_ns": [1, 2, 3], "price": [1.0, None, 2.0]}), path)
    assert open_stream(path, symbol="X", price="mid", fmt="auto") is None
    with pytest.raises(DataError) as e:
        ReplayFeed(ReplayFeedConfig(path=str(path), symbol="X"), str(path))
    assert (e.value.row, e.value.column) == (2, "price")

    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"ts_ns": [1, 2], "price": [1.0, 2.0], "symbol": ["A", ""]}), empty)
    assert open_stream(empty, symbol=None, price="mid", fmt="auto") is None


def test_corrupt_file_fails_like_before(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(ticks(), path, compression="zstd")
    data = bytearray(path.read_bytes())
    data[200:260] = bytes(60)  # inside the first column's pages
    path.write_bytes(bytes(data))
    with pytest.raises((DataError, OSError, pa.ArrowException)):
        ReplayFeed(ReplayFeedConfig(path=str(path)), str(path))


PROBE = """
import sys
from workbench.config import ReplayFeedConfig
from workbench.gateway.feeds import ReplayFeed
cfg = ReplayFeedConfig(path=sys.argv[1], batch_size=500, speed=float(sys.argv[2]))
feed = ReplayFeed(cfg, sys.argv[1])
n = 0
while not feed.exhausted:
    n += sum(len(b) for b in feed.poll(1 << 30))
print("STREAMED", feed.streamed, n, "pyarrow" in sys.modules, "pandas" in sys.modules)
"""


@pytest.mark.parametrize("speed", [0.0, 1.0])
def test_replay_never_imports_pyarrow(tmp_path, speed):
    """Streamed at speed 0; loaded whole (through the same reader) at real time."""
    path = tmp_path / "t.parquet"
    pq.write_table(ticks(), path, compression="zstd")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(speed)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    [line] = [s for s in out.stdout.splitlines() if s.startswith("STREAMED")]
    assert line == f"STREAMED {speed == 0} {N} False False"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize("width", [0, 1, 3, 7, 8, 9, 13, 16, 17, 24, 31])
def test_rle_hybrid_runs_decode_value_by_value(width):
    """Mixed repeated and bit-packed runs, cut short at ``count``, as a plain loop reads them."""
    import random

    import numpy as np

    from workbench.marketdata.parquet_lite import _rle

    rng = random.Random(width)
    for _ in range(200):
        data, expected = bytearray(b"xx"), []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.5:  # bit-packed: groups of 8 values, width bytes a group
                groups = rng.randint(1, 40)
                values = [rng.randrange(1 << width) for _ in range(groups * 8)]
                packed = sum(v << (k * width) for k, v in enumerate(values))
                data += _varint(groups << 1 | 1) + packed.to_bytes(groups * width, "little")
            else:
                run, value = rng.randint(1, 300), rng.randrange(1 << width)
                data += _varint(run << 1) + value.to_bytes((width + 7) // 8, "little")
                values = [value] * run
            expected += values
        count = rng.randint(1, len(expected))
        got = _rle(bytes(data), 2, width, count)
        assert got.dtype == np.int32
        assert got.tolist() == expected[:count]
