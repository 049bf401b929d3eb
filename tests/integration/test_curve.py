"""CURVE on a real tcp bus: the pipeline works, and peers without a listed key get nothing."""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.request

import pytest
import zmq
from curve_support import assert_no_secret_in, curve_config, secret_keys
from pipeline_support import COND_B, COND_S, expected_fills, write_ticks

from workbench.domain.model import Side, Signal
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.messaging import codec
from workbench.messaging.codec import Command
from workbench.messaging.zmq_adapters import request
from workbench.notebook.control import send_command
from workbench.supervisor import Supervisor
from workbench.taps import Taps

pytestmark = pytest.mark.integration

FORGED_ID = "sr-1:999999"


def metric(text: str, name: str, runner: str) -> float | None:
    m = re.search(rf'^{name}\{{runner="{re.escape(runner)}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def log_events(sup: Supervisor, runner: str, event: str) -> list[dict]:
    return [e for e in sup.logs.recent(runner) if e.get("event") == event]


def intruder(ctx: zmq.Context, kind: int, address: str, server_key: bytes | None) -> zmq.Socket:
    """A socket with a key pair nobody listed (or, without ``server_key``, no CURVE at all)."""
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.reconnect_ivl = 50
    sock.reconnect_ivl_max = 0
    if server_key is not None:
        public, secret = zmq.curve_keypair()
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = server_key
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address)
    return sock


def drain(sock: zmq.Socket) -> int:
    n = 0
    while sock.poll(0):
        sock.recv_multipart()
        n += 1
    return n


def test_unlisted_peers_get_no_ticks_and_no_signal_accepted(tmp_path):
    cfg, keys_dir = curve_config(
        tmp_path,
        gateway={"feed": "simulated", "simulated": {"rate_per_s": 400.0}},
        executor={"exit_on_eos": False},
    )
    keys = cfg.security.public_keys
    sup = Supervisor(cfg)
    taps = Taps(cfg)
    ctx = zmq.Context()
    try:
        sup.start(wait=True, timeout=30)
        taps.start()
        bus = cfg.bus
        subs = [intruder(ctx, zmq.SUB, bus.ticks_address, keys["gateway"].encode())]
        subs += [intruder(ctx, zmq.SUB, bus.ticks_address, None) for _ in range(2)]
        # A peer refused for its key is told so and does not retry; three make a burst.
        rogue_pub = intruder(ctx, zmq.PUB, bus.telemetry_address, keys["supervisor"].encode())
        rogue_pushes = [
            intruder(ctx, zmq.PUSH, bus.signals_address, keys["executor"].encode())
            for _ in range(3)
        ]
        forged = Signal(FORGED_ID, "sr-1", 999999, "ABC", Side.BUY, 1.0, 100.0, time.time_ns())
        frames = codec.encode(forged, "sr-1", 1, 1, time.time_ns())
        got = sent = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for rogue_push in rogue_pushes:
                try:
                    rogue_push.send_multipart(frames, zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    pass
            got += sum(drain(s) for s in subs)
            time.sleep(0.05)
        got += sum(drain(s) for s in subs)

        assert taps.ticks.total > 100, "the listed tap must receive ticks"
        assert got == 0
        assert sent > 0  # queued locally (no ZMQ_IMMEDIATE); the journal shows none arrived
        time.sleep(1.0)  # one more heartbeat carries the last counts
        with urllib.request.urlopen(f"{sup.health_url}/metrics", timeout=5) as r:
            text = r.read().decode()
        refused_gw = metric(text, "workbench_curve_handshakes_refused_total", "gateway")
        refused_ex = metric(text, "workbench_curve_handshakes_refused_total", "executor")
        # Each intruder is refused at least once (a refused key is told not to retry).
        assert refused_gw is not None and refused_gw >= 3, text
        assert refused_ex is not None and refused_ex >= 3, text
        assert metric(text, "workbench_curve_handshakes_refused_total", "sr-1") == 0
        # The supervisor binds telemetry and counts its own refusals.
        assert metric(text, "workbench_curve_handshakes_refused_total", "supervisor") >= 1
        rogue_pub.close()
        # Logged once per burst (the interval is 5 s), not once per attempt.
        assert len(log_events(sup, "gateway", "curve_handshake_refused")) == 1
        assert len(log_events(sup, "executor", "curve_handshake_refused")) == 1
        # Whose key was refused: named (an intruder's is no one's).
        refused = log_events(sup, "gateway", "curve_key_refused")
        assert refused and refused[0]["key_of"] == "no one in security.public_keys"
        assert refused[0]["socket"] == "ticks" and len(refused[0]["public_key"]) == 40
        # The listed executor reads the gateway's market snapshots (it was refused:
        # no price for the collar, staleness, the daily loss or a flatten).
        ex = next(s for s in sup.status() if s.runner == "executor")
        assert ex.counters.get("market_msgs_in", 0) > 0, ex.counters
    finally:
        ctx.destroy(linger=0)
        taps.stop()
        sup.stop()
    with sqlite3.connect(cfg.journal_path()) as db:
        ids = [r[0] for r in db.execute("SELECT signal_id FROM signals")]
    assert FORGED_ID not in ids
    secrets = secret_keys(keys_dir)
    assert len(secrets) == 5
    assert assert_no_secret_in(cfg.run_path(), secrets) >= 4  # config.toml and the logs
    saved = (cfg.run_path() / "config.toml").read_text()
    assert "curve = true" in saved and keys["gateway"] in saved


def test_replay_over_curve_gives_the_hand_derived_fills(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg, keys_dir = curve_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
        gateway={"feed": "replay", "replay": {"path": str(data), "batch_size": 7}},
        executor={"broker": {"slippage": 0.01}},
    )
    sup = Supervisor(cfg)
    try:
        sup.start()
        assert sup.eos_reached.wait(60), sup.status()
    finally:
        sup.stop()
    with sqlite3.connect(cfg.journal_path()) as db:
        fills = db.execute(
            "SELECT fill_id, side, qty, round(price, 8), ts_ns FROM fills ORDER BY ts_ns, fill_id"
        ).fetchall()
    assert [tuple(f) for f in fills] == sorted(expected_fills("sr", "sr"), key=lambda f: f[4])
    assert assert_no_secret_in(cfg.run_path(), secret_keys(keys_dir)) >= 4


def test_a_runner_whose_secret_does_not_match_fails_with_a_config_error(tmp_path):
    cfg, keys_dir = curve_config(tmp_path)
    other = tmp_path / "other"
    from workbench.messaging.curve_keys import generate_keys

    generate_keys(other, ["executor"])
    (keys_dir / "executor.key_secret").write_bytes((other / "executor.key_secret").read_bytes())
    sup = Supervisor(cfg, runners=["executor"])
    try:
        sup.start()
        assert sup.wait_for(sup.any_failed, 30)
        st = {s["runner"]: s for s in sup.status()}["executor"]
        assert st["state"] == "failed" and "configuration error" in st["detail"]
        errors = log_events(sup, "executor", "configuration_error")
        assert errors and "security.public_keys.executor" in errors[0]["error"]
    finally:
        sup.stop()


def test_a_tap_without_a_key_fails_loudly_at_start(tmp_path):
    cfg, _ = curve_config(tmp_path)
    keys = dict(cfg.security.public_keys)
    del keys["tap"]
    cfg.security.public_keys = keys
    taps = Taps(cfg)
    try:
        with pytest.raises(ConfigurationError, match=r"security\.public_keys\.tap"):
            taps.start()
    finally:
        taps.stop()


def test_the_kill_switch_works_over_curve_for_the_supervisors_key_only(tmp_path):
    # The command socket is on tcp like the rest of the bus: it was no bus
    # address, so an executor with CURVE on failed to start.
    cfg, _ = curve_config(tmp_path, gateway={"simulated": {"rate_per_s": 200.0}})
    sup = Supervisor(cfg)
    try:
        sup.start(wait=True, timeout=60)
        assert send_command(cfg, "halt")["trading_state"] == "HALTED"
        assert send_command(cfg, "state")["trading_state"] == "HALTED"
        with pytest.raises(TemporaryError, match="no answer"):  # no key: no handshake
            request(cfg.bus.command_address, Command("resume", {"run_id": cfg.run_id}),
                    timeout_ms=1_000)  # fmt: skip
        assert send_command(cfg, "state")["trading_state"] == "HALTED"
        assert send_command(cfg, "resume")["trading_state"] == "ACTIVE"
    finally:
        sup.stop()
