"""The kill switch from the command line: orders stop while signals come, and stay stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers import make_config, wait_until
from helpers import run_cli as cli

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

BUSY = [  # trades often on the simulated walk around 100
    {"id": "b", "symbol": "ABC", "side": "BUY", "trigger_price": 100.3, "turning_point": 0.02,
     "take_profit": 0.05, "stop_loss": 0.04, "following": True, "rearm": True},
    {"id": "s", "symbol": "ABC", "side": "SELL", "trigger_price": 99.7, "turning_point": 0.02,
     "take_profit": 0.05, "stop_loss": 0.04, "following": True, "rearm": True},
]  # fmt: skip


HERE = Path(__file__).parent
RESTING = ("ACCEPTED", "PARTIALLY_FILLED")
MIX = {  # MARKET, LIMIT and STOP orders in turn; limits and stops 50 away rest at the venue
    "id": "mix",
    "class_path": "lifecycle_strategies:OrderMix",
    "params": {"symbol": "ABC", "every": 40, "offset": 50.0},
}


@pytest.fixture
def test_strategies_importable(monkeypatch):
    """Runner processes import the test strategy from here."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def mix_orders(journal: Path) -> dict[str, str]:
    """The OrderMix orders' statuses by order id."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT order_id, status FROM orders WHERE signal_id LIKE 'mix:%'")
        return dict(rows.fetchall())


def cancel_requests(journal: Path) -> set[str]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT order_id FROM order_reports WHERE source = 'cancel'")
        return {r[0] for r in rows.fetchall()}


def test_halt_stops_orders_survives_a_restart_and_resume_trades_again(
    tmp_path, test_strategies_importable
):
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 1_000.0, "volatility_ticks": 2.0}},
        strategies=[{"id": "sr-1", "params": {"conditions": BUSY}}, MIX],
        supervisor={"restart_backoff_initial_s": 0.01, "restart_backoff_jitter": 0.0},
    )
    path = cfg.save(tmp_path / "live.toml")
    journal = cfg.journal_path()

    def resting() -> list[str]:
        return [oid for oid, st in mix_orders(journal).items() if st in RESTING]

    sup = Supervisor(cfg)

    def counters(name: str = "executor") -> dict:
        hb = sup.heartbeat(name)
        return hb.counters if hb else {}

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: counters().get("fills", 0) >= 3, 30, "some fills")
        wait_until(lambda: len(resting()) >= 2, 30, "limit and stop orders resting at the venue")

        halted = cli("halt", "--config", str(path))
        assert halted.returncode == 0, halted.stderr
        assert "trading state HALTED" in halted.stdout
        # the halt cancelled them through the broker before it answered, journaling each
        cancelled = {oid for oid, st in mix_orders(journal).items() if st == "CANCELLED"}
        assert resting() == [] and len(cancelled) >= 2
        assert cancelled <= cancel_requests(journal)
        fills, signals = counters().get("fills", 0), counters().get("signals_in", 0)
        wait_until(lambda: counters().get("signals_in", 0) >= signals + 5, 30, "more signals")
        assert counters().get("fills", 0) == fills  # signals arrive, no order goes out

        pid = next(s["pid"] for s in sup.status() if s["runner"] == "executor")
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: (
                next(s for s in sup.status() if s["runner"] == "executor")["pid"] != pid
                and sup.heartbeat("executor") is not None
            ),
            30,
            "a new executor",
        )
        state = cli("state", "--config", str(path))
        assert "trading state HALTED" in state.stdout, state.stdout + state.stderr
        # Another run's config on the same command address: refused, never acted on.
        other = cfg.model_copy(update={"run_id": "other"}).save(tmp_path / "other.toml")
        wrong = cli("resume", "--config", str(other))
        assert wrong.returncode == 2  # nothing done, and a retry reaches the same executor
        assert f"this executor runs {cfg.run_id!r}, not 'other'" in wrong.stderr
        assert "another pipeline answers this config's bus.command_address" in wrong.stderr
        # A typo in a section the kill switch does not use never stops it.
        broken = tmp_path / "broken.toml"
        broken.write_text(path.read_text() + "\n[reports]\ncapital = 0\n")
        typo = cli("state", "--config", str(broken))
        assert typo.returncode == 0 and "trading state HALTED" in typo.stdout, typo.stderr
        assert "reports" in typo.stderr
        assert "using its run_id, bus, security, runner ids only" in typo.stderr
        assert "trading state HALTED" in cli("state", "--config", str(path)).stdout
        after_restart = counters().get("fills", 0)
        base = counters().get("signals_in", 0)
        wait_until(lambda: counters().get("signals_in", 0) >= base + 3, 30, "signals after restart")
        assert counters().get("fills", 0) == after_restart

        resumed = cli("resume", "--config", str(path))
        assert "trading state ACTIVE" in resumed.stdout, resumed.stderr
        wait_until(lambda: counters().get("fills", 0) > after_restart, 30, "fills again")
        wait_until(lambda: len(resting()) >= 1, 30, "new orders resting")
        statuses = mix_orders(journal)
        assert {statuses[oid] for oid in cancelled} == {"CANCELLED"}  # resume re-placed none

        flat = cli("halt", "--flatten", "--config", str(path))
        assert flat.returncode == 0, flat.stderr
        assert "trading state HALTED" in flat.stdout
        assert "{'ABC': 0.0}" in flat.stdout or "positions {}" in flat.stdout, flat.stdout
        assert resting() == []  # cancelled before the flatten orders went out
    finally:
        sup.stop()


def test_halt_flatten_on_an_executor_without_a_market_price_exits_1_naming_the_symbol(
    tmp_path, test_strategies_importable
):
    # The operator's case: the executor restarts (SIGTERM, the supervisor brings it
    # back) and `halt --flatten` reaches it before any market price has. The
    # gateway is stopped first, so no price can come: the test does not race one.
    once = {"id": "once", "class_path": "kill_switch_strategies:BuyOnce",
            "params": {"symbol": "ABC", "qty": 2.0}}  # fmt: skip
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 200.0}},
        strategies=[once],
        supervisor={"restart_backoff_initial_s": 0.01, "restart_backoff_jitter": 0.0},
    )
    path = str(cfg.save(tmp_path / "paper.toml"))
    sup = Supervisor(cfg)

    def executor() -> dict:
        return next(s for s in sup.status() if s["runner"] == cfg.executor.id)

    def positions() -> dict:
        hb = sup.heartbeat(cfg.executor.id)
        return hb.extra.get("positions", {}) if hb else {}

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: positions() == {"ABC": 2.0}, 30, "the position ABC 2")
        sup.stop_runner(cfg.gateway.id)  # no more market snapshots
        pid = executor()["pid"]
        os.kill(pid, signal.SIGTERM)

        def restarted() -> bool:  # a new executor that has beaten: it serves commands
            hb, now = sup.heartbeat(cfg.executor.id), executor()["pid"]
            return now not in (None, pid) and hb is not None and hb.pid == now

        wait_until(restarted, 30, "the supervisor to restart the executor")

        flat = cli("halt", "--flatten", "--config", path)
        # Failed before the fix: exit 0, and stderr said nothing about ABC.
        assert flat.returncode == 1, flat.stdout + flat.stderr
        assert "not flattened: ABC: no market price" in flat.stderr, flat.stderr
        assert "trading state HALTED (flatten requested)" in flat.stdout
        assert "{'ABC': 2.0}" in flat.stdout
        state = cli("state", "--config", path)
        assert state.returncode == 0 and "trading state HALTED" in state.stdout, state.stderr
        assert "{'ABC': 2.0}" in state.stdout  # nothing was sent blind

        # Once prices come again, flattening again closes it and exits 0.
        sup.start_runner(cfg.gateway.id)
        tries: list[subprocess.CompletedProcess] = []
        wait_until(
            lambda: (
                tries.append(cli("halt", "--flatten", "--config", path))
                or tries[-1].returncode == 0
            ),
            30,
            "a flatten that closes the position",
        )
        assert "{'ABC': 0.0}" in tries[-1].stdout and tries[-1].stderr == "", tries[-1]
    finally:
        sup.stop()


def test_commands_to_no_pipeline_fail_clearly(tmp_path):
    cfg = make_config(tmp_path)
    path = cfg.save(tmp_path / "nothing.toml")
    r = cli("halt", "--config", str(path), "--timeout", "0.5")
    assert r.returncode == 75  # the halt did not happen: not the 1 of a flatten left open
    assert "no answer within 500 ms" in r.stderr
    for bad in ("-1", "0", "nan", "inf", "soon"):  # -1 waited forever
        r = cli("halt", "--config", str(path), "--timeout", bad)
        assert r.returncode == 2 and "argument --timeout" in r.stderr, (bad, r.stderr)


def test_the_notebook_facade_halts_and_resumes(tmp_path):
    from workbench import Workbench

    cfg = make_config(tmp_path, gateway={"simulated": {"rate_per_s": 200.0}})
    wb = Workbench(cfg)
    try:
        wb.start(wait=True, timeout=60)
        assert wb.halt()["trading_state"] == "HALTED"
        wait_until(lambda: wb.trading_state() == "HALTED", 10, "the heartbeat to show HALTED")
        assert wb.reduce()["trading_state"] == "REDUCING"
        wait_until(lambda: wb.trading_state() == "REDUCING", 10, "the heartbeat to show REDUCING")
        assert wb.resume()["trading_state"] == "ACTIVE"
        wait_until(lambda: wb.trading_state() == "ACTIVE", 10, "the heartbeat to show ACTIVE")
    finally:
        wb.stop()
