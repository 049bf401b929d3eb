"""``workbench up`` under a stand-in for systemd: readiness, watchdog pings, stop; log rotation."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import ROOT, make_config

pytestmark = pytest.mark.integration


def recv_all(sock: socket.socket, until: float) -> list[list[str]]:
    msgs = []
    while time.monotonic() < until:
        try:
            msgs.append(sock.recv(4096).decode().split("\n"))
        except TimeoutError:
            continue
    return msgs


def test_up_notifies_ready_pings_the_watchdog_and_says_stopping(tmp_path):
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 500.0}},
        executor={"exit_on_eos": False},
        runtime={"log_max_mb": 0.0002, "log_keep": 2},
    )
    path = cfg.save(tmp_path / "c.toml")
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "600000"}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "up",
            "--config",
            str(path),
            "--runners",
            "executor,gateway",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        msgs = recv_all(sock, time.monotonic() + 6)
        ready = [m for m in msgs if "READY=1" in m]
        assert len(ready) == 1, (msgs, p.poll())
        assert any(f.startswith("STATUS=running executor, gateway") for f in ready[0])
        after_ready = msgs[msgs.index(ready[0]) + 1 :]
        pings = [m for m in after_ready if m == ["WATCHDOG=1"]]
        assert len(pings) >= 6, msgs  # every 0.3 s for most of the 6 s
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        stopping = recv_all(sock, time.monotonic() + 0.5)
        assert any("STOPPING=1" in m for m in stopping), stopping
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        sock.close()
    logs = cfg.run_path() / "logs"
    names = sorted(f.name for f in logs.iterdir())
    # Only the runners of this host ran; their logs rotated at 210 bytes, two kept.
    assert "sr-1.jsonl" not in names
    assert {"gateway.jsonl.1", "gateway.jsonl.2"} <= set(names), names
    assert "gateway.jsonl.3" not in names


def test_up_with_an_unknown_runner_exits_2_naming_it(tmp_path):
    path = make_config(tmp_path).save(tmp_path / "c.toml")
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(path), "--runners", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "nope" in r.stderr and str(path) in r.stderr


def test_a_hung_supervisor_loop_misses_the_watchdog(tmp_path):
    from workbench.supervisor import Supervisor
    from workbench.supervisor.systemd import Notifier, SupervisorNotifier

    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.05)
    cfg = make_config(tmp_path, executor={"exit_on_eos": False})
    sup = Supervisor(cfg, runners=["executor"])
    link = SupervisorNotifier(
        Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"})
    )

    def pings_during(seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            link.tick(sup)
            with contextlib.suppress(TimeoutError):
                n += sock.recv(4096) == b"WATCHDOG=1"
        return n

    try:
        sup.start(wait=True, timeout=30)
        assert pings_during(1.0) >= 3  # every 0.2 s while the loop runs
        sleep = lambda: time.sleep(1.5)  # noqa: E731
        hang = threading.Thread(target=lambda: sup._commands.call(sleep, timeout=5))
        hang.start()  # the supervisor thread now sleeps inside a command: hung
        time.sleep(0.3)
        assert pings_during(1.0) == 0
        hang.join()
        assert pings_during(1.0) >= 3  # back to its loop: pings again
    finally:
        link.stopping()
        sup.stop()
        sock.close()
