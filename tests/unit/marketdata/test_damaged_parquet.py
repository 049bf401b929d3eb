"""A damaged Parquet file is a DataError naming it, on the streamed path too.

The replay gateway's reader (`parquet_lite`, then pyarrow) let zlib.error,
KeyError, IndexError, TypeError, MemoryError and pyarrow's OSError escape:
the gateway crashed and was restarted instead of stopping on a configuration
error that names the file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.config import ReplayFeedConfig, build_config
from workbench.exceptions import ConfigurationError, DataError
from workbench.gateway.feeds import ReplayFeed, load_replay_ticks
from workbench.marketdata import load_ticks
from workbench.marketdata.parquet_lite import _rle
from workbench.marketdata.thrift_compact import Thrift

N = 3000


def source(tmp_path: Path, codec: str, version: str = "1.0") -> Path:
    path = tmp_path / f"src-{codec}-{version}.parquet"
    table = pa.table(
        {
            "ts_ns": pa.array(range(10**18, 10**18 + N), pa.int64()),
            "symbol": ["AAA" if (k // 40) % 2 else "BBB" for k in range(N)],
            "price": [1.0 + (k % 17) * 0.25 for k in range(N)],
            "size": [float(k % 5) for k in range(N)],
        }
    )
    pq.write_table(table, path, compression=codec, data_page_version=version, data_page_size=4000)
    return path


def replay(path: Path, speed: float = 0.0) -> list:
    feed = ReplayFeed(ReplayFeedConfig(path=str(path), batch_size=1000, speed=speed), str(path))
    out = []
    while not feed.exhausted:
        out += feed.poll(1 << 30)
    return out


def readers(path: Path) -> dict:
    cfg = build_config({"gateway": {"replay": {"path": str(path)}}})
    return {
        "load_ticks": lambda: load_ticks(path),
        "streamed replay": lambda: replay(path),
        "paced replay": lambda: replay(path, 1e12),
        "simulator tape": lambda: load_replay_ticks(cfg, lite=True),
    }


@pytest.mark.parametrize(
    ("codec", "lo", "hi"), [("gzip", 60, 90), ("none", 30, 60), ("none", 4, 30)]
)
def test_a_damaged_page_is_a_data_error_naming_the_file(tmp_path, codec, lo, hi):
    path = source(tmp_path, codec)
    data = bytearray(path.read_bytes())
    data[lo:hi] = bytes(hi - lo)
    path.write_bytes(bytes(data))
    for name, read in readers(path).items():
        with pytest.raises(DataError) as e:
            read()
        assert e.value.path == str(path), name
    cfg = build_config({"gateway": {"replay": {"path": str(path)}}})
    with pytest.raises(ConfigurationError, match=r"gateway\.replay\.path"):
        ReplayFeed.from_config(cfg)  # the gateway stops: exit 2, not restarted


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_random_damage_never_escapes_as_another_exception(tmp_path, codec, version):
    good = source(tmp_path, codec, version).read_bytes()
    rng = random.Random(f"{codec}{version}")
    path = tmp_path / "damaged.parquet"
    for _ in range(30):
        data = bytearray(good)
        mode = rng.choice(["flip", "cut", "zero"])
        if mode == "cut":  # a torn copy
            data = data[: rng.randrange(len(data))]
        elif mode == "flip":
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(4, len(data) - 8)] ^= 1 << rng.randrange(8)
        else:
            at, n = rng.randrange(4, len(data) - 8), rng.randint(1, 40)
            data[at : at + n] = bytes(len(data[at : at + n]))
        path.write_bytes(bytes(data))
        for name, read in readers(path).items():
            try:
                read()
            except DataError as e:
                assert e.path == str(path), name
            # any other exception fails the test, naming itself


def test_a_damaged_thrift_map_size_is_refused_not_looped_over():
    # field 1: a map of 2**21 bool -> bool entries (0 bytes each), then the struct's end
    with pytest.raises(EOFError):
        Thrift(bytes([0x1B, 0x80, 0x80, 0x80, 0x01, 0x11, 0x00])).struct()


def test_a_damaged_bit_packed_run_header_does_not_allocate_what_it_claims():
    header = (1 << 40) << 1 | 1  # a bit-packed run of 2**43 values; 8 are wanted
    varint = bytearray()
    while header >= 0x80:
        varint.append(header & 0x7F | 0x80)
        header >>= 7
    varint.append(header)
    assert _rle(bytes(varint) + b"\xa5", 0, 1, 8).tolist() == [1, 0, 1, 0, 0, 1, 0, 1]
