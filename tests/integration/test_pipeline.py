"""The three runners as real processes on real ipc sockets, replaying to end-of-stream."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import zmq
from helpers import make_config
from pipeline_support import COND_B, COND_S, EXPECTED_PNL, expected_fills, prices, write_ticks

from workbench.messaging import codec

pytestmark = pytest.mark.integration


def journal_fills(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT fill_id, side, qty, round(price, 8), ts_ns FROM fills ORDER BY ts_ns, fill_id"
        ).fetchall()
    return [tuple(r) for r in rows]


def replay_config(tmp_path: Path, strategies: list[dict], batch_size: int = 7):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={
            "feed": "replay",
            "replay": {"path": str(data), "batch_size": batch_size, "window_batches": 4},
        },
        strategies=strategies,
        executor={"broker": {"slippage": 0.01}},
    )
    return cfg, cfg.save(tmp_path / "config.toml")


def final_counters(procs, name: str) -> dict:
    stopped = [e for e in procs.logs(name) if e["event"] == "runner_stopped"]
    assert stopped, procs.text(name)
    return stopped[-1]["counters"]


def test_replay_gives_exactly_the_hand_derived_fills(tmp_path, runner_procs):
    cfg, path = replay_config(tmp_path, [{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}])
    runner_procs.start("executor", "executor", path)
    runner_procs.start("strategy", "strategy", path)
    runner_procs.start("gateway", "gateway", path)
    assert runner_procs.wait("executor") == 0, runner_procs.text("executor")
    assert runner_procs.wait("strategy") == 0, runner_procs.text("strategy")
    assert runner_procs.wait("gateway") == 0, runner_procs.text("gateway")

    assert journal_fills(cfg.journal_path()) == sorted(
        expected_fills("sr", "sr"), key=lambda f: (f[4], f[0])
    )
    done = next(e for e in runner_procs.logs("executor") if e["event"] == "replay_completed")
    assert done["realized_pnl"] == pytest.approx(EXPECTED_PNL)
    assert done["positions"] == {"XYZ": 0.0}
    assert final_counters(runner_procs, "strategy")["ticks_in"] == len(prices())
    assert final_counters(runner_procs, "gateway")["ticks_out"] == len(prices())


def test_two_strategy_runners_feed_one_executor(tmp_path, runner_procs):
    cfg, path = replay_config(
        tmp_path,
        [
            {"id": "buyer", "params": {"conditions": [COND_B]}},
            {"id": "seller", "params": {"conditions": [COND_S]}},
        ],
    )
    runner_procs.start("executor", "executor", path)
    runner_procs.start("buyer", "strategy", path, "--id", "buyer")
    runner_procs.start("seller", "strategy", path, "--id", "seller")
    runner_procs.start("gateway", "gateway", path)
    for name in ("executor", "buyer", "seller", "gateway"):
        assert runner_procs.wait(name) == 0, runner_procs.text(name)
    expected = sorted(expected_fills("buyer", "seller"), key=lambda f: (f[4], f[0]))
    assert journal_fills(cfg.journal_path()) == expected


def wait_for_log(procs, name: str, event: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(e.get("event") == event for e in procs.logs(name)):
        assert time.monotonic() < deadline, f"{name} never logged {event}: {procs.text(name)}"
        time.sleep(0.02)


def _push_garbage(ctx: zmq.Context, address: str, frames_list: list[list[bytes]]) -> None:
    """Send, then block until every frame is handed over (or 20 s pass)."""
    s = ctx.socket(zmq.PUSH)
    s.connect(address)
    for frames in frames_list:
        s.send_multipart(frames)
    s.close(linger=20_000)


GARBAGE = [
    [b"junk"],
    [b"sig/x/", b"\xc1\xc1\xc1"],
    [b"sig/x/", codec.pack([99, "sig", "x", 1, 1, 1])],
]


def test_malformed_frames_into_bound_sockets_are_counted_and_dropped(tmp_path, runner_procs):
    cfg, path = replay_config(tmp_path, [{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}])
    runner_procs.start("executor", "executor", path)
    runner_procs.start("gateway", "gateway", path)  # waits in its handshake: no strategy yet
    wait_for_log(runner_procs, "executor", "runner_started")  # its PULL is bound
    wait_for_log(runner_procs, "gateway", "subscribers_awaited")  # its credit PULL too
    ctx = zmq.Context()
    try:
        _push_garbage(ctx, cfg.bus.signals_address, GARBAGE)
        _push_garbage(ctx, cfg.bus.control_address, GARBAGE)
        runner_procs.start("strategy", "strategy", path)
        for name in ("executor", "strategy", "gateway"):
            assert runner_procs.wait(name) == 0, runner_procs.text(name)
    finally:
        ctx.destroy(linger=0)
    counters = {n: final_counters(runner_procs, n) for n in ("executor", "gateway")}
    assert counters["executor"].get("bad_frames") == len(GARBAGE), counters
    assert counters["gateway"].get("bad_frames") == len(GARBAGE), counters
    assert journal_fills(cfg.journal_path()) == sorted(
        expected_fills("sr", "sr"), key=lambda f: (f[4], f[0])
    )
    logged = [e for e in runner_procs.logs("executor") if e["event"] == "bad_frame_dropped"]
    assert logged and "socket" in logged[0] and "error" in logged[0]
