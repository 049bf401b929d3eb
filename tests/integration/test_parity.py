"""Parity, proved: fast replay, wire replay, the papermill notebook and headless runners
started from a promoted config give identical fills and summaries on the same data.

The notebook runs on the committed sample; `test_lifecycle_parity` runs it again
with latency, fees, limits and stops."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SHARED_DATA, make_config

from workbench.domain.model import Fill, Side
from workbench.replays import fills_hash, promote, replay
from workbench.replays.notebook import run_replay_notebook

pytestmark = pytest.mark.integration


def cond(cid, symbol, side, trigger, turning, tp, sl):
    return {
        "id": cid,
        "symbol": symbol,
        "side": side,
        "trigger_price": trigger,
        "turning_point": turning,
        "take_profit": tp,
        "stop_loss": sl,
        "following": True,
        "rearm": True,
    }


DATASETS = {
    "sample": (
        ROOT / "data/ticks/synth-ABC-5000.csv",
        [
            cond("b", "ABC", "BUY", 99.9, 0.05, 0.2, 0.15),
            cond("s", "ABC", "SELL", 100.1, 0.05, 0.2, 0.15),
        ],
    ),
    "eurusd": (
        SHARED_DATA / "eurusd-quotes-2020-01.csv",
        [
            cond("b", "EURUSD", "BUY", 1.1216, 0.00005, 0.0002, 0.00015),
            cond("s", "EURUSD", "SELL", 1.1222, 0.00005, 0.0002, 0.00015),
        ],
    ),
    "usdjpy": (
        SHARED_DATA / "usdjpy-quotes-2013-01.csv",
        [
            cond("b", "USDJPY", "BUY", 86.75, 0.01, 0.03, 0.03),
            cond("s", "USDJPY", "SELL", 86.80, 0.01, 0.03, 0.03),
        ],
    ),
}


# The papermill notebook runs on this one (it is in every clone); the real data
# sets prove fast, wire and headless parity on real prices.
NOTEBOOK_DATASET = "sample"


def dataset(name: str) -> tuple[Path, list[dict]]:
    path, conds = DATASETS[name]
    if not path.exists():
        pytest.skip(f"{path} not present (a user's clone has no ../shared)")
    return path, conds


def journal_fills(path: Path) -> list[Fill]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT fill_id, order_id, signal_id, symbol, side, qty, price, ts_ns FROM fills"
        ).fetchall()
    return [Fill(r[0], r[1], r[2], r[3], Side(r[4]), r[5], r[6], r[7]) for r in rows]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_fast_wire_notebook_and_headless_runs_agree(name, tmp_path):
    data, conds = dataset(name)
    cfg = make_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": conds}}],
        executor={"broker": {"slippage": 0.0}},
        gateway={"replay": {"batch_size": 333}},
    )
    cfg_file = cfg.save(tmp_path / "config.toml")

    fast = replay(cfg_file, data, mode="fast", out=tmp_path / "fast")
    wire = replay(cfg_file, data, mode="wire", out=tmp_path / "wire", progress=False)
    assert fast.summary["fills"] > 0, "a parity test where nothing trades proves nothing"
    assert wire.fills.equals(fast.fills)
    assert wire.summary == fast.summary
    assert (tmp_path / "wire/summary.json").read_bytes() == (
        tmp_path / "fast/summary.json"
    ).read_bytes()

    if name == NOTEBOOK_DATASET:  # the notebook's own path is the same on every data set
        nb = run_replay_notebook(
            tmp_path / "notebook",
            {"config_path": str(cfg_file), "data_path": str(data), "mode": "wire"},
        )
        assert (nb.parent / "summary.json").read_bytes() == (
            tmp_path / "fast/summary.json"
        ).read_bytes()

    promoted = promote(tmp_path / "wire", tmp_path / "promoted.toml", min_trades=0)
    up = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(promoted)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    headless = journal_fills(tmp_path / "runs" / "test" / "journal.sqlite")
    assert fills_hash(headless) == fast.summary["fills_sha256"]
    assert json.loads((tmp_path / "wire/run.json").read_text())["mode"] == "wire"
