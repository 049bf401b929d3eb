"""A replay's end: strategies and gateway leave only when nobody needs them any more.

`StreamEnd` alone with a fake clock, then the real gateway, strategy hosts and
executor (SQLite journal, simulator) on in-process channels, killed (dropped
without closing) where a replay used to hang for good:

- a strategy killed after its ack of the last data mark, before the gateway's
  end-of-stream reached it: the gateway had finished and was not restarted,
  and the restarted strategy waited for a mark that never came;
- a gateway killed after one strategy had finished and exited: the new gateway
  waited for that strategy's handshake, which never came;
- and, as a review found, any timer standing in for a message: a slow gateway
  restart, a paced replay, an executor down a few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from workbench.config import RiskConfig
from workbench.domain.model import TickBatch
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.runner import ExecutorRunner
from workbench.execution.simulator import SimulatedBroker
from workbench.gateway.runner import GatewayRunner
from workbench.messaging.codec import EndOfStream, decode
from workbench.messaging.delivery import StreamEnd
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.runner import strategy_end
from workbench.runner.state import FileStateStore
from workbench.runner.strategy_host import StrategyRunner
from workbench.strategies.support_resistance import SupportResistance
from workbench.telemetry import Telemetry

COND = {"id": "b", "symbol": "ABC", "side": "BUY", "trigger_price": 100.0,
        "turning_point": 0.5, "take_profit": 1.0, "stop_loss": 1.0}  # fmt: skip
BATCHES = 30


def test_the_end_mark_is_acked_only_once_the_executor_has_our_end():
    end = StreamEnd()
    end.on_eos(epoch=7)
    assert end.on_mark(9, 7) is None  # the end mark, before the executor's echo
    assert end.on_delivered() == 9 and end.acked
    assert end.on_mark(9, 7) == 9  # repeated: acked again
    assert not end.done
    assert end.on_mark(10, 7) is None and end.done


def test_a_restarted_gateways_marks_are_acked_and_its_end_is_held_again():
    end = StreamEnd()
    end.on_eos(epoch=7)  # killed before it sent its end mark
    assert end.on_mark(0, 8) == 0  # the new gateway's handshake: we are past it
    assert end.on_mark(1, 8) == 1 and not end.done  # a data mark, not done
    end.on_eos(epoch=8)
    assert end.on_mark(9, 8) is None  # its end mark: the executor has not echoed
    assert end.on_delivered() == 9
    assert end.on_mark(10, 8) is None and end.done


def test_after_the_ack_a_restarted_gateways_data_marks_are_not_done():
    # With a timer, a gap in a restarted gateway's marks let a strategy go mid-stream.
    end = StreamEnd()
    end.restore(9, 7)  # restarted after its ack
    assert end.on_mark(3, 8) == 3 and end.on_mark(12, 8) == 12 and not end.done
    assert end.on_mark(10, 7) is None and end.done  # the first gateway's done


class Feed:
    """A finite replay: prices cycle so the strategy trades again and again."""

    def __init__(self, batches: int, size: int = 4) -> None:
        cycle = [101.0, 100.0, 100.5, 101.6]
        self._b = [
            TickBatch("ABC", 1 + i * size, list(range(1 + i * size, 1 + (i + 1) * size)),
                      [cycle[k % 4] for k in range(size)], [1.0] * size)
            for i in range(batches)
        ]  # fmt: skip
        self._n = 0

    exhausted = property(lambda self: self._n >= len(self._b))
    total = property(lambda self: sum(len(b) for b in self._b[: self._n]))

    def seconds_to_next(self) -> float:
        return 0.0

    def poll(self, max_ticks: int) -> list[TickBatch]:
        if self.exhausted:
            return []
        self._n += 1
        return [self._b[self._n - 1]]


class Fanout:
    """One sender to several in-process receivers (as a PUB to its SUBs)."""

    def __init__(self, sender: str, *channels: Channel) -> None:
        self._to = [InprocSender(c, sender) for c in channels]

    def send(self, payload) -> bool:
        return all(s.send(payload) for s in self._to)

    def send_many(self, payloads) -> int:
        return sum(self.send(p) for p in payloads)

    def subscribed(self, kind: str, key: str = "") -> bool:
        return True


class Pipeline:
    def __init__(self, folder: Path, strategies: list[str]) -> None:
        self.folder, self.ids = folder, strategies
        self.credits, self.signals, self.beats = Channel(), Channel(), Channel()
        self.ticks = {s: Channel() for s in strategies}
        self.events = {s: Channel() for s in strategies}
        self.gateway = self.new_gateway()
        self.strategies = {s: self.new_strategy(s) for s in strategies}
        self.executor = self.new_executor()

    def new_executor(self) -> ExecutorRunner:
        tel = Telemetry()
        ex = Executor(SimulatedBroker(), Journal(self.folder / "journal.sqlite"), RiskConfig(),
                      make_breaker(3, 60), tel, allowed_strategies=set(self.ids))  # fmt: skip
        return ExecutorRunner(
            "executor", ex, InprocReceiver(self.signals), Fanout("executor", *self.events.values()),
            tel, InprocSender(self.beats, "executor"), 1.0, expected_streams=self.ids,
            gap_timeout_s=0.5, ack_interval_s=0.02, exit_on_eos=False,
        )  # fmt: skip

    def new_gateway(self) -> GatewayRunner:
        for c in self.ticks.values():
            c.frames.clear()  # what the dead one had queued is gone
        return GatewayRunner(
            "gateway", Feed(BATCHES), Fanout("gateway", *self.ticks.values()),
            InprocReceiver(self.credits), Telemetry(), InprocSender(self.beats, "gateway"), 1.0,
            subscribers=self.ids, window_batches=8, start_timeout_s=3.0,
        )  # fmt: skip

    def new_strategy(self, sid: str) -> StrategyRunner:
        r = StrategyRunner(
            SupportResistance(sid, [COND], record_events=False), InprocReceiver(self.ticks[sid]),
            InprocSender(self.signals, sid), InprocSender(self.credits, sid),
            FileStateStore(self.folder / "state"), Telemetry(), InprocSender(self.beats, sid),
            1.0, acks=InprocReceiver(self.events[sid]), resend_after_s=0.1, replay=True,
        )  # fmt: skip
        r.on_start()
        return r

    def step(self, every: dict[str, int] | None = None, i: int = 0) -> None:
        if not self.gateway.finished:
            self.gateway.step(1)
        for sid, r in self.strategies.items():
            if r is not None and not r.finished and i % (every or {}).get(sid, 1) == 0:
                r.step(1)
        self.executor.step(1)

    def run(self, until, seconds: float = 20.0, every: dict[str, int] | None = None) -> int:
        deadline, i = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            self.step(every, i)
            i += 1
            if until():
                return i
        raise AssertionError(f"not within {seconds} s: {self.state()}")

    def state(self) -> dict:
        return {
            "gateway_finished": self.gateway.finished,
            "strategies": {s: (r and (r.eos_seen, r.finished)) for s, r in self.strategies.items()},
            "executor_complete": self.executor.eos_complete,
        }

    def all_done(self) -> bool:
        strategies = all(r is not None and r.finished for r in self.strategies.values())
        return self.gateway.finished and strategies and self.executor.eos_complete

    def journaled(self) -> list[str]:
        return sorted(o["signal_id"] for o in self.executor.executor.journal.orders())


def clean_run(tmp_path: Path, ids: list[str]) -> list[str]:
    p = Pipeline(tmp_path / "clean", ids)
    p.run(p.all_done)
    return p.journaled()


def test_a_strategy_killed_between_its_last_ack_and_the_end_of_stream_finishes(tmp_path):
    expected = clean_run(tmp_path, ["sr"])
    p = Pipeline(tmp_path / "run", ["sr"])
    sr = p.strategies["sr"]

    def eos_queued() -> bool:
        return any(isinstance(decode(f).payload, EndOfStream) for f in p.ticks["sr"].frames)

    p.run(eos_queued, every={"sr": 3})  # the strategy lags: the end waits in its queue
    frames = p.ticks["sr"].frames
    eos_at = next(i for i, f in enumerate(frames) if isinstance(decode(f).payload, EndOfStream))
    while len(frames) > eos_at:  # what came after the last data mark dies with the process...
        frames.pop()
    while frames:
        sr.step(0)  # ...which acked that mark first
    assert sr._saved_tick_seq == BATCHES * 4 and not sr.eos_seen
    p.strategies["sr"] = p.new_strategy("sr")  # restarted; dropped unclosed, as by SIGKILL
    p.run(p.all_done)
    assert p.journaled() == expected


def test_a_gateway_killed_after_one_strategy_had_its_end_starts_again_with_both(tmp_path):
    expected = clean_run(tmp_path, ["sr", "sr2"])
    p = Pipeline(tmp_path / "run", ["sr", "sr2"])
    fast = p.strategies["sr"]
    p.run(lambda: fast._end is not None and fast._end.acked, every={"sr2": 4})
    assert not fast.finished  # it waits for the gateway's done
    p.gateway = p.new_gateway()  # killed; the new one starts the file again
    p.run(p.all_done, every={"sr2": 4})
    assert p.journaled() == expected


def test_a_strategy_restarted_after_its_end_ack_waits_for_whoever_stops_the_replay(tmp_path):
    p = Pipeline(tmp_path / "run", ["sr"])
    sr = p.strategies["sr"]
    p.run(lambda: sr._end is not None and sr._end.acked and p.gateway.finished)
    assert p.executor.eos_complete  # the replay is over: its supervisor stops every runner
    restarted = p.strategies["sr"] = p.new_strategy("sr")  # killed before the done mark
    assert restarted.eos_seen and restarted._end is not None and restarted._end.acked
    for _ in range(50):
        restarted.step(0)
    assert not restarted.finished and p.journaled() == clean_run(tmp_path, ["sr"])


class PacedFeed(Feed):
    """A batch every 0.15 s: a replay at real speed over sparse ticks."""

    _due = 0.0

    def seconds_to_next(self) -> float:
        return max(0.0, self._due - time.monotonic())

    def poll(self, max_ticks: int) -> list[TickBatch]:
        if time.monotonic() < self._due:
            return []
        self._due = time.monotonic() + 0.15
        return super().poll(max_ticks)


def test_a_gateway_restarted_slowly_and_paced_still_has_every_strategy(tmp_path):
    # A timer let the strategy that had its end go while the new gateway loaded its
    # file or paced its ticks: the new gateway never started, or stalled for good.
    expected = clean_run(tmp_path, ["sr", "sr2"])
    p = Pipeline(tmp_path / "run", ["sr", "sr2"])
    fast = p.strategies["sr"]
    p.run(lambda: fast._end is not None and fast._end.acked, every={"sr2": 4})
    for _ in range(20):  # the gateway is down a while: nobody hears from it
        for r in p.strategies.values():
            r.step(0)
        p.executor.step(0)
        time.sleep(0.01)
    assert not fast.finished
    p.gateway = p.new_gateway()
    p.gateway.feed = PacedFeed(BATCHES)
    p.run(p.all_done, seconds=30.0, every={"sr2": 4})
    assert p.journaled() == expected


def test_an_executor_down_past_the_confirm_timeout_still_gets_every_end(tmp_path, monkeypatch):
    # Strategies took the timeout for a confirmation: they acked their end, the gateway
    # said done, all left, and the restarted executor waited for their ends for good.
    monkeypatch.setattr(strategy_end, "EOS_CONFIRM_TIMEOUT_S", 0.05)
    expected = clean_run(tmp_path, ["sr", "sr2"])
    p = Pipeline(tmp_path / "run", ["sr", "sr2"])
    p.run(lambda: p.gateway.feed.exhausted)
    p.signals.frames.clear()  # the executor dies with its queue
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        p.gateway.finished or p.gateway.step(1)
        for r in p.strategies.values():
            r.finished or r.step(1)
    assert not p.gateway.finished
    p.executor = p.new_executor()
    p.run(p.all_done)
    assert p.journaled() == expected
