"""Tune in a Workbench, apply (only what changed restarts), save, run the result headless."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import ROOT, make_config
from pipeline_support import COND_B, COND_S, write_ticks

from workbench.config import load_config
from workbench.exceptions import ConfigurationError
from workbench.notebook.workbench import Workbench

pytestmark = pytest.mark.integration


@pytest.fixture
def wb(tmp_path):
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 200.0}},
        supervisor={"restart_backoff_initial_s": 0.01},
    )
    w = Workbench(cfg)
    w.start(wait=True, timeout=60)
    yield w
    w.stop()


def pids(w: Workbench) -> dict[str, int]:
    return {s["runner"]: s["pid"] for s in w.supervisor.status()}


def test_strategy_parameter_change_restarts_only_that_strategy(wb):
    before = pids(wb)
    wb.config.strategies[0].params["conditions"][0]["take_profit"] = 0.35
    assert wb.apply() == ["sr-1"]
    after = pids(wb)
    assert after["sr-1"] != before["sr-1"]
    assert (after["gateway"], after["executor"]) == (before["gateway"], before["executor"])
    deadline = time.monotonic() + 5  # levels travel in heartbeats
    while not wb.levels() and time.monotonic() < deadline:
        time.sleep(0.05)
    levels = {lv["id"]: lv for lv in wb.levels()}
    wb.wait_running(10)
    assert wb.supervisor.config.strategies[0].params["conditions"][0]["take_profit"] == 0.35
    assert set(levels) == {"buy-dip", "sell-rip"}


def test_feed_change_restarts_only_the_gateway(wb):
    before = pids(wb)
    wb.config.gateway.simulated.rate_per_s = 300.0
    assert wb.apply() == ["gateway"]
    after = pids(wb)
    assert after["gateway"] != before["gateway"] and after["sr-1"] == before["sr-1"]


def test_invalid_edit_is_refused_and_nothing_restarts(wb):
    before = pids(wb)
    wb.config.strategies[0].params["conditions"][0]["stop_loss"] = -1
    with pytest.raises(ConfigurationError, match="stop_loss"):
        wb.apply()
    assert pids(wb) == before


def test_no_change_restarts_nothing(wb):
    before = pids(wb)
    assert wb.apply() == []
    assert pids(wb) == before


def test_saved_config_loads_equal_and_runs_headless(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data)}},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
    )
    w = Workbench(cfg)
    w.config.strategies[0].params["conditions"][0]["qty"] = 3.0
    promoted = w.save_config(tmp_path / "configs" / "promoted.toml")
    again = load_config(promoted)
    assert again.rebased(cfg.base_dir) == w._validate(w.config)
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(promoted)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    assert "fills 4" in out.stdout
