"""The recorder's Parquet dataset (by symbol and date) and load_ticks on its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import SimulatedFeedConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import DataError
from workbench.gateway.feeds import SimulatedFeed
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.loaders import load_ticks
from workbench.marketdata.recorder import RecordingFeed, TickRecorder

DAY = 86_400 * 10**9
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def test_partitions_by_symbol_and_date_and_reads_back_in_time_order(tmp_path: Path) -> None:
    rec = TickRecorder(tmp_path / "ds", roll_every_s=3600)
    rec.write(TickBatch("BTC/USDT", 1, [T0 + 5, T0 + DAY + 1], [10.0, 11.0], [1.0, 2.0]))
    rec.write(TickBatch("ETH/USDT", 3, [T0 + 3], [5.0], [0.5]), recv_ns=[T0 + 9])
    rec.flush()
    rec.write(TickBatch("BTC/USDT", 4, [T0 + 4], [12.0], [1.0]))
    rec.close()
    parts = sorted(
        str(p.relative_to(tmp_path / "ds").parent) for p in (tmp_path / "ds").rglob("*.parquet")
    )
    assert parts == [
        "symbol=BTC%2FUSDT/date=2026-01-01",
        "symbol=BTC%2FUSDT/date=2026-01-01",
        "symbol=BTC%2FUSDT/date=2026-01-02",
        "symbol=ETH%2FUSDT/date=2026-01-01",
    ]
    t = load_ticks(tmp_path / "ds")
    assert t.ts_ns.tolist() == [T0 + 3, T0 + 4, T0 + 5, T0 + DAY + 1]
    assert list(t.symbol) == ["ETH/USDT", "BTC/USDT", "BTC/USDT", "BTC/USDT"]
    assert t.price.tolist() == [5.0, 12.0, 10.0, 11.0]
    assert load_dataset(tmp_path / "ds", symbol="ETH/USDT").price.tolist() == [5.0]
    assert rec.rows_written == 4 and rec.files_written == 2


def test_files_are_closed_every_roll_interval_so_a_crash_loses_only_the_open_part(
    tmp_path: Path,
) -> None:
    feed = RecordingFeed(
        SimulatedFeed(SimulatedFeedConfig(rate_per_s=1e6, max_ticks=300)),
        TickRecorder(tmp_path / "ds", roll_every_s=0.0),
    )
    while not feed.exhausted:
        feed.poll(50)
    on_disk = len(load_ticks(tmp_path / "ds"))  # no close(): what a crash would leave
    assert on_disk == feed.total == 300
    assert feed.health()["recorded_rows"] == 300


def test_a_folder_that_is_no_dataset_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no recorded tick dataset"):
        load_ticks(tmp_path / "empty")
