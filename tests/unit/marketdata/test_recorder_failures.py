"""A recorder whose writes fail (a full disk, a lost mount) keeps its rows and never stops the feed.

The failures are real: a file where a partition's folder must go makes
``write_dataset`` fail as a read-only or full disk would, until it is removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_config

from workbench.config import SimulatedFeedConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import ConfigurationError
from workbench.gateway.feeds import SimulatedFeed
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.recorder import RecordingFeed, TickRecorder, make_recorder
from workbench.telemetry import Telemetry

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def batch(symbol: str, first: int, n: int) -> TickBatch:
    ts = [T0 + (first + k) * 10**6 for k in range(n)]
    return TickBatch(symbol, first, ts, [100.0 + k for k in range(n)], [1.0] * n)


def block(root: Path, symbol: str) -> Path:
    """A file where the symbol's partition folder must go: its writes fail."""
    root.mkdir(parents=True, exist_ok=True)
    blocker = root / f"symbol={symbol}"
    blocker.write_text("in the way")
    return blocker


def test_a_failed_write_keeps_every_row_and_the_next_writes_each_once(tmp_path):
    # The buffer was emptied before the write: one failure lost up to 120 s of ticks.
    root, t = tmp_path / "ds", Telemetry()
    blocker = block(root, "ABC")
    rec = TickRecorder(root, roll_every_s=3600, max_rows=1000, telemetry=t)
    rec.write(batch("XYZ", 1, 5))  # its partition writes: that part must not stay behind
    rec.write(batch("ABC", 6, 10))
    assert rec.flush() is False
    assert (rec.write_failures, t.get("record_write_failures"), rec.rows_written) == (1, 1, 0)
    assert not list(root.rglob("*.parquet"))  # nothing half-written is left to publish
    blocker.unlink()
    assert rec.flush() is True
    table = load_dataset(root)
    assert sorted(zip(table.symbol, table.price.tolist(), strict=True)) == sorted(
        [("XYZ", 100.0 + k) for k in range(5)] + [("ABC", 100.0 + k) for k in range(10)]
    )
    assert (rec.rows_written, t.get("ticks_recorded"), rec.rows_dropped) == (15, 15, 0)


def test_rows_beyond_the_buffer_limit_are_dropped_oldest_first_and_counted(tmp_path):
    root, t = tmp_path / "ds", Telemetry()
    blocker = block(root, "ABC")
    rec = TickRecorder(root, roll_every_s=3600, max_rows=10, telemetry=t)  # keeps 100 rows
    for first in range(1, 151, 10):
        rec.write(batch("ABC", first, 10))
    assert rec.flush() is False
    assert (rec.rows_dropped, t.get("ticks_record_dropped")) == (50, 50)
    blocker.unlink()
    assert rec.flush() is True
    assert len(load_dataset(root)) == 100  # the newest: seqs 51 to 150
    rec.close()


def test_a_recording_feed_goes_on_publishing_while_its_writes_fail(tmp_path):
    root = tmp_path / "ds"
    blocker = block(root, "ABC")
    sim = SimulatedFeed(SimulatedFeedConfig(symbols=["ABC"], rate_per_s=1e9, max_ticks=500))
    feed = RecordingFeed(sim, TickRecorder(root, roll_every_s=0.0, max_rows=50))
    published = 0
    while not feed.exhausted:
        published += sum(len(b) for b in feed.poll(100))  # raised OSError before
    assert published == 500 and feed.recorder.write_failures >= 1
    blocker.unlink()
    feed.close()
    assert len(load_dataset(root)) == 500 and feed.recorder.rows_dropped == 0


def test_a_recorder_path_that_cannot_be_a_folder_is_a_config_error_naming_it(tmp_path):
    (tmp_path / "taken").write_text("a file")
    cfg = make_config(tmp_path, recorder={"enabled": True, "path": str(tmp_path / "taken")})
    with pytest.raises(ConfigurationError, match=r"recorder\.path: cannot create .*taken"):
        make_recorder(cfg)
