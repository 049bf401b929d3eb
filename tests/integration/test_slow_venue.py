"""A slow venue is not a hung executor: heartbeats go on while a broker call waits.

The venue takes 3.5 s to answer each order, longer than the supervisor's
heartbeat timeout (2 s) plus its hung-restart delay (1 s), and within the
broker call timeout. The executor must stay running (never unhealthy, never
restarted) and its orders must fill.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from helpers import make_config, wait_until

from workbench.notebook.control import send_command
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


def test_a_halt_while_the_venue_takes_a_batchs_first_order_stops_the_rest(
    tmp_path: Path,
) -> None:
    """Four identical conditions enter on one tick: one batch of four orders.

    The venue holds the first order until the test lets it go. The halt is sent
    once the first order is journaled and at the venue, and the venue answers a
    second later: the first fills, the other three are journaled REJECTED, never
    sent. On a busy machine the executor may take the first signal before the
    other three reach it; they are then refused as they arrive, for the same
    reason. (A fixed venue delay raced the halt's sender under load.)
    """
    enter_once = {"symbol": "ABC", "side": "BUY", "trigger_price": 1e9, "following": True,
                  "turning_point": 0.05, "take_profit": 1e3, "stop_loss": 1e3}  # fmt: skip
    four = [{"id": f"b{i}", **enter_once} for i in range(4)]
    gate = tmp_path / "venue-answers"
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 1_000.0, "volatility_ticks": 2.0}},
        strategies=[{"id": "sr", "params": {"conditions": four}}],
        executor={
            "broker": {
                "class_path": "chaos_strategies:SlowVenueBroker",
                "params": {"hold_until": str(gate)},
                "call_timeout_s": 20.0,
            },
        },
        supervisor={"heartbeat_timeout_s": 3.0},
    )
    sup = Supervisor(
        cfg, env={"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    )
    answers: list[dict] = []

    def orders() -> list[tuple[str, str, str]]:
        journal = cfg.journal_path()
        if not journal.exists():
            return []
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT signal_id, status, reason FROM orders ORDER BY rowid")
            return rows.fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: len(orders()) >= 1, 30, "the first order journaled")
        # The answer waits out the first order, so the halt goes from a thread.
        halt = threading.Thread(
            target=lambda: answers.append(send_command(cfg, "halt", timeout_s=20))
        )
        halt.start()
        time.sleep(1.0)  # the halt is in the executor's socket while the venue holds the order
        gate.touch()
        halt.join(30)
        assert answers and answers[0]["trading_state"] == "HALTED", answers
        # All four journaled (under load the last may come a moment later) and settled.
        wait_until(
            lambda: len(rows := orders()) == 4 and all(st != "PENDING_NEW" for _, st, _ in rows),
            20,
            "four orders journaled and settled",
        )
        final = orders()
    finally:
        sup.stop()
    assert [st for _, st, _ in final] == ["FILLED", "REJECTED", "REJECTED", "REJECTED"], final
    assert {reason for _, st, reason in final if st == "REJECTED"} == {"trading halted"}
