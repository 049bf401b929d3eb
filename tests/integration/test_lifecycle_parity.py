"""Parity with the simulator's realism on: latency, fees, slippage, limit and stop orders,
and strategies that act on their order outcomes. Fast replay, wire replay, the papermill
notebook and a headless run of the promoted config give identical fills (ids, times, sides,
prices, qty, fees) on the sample data and on both real files, where market and stop fills
pay a fraction of the quoted spread (``slippage_half_spreads``)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, make_config
from test_parity import dataset

from workbench.domain.model import Fill, Side
from workbench.marketdata import load_ticks
from workbench.replays import fills_hash, promote, replay
from workbench.replays.notebook import run_replay_notebook

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
GOLDEN = ROOT / "tests" / "golden" / "lifecycle"
BROKER = {"latency_ms": 250, "fee_bps": 2.0, "fee_per_order": 0.01}
OFFSET = {"sample": 0.02, "eurusd": 0.0002, "usdjpy": 0.02}
SPREAD = {"eurusd": 1.0, "usdjpy": 0.5}  # quote files: market fills pay these half-spreads


@pytest.fixture
def test_strategies_importable(monkeypatch):
    """Runner processes (and papermill's kernel) import the test strategy from here."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(HERE))


def lifecycle_config(tmp_path: Path, name: str):
    _, conds = dataset(name)
    symbol, offset = conds[0]["symbol"], OFFSET[name]
    return make_config(
        tmp_path,
        strategies=[
            {
                "id": "sr",
                "params": {
                    "conditions": conds,
                    "entry_order": "limit",
                    "entry_limit_offset": offset / 2,
                },
            },
            {
                "id": "mix",
                "class_path": "lifecycle_strategies:OrderMix",
                "params": {"symbol": symbol, "every": 97, "offset": offset},
            },
        ],
        executor={"broker": {"params": {**BROKER, "slippage": offset / 4} | spread(name)}},
        gateway={"replay": {"batch_size": 333}},
    )


def spread(name: str) -> dict:
    return {"slippage_half_spreads": SPREAD[name]} if name in SPREAD else {}


def assert_market_fills_pay_the_spread(name: str, data: Path, fills) -> None:
    """Every OrderMix MARKET/STOP fill is ``SPREAD`` half-spreads from a quote's mid at its time.

    OrderMix's n-th signal (``mix:n``) is a MARKET, LIMIT, STOP order for n % 3 = 0, 1, 2.
    """
    table = load_ticks(data)
    assert table.bid is not None and table.ask is not None
    frac = SPREAD[name]
    checked = 0
    for f in fills.itertuples():
        strategy, seq = f.signal_id.split(":")[:2]
        if strategy != "mix" or int(seq) % 3 == 1:
            continue
        at = table.ts_ns == f.ts_ns
        mid, half = (table.bid[at] + table.ask[at]) / 2, (table.ask[at] - table.bid[at]) / 2
        sign = 1 if f.side == "BUY" else -1
        assert min(abs(mid + sign * frac * half - f.price)) < 1e-9, f
        checked += 1
    assert checked >= 3, "market and stop fills were checked"


def journal_fills(path: Path) -> list[Fill]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT fill_id, order_id, signal_id, symbol, side, qty, price, ts_ns, fee FROM fills"
        ).fetchall()
    return [Fill(r[0], r[1], r[2], r[3], Side(r[4]), r[5], r[6], r[7], r[8]) for r in rows]


@pytest.mark.parametrize("name", ["sample", "eurusd", "usdjpy"])
def test_fast_and_wire_fill_alike_with_latency_fees_limits_stops_and_hooks(
    name, tmp_path, test_strategies_importable
):
    data, _ = dataset(name)
    cfg = lifecycle_config(tmp_path, name)
    fast = replay(cfg, data, mode="fast", out=tmp_path / "fast")
    wire = replay(cfg, data, mode="wire", out=tmp_path / "wire", progress=False)
    f = fast.fills
    assert len(f) > 10 and f["fee"].gt(0).all(), "fees on every fill"
    kinds = set(fast.fills["signal_id"].str.split(":").str[0])
    assert kinds == {"sr", "mix"}, "both strategies trade"
    assert wire.fills.equals(fast.fills)
    assert wire.orders.equals(fast.orders)
    assert (tmp_path / "wire/summary.json").read_bytes() == (
        tmp_path / "fast/summary.json"
    ).read_bytes()
    statuses = set(fast.orders["status"])
    assert "FILLED" in statuses and fast.summary["fees"] > 0
    if name in SPREAD:
        assert_market_fills_pay_the_spread(name, data, fast.fills)


def test_notebook_and_promoted_headless_run_agree_and_match_the_golden_set(
    tmp_path, test_strategies_importable
):
    data, _ = dataset("sample")
    cfg = lifecycle_config(tmp_path, "sample")
    cfg_file = cfg.save(tmp_path / "config.toml")
    fast = replay(cfg_file, data, mode="fast", out=tmp_path / "fast")
    summary = (tmp_path / "fast/summary.json").read_text()
    assert summary == (GOLDEN / "summary.json").read_text()
    assert (tmp_path / "fast/fills.sha256").read_text() == (GOLDEN / "fills.sha256").read_text()

    nb = run_replay_notebook(
        tmp_path / "notebook",
        {"config_path": str(cfg_file), "data_path": str(data), "mode": "wire"},
    )
    assert (nb.parent / "summary.json").read_text() == summary

    wire = replay(cfg_file, data, mode="wire", out=tmp_path / "wire", progress=False)
    assert wire.summary == fast.summary
    promoted = promote(tmp_path / "wire", tmp_path / "promoted.toml", min_trades=0)
    up = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(promoted)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert up.returncode == 0, up.stderr[-3000:]
    headless = journal_fills(tmp_path / "runs" / "test" / "journal.sqlite")
    assert fills_hash(headless) == fast.summary["fills_sha256"]
    assert json.loads(summary)["fees"] > 0
