"""``repair = true`` for a recorded dataset folder: bad rows dropped and named, not refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_config
from structlog.testing import capture_logs

from workbench.domain.model import TickBatch
from workbench.exceptions import DataError
from workbench.gateway.feeds import ReplayFeed, load_replay_ticks
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.loaders import load_ticks
from workbench.marketdata.recorder import TickRecorder

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def recorded(root: Path) -> Path:
    """Two symbols; ABC's file has a zero price (row 2) and a negative size (row 4)."""
    rec = TickRecorder(root, roll_every_s=3600)
    ts = [T0 + k * 10**9 for k in range(5)]
    rec.write(TickBatch("ABC", 1, ts, [100.0, 0.0, 101.0, 102.0, 103.0], [1, 1, 1, -1, 1]))
    rec.write(TickBatch("XYZ", 6, [t + 1 for t in ts], [5.0] * 5, [2.0] * 5))
    rec.close()
    return root


@pytest.mark.parametrize("lite", [True, False])
def test_repair_drops_the_bad_rows_and_names_each_by_file_and_row(tmp_path, lite):
    root = recorded(tmp_path / "ds")
    (abc,) = root.glob("symbol=ABC/*/*.parquet")
    with capture_logs() as logs:
        table = load_dataset(root, lite=lite, repair=True)
    assert [
        (s, p) for s, p in zip(table.symbol, table.price.tolist(), strict=True) if s == "ABC"
    ] == [
        ("ABC", 100.0),
        ("ABC", 101.0),
        ("ABC", 103.0),
    ]
    assert sum(s == "XYZ" for s in table.symbol) == 5
    assert len(table.notes) == 2
    assert table.notes[0].startswith(f"{abc}: removed row 2 (NaN, infinite or non-positive price")
    assert table.notes[1].startswith(f"{abc}: removed row 4 (NaN, infinite or negative size")
    repaired = [e for e in logs if e["event"] == "ticks_repaired"]
    assert [e["path"] for e in repaired] == [str(abc), str(abc)]


@pytest.mark.parametrize("lite", [True, False])
def test_without_repair_the_first_bad_row_is_refused(tmp_path, lite):
    root = recorded(tmp_path / "ds")
    with pytest.raises(DataError, match="row 2, column 'price'"):
        load_dataset(root, lite=lite)


@pytest.mark.parametrize("lite", [True, False])
def test_a_dataset_whose_every_row_is_bad_is_refused_saying_so(tmp_path, lite):
    rec = TickRecorder(tmp_path / "ds", roll_every_s=3600)
    rec.write(TickBatch("ABC", 1, [T0, T0 + 1], [0.0, -1.0], [1.0, 1.0]))
    rec.close()
    with pytest.raises(DataError, match=r"no ticks in the dataset \(all were removed as invalid\)"):
        load_dataset(tmp_path / "ds", lite=lite, repair=True)


def test_load_ticks_the_gateway_and_the_executors_tape_repair_a_dataset_alike(tmp_path):
    """``gateway.replay.repair`` reached the single-file loaders only: a dataset was refused."""
    root = recorded(tmp_path / "ds")
    cfg = make_config(
        tmp_path, gateway={"feed": "replay", "replay": {"path": str(root), "repair": True}}
    )
    expected = load_ticks(root, repair=True)
    assert len(expected) == 8
    feed = ReplayFeed.from_config(cfg)
    sent = []
    while not feed.exhausted:
        for batch in feed.poll(1000):
            sent += list(zip(batch.ts_ns, batch.price, strict=True))
    assert sent == list(zip(expected.ts_ns.tolist(), expected.price.tolist(), strict=True))
    for lite in (True, False):
        tape = load_replay_ticks(cfg, lite=lite)
        assert tape.price.tolist() == expected.price.tolist()
