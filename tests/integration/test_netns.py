"""A replay across two real network hosts: network namespaces joined by a veth pair.

The exchange namespace runs the gateway and the executor, the compute
namespace the strategy, each under its own ``workbench up --runners ...``,
over tcp with CURVE. The fills must equal a single-host fast replay's.
Needs root and ``ip`` (CI has both); skips with the reason otherwise.
Everything it creates (namespaces, veth pair, processes) is removed, even
when it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from curve_support import assert_no_secret_in, curve_config, secret_keys
from helpers import ROOT
from pipeline_support import COND_B, COND_S, write_ticks

from workbench.replays.session import load_replay_ticks, run_fast

pytestmark = pytest.mark.integration

IP = shutil.which("ip")


def _can_make_namespaces() -> str | None:
    if IP is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"wbprobe{os.getpid()}"
    r = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True)
    return None


class TwoHosts:
    """Two namespaces ``a`` (10.x.y.1) and ``b`` (10.x.y.2) on one veth pair."""

    def __init__(self) -> None:
        tag = os.getpid() % 100_000
        self.ns = {"a": f"wb{tag}a", "b": f"wb{tag}b"}
        net = f"10.213.{tag % 250}"
        self.addr = {"a": f"{net}.1", "b": f"{net}.2"}
        self._veth = (f"wbv{tag}a", f"wbv{tag}b")
        self.procs: list[subprocess.Popen] = []

    def up(self) -> None:
        va, vb = self._veth
        for cmd in (
            ["netns", "add", self.ns["a"]],
            ["netns", "add", self.ns["b"]],
            ["link", "add", va, "type", "veth", "peer", "name", vb],
            ["link", "set", va, "netns", self.ns["a"]],
            ["link", "set", vb, "netns", self.ns["b"]],
        ):
            subprocess.run([IP, *cmd], check=True, capture_output=True)
        for side, dev in (("a", va), ("b", vb)):
            for cmd in (
                ["addr", "add", f"{self.addr[side]}/24", "dev", dev],
                ["link", "set", dev, "up"],
                ["link", "set", "lo", "up"],
            ):
                subprocess.run(
                    [IP, "netns", "exec", self.ns[side], IP, *cmd], check=True, capture_output=True
                )

    def run(self, side: str, argv: list[str], log: Path) -> subprocess.Popen:
        p = subprocess.Popen(
            [IP, "netns", "exec", self.ns[side], *argv],
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(p)
        return p

    def down(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        for ns in self.ns.values():
            subprocess.run([IP, "netns", "del", ns], capture_output=True)  # takes the veth along


@pytest.fixture
def two_hosts():
    reason = _can_make_namespaces()
    if reason:
        pytest.skip(reason)
    hosts = TwoHosts()
    try:
        hosts.up()
        yield hosts
    finally:
        hosts.down()
        left = subprocess.run([IP, "netns", "list"], capture_output=True, text=True).stdout
        assert not any(ns in left for ns in hosts.ns.values()), left


def test_replay_across_two_network_hosts_gives_the_fast_replay_fills(tmp_path, two_hosts):
    a, b = two_hosts.addr["a"], two_hosts.addr["b"]
    data = write_ticks(tmp_path / "ticks.csv")
    cfg, keys_dir = curve_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
        gateway={"feed": "replay", "replay": {"path": str(data), "batch_size": 7}},
        executor={"broker": {"slippage": 0.01}},
    )
    for i, name in enumerate(("ticks", "signals", "events", "control")):
        setattr(cfg.bus, f"{name}_address", f"tcp://{a}:{5801 + i}")
    cfg.hosts = [
        {
            "name": "exchange",
            "runners": ["gateway", "executor"],
            "telemetry_address": f"tcp://{a}:5805",
        },
        {"name": "compute", "runners": ["sr"], "telemetry_address": f"tcp://{b}:5805"},
    ]
    files = {}
    for host in ("exchange", "compute"):
        c = cfg.model_copy(deep=True)
        c.runtime.run_dir = str(tmp_path / host / "runs")
        files[host] = c.save(tmp_path / host / "config.toml")
    up = [sys.executable, "-m", "workbench.cli", "up", "--config"]
    compute = two_hosts.run(
        "b", [*up, str(files["compute"]), "--runners", "sr"], tmp_path / "compute.out"
    )
    exchange = two_hosts.run(
        "a",
        [*up, str(files["exchange"]), "--runners", "gateway,executor"],
        tmp_path / "exchange.out",
    )
    assert exchange.wait(90) == 0, (tmp_path / "exchange.out").read_text()
    assert compute.wait(30) == 0, (tmp_path / "compute.out").read_text()

    journal = tmp_path / "exchange" / "runs" / cfg.run_id / "journal.sqlite"
    with sqlite3.connect(journal) as db:
        wire = db.execute(
            "SELECT fill_id, side, qty, round(price, 8), ts_ns FROM fills ORDER BY ts_ns, fill_id"
        ).fetchall()
    fast, _, _ = run_fast(cfg, load_replay_ticks(cfg))
    expected = sorted(
        ((f.id, f.side.value, f.qty, round(f.price, 8), f.ts_ns) for f in fast),
        key=lambda f: (f[4], f[0]),
    )
    assert len(expected) == 4 and [tuple(r) for r in wire] == expected
    out = (tmp_path / "exchange.out").read_text()
    assert "fills 4" in out
    # The strategy ran in the other namespace: its log is on the compute side only.
    assert (tmp_path / "compute" / "runs" / cfg.run_id / "logs" / "sr.jsonl").exists()
    assert not (tmp_path / "exchange" / "runs" / cfg.run_id / "logs" / "sr.jsonl").exists()
    assert assert_no_secret_in(tmp_path / "exchange", secret_keys(keys_dir)) >= 3
