"""A receiver drops bad frames, and a flood of them never keeps its caller waiting."""

from __future__ import annotations

import time

import pytest
import zmq

from workbench.config import BusConfig
from workbench.domain.model import Side, Signal
from workbench.messaging import codec
from workbench.messaging.zmq_adapters import ZmqReceiver
from workbench.telemetry import Telemetry

FLOOD = 20_000  # seconds of work: far more than one receive's budget


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def test_a_flood_of_bad_frames_returns_to_the_caller_in_bounded_steps(tmp_path, ctx):
    # The executor heartbeats between receives: one receive that dropped a
    # whole flood of garbage (100k frames, seconds) got it restarted as hung.
    telemetry = Telemetry()
    address = f"ipc://{tmp_path / 'signals'}"
    rx = ZmqReceiver(ctx, zmq.PULL, address, BusConfig(), telemetry, bind_it=True, name="signals")
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(address)
    try:
        for _ in range(FLOOD):
            push.send_multipart([b"sig/evil/", b"\xc1"])
        good = Signal("sr-1:1", "sr-1", 1, "ABC", Side.BUY, 1.0, 100.0, 1, "x", "c")
        push.send_multipart(codec.encode(good, "sr-1", 1, 1, time.time_ns()))

        assert rx.recv(2000) is None  # back early, the flood not over
        assert 0 < telemetry.get("bad_frames") < FLOOD
        calls = 1
        env = None
        deadline = time.monotonic() + 10
        while env is None and time.monotonic() < deadline:
            env = rx.recv(1000)
            calls += 1
        assert env is not None and env.payload == good  # nothing good is lost
        assert telemetry.get("bad_frames") == FLOOD
        assert telemetry.get("bad_frames_by_socket:signals") == FLOOD
        assert calls > 2
    finally:
        push.close()
        rx.close()


def test_a_flood_of_bad_requests_on_the_command_socket_returns_in_bounded_steps(tmp_path, ctx):
    from workbench.messaging.codec import Command
    from workbench.messaging.zmq_adapters import ZmqReplier

    telemetry = Telemetry()
    address = f"ipc://{tmp_path / 'command'}"
    rep = ZmqReplier(ctx, address, BusConfig(), telemetry, "executor")
    dealer = ctx.socket(zmq.DEALER)  # many requests in flight, as a REQ cannot
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(address)
    try:
        for _ in range(FLOOD):
            dealer.send_multipart([b"", b"cmd/evil/", b"\xc1"])
        dealer.send_multipart([b"", *codec.encode(Command("state", {}), "operator", 1, 1, 1)])
        assert rep.recv(2000) is None  # back early: the executor's heartbeats go on
        assert 0 < telemetry.get("bad_frames") < FLOOD
        env = None
        deadline = time.monotonic() + 30
        while env is None and time.monotonic() < deadline:
            env = rep.recv(1000)
        assert env is not None and env.payload == Command("state", {})
        assert telemetry.get("bad_frames") == FLOOD
    finally:
        dealer.close()
        rep.close()


def test_an_event_nobody_wants_takes_its_seq_so_a_late_reader_counts_it(tmp_path, ctx):
    # The executor builds no event nobody subscribes to; a tap that joins later
    # must still see that it missed them (its before_join), not a stream from 1.
    from workbench.messaging.codec import Event
    from workbench.messaging.zmq_adapters import ZmqSender

    address = f"ipc://{tmp_path / 'events'}"
    tx = ZmqSender(ctx, zmq.XPUB, address, BusConfig(), "executor", Telemetry(), bind_it=True)
    assert not tx.wanted("evt", "signal_received") and not tx.wanted("evt", "signal_received")
    sub = ZmqReceiver(ctx, zmq.SUB, address, BusConfig(), Telemetry(), bind_it=False,
                      subscriptions=[b"evt/signal_received/"])  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while not tx.subscribed("evt", "signal_received"):  # asking takes no seq
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert tx.wanted("evt", "signal_received")  # wanted: the send takes the seq
        tx.send(Event("signal_received", {"signal_id": "s:3"}))
        env = sub.recv(2000)
        assert env is not None and env.seq == 3  # two went unbuilt before it
    finally:
        sub.close()
        tx.sock.close(linger=0)
