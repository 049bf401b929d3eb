"""Chaos: kill a runner mid-replay; the supervisor restarts it and the fills stay exact."""

from __future__ import annotations

import os
import signal

import pytest
from helpers import make_config, wait_until
from pipeline_support import COND_B, COND_S, EXPECTED_PNL, expected_fills, write_ticks
from test_pipeline import journal_fills

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration


# b re-arms: in the hand-worked path it only triggers again on the very last tick,
# so the expected fills stay the same, but a replay that fed it ticks 1-6 twice
# (a restarted gateway without de-duplication) would trade it twice.
COND_B_REARM = {**COND_B, "rearm": True}


@pytest.mark.parametrize(
    ("victim", "kill_after_ticks"),
    [
        # Near the end (of 3,011 ticks, 1 ms apart): without a resync it would miss s's
        # trades. Not nearer: the count comes from heartbeats (0.2 s apart), and a kill
        # after the strategy's end-of-stream tests nothing.
        ("sr", 2_000),
        ("gateway", 800),  # early: the new gateway starts the file again from tick 1
    ],
)
def test_killing_a_runner_mid_replay_changes_no_fill(tmp_path, victim, kill_after_ticks):
    data = write_ticks(tmp_path / "ticks.csv")  # ~3 s of ticks; 's' trades at the very end
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data), "speed": 1.0}},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B_REARM, COND_S]}}],
        executor={"broker": {"slippage": 0.01}},
        supervisor={"restart_backoff_initial_s": 0.01, "restart_backoff_jitter": 0.0},
    )
    sup = Supervisor(cfg)
    try:
        sup.start(wait=True, timeout=60)

        def ticks_sent() -> int:
            hb = sup.heartbeat("gateway")
            return int(hb.extra.get("ticks_total", 0)) if hb else 0

        wait_until(lambda: ticks_sent() > kill_after_ticks, 30, "the replay to be under way")
        pid = next(s["pid"] for s in sup.status() if s["runner"] == victim)
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: next(s["restarts"] for s in sup.status() if s["runner"] == victim) > 0,
            30,
            f"the supervisor to restart {victim}",
        )
        wait_until(lambda: sup.eos_reached.is_set(), 60, "end-of-stream at the executor")
        restarts = next(s["restarts"] for s in sup.status() if s["runner"] == victim)
        summary = sup.eos_summary
        # A replacement's first heartbeat can lose the race with end-of-stream.
        wait_until(lambda: sup.heartbeat("sr") is not None, 10, "a heartbeat of the new sr")
        # The gateway stays until every strategy's end is in; its last heartbeat counts all.
        wait_until(lambda: sup.heartbeat("gateway").state == "finished", 30, "the gateway done")
        gateway = sup.heartbeat("gateway").counters
        strategy = sup.heartbeat("sr").counters
    finally:
        sup.stop()
    assert restarts == 1
    expected = sorted(expected_fills("sr", "sr"), key=lambda f: (f[4], f[0]))
    assert journal_fills(cfg.journal_path()) == expected
    assert summary["realized_pnl"] == pytest.approx(EXPECTED_PNL)
    if victim == "sr":
        assert gateway.get("batches_resent", 0) > 0 and not gateway.get("resync_incomplete")
    else:
        assert strategy.get("ticks_skipped_seen", 0) > 0


def test_a_strategy_dying_in_its_first_batch_before_any_save_changes_no_fill(tmp_path):
    # Its replacement has no state: it acked the gateway's mark unseen, so the
    # ticks sent to the dead process were never traded (or, with all of them
    # sent, the replay hung waiting for its end-of-stream).
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data), "batch_size": 50}},
        strategies=[
            {
                "id": "sr",
                "class_path": "chaos_strategies:DiesInItsFirstBatch",
                "params": {"conditions": [COND_B_REARM, COND_S], "marker": str(tmp_path / "m")},
            }
        ],
        executor={"broker": {"slippage": 0.01}},
        supervisor={"restart_backoff_initial_s": 0.01, "restart_backoff_jitter": 0.0},
    )
    here = os.path.dirname(__file__)
    sup = Supervisor(
        cfg, env={"PYTHONPATH": f"{here}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    )
    try:
        sup.start()
        wait_until(lambda: sup.eos_reached.is_set(), 60, "end-of-stream at the executor")
        restarts = next(s["restarts"] for s in sup.status() if s["runner"] == "sr")
    finally:
        sup.stop()
    assert restarts == 1
    expected = sorted(expected_fills("sr", "sr"), key=lambda f: (f[4], f[0]))
    assert journal_fills(cfg.journal_path()) == expected
