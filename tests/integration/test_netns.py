"""One pipeline across two real network hosts: network namespaces joined by a veth pair.

The exchange namespace runs the gateway and the executor, the compute
namespace the strategy, each under its own ``workbench up --runners ...``,
over tcp with CURVE. A replay's fills must equal a single-host fast
replay's; a live session survives the compute host's link going down for
5 s with no order lost or doubled.
Needs root and ``ip`` (CI has both); skips with the reason otherwise.
Everything it creates (namespaces, veth pair, processes) is removed, even
when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from curve_support import assert_no_secret_in, curve_config, secret_keys
from helpers import ROOT, logged_signal_ids, wait_until
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

    def set_link(self, side: str, state: str) -> None:
        """``ip link set <veth> up|down`` inside ``side``'s namespace: cut or restore its link."""
        dev = self._veth[0 if side == "a" else 1]
        ip = [IP, "netns", "exec", self.ns[side], IP]
        subprocess.run([*ip, "link", "set", dev, state], check=True, capture_output=True)
        shown = subprocess.run(
            [*ip, "-o", "link", "show", "dev", dev], check=True, capture_output=True, text=True
        ).stdout
        flags = shown.split("<", 1)[1].split(">", 1)[0].split(",")
        assert ("UP" in flags) == (state == "up"), shown

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


def live_conditions() -> list[dict]:
    """Triggers near the simulated feed's start price 100 and small turning points: many trades."""
    common = {
        "symbol": "ABC",
        "turning_point": 0.03,
        "take_profit": 0.08,
        "stop_loss": 0.06,
        "following": True,
        "rearm": True,
    }
    return [
        {"id": "b", "side": "BUY", "trigger_price": 100.3, **common},
        {"id": "s", "side": "SELL", "trigger_price": 99.7, **common},
    ]


def journal_rows(path: Path, sql: str) -> list[tuple]:
    """Rows of the executor's journal, read while it writes; none before it exists."""
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return []
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not made yet
        return []
    finally:
        db.close()


def count_events(log_file: Path, event: str) -> int:
    n = 0
    for line in log_file.read_text().splitlines():
        try:
            n += json.loads(line).get("event") == event
        except ValueError:
            continue
    return n


def stop_up(proc: subprocess.Popen, out: Path) -> None:
    """SIGTERM a ``workbench up`` (as Ctrl-C would); it stops its runners and exits 0."""
    os.kill(proc.pid, signal.SIGTERM)  # `ip netns exec` exec()s: the pid is workbench's
    assert proc.wait(30) == 0, out.read_text()


def test_live_session_survives_the_strategy_host_link_going_down(tmp_path, two_hosts):
    a, b = two_hosts.addr["a"], two_hosts.addr["b"]
    cfg, keys_dir = curve_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": live_conditions()}}],
        gateway={
            "feed": "simulated",
            "simulated": {"rate_per_s": 1_000.0, "volatility_ticks": 2.0},
        },
        runtime={"heartbeat_interval_s": 0.2, "signal_resend_after_s": 0.5},
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
    journal = tmp_path / "exchange" / "runs" / cfg.run_id / "journal.sqlite"
    log_file = tmp_path / "compute" / "runs" / cfg.run_id / "logs" / "sr.jsonl"
    outs = {h: tmp_path / f"{h}.out" for h in ("exchange", "compute")}
    up = [sys.executable, "-m", "workbench.cli", "up", "--config"]
    exchange = two_hosts.run(
        "a", [*up, str(files["exchange"]), "--runners", "gateway,executor"], outs["exchange"]
    )
    compute = two_hosts.run("b", [*up, str(files["compute"]), "--runners", "sr"], outs["compute"])

    def fill_signals() -> list[str]:
        return [r[0] for r in journal_rows(journal, "SELECT signal_id FROM fills")]

    def running() -> bool:
        assert exchange.poll() is None, outs["exchange"].read_text()
        assert compute.poll() is None, outs["compute"].read_text()
        return True

    wait_until(lambda: running() and len(fill_signals()) >= 6, 60, "orders flowing")
    two_hosts.set_link("b", "down")  # the compute host is off the network
    cut_fills = len(fill_signals())
    time.sleep(5.0)
    before_up = logged_signal_ids(log_file)
    two_hosts.set_link("b", "up")
    # Recovered: fills of signals the strategy sent only after its link was back.
    wait_until(
        lambda: running() and len(set(fill_signals()) - before_up) >= 6,
        40,
        "fills of signals sent after the link came back",
    )

    def delivered() -> bool:
        logged = logged_signal_ids(log_file)
        return logged <= {r[0] for r in journal_rows(journal, "SELECT signal_id FROM signals")}

    wait_until(delivered, 20, "every logged signal in the journal")
    stop_up(compute, outs["compute"])  # no new signals from here on
    time.sleep(1.0)  # the executor drains what is in flight
    stop_up(exchange, outs["exchange"])

    logged = logged_signal_ids(log_file)
    signals = journal_rows(journal, "SELECT signal_id FROM signals")
    orders = journal_rows(journal, "SELECT signal_id, status FROM orders")
    fills = [f for (f,) in journal_rows(journal, "SELECT signal_id FROM fills")]
    seen = (  # what the cut did, for a failure's message
        f"signals {len(logged)}, orders {len(orders)}, fills {len(fills)}: {cut_fills} at the "
        f"cut, {len(set(fills) - before_up)} of signals sent after it; re-send batches "
        f"{count_events(log_file, 'signals_resent')}, tick gaps "
        f"{count_events(log_file, 'sequence_gap')}"
    )
    assert len(logged) >= 12, seen  # 6 before the cut, 6 after it
    assert {s for (s,) in signals} == logged, seen  # 0 lost, nothing unlogged
    assert len(signals) == len(logged), seen  # each journaled once
    assert sorted(sig for sig, _ in orders) == sorted(logged), seen  # one order each: 0 doubled
    statuses = {st for _, st in orders}
    assert statuses == {"FILLED"}, (statuses, seen)  # no executor was killed: none in doubt
    assert sorted(fills) == sorted(sig for sig, _ in orders), seen  # one fill per order
    assert assert_no_secret_in(tmp_path / "exchange", secret_keys(keys_dir)) >= 3
    assert assert_no_secret_in(tmp_path / "compute", secret_keys(keys_dir)) >= 3
