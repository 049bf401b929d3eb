"""The container wires runners to ports; tests swap any part for a fake."""

from __future__ import annotations

from dependency_injector import providers

from workbench.config import build_config
from workbench.container import Container
from workbench.domain.model import Fill, Order, Side, Signal
from workbench.execution.broker import SimulatedBroker
from workbench.messaging.codec import EndOfStream
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender


class RecordingBroker:
    def __init__(self) -> None:
        self.orders: list[Order] = []

    def submit(self, order: Order) -> list[Fill]:
        self.orders.append(order)
        return SimulatedBroker().submit(order)


def test_executor_runner_runs_on_fakes_without_any_socket(tmp_path):
    cfg = build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path)
    c = Container(config=cfg, runner_id="executor")
    inbox, events, beats = Channel(), Channel(), Channel()
    broker = RecordingBroker()
    c.signal_receiver.override(providers.Object(InprocReceiver(inbox)))
    c.event_publisher.override(providers.Object(InprocSender(events, "executor")))
    c.heartbeats.override(providers.Object(InprocSender(beats, "executor")))
    c.broker.override(providers.Object(broker))
    runner = c.executor_runner()

    strategy = InprocSender(inbox, "sr-1")
    strategy.send(Signal("sr-1:1", "sr-1", 1, "ABC", Side.BUY, 1.0, 100.0, 5, "entry", "c"))
    strategy.send(EndOfStream("sr-1", 10, 1))
    assert runner.run() == 0  # finishes at end-of-stream from every configured strategy
    assert [o.id for o in broker.orders] == ["O-sr-1:1"]
    names = [InprocReceiver(events).recv(0).payload.name for _ in range(len(events.frames))]
    assert names == ["signal_received", "order_accepted", "order_filled", "eos"]
    assert len(beats.frames) >= 2  # at start and when finished


def test_the_feed_follows_the_config(tmp_path):
    c = Container(config=build_config(), runner_id="gateway")
    assert type(c.feed()).__name__ == "SimulatedFeed"
    replay = build_config(
        {"gateway": {"feed": "replay", "replay": {"path": "data/ticks/synth-ABC-5000.csv"}}}
    )
    c2 = Container(config=replay, runner_id="gateway")
    assert type(c2.feed()).__name__ == "ReplayFeed"
