"""``workbench up`` as a real process: replay summary, exit codes, no orphans after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import ROOT, assert_binds, free_port, make_config, pid_alive, tcp_bus
from pipeline_support import COND_B, COND_S, EXPECTED_PNL, write_ticks

pytestmark = pytest.mark.integration


def up(config_path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def test_up_replay_exits_0_with_summary(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data)}},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
        executor={"broker": {"slippage": 0.01}},
    )
    p = up(cfg.save(tmp_path / "c.toml"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "health http://127.0.0.1:" in out
    assert f"ticks {3011}  signals 4  orders 4  fills 4  realized PnL {EXPECTED_PNL:.4f}" in out
    assert "ticks/s" in out


def test_up_exits_nonzero_when_a_runner_fails(tmp_path):
    cfg = make_config(tmp_path, strategies=[{"id": "x", "class_path": "nope:Nope", "params": {}}])
    p = up(cfg.save(tmp_path / "c.toml"))
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "runner x failed: configuration error" in err


def test_up_rejects_a_bad_config_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[supervisor]\nhttp_host = '0.0.0.0'\n")
    p = up(bad)
    try:
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:  # it started instead of refusing: leave nothing behind
            p.kill()  # its runners exit with it (parent-death signal)
            p.wait(10)
    assert p.returncode == 2 and "supervisor.http_host" in err and str(bad) in err


def test_sigkill_of_the_supervisor_leaves_no_runner_and_frees_ports(tmp_path):
    bus = tcp_bus()
    port = free_port()
    cfg = make_config(tmp_path, bus=bus, supervisor={"http_port": port})
    p = up(cfg.save(tmp_path / "c.toml"))
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    runners = json.loads(r.read())["runners"]
                    pids = [v["pid"] for v in runners.values()]
                    break
            except OSError:
                time.sleep(0.1)
        assert len(pids) == 3 and all(pids), "supervisor never became healthy"
        p.kill()  # SIGKILL: no handler, no cleanup, no goodbye
        p.wait(5)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 2.0 and any(pid_alive(x) for x in pids):
            time.sleep(0.05)
        assert not [x for x in pids if pid_alive(x)], "runners outlived the supervisor by 2 s"
        for address in bus.values():
            assert_binds(address, killed_at + 2.5)  # 2 s to exit, then kernel TCP teardown
    finally:
        if p.poll() is None:
            p.kill()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
