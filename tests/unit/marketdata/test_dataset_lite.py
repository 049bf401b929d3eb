"""The numpy-only reader of a recorded dataset: `load_ticks`'s table, or pyarrow reads it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from structlog.testing import capture_logs

from workbench.domain.model import TickBatch
from workbench.exceptions import DataError
from workbench.marketdata import dataset as dataset_mod
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.loaders import load_ticks
from workbench.marketdata.recorder import PARTITIONING, TickRecorder

ROOT = Path(__file__).resolve().parents[3]
DAY = 86_400 * 10**9
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL-PERP")


def record(root: Path) -> TickRecorder:
    """Three symbols over three days in several flushes, with ties in (ts_ns, seq).

    The ties are between symbols in one flush and between the flushes of one
    partition (the seqs start again, as in a second session): only the order
    pyarrow.dataset reads the files in breaks them.
    """
    rec = TickRecorder(root, roll_every_s=3600)
    seq = 1
    for flush in range(4):
        for k in range(60):
            # Every 4th k the symbols share a time, written (and seq'd) against file order.
            for sym in SYMBOLS if k % 4 else SYMBOLS[::-1]:
                j = SYMBOLS.index(sym)
                ts = T0 + 1_000 + k * (3 * DAY // 60) + flush * 11 + (j if k % 4 else 0)
                batch = TickBatch(sym, seq, [ts, ts + 5], [100.0 + k + j, 101.5 + j], [1.0, 0.5])
                rec.write(batch, recv_ns=[ts + 1, ts + 6])
                seq += 2
        rec.write(TickBatch("ETH/USDT", 1, [T0 + DAY], [7.0], [2.0]))  # the same row each flush
        rec.write(TickBatch("BTC/USDT", 1, [T0 + DAY], [8.0], [3.0]))
        rec.flush()
    rec.close()
    return rec


def no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("read with pyarrow")

    monkeypatch.setattr(dataset_mod, "_load_arrow", refuse)


def assert_same(mine, theirs) -> None:
    assert mine.symbol == theirs.symbol
    assert mine.bid is None and theirs.bid is None
    for column in ("ts_ns", "price", "size"):
        a, b = getattr(mine, column), getattr(theirs, column)
        assert a.dtype == b.dtype and a.tolist() == b.tolist(), column


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rec") / "ticks"
    record(root)
    return root


def test_the_recorder_writes_zstd_hive_partitions_with_the_symbol_only_in_the_path(recorded):
    files = sorted(recorded.rglob("*.parquet"))
    dirs = {f.relative_to(recorded).parent.as_posix() for f in files}
    assert "symbol=BTC%2FUSDT/date=2026-01-01" in dirs and len(dirs) == 9  # 3 symbols x 3 days
    for f in files:
        meta = pq.ParquetFile(f).metadata
        assert pq.ParquetFile(f).schema_arrow.names == ["ts_ns", "price", "size", "recv_ns", "seq"]
        rg = meta.row_group(0)
        assert {rg.column(i).compression for i in range(rg.num_columns)} == {"ZSTD"}


def test_lite_reader_equals_load_ticks_without_pyarrow(recorded, monkeypatch):
    whole = load_ticks(recorded)
    # The ties are there, and broken by file order (symbol, then file name), not write order.
    tied = [s for s, t in zip(whole.symbol, whole.ts_ns.tolist(), strict=True) if t == T0 + DAY]
    assert tied == ["BTC/USDT"] * 4 + ["ETH/USDT"] * 4
    assert list(whole.symbol[:3]) == ["SOL-PERP", "ETH/USDT", "BTC/USDT"]  # by seq first
    assert len(set(whole.symbol)) == 3 and len(whole) == 4 * (60 * 3 * 2 + 2)
    by_symbol = {sym: load_ticks(recorded, symbol=sym) for sym in SYMBOLS}
    no_pyarrow(monkeypatch)
    assert_same(load_dataset(recorded, lite=True), whole)
    for sym in SYMBOLS:
        assert_same(load_dataset(recorded, symbol=sym, lite=True), by_symbol[sym])
    with pytest.raises(DataError, match="no ticks in the dataset"):
        load_dataset(recorded, symbol="XRP/USDT", lite=True)


def test_files_pyarrow_ignores_are_ignored_and_others_are_left_to_it(tmp_path, monkeypatch):
    root = tmp_path / "ticks"
    record(root)
    (root / "_SUCCESS").write_text("")
    (root / "symbol=ABC" / ".tmp").mkdir(parents=True)
    (root / "symbol=ABC" / ".tmp" / "x.parquet").write_text("partial")
    (root / "symbol=BTC%2FUSDT" / "_staging").mkdir()
    (root / "symbol=BTC%2FUSDT" / "_staging" / "part.parquet").write_text("partial")
    whole = load_ticks(root)
    with monkeypatch.context() as m:
        no_pyarrow(m)
        assert_same(load_dataset(root, lite=True), whole)
    (root / "symbol=ABC" / "notes.txt").write_text("not parquet")
    with capture_logs() as logs, pytest.raises(DataError, match="not a recorded tick dataset"):
        load_dataset(root, lite=True)
    [log] = [e for e in logs if e["event"] == "dataset_read_with_pyarrow"]
    assert "symbol=ABC/notes.txt" in log["reason"]


def write_dataset(root: Path, table: pa.Table, compression: str) -> None:
    ds.write_dataset(
        table,
        root,
        format="parquet",
        partitioning=ds.partitioning(PARTITIONING, flavor="hive"),
        file_options=ds.ParquetFileFormat().make_write_options(compression=compression),
    )


def rows(symbols: list[str]) -> pa.Table:
    n = len(symbols)
    return pa.table(
        {
            "ts_ns": pa.array([T0 + k // 2 for k in range(n)], pa.int64()),
            "price": [1.0 + k for k in range(n)],
            "size": [0.5] * n,
            "recv_ns": pa.array([T0] * n, pa.int64()),
            "seq": pa.array(range(n), pa.int64()),
            "symbol": symbols,
            "date": ["2026-01-01"] * n,
        }
    )


@pytest.mark.parametrize(
    ("compression", "symbols", "reason"),
    [
        ("snappy", ["BTC/USDT", "ETH/USDT"] * 20, "compression codec SNAPPY"),
        ("zstd", [None, "ETH"] * 20, "is null to pyarrow"),
    ],
)
def test_an_older_snappy_recording_still_replays_through_pyarrow_saying_why(
    tmp_path, compression, symbols, reason
):
    root = tmp_path / "ticks"
    write_dataset(root, rows(symbols), compression)
    with capture_logs() as logs:
        lite = load_dataset(root, lite=True)
    assert_same(lite, load_ticks(root))
    [log] = [e for e in logs if e["event"] == "dataset_read_with_pyarrow"]
    assert reason in log["reason"]
    feed = load_dataset(root, symbol=symbols[1], lite=True)
    assert_same(feed, load_ticks(root, symbol=symbols[1]))


PROBE = """
import sys
from workbench.config import ReplayFeedConfig
from workbench.gateway.feeds import ReplayFeed
cfg = ReplayFeedConfig(path=sys.argv[1], batch_size=100, speed=float(sys.argv[2]))
feed = ReplayFeed(cfg, sys.argv[1])
rows = []
while not feed.exhausted:
    for b in feed.poll(1 << 30):
        seqs = range(b.first_seq, b.first_seq + len(b))
        rows += zip([b.symbol] * len(b), seqs, b.ts_ns, b.price, b.size)
print("ROWS", repr(rows))
print("HEAVY", "pyarrow" in sys.modules, "pandas" in sys.modules)
"""


@pytest.mark.parametrize("speed", [0.0, 1e12])
def test_a_gateway_replays_a_recorded_dataset_without_pyarrow(recorded, speed):
    """Loaded whole at either speed (a dataset is not streamed), through the numpy reader."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(recorded), str(speed)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    lines = dict(s.split(" ", 1) for s in out.stdout.splitlines() if s.startswith(("ROWS", "HE")))
    assert lines["HEAVY"] == "False False"
    t = load_ticks(recorded)
    columns = (t.symbol, range(1, len(t) + 1), t.ts_ns.tolist(), t.price.tolist(), t.size.tolist())
    expected = list(zip(*columns, strict=True))
    assert ast.literal_eval(lines["ROWS"]) == expected


@pytest.mark.parametrize(
    ("price", "size", "ts", "column"),
    [
        (float("nan"), 1.0, T0, "price"),
        (-5.0, 1.0, T0, "price"),
        (1.0, -1.0, T0, "size"),
        (1.0, float("inf"), T0, "size"),
        (1.0, 1.0, -1, "ts_ns"),
    ],
)
@pytest.mark.parametrize("lite", [True, False])
def test_a_dataset_row_no_tick_may_have_is_refused_naming_it(
    tmp_path, price, size, ts, column, lite
):
    # The single-file loaders refuse these; a recorded dataset replayed them (13 fills, not 11).
    root = tmp_path / "ticks"
    rec = TickRecorder(root, roll_every_s=3600)
    rec.write(TickBatch("ABC", 1, [T0 - 5, ts], [100.0, price], [1.0, size]))
    rec.close()
    with pytest.raises(DataError, match=rf"row 1, column '{column}': {column} must be") as e:
        load_dataset(root, lite=lite)
    # Both readers name the file and the row in it (pyarrow named the row in time order).
    (bad,) = [f for f in root.rglob("*.parquet") if str(f) in str(e.value)]
    assert bad.parent.name == ("date=1969-12-31" if column == "ts_ns" else "date=2026-01-01")
