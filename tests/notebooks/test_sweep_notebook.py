"""notebooks/04_sweep.ipynb: nbval top to bottom, and papermill with parameters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from nb_sandbox import ROOT, make_sandbox
from test_notebooks import run_nbval

NOTEBOOK = ROOT / "notebooks" / "04_sweep.ipynb"

pytestmark = pytest.mark.integration


def test_sweep_notebook_runs_under_nbval():
    out = ROOT / "notebooks" / "sweep-output"  # the notebook's default out_dir
    try:
        with make_sandbox() as box:
            result = run_nbval(NOTEBOOK, box)
            leftovers = box.reap(grace_s=5.0)
        assert result.returncode == 0, result.stdout[-6000:]
        assert "passed" in result.stdout
        assert not leftovers, f"processes still running: {leftovers}"
        assert (out / "promoted.toml").exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_papermill_parameters_reach_the_sweep_and_a_refused_gate_leaves_no_promoted_config(
    tmp_path,
):
    # A re-run with a stricter gate kept the last run's promoted.toml beside its refusal.
    res = tmp_path / "res"
    res.mkdir()
    (res / "promoted.toml").write_text('run_id = "an-earlier-winner"\n')
    argv = [
        sys.executable, "-m", "papermill", str(NOTEBOOK), str(tmp_path / "out.ipynb"),
        "-p", "out_dir", str(res), "-p", "workers", "1", "-p", "train_window", "0.5",
        "-p", "test_window", "0.25", "-p", "data_path", "data/ticks/synth-ABC-5000.csv",
        "-p", "min_oos_net_pnl", "1000000.0",
        "-y", '{"grid": {"turning_point": [0.02, 0.05], "stop_loss": [0.1, 0.2, 0.3]}}',
    ]  # fmt: skip
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Passed unknown parameter" not in out.stderr
    frame = pd.read_parquet(res / "results.parquet")
    assert len(frame) == 6 and set(frame["stop_loss"]) == {0.1, 0.2, 0.3}
    assert (frame["ticks"] == 5000).all()
    assert json.loads((res / "walk_forward.json").read_text())["spec"] == "train=0.5,test=0.25"
    assert (res / "best" / "summary.json").exists()
    assert not (res / "promoted.toml").exists()
    assert "vs limit 1000000.0 (FAILED)" in (tmp_path / "out.ipynb").read_text()  # the refusal
