"""The gateway runner with in-process channels and a fake clock: handshake, credit, resync, eos."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from workbench.domain.model import Tick, TickBatch
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
    *_, final, eos, end = out  # the last data mark, the end of stream, the end mark
    assert isinstance(eos, EndOfStream) and end == Marker(final.mark + 1)
    r.strategy.send(Ack("sr-1", final.mark))
    r.clock.now += 1.0
    assert r.step() == [Marker(end.mark)] and not r.gw.finished  # the end mark, repeated
    # Acked once the executor has the strategy's end: then done, one mark past it.
    r.strategy.send(Ack("sr-1", end.mark))
    assert r.step() == [Marker(end.mark + 1)] and r.gw.finished


def test_a_restarted_strategy_gets_the_batches_after_its_last_saved_tick(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], window_batches=4)
    r.strategy.send(Ack("sr-1", 0))
    r.step(2)
    r.strategy.send(Resync("sr-1", 4, 99))  # saved up to tick 4: batches from seq 5 again
    out = r.step()
    # The echo first: what the strategy got before it was sent before the request was served.
    assert out[0] == Marker(r.gw.window.mark, "sr-1", 99)
    assert batches(out)[:2] == [5, 7]
    assert r.telemetry.get("batches_resent") == 2


def test_a_resync_before_the_stream_starts_is_echoed_too(monkeypatch):
    r = Rig(monkeypatch, ["sr-1", "sr-2"])
    r.strategy.send(Resync("sr-1", 0, 7))  # sr-2 has not joined: no stream yet
    assert Marker(0, "sr-1", 7) in r.step()


def test_a_strategy_outside_replay_subscribers_is_echoed_and_joins_unpaced(monkeypatch):
    # Not flow-controlled, it was never echoed: it dropped every tick, for good.
    r = Rig(monkeypatch, ["sr-1"])
    InprocSender(r.credits, "sr-2").send(Resync("sr-2", 0, 5))
    out = r.step()
    assert Marker(0, "sr-2", 5) in out and batches(out) == []  # nothing re-sent for it
    assert r.telemetry.get("credits_unknown_subscriber") == 1
    assert not r.gw.window.knows("sr-2")
    assert not any(isinstance(p, EndOfStream) for p in out)  # none sent yet


def test_a_resync_after_the_end_of_stream_gets_it_again(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], batches=2)
    r.strategy.send(Ack("sr-1", 0))
    assert EndOfStream("gateway", 4, 4) in r.step(3)
    for who in ("sr-1", "sr-2"):  # restarted, or never paced: it dropped the first one
        InprocSender(r.credits, who).send(Resync(who, 0, 3))
        out = r.step()
        assert out[0] == Marker(r.gw.window.mark, who, 3)
        assert EndOfStream("gateway", 4, 4) in out
    # The end of stream before the end mark: a strategy acks that only after the end.
    InprocSender(r.credits, "sr-1").send(Resync("sr-1", 0, 4))
    *_, eos, end = r.step()
    assert isinstance(eos, EndOfStream) and end == Marker(r.gw.window.mark)


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


# -- live market snapshots for the executor -----------------------------------------------

MS = 1 / 1024  # a fake millisecond: binary fractions keep the fake clock's sums exact


class LiveFeed:
    """Ticks the test pushes, handed out at the next poll; idle, the next is 1 s away."""

    def __init__(self, clock: Clock, *, ends: bool = False) -> None:
        self.clock = clock
        self.ends = ends
        self._queued: list[TickBatch] = []
        self._k = 0

    def push(self, symbol: str, price: float) -> None:
        self._k += 1
        self._queued.append(TickBatch(symbol, self._k, [int(self.clock.now * 1e9)], [price], [1.0]))

    @property
    def exhausted(self) -> bool:
        return self.ends and not self._queued

    @property
    def total(self) -> int:
        return self._k

    def seconds_to_next(self) -> float:
        return 0.0 if self._queued else 1.0

    def poll(self, max_ticks: int) -> list[TickBatch]:
        out, self._queued = self._queued, []
        return out


class SnapRig(Rig):
    def __init__(self, monkeypatch, subscribers: list[str] | None = None, **kw: Any) -> None:
        super().__init__(monkeypatch, subscribers or [], market_snapshot_interval_ms=10 * MS * 1e3)
        self.feed = self.gw.feed = LiveFeed(self.clock, **kw)
        self.t0 = self.clock.now
        self.log: list[tuple[float, Any]] = []  # (fake ms since t0, payload) as published

    def at(self, ms: float, *ticks: tuple[str, float], timeout_ms: int = 0) -> list[Any]:
        """Push ``ticks`` at fake ``ms``, run one step; what came out."""
        self.clock.now = self.t0 + ms * MS
        for sym, price in ticks:
            self.feed.push(sym, price)
        self.gw.step(timeout_ms)
        out = self.out()
        self.log += [((self.clock.now - self.t0) / MS, p) for p in out]
        return out

    def snapshots(self) -> list[tuple[float, Tick]]:
        return [(ms, p) for ms, p in self.log if isinstance(p, Tick)]


def test_live_snapshots_go_out_at_the_interval_and_the_last_of_a_burst_is_not_withheld(
    monkeypatch,
):
    r = SnapRig(monkeypatch)
    for ms in range(26):  # a burst: a tick every ms for 26 ms, then silence
        r.at(ms, ("ABC", 100.0 + ms))
    for ms in range(26, 80):
        r.at(ms)
    assert len(batches([p for _, p in r.log])) == 26  # every tick still published as ticks
    got = [(ms, t.price, t.seq) for ms, t in r.snapshots()]
    # Leading edge at once, then the newest tick each interval, then the burst's last
    # tick on its own (no tick follows to carry it out), then nothing: nothing changed.
    assert got == [(0, 100.0, 1), (10, 110.0, 11), (20, 120.0, 21), (30, 125.0, 26)]
    tick_26 = next(p for _, p in r.log if isinstance(p, TickBatch) and p.first_seq == 26)
    assert r.snapshots()[-1][1].ts_ns == tick_26.ts_ns[0]  # the tick's own time, for staleness
    assert r.telemetry.get("snapshots_out") == 4 and r.telemetry.get("ticks_out") == 26


def test_a_symbol_that_ticks_once_more_and_goes_silent_is_snapshot_on_time(monkeypatch):
    r = SnapRig(monkeypatch)
    r.at(0, ("XYZ", 5.0))
    r.at(2, ("XYZ", 6.0))  # within the interval: withheld for now
    assert [t.price for _, t in r.snapshots()] == [5.0]
    # No tick follows and the feed's next one is 1 s away: the runner sleeps only
    # until the snapshot is due, not until its step's deadline or the next tick.
    r.gw.step(50)
    assert (r.clock.now - r.t0) / MS == 10 and r.out() == []
    r.gw.step(0)
    assert r.out() == [Tick("XYZ", int((r.t0 + 2 * MS) * 1e9), 6.0, 1.0, 2)]


def test_only_changed_symbols_are_snapshot(monkeypatch):
    r = SnapRig(monkeypatch)
    r.at(0, ("ABC", 1.0), ("XYZ", 2.0))
    for ms in range(1, 60):
        r.at(ms, ("ABC", 1.0 + ms))
    syms = [t.symbol for _, t in r.snapshots()]
    assert syms.count("XYZ") == 1  # once, then it never changed
    assert syms.count("ABC") == 6  # ms 0, 10, ..., 50: at most once per interval


def test_the_stream_end_flushes_the_pending_snapshot_before_end_of_stream(monkeypatch):
    r = SnapRig(monkeypatch, ends=True)
    r.at(0, ("ABC", 1.0))
    r.at(1, ("ABC", 2.0))
    r.at(1)  # the feed is done: end of stream
    assert isinstance(r.log[-1][1], EndOfStream) and r.gw.finished
    assert [t.price for _, t in r.snapshots()] == [1.0, 2.0]
    assert isinstance(r.log[-2][1], Tick)  # before the end of stream


def test_a_replay_gateway_publishes_no_snapshots(monkeypatch):
    r = Rig(monkeypatch, ["sr-1"], market_snapshot_interval_ms=10)
    r.strategy.send(Ack("sr-1", 0))
    out = r.step(4)
    assert batches(out) and r.gw.snapshots is None
    assert not [p for p in out if isinstance(p, Tick)]


def acked_through(r: Rig, steps: int) -> None:
    """The strategy acks every mark it gets, for ``steps`` steps."""
    r.strategy.send(Ack("sr-1", 0))
    for _ in range(steps):
        marks = [p.mark for p in r.step() if isinstance(p, Marker) and not p.resync_of]
        if marks:
            r.strategy.send(Ack("sr-1", max(marks)))


def test_a_resync_behind_its_acked_mark_is_not_incomplete(monkeypatch):
    # A strategy of some symbols saves its last tick of those, which can lie before
    # batches its ack already covered: the gateway logged resync_incomplete for nothing.
    r = Rig(monkeypatch, ["sr-1"], batches=12, window_batches=4)
    acked_through(r, 6)
    assert r.gw.window.retained()[0].first_seq > 5  # batches before are forgotten
    r.strategy.send(Resync("sr-1", 4, 1))  # its last saved tick of its symbols: 4
    r.step()
    assert r.telemetry.get("resync_incomplete") == 0
    # One really behind what the gateway kept (its ack covered nothing) is still reported.
    r2 = Rig(monkeypatch, ["sr-1"], batches=12, window_batches=4)
    acked_through(r2, 6)
    r2.gw.window.acked["sr-1"] = 0  # its acks went to another gateway process
    r2.strategy.send(Resync("sr-1", 4, 3))
    r2.step()
    assert r2.telemetry.get("resync_incomplete") == 1
