"""A sweep's out folder: an earlier sweep's results are refused, or replaced whole with --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.exceptions import ConfigurationError
from workbench.sweeps import sweep

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo.toml"


def test_cli_sweep_refuses_an_earlier_sweeps_out_and_force_replaces_only_its_files(
    client, days_data, tmp_path, capsys
):
    out = tmp_path / "sw"
    sweep(
        CONFIG,
        days_data,
        grid={"turning_point": [0.02, 0.05], "take_profit": [0.1, 0.3]},
        client=client,
        walk_forward="train=3d,test=1d",
        progress=False,
        out=out,
    )
    assert (out / "best" / "walk_forward.json").exists() and (out / "heatmap.html").exists()
    (out / "notes.txt").write_text("mine")
    before = (out / "results.parquet").read_bytes()
    argv = [
        "sweep", "--config", str(CONFIG), "--data", str(days_data),
        "--grid", "turning_point=0.05", "--workers", "1", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {out} already holds a sweep's results" in err and "--force" in err
    assert (out / "results.parquet").read_bytes() == before  # nothing touched

    assert main([*argv, "--force"]) == 0, capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    for stale in ("walk_forward.json", "walk_forward.parquet", "heatmap.html"):
        assert not (out / stale).exists(), stale
    assert not (out / "best" / "walk_forward.json").exists()
    assert (out / "best" / "summary.json").exists()
    # The promotion gate can no longer read the earlier sweep's out-of-sample numbers.
    promote = ["promote", "--replay", str(out / "best"), "--out", str(tmp_path / "p.toml")]
    assert main([*promote, "--min-oos-net-pnl=-1e9"]) == 2
    assert "walk_forward.json" in capsys.readouterr().err
    assert not (tmp_path / "p.toml").exists()


def test_api_sweep_refuses_without_force_and_writes_no_best_when_every_run_fails(client, tmp_path):
    out = tmp_path / "sw"
    sweep(CONFIG, grid={"turning_point": [0.05]}, client=client, progress=False, out=out)
    assert (out / "best" / "summary.json").exists()
    with pytest.raises(ConfigurationError, match="already holds a sweep's results"):
        sweep(CONFIG, grid={"turning_point": [0.1]}, client=client, progress=False, out=out)
    r = sweep(
        CONFIG, grid={"turning_point": [-1.0]}, client=client, progress=False, out=out, force=True
    )
    assert r.run["failed"] == 1
    assert not (out / "best").exists()  # nothing a promote could pick up
    assert json.loads((out / "best.json").read_text())["params"] is None


def test_optuna_with_walk_forward_is_refused_naming_both_flags(tmp_path, capsys):
    # The trials would be chosen on every row, the test windows too: a look-ahead.
    out = tmp_path / "o"
    rc = main([
        "sweep", "--config", str(CONFIG), "--grid", "turning_point=0.02:0.1:0.02",
        "--search", "optuna", "--trials", "2", "--walk-forward", "train=0.5,test=0.25",
        "--workers", "1", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "--search optuna" in err and "--walk-forward" in err and "look-ahead" in err
    assert not out.exists()
    with pytest.raises(ConfigurationError, match="look-ahead"):
        sweep(
            CONFIG,
            grid={"turning_point": "0.02:0.1:0.02"},
            search="optuna",
            walk_forward="train=0.5,test=0.25",
            progress=False,
        )
