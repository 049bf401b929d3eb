"""Record a live session on the simulated feed, replay the recording, diff the two runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import make_config, wait_until

from workbench import Workbench, diff_runs, load_ticks, replay
from workbench.cli import main as cli_main

pytestmark = pytest.mark.integration


def test_a_recorded_simulated_session_replays_to_the_same_signals_and_fills(
    tmp_path: Path,
) -> None:
    cfg = make_config(
        tmp_path,
        run_id="live",
        gateway={"simulated": {"rate_per_s": 300.0, "seed": 11}},
        executor={"exit_on_eos": False},
        recorder={"enabled": True, "roll_every_s": 0.5},
    )
    wb = Workbench(cfg)
    try:
        wb.start(wait=True, timeout=60)
        wait_until(lambda: len(wb.fills.frame()) >= 2, 30, "fills on the simulated feed")
        wb.stop_runner("gateway")  # then the strategy works off every recorded tick
        wait_until(lambda: wb.status().loc["gateway", "state"] == "stopped", 10, "gateway stop")
        time.sleep(1.0)
    finally:
        wb.stop()
    run = cfg.run_path()
    assert len(load_ticks(run / "ticks")) > 100
    rcfg = make_config(tmp_path, run_id="replayed", gateway={"feed": "replay"})
    replay(rcfg, data=run / "ticks", mode="fast", out=tmp_path / "out", progress=False)
    diff = diff_runs(run, tmp_path / "out")
    assert diff.empty, diff.to_string()
    # A different strategy on the same recording does differ, and diff says where.
    other = tmp_path / "other"
    overrides = {"take_profit": 0.01, "stop_loss": 0.01}
    replay(
        rcfg,
        data=run / "ticks",
        mode="fast",
        out=other,
        progress=False,
        condition_overrides=overrides,
    )
    assert cli_main(["diff", str(run), str(other)]) == 1


def test_workbench_record_writes_the_live_feed_to_a_dataset(tmp_path: Path, capsys) -> None:
    cfg = make_config(tmp_path, gateway={"simulated": {"rate_per_s": 500.0, "max_ticks": 400}})
    path = cfg.save(tmp_path / "live.toml")
    assert cli_main(["record", "--config", str(path), "--out", str(tmp_path / "ds")]) == 0
    assert "recorded 400 ticks" in capsys.readouterr().out
    ticks = load_ticks(tmp_path / "ds")
    assert len(ticks) == 400 and set(ticks.symbol) == {"ABC"}
    replay_cfg = make_config(tmp_path, gateway={"feed": "replay"})
    bad = replay_cfg.save(tmp_path / "replay.toml")
    assert cli_main(["record", "--config", str(bad)]) == 2
    assert "gateway.feed" in capsys.readouterr().err


def test_workbench_record_that_recorded_nothing_exits_75(tmp_path: Path, capsys) -> None:
    """An exchange it cannot reach: "recorded 0 ticks", exit 0, and a cron job took it for done."""
    cfg = make_config(
        tmp_path,
        gateway={
            "feed": "exchange",
            "exchange": {
                "symbols": ["BTC/USDT"],
                "rest_url": "http://127.0.0.1:9",
                "ws_url": "ws://127.0.0.1:9/ws",
                "timeout_ms": 500,
            },
        },
    )
    path = cfg.save(tmp_path / "live.toml")
    argv = ["record", "--config", str(path), "--seconds", "2", "--out", str(tmp_path / "ds")]
    assert cli_main(argv) == 75
    captured = capsys.readouterr()
    assert "recorded 0 ticks" in captured.out
    assert "no tick was recorded" in captured.err
