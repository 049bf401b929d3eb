"""A real Jupyter kernel drives the runners; killing or restarting it leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from helpers import ROOT, assert_binds, make_config, pid_alive, tcp_bus
from jupyter_client import KernelManager

pytestmark = pytest.mark.integration

START = """
from workbench import load_config
from workbench.notebook.workbench import Workbench
wb = Workbench.from_config({path!r})
wb.start(wait=True, timeout=60)
print("PIDS", __import__("json").dumps([s["pid"] for s in wb.supervisor.status()]))
"""


def run_in_kernel(kc, code: str) -> str:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=90, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def started_kernel(tmp_path):
    bus = tcp_bus()
    cfg = make_config(tmp_path, bus=bus)
    path = cfg.save(tmp_path / "c.toml")
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(ROOT))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    out = run_in_kernel(kc, START.format(path=str(path)))
    pids = json.loads(out.split("PIDS", 1)[1].strip().splitlines()[0])
    return km, kc, pids, bus


def assert_gone_and_ports_free(pids: list[int], bus: dict[str, str]) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0 and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)], "runners outlived the kernel by 2 s"
    for address in bus.values():
        assert_binds(address, t0 + 2.5)  # 2 s to exit, then kernel TCP teardown


def cleanup(km, kc, pids):
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=True)
    for p in pids:
        if pid_alive(p):
            os.kill(p, signal.SIGKILL)


def test_sigkill_of_the_kernel_leaves_no_runner_and_no_port(tmp_path):
    km, kc, pids, bus = started_kernel(tmp_path)
    try:
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
        assert_gone_and_ports_free(pids, bus)
    finally:
        cleanup(km, kc, pids)


def test_kernel_restart_leaves_no_runner_and_no_port(tmp_path):
    km, kc, pids, bus = started_kernel(tmp_path)
    try:
        km.restart_kernel(now=True)
        assert_gone_and_ports_free(pids, bus)
    finally:
        cleanup(km, kc, pids)


def test_cells_return_while_runners_keep_going(tmp_path):
    km, kc, pids, _ = started_kernel(tmp_path)
    try:
        t0 = time.monotonic()
        out = run_in_kernel(kc, "import time; time.sleep(1.0); print('TICKS', len(wb.ticks))")
        assert time.monotonic() - t0 < 10
        assert int(out.split("TICKS")[1].split()[0]) > 0
        run_in_kernel(kc, "wb.stop()")
        assert not [p for p in pids if pid_alive(p)]
    finally:
        cleanup(km, kc, pids)
