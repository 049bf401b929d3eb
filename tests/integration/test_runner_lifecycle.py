"""Runner behaviour with a test-driven peer: bad ticks, binds, signals, heartbeats, restarts."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import zmq
from helpers import make_config
from pipeline_support import COND_B, T0

from workbench.domain.model import TickBatch
from workbench.messaging import codec
from workbench.messaging.codec import Ack, EndOfStream, Heartbeat, Marker, Resync

pytestmark = pytest.mark.integration


class FakeGateway:
    """The test plays the gateway: binds the tick PUB and the credit PULL."""

    def __init__(self, cfg) -> None:
        self.ctx = zmq.Context()
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.bind(cfg.bus.ticks_address)
        self.ctl = self.ctx.socket(zmq.PULL)
        self.ctl.bind(cfg.bus.control_address)
        self.seq = 0

    def send(self, payload) -> None:
        self.seq += 1
        self.pub.send_multipart(codec.encode(payload, "fake-gw", 1, self.seq, time.time_ns()))

    def await_subscriber(self, timeout_s: float = 15) -> Ack | Resync:
        """The handshake's answer; a resync is served (echoed) as the gateway does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.send(Marker(0))
            if self.ctl.poll(50):
                answer = codec.decode(self.ctl.recv_multipart()).payload
                if isinstance(answer, Resync):
                    self.send(Marker(0, answer.subscriber, answer.nonce))
                return answer
        raise AssertionError("strategy never acknowledged the handshake")

    def end(self, mark: int, timeout_s: float = 15) -> None:
        """The gateway's end: the end mark until the strategy acks it (its end is in), then done."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.send(Marker(mark))
            if self.ctl.poll(50) and codec.decode(self.ctl.recv_multipart()).payload == Ack(
                "sr", mark
            ):
                self.send(Marker(mark + 1))
                return
        raise AssertionError("strategy never acknowledged the end mark")

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def strategy_config(tmp_path):
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay"},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B]}}],
    )
    return cfg, cfg.save(tmp_path / "config.toml")


def batch(prices: list[float], first_seq: int) -> TickBatch:
    n = len(prices)
    return TickBatch("XYZ", first_seq, [T0 + first_seq + i for i in range(n)], prices, [1.0] * n)


def test_strategy_drops_malformed_tick_frames_and_keeps_trading(tmp_path, runner_procs):
    cfg, path = strategy_config(tmp_path)
    gw = FakeGateway(cfg)
    try:
        runner_procs.start("executor", "executor", path)
        runner_procs.start("strategy", "strategy", path)
        # A replay strategy's first answer: every tick after its saved state (none: 0).
        answer = gw.await_subscriber()
        assert isinstance(answer, Resync) and (answer.subscriber, answer.after_seq) == ("sr", 0)
        for frames in (
            [b"tick/XYZ/", b"\xc1"],
            [
                b"tick/XYZ/",
                codec.pack([1, "tick", "fake-gw", 1, 99, 1, "XYZ", 1, [1], ["x"], [1.0]]),
            ],
            [b"tick/XYZ/"],
        ):
            gw.pub.send_multipart(frames)
        gw.send(batch([101.0, 100.0, 100.5, 101.5], 1))  # trigger, enter, take profit
        gw.send(EndOfStream("fake-gw", 4, 4))
        gw.end(1)
        assert runner_procs.wait("strategy") == 0, runner_procs.text("strategy")
        assert runner_procs.wait("executor") == 0, runner_procs.text("executor")
    finally:
        gw.close()
    stopped = [e for e in runner_procs.logs("strategy") if e["event"] == "runner_stopped"][-1]
    assert stopped["counters"]["bad_frames"] == 3
    assert stopped["counters"]["signals_out"] == 2


def test_strategy_restart_continues_signal_ids_from_saved_state(tmp_path, runner_procs):
    cfg, path = strategy_config(tmp_path)
    gw = FakeGateway(cfg)
    pull = gw.ctx.socket(zmq.PULL)  # the test plays the executor too
    pull.bind(cfg.bus.signals_address)
    try:
        runner_procs.start("s1", "strategy", path)
        gw.await_subscriber()
        gw.send(batch([101.0, 100.0, 100.5], 1))  # trigger, enter -> signal sr:1
        assert pull.poll(10_000)
        first = codec.decode(pull.recv_multipart()).payload
        runner_procs.procs["s1"].send_signal(signal.SIGTERM)
        assert runner_procs.wait("s1") == 0
        runner_procs.start("s2", "strategy", path)
        gw.await_subscriber()
        gw.send(batch([101.5], 4))  # take profit: the restored condition is already in
        # Nobody acked sr:1 (the test plays a silent executor): the restarted
        # strategy sends it again from its outbox first, then the new signal.
        assert pull.poll(10_000)
        resent = codec.decode(pull.recv_multipart()).payload
        assert pull.poll(10_000)
        second = codec.decode(pull.recv_multipart()).payload
        assert resent == first
    finally:
        gw.close()
    assert (first.id, first.side) == ("sr:1", "BUY")
    assert (second.id, second.side, second.reason) == ("sr:2", "SELL", "take_profit")


def test_gateway_retries_a_busy_port_then_fails_clearly(tmp_path, runner_procs):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        cfg = make_config(
            tmp_path,
            bus={
                "ticks_address": f"tcp://127.0.0.1:{port}",
                "bind_retry_attempts": 3,
                "bind_retry_max_wait_ms": 50,
            },
        )
        path = cfg.save(tmp_path / "config.toml")
        runner_procs.start("gateway", "gateway", path)
        assert runner_procs.wait("gateway") == 75
    finally:
        holder.close()
    errors = [e for e in runner_procs.logs("gateway") if e["event"] == "temporary_error"]
    assert f"127.0.0.1:{port}: address already in use after 3 attempts" in errors[0]["error"]
    assert len([e for e in runner_procs.logs("gateway") if e["event"] == "bind_retrying"]) == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_live_gateway_heartbeats_then_stops_cleanly_on_signal(tmp_path, runner_procs, sig):
    cfg = make_config(tmp_path)  # simulated feed: runs until told to stop
    path = cfg.save(tmp_path / "config.toml")
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"hb/")
    sub.bind(cfg.bus.telemetry_address)
    try:
        proc = runner_procs.start("gateway", "gateway", path)
        assert sub.poll(15_000), runner_procs.text("gateway")
        env = codec.decode(sub.recv_multipart())
        assert isinstance(env.payload, Heartbeat)
        assert (env.sender, env.payload.role, env.payload.pid) == ("gateway", "gateway", proc.pid)
        time.sleep(0.3)
        proc.send_signal(sig)
        assert runner_procs.wait("gateway", 10) == 0
    finally:
        ctx.destroy(linger=0)
    events = [e["event"] for e in runner_procs.logs("gateway")]
    assert "stop_requested" in events and events[-1] == "runner_stopped"
    assert all(
        e["run_id"] == "test" and e["runner"] == "gateway" for e in runner_procs.logs("gateway")
    )
