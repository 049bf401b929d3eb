"""Walk-forward and the promotion gate count PnL after fees, not before."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from workbench.cli import main
from workbench.config import load_config
from workbench.sweeps import sweep

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo.toml"
FEE_PER_ORDER = 50.0  # more than any window of these ticks makes before fees


def test_walk_forward_and_promotion_gate_count_pnl_after_fees(client, days_data, tmp_path, capsys):
    cfg = load_config(CONFIG)
    cfg.executor.broker.params = {"slippage": 0.01, "fee_per_order": FEE_PER_ORDER}
    out = tmp_path / "sw"
    r = sweep(
        cfg,
        days_data,
        grid={"turning_point": [0.02, 0.05], "take_profit": [0.1, 0.3]},
        client=client,
        walk_forward="train=3d,test=1d",
        metric="net_pnl_after_fees",
        progress=False,
        out=out,
    )
    wf = r.walk_forward
    before = pd.to_numeric(wf["oos_net_pnl"])
    after = pd.to_numeric(wf["oos_net_pnl_after_fees"])
    assert (before > 0).any(), "the data should give a window positive before fees"
    assert (after < 0).all() and (pd.to_numeric(wf["oos_fees"]) > 0).all()
    assert after.tolist() == pytest.approx((before - wf["oos_fees"]).tolist())
    oos = json.loads((out / "best" / "walk_forward.json").read_text())
    assert oos["oos_positive_windows_after_fees"] == 0.0
    assert oos["oos_net_pnl_after_fees"] == pytest.approx(after.sum())
    assert oos["oos_net_pnl_before_fees"] == pytest.approx(before.sum())

    promote = ["promote", "--replay", str(out / "best"), "--out", str(tmp_path / "p.toml")]
    assert main([*promote, "--min-oos-positive-windows", "0.01"]) == 1
    err = capsys.readouterr().err
    assert "min_oos_positive_windows (oos_positive_windows_after_fees): 0.0" in err
    assert main([*promote, "--min-oos-net-pnl", str(before.sum() - 1)]) == 1
    assert "min_oos_net_pnl (oos_net_pnl_after_fees)" in capsys.readouterr().err
    assert not (tmp_path / "p.toml").exists()


def test_cli_sweep_ranks_by_net_pnl_after_fees(tmp_path, capsys):
    rc = main([
        "sweep", "--config", str(CONFIG), "--grid", "turning_point=0.05,0.1",
        "--metric", "net_pnl_after_fees", "--workers", "1", "--out", str(tmp_path / "o"), "--quiet",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "best by net_pnl_after_fees" in out
    frame = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert {"fees", "net_pnl_after_fees"} <= set(frame.columns)
