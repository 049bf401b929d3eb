"""A slow venue is not a hung executor: heartbeats go on while a broker call waits.

The venue takes 3.5 s to answer each order, longer than the supervisor's
heartbeat timeout (2 s) plus its hung-restart delay (1 s), and within the
broker call timeout. The executor must stay running (never unhealthy, never
restarted) and its orders must fill.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from helpers import make_config, wait_until

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def test_an_executor_waiting_for_a_slow_venue_keeps_heartbeating(tmp_path: Path) -> None:
    common = {"symbol": "ABC", "turning_point": 0.03, "take_profit": 0.08, "stop_loss": 0.06}
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 2_000.0, "volatility_ticks": 2.0}},
        strategies=[
            {
                "id": "sr",
                "params": {
                    "conditions": [
                        {"id": "b", "side": "BUY", "trigger_price": 100.3, **common},
                        {"id": "s", "side": "SELL", "trigger_price": 99.7, **common},
                    ]
                },
            }
        ],
        executor={
            "broker": {
                "class_path": "chaos_strategies:SlowVenueBroker",
                "params": {"submit_delay_s": 3.5},
                "call_timeout_s": 8.0,
            },
        },
        supervisor={"heartbeat_timeout_s": 2.0, "hung_restart_after_s": 1.0},
    )
    sup = Supervisor(
        cfg, env={"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    )
    seen: set[str] = set()

    def fills() -> int:
        path = cfg.journal_path()
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()

    def executor() -> dict:
        return next(s for s in sup.status() if s["runner"] == "executor")

    def two_fills() -> bool:
        seen.add(executor()["state"])
        time.sleep(0.05)
        return fills() >= 2

    try:
        sup.start(wait=True, timeout=60)
        wait_until(two_fills, 40, "two orders through the slow venue")
        last = executor()
    finally:
        sup.stop()
    assert seen == {"running"}, seen
    assert last["restarts"] == 0
