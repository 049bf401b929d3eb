"""Exactly-once orders under crashes: a dozen SIGKILLs over every role, nothing lost or doubled.

Replay: the journal's fills after the storm equal the fault-free fast replay's,
fill for fill. Live (simulated feed): every signal the strategy logged is
journaled exactly once, with exactly one order and one fill.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from helpers import (
    journal_rows,
    logged_all_journaled,
    logged_signal_ids,
    make_config,
    wait_until,
)

from workbench.marketdata import synth_ticks, write_ticks
from workbench.replays.session import load_replay_ticks, run_fast
from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
VICTIMS = ("executor", "sr", "gateway")
KILLS = 12


def conditions(lo: float, hi: float) -> list[dict]:
    common = {"symbol": "ABC", "turning_point": 0.03, "take_profit": 0.08, "stop_loss": 0.06}
    return [
        {"id": "b", "side": "BUY", "trigger_price": hi, **common, "following": True, "rearm": True},
        {
            "id": "s",
            "side": "SELL",
            "trigger_price": lo,
            **common,
            "following": True,
            "rearm": True,
        },
    ]


def storm_config(tmp_path: Path, strategy: dict, gateway: dict):
    return make_config(
        tmp_path,
        gateway=gateway,
        strategies=[{"id": "sr", **strategy}],
        supervisor={
            "unlimited_restarts": True,
            "restart_backoff_initial_s": 0.01,
            "restart_backoff_max_s": 0.2,
            "restart_backoff_jitter": 0.0,
        },
        runtime={
            "run_dir": str(tmp_path / "runs"),
            "heartbeat_interval_s": 0.2,
            "signal_resend_after_s": 0.5,
        },
    )


def storm(sup: Supervisor, kills: int, interval_s: float, done=lambda: False) -> list[str]:
    """SIGKILL the runners in turn, each once it runs again; returns who was killed."""
    killed: list[str] = []
    for victim in itertools.islice(itertools.cycle(VICTIMS), kills):
        wait_until(
            lambda v=victim: (
                next(s for s in sup.status() if s["runner"] == v)["state"] == "running"
            ),
            20,
            f"{victim} running again",
        )
        time.sleep(interval_s)
        if done():
            break
        pid = next(s["pid"] for s in sup.status() if s["runner"] == victim)
        os.kill(pid, signal.SIGKILL)
        killed.append(victim)
    return killed


def test_sigkills_over_every_role_in_a_wire_replay_change_no_fill(tmp_path):
    table = synth_ticks("ABC", 60_000, 3)
    data = write_ticks(table, tmp_path / "ticks.parquet")
    conds = conditions(min(table.price), max(table.price))
    replay_feed = {"feed": "replay", "replay": {"path": str(data), "batch_size": 100}}
    ref_cfg = storm_config(tmp_path / "ref", {"params": {"conditions": conds}}, replay_feed)
    fills, _, _ = run_fast(ref_cfg, load_replay_ticks(ref_cfg))
    expected = sorted(
        (f.id, f.order_id, f.signal_id, f.symbol, f.side.value, f.qty, f.price, f.ts_ns)
        for f in fills
    )
    assert len(expected) > 500  # enough signals that kills land between them
    cfg = storm_config(
        tmp_path,
        {
            "class_path": "chaos_strategies:SlowSupportResistance",
            "params": {"conditions": conds, "batch_delay_s": 0.02},  # ~12 s of replay
        },
        replay_feed,
    )
    sup = Supervisor(
        cfg, env={"PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    )
    try:
        sup.start(wait=True, timeout=60)
        killed = storm(sup, KILLS, 0.7, done=sup.eos_reached.is_set)
        wait_until(sup.eos_reached.is_set, 60, "end-of-stream at the executor")
        restarts = {s["runner"]: s["restarts"] for s in sup.status()}
    finally:
        sup.stop()
    assert len(killed) >= 10 and set(killed) == set(VICTIMS), killed
    assert all(restarts[v] >= killed.count(v) for v in VICTIMS), restarts
    got = journal_rows(
        cfg.journal_path(),
        "SELECT fill_id, order_id, signal_id, symbol, side, qty, price, ts_ns FROM fills",
    )
    assert len(got) == len(set(got))  # 0 duplicated
    assert sorted(got) == expected  # 0 lost, 0 changed


def test_sigkills_over_every_role_in_a_live_session_lose_and_double_no_order(tmp_path):
    cfg = storm_config(
        tmp_path,
        {"params": {"conditions": conditions(99.7, 100.3)}},
        {"feed": "simulated", "simulated": {"rate_per_s": 2_000.0, "volatility_ticks": 2.0}},
    )
    sup = Supervisor(cfg)
    log_file = sup.logs.path("sr")
    try:
        sup.start(wait=True, timeout=60)
        killed = storm(sup, KILLS, 0.8)
        wait_until(lambda: all(s["state"] == "running" for s in sup.status()), 20, "all running")
        time.sleep(1.0)  # signals of the last seconds on their way

        jp = cfg.journal_path()
        wait_until(lambda: logged_all_journaled(log_file, jp), 20, "all logged signals journaled")
        sup.stop_runner("sr")  # no new signals while we look
        sup.stop_runner("gateway")
        time.sleep(1.5)  # the executor drains what is in flight
    finally:
        sup.stop()
    assert len(killed) >= 10 and set(killed) == set(VICTIMS), killed
    logged = logged_signal_ids(log_file)
    signals = journal_rows(cfg.journal_path(), "SELECT signal_id FROM signals")
    orders = journal_rows(cfg.journal_path(), "SELECT signal_id, status, reason FROM orders")
    fills = journal_rows(cfg.journal_path(), "SELECT signal_id FROM fills")
    not_at_venue = journal_rows(
        cfg.journal_path(),
        "SELECT order_id FROM reconciliations WHERE kind = 'order_not_at_venue'",
    )
    assert len(logged) > 20
    journaled = {s for (s,) in signals}
    assert logged <= journaled  # 0 lost
    # The strategy logs what it sent after its next wait for a tick: one killed
    # between the two leaves journaled signals it never logged, one run of
    # consecutive seqs per kill at most.
    unlogged = sorted(int(sid.rsplit(":", 1)[1]) for sid in journaled - logged)
    runs = sum(1 for i, q in enumerate(unlogged) if i == 0 or q != unlogged[i - 1] + 1)
    assert runs <= killed.count("sr"), unlogged
    assert len(signals) == len(journaled) and len(orders) == len(journaled)  # 0 doubled
    # An executor killed between journaling an order and recording the broker's
    # answer leaves it PENDING: in doubt, alerted, never sent twice (the
    # order-lifecycle issue reconciles it with the venue).
    # The built-in simulator lives in the executor, so a killed executor's
    # in-flight orders (journaled, maybe not yet submitted: a whole batch of
    # them) are unknown to the next one's venue: reconciliation closes each as
    # REJECTED with its reason and a reconciliation row, and sends none again.
    statuses = {st for _, st, _ in orders}
    assert statuses <= {"FILLED", "PENDING_NEW", "REJECTED"}, statuses
    filled = sorted(sig for sig, st, _ in orders if st == "FILLED")
    rejected = {sig: reason for sig, st, reason in orders if st == "REJECTED"}
    lost = {sig for sig, r in rejected.items() if r == "not at the venue (reconciliation)"}
    # The exit of such an entry is refused: it holds nothing (`closing`).
    exits = {sig for sig, r in rejected.items() if r.split(",")[0].split()[-1] in lost}
    assert rejected.keys() == lost | exits, set(rejected.values())
    assert all("which holds nothing" in rejected[sig] for sig in exits)
    assert len(lost) <= len(not_at_venue)  # each one found by reconciliation
    if "executor" not in killed:
        assert len(filled) == len(orders)
    assert sorted(f for (f,) in fills) == filled  # exactly one fill per filled order
