"""The gateway runner with in-process channels and a fake clock: handshake, credit, resync, eos."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from workbench.domain.model import TickBatch
from workbench.exceptions import GatewayStartTimeout
from workbench.gateway import runner as gateway_runner
from workbench.gateway.runner import HANDSHAKE_INTERVAL_S, GatewayRunner
from workbench.messaging.codec import Ack, EndOfStream, Heartbeat, Marker, Resync
from workbench.messaging.heartbeat_extras import GatewayExtra
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.telemetry import Telemetry


class Clock:
    """Stands in for the ``time`` module inside the gateway runner."""

    def __init__(self) -> None:
        self.now = 50.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


class ListFeed:
    """A finite feed that hands out one batch per poll."""

    def __init__(self, batches: int, size: int = 2) -> None:
        self._batches = [
            TickBatch("ABC", 1 + i * size, [i] * size, [100.0 + i] * size, [1.0] * size)
            for i in range(batches)
        ]
        self._next = 0

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self._batches)

    @property
    def total(self) -> int:
        return sum(len(b) for b in self._batches[: self._next])

    def seconds_to_next(self) -> float:
        return 0.0

    def poll(self, max_ticks: int) -> list[TickBatch]:
        if self.exhausted:
            return []
        self._next += 1
        return [self._batches[self._next - 1]]


class Rig:
    def __init__(self, monkeypatch, subscribers: list[str], batches: int = 6, **kw: Any):
        self.clock = Clock()
        fake_time = SimpleNamespace(
            monotonic=self.clock.monotonic, sleep=self.clock.sleep, time_ns=time.time_ns
        )
        monkeypatch.setattr(gateway_runner, "time", fake_time)
        self.ticks, self.credits, self.beats = Channel(), Channel(), Channel()
        self.telemetry = Telemetry()
        self.gw = GatewayRunner(
            "gateway", ListFeed(batches), InprocSender(self.ticks, "gateway"),
            InprocReceiver(self.credits), self.telemetry, InprocSender(self.beats, "gateway"),
            1.0, subscribers=subscribers, **kw,
        )  # fmt: skip
        self.strategy = InprocSender(self.credits, "sr-1")
        self._rx = InprocReceiver(self.ticks)

    def out(self) -> list[Any]:
        got = []
        while (env := self._rx.recv(0)) is not None:
            got.append(env.payload)
        return got

    def step(self, n: int = 1) -> list[Any]:
        for _ in range(n):
            self.gw.step(10)
        return self.out()


def batches(payloads: list[Any]) -> list[int]:
    return [p.first_seq for p in payloads if isinstance(p, TickBatch)]


def test_live_mode_publishes_everything_then_end_of_stream(monkeypatch):
    r = Rig(monkeypatch, [], batches=3)
    out = r.step(2)
    assert batches(out) == [1, 3, 5]
    assert out[-1] == EndOfStream("gateway", 6, 6)
    assert r.gw.finished and r.telemetry.get("ticks_out") == 6
    r.gw.send_heartbeat()
    hb = InprocReceiver(r.beats).recv(0).payload
    assert isinstance(hb, Heartbeat)
    info = GatewayExtra.from_wire(hb.extra)
    assert (info.ticks_total, info.eos) == (6, True) and info.first_tick_ns > 0


def test_replay_waits_for_every_subscriber_before_the_first_tick(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], window_batches=4)
    assert r.step() == [Marker(0)]
    r.clock.now += 2 * HANDSHAKE_INTERVAL_S
    assert r.step() == [Marker(0)]  # re-sent until someone answers
    r.strategy.send(Ack("sr-1", 0))
    r.step()  # joined
    out = r.step()
    assert batches(out) == [1, 3, 5, 7]  # the window: 4 batches past the slowest ack
    assert Marker(1) in out
    assert r.telemetry.get("credit_waits") == 1


def test_an_ack_opens_the_window_and_the_stream_ends_after_the_last_ack(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], batches=6, window_batches=4)
    r.strategy.send(Ack("sr-1", 0))
    r.step()
    out = r.step()
    last_mark = max(p.mark for p in out if isinstance(p, Marker))
    r.strategy.send(Ack("sr-1", last_mark))
    out = r.step(2)
    assert batches(out) == [9, 11]
    assert isinstance(out[-1], EndOfStream) and not r.gw.finished
    final = max(p.mark for p in out if isinstance(p, Marker))
    r.strategy.send(Ack("sr-1", final))
    r.step()
    assert r.gw.finished


def test_a_restarted_strategy_gets_the_batches_after_its_last_saved_tick(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], window_batches=4)
    r.strategy.send(Ack("sr-1", 0))
    r.step(2)
    r.strategy.send(Resync("sr-1", 4))  # saved up to tick 4: batches from seq 5 again
    out = r.step()
    assert batches(out)[:2] == [5, 7]
    assert r.telemetry.get("batches_resent") == 2


def test_no_subscriber_in_time_is_a_start_timeout(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], start_timeout_s=2.0)
    r.step()
    r.clock.now += 2.5
    with pytest.raises(GatewayStartTimeout, match="sr-1"):
        r.step()


def test_credit_from_an_unknown_strategy_is_counted(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"])
    InprocSender(r.credits, "x").send(Ack("nobody", 3))
    r.step()
    assert r.telemetry.get("credits_unknown_subscriber") == 1


def test_live_mode_drains_the_control_socket_every_few_ms_not_every_tick(monkeypatch):
    r = Rig(monkeypatch, [], batches=6)
    r.strategy.send(Ack("nobody", 1))  # live: no subscribers, so counted as unknown
    r.gw.step(10)  # 6 batches at one instant of the fake clock: the control socket read once
    assert batches(r.out()) == [1, 3, 5, 7, 9, 11]
    assert r.telemetry.get("credits_unknown_subscriber") == 1
    r.strategy.send(Ack("nobody", 2))
    r.gw._drain_control_now_and_then()
    assert r.telemetry.get("credits_unknown_subscriber") == 1  # not due yet
    r.clock.now += gateway_runner.LIVE_CONTROL_DRAIN_S
    r.gw._drain_control_now_and_then()
    assert r.telemetry.get("credits_unknown_subscriber") == 2 and not r.credits.frames
