"""The container wires runners to ports; tests swap any part for a fake."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from workbench.config import build_config
from workbench.container import Container
from workbench.domain.model import Order, Side, Signal
from workbench.domain.orders import OrderAck
from workbench.exceptions import ConfigurationError
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Ack, EndOfStream, Event
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender


class RecordingBroker(SimulatedBroker):
    def __init__(self) -> None:
        super().__init__()
        self.orders: list[Order] = []

    def submit(self, order: Order) -> OrderAck:
        self.orders.append(order)
        return super().submit(order)


def test_executor_runner_runs_on_fakes_without_any_socket(tmp_path):
    cfg = build_config(
        {
            "runtime": {"run_dir": str(tmp_path)},
            "executor": {"risk": {"max_order_qty": 5, "max_position_qty": 5}},
        },
        base_dir=tmp_path,
    )
    c = Container(config=cfg, runner_id="executor")
    c.executor_market.override(providers.Object(None))
    c.command_replier.override(providers.Object(None))
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
    sent = [InprocReceiver(events).recv(0).payload for _ in range(len(events.frames))]
    names = [p.name for p in sent if isinstance(p, Event)]
    assert names == ["signal_received", "order_accepted", "order_filled", "eos"]
    assert Ack("sr-1", 1) in sent  # acknowledged once journaled
    assert EndOfStream("sr-1", 10, 1) in sent  # end-of-stream echoed: the strategy may finish
    assert len(beats.frames) >= 2  # at start and when finished


def test_a_live_executor_without_limits_refuses_to_start(tmp_path):
    cfg = build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path)
    c = Container(config=cfg, runner_id="executor")
    with pytest.raises(ConfigurationError, match=r"executor\.risk\.max_order_qty"):
        c.executor()


def test_the_feed_follows_the_config(tmp_path):
    c = Container(config=build_config(), runner_id="gateway")
    assert type(c.feed()).__name__ == "SimulatedFeed"
    replay = build_config(
        {"gateway": {"feed": "replay", "replay": {"path": "data/ticks/synth-ABC-5000.csv"}}}
    )
    c2 = Container(config=replay, runner_id="gateway")
    assert type(c2.feed()).__name__ == "ReplayFeed"
