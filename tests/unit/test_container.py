"""The container wires runners to ports; tests swap any part for a fake."""

from __future__ import annotations

import time

import pytest
import zmq
from dependency_injector import providers
from helpers import ipc_bus

from workbench.config import build_config
from workbench.container import Container, in_process_executor
from workbench.domain.model import Order, OrderStatus, Side, Signal, Tick
from workbench.domain.orders import OrderAck, OrderSnapshot
from workbench.exceptions import ConfigurationError
from workbench.execution.journal_memory import MemoryJournal
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Ack, EndOfStream, Event
from workbench.messaging.inproc import Channel, InprocReceiver, InprocSender
from workbench.replays.session import load_replay_ticks


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


class AnswersOnlyWhileHeartbeating(SimulatedBroker):
    """A slow venue: answers an order query once the runner has heartbeated meanwhile."""

    in_process = False  # called on the broker thread, within the call timeout

    def __init__(self, beats: Channel) -> None:
        super().__init__()
        self.beats = beats
        self.beats_while_waiting: list[int] = []

    def order(self, client_order_id: str, symbol: str = "") -> OrderSnapshot | None:
        before, deadline = len(self.beats.frames), time.monotonic() + 3.0
        while len(self.beats.frames) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.beats_while_waiting.append(len(self.beats.frames) - before)
        return super().order(client_order_id, symbol)


def test_the_executor_runner_reconciles_at_start_with_heartbeats_going_on(tmp_path):
    cfg = build_config(
        {
            "runtime": {"run_dir": str(tmp_path), "heartbeat_interval_s": 0.05},
            "executor": {
                "risk": {"max_order_qty": 5, "max_position_qty": 5},
                "broker": {"call_timeout_s": 10.0},
            },
        },
        base_dir=tmp_path,
    )
    s = Signal("sr-1:1", "sr-1", 1, "ABC", Side.BUY, 1.0, 100.0, 5, "entry", "c")
    journal = MemoryJournal()  # the order was journaled, then the process died
    journal.begin_order(s, Order.from_signal(s), OrderStatus.PENDING_NEW)
    beats = Channel()
    venue = AnswersOnlyWhileHeartbeating(beats)
    venue.submit(Order.from_signal(s))  # ... after the venue had taken it
    c = Container(config=cfg, runner_id="executor")
    c.executor_market.override(providers.Object(None))
    c.command_replier.override(providers.Object(None))
    c.signal_receiver.override(providers.Object(InprocReceiver(Channel())))
    c.event_publisher.override(providers.Object(InprocSender(Channel(), "executor")))
    c.heartbeats.override(providers.Object(InprocSender(beats, "executor")))
    c.broker.override(providers.Object(venue))
    c.journal.override(providers.Object(journal))
    runner = c.executor_runner()
    assert venue.beats_while_waiting == []  # building it asks the venue nothing
    runner.state = "running"  # as `run` does before its first step
    runner.step(0)
    assert venue.beats_while_waiting and min(venue.beats_while_waiting) >= 2
    assert journal.orders()[0]["status"] == "FILLED"
    assert [r["kind"] for r in journal.reconciliations()] == ["missed_ack", "missed_fill"]
    runner.step(0)  # once
    assert len(venue.beats_while_waiting) == 1


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


def test_live_the_gateway_makes_market_snapshots_and_the_executor_takes_only_them(tmp_path):
    live = build_config({"gateway": {"market_snapshot_interval_ms": 25}})
    c = Container(config=live, runner_id="gateway")
    assert c.gateway.kwargs["market_snapshot_interval_ms"]() == 25
    assert c.market_receiver.kwargs["subscriptions"] == [b"last/"]  # not b"tick/"
    replay = Container(config=_replay_cfg(tmp_path), runner_id="gateway")
    assert replay.gateway.kwargs["market_snapshot_interval_ms"]() == 0


def test_a_live_executor_checks_the_collar_against_the_snapshots_it_receives(tmp_path):
    risk = {"max_order_qty": 5, "max_position_qty": 5, "price_collar_pct": 1}
    cfg = build_config(
        {
            "runtime": {"run_dir": str(tmp_path)},
            "executor": {"risk": risk | {"stale_market_data_s": 5}},
        },
        base_dir=tmp_path,
    )
    c = Container(config=cfg, runner_id="executor")
    market, inbox = Channel(), Channel()
    c.executor_market.override(providers.Object(InprocReceiver(market)))
    c.command_replier.override(providers.Object(None))
    c.signal_receiver.override(providers.Object(InprocReceiver(inbox)))
    c.event_publisher.override(providers.Object(InprocSender(Channel(), "executor")))
    c.heartbeats.override(providers.Object(InprocSender(Channel(), "executor")))
    c.journal.override(providers.Object(MemoryJournal()))
    runner = c.executor_runner()
    InprocSender(market, "gateway").send(Tick("ABC", time.time_ns(), 100.0, 1.0, 7))
    strategy = InprocSender(inbox, "sr-1")
    strategy.send(Signal("sr-1:1", "sr-1", 1, "ABC", Side.BUY, 1.0, 100.5, 5, "entry", "c"))
    strategy.send(Signal("sr-1:2", "sr-1", 2, "ABC", Side.BUY, 1.0, 102.0, 5, "entry", "c"))
    strategy.send(EndOfStream("sr-1", 10, 2))
    assert runner.run() == 0
    orders = {o["signal_id"]: o for o in runner.executor.journal.orders()}
    assert orders["sr-1:1"]["status"] == "FILLED"
    assert orders["sr-1:2"]["status"] == "REJECTED"
    assert "from the market 100.0" in orders["sr-1:2"]["reason"]


def _replay_cfg(tmp_path, **executor):
    return build_config(
        {
            "bus": ipc_bus(tmp_path / "ipc"),  # no fixed port another run may hold
            "runtime": {"run_dir": str(tmp_path)},
            "gateway": {"feed": "replay", "replay": {"path": "data/ticks/synth-ABC-5000.csv"}},
            "strategies": [{"id": "sr-1"}, {"id": "sr-2"}],
            "executor": {"id": "ex", **executor},
        }
    )


def test_fast_replay_gets_the_runners_executor_with_in_process_overrides(tmp_path):
    cfg = _replay_cfg(
        tmp_path,
        broker={
            "breaker_fail_max": 7,
            "call_timeout_s": 2.5,
            "params": {"fee_bps": 3, "latency_ms": 1},
        },
        risk={"max_order_qty": 4},
    )
    wire = Container(config=cfg, runner_id=cfg.executor.id)
    wire.executor_events.override(providers.Object(None))
    tape_calls = []

    def tape():
        tape_calls.append(1)
        return wire.tape()()  # the same file, loaded when the simulator first asks

    fast = in_process_executor(cfg, tape)
    runner = wire.executor()
    for ex in (fast, runner):
        assert ex.replay and ex.executor_id == "ex"
        assert ex.allowed == {"sr-1", "sr-2"}
        assert ex.breaker.fail_max == 7 and ex.calls.timeout_s == 2.5
        assert ex.risk.max_order_qty == 4
        assert not ex._publishing
    assert isinstance(fast.journal, MemoryJournal)
    assert runner.journal.path == str(cfg.journal_path())
    assert type(fast.broker) is type(runner.broker)
    assert fast.broker.fee_rate == runner.broker.fee_rate == 3 / 10_000
    assert tape_calls == [1]  # the simulator took the ticks it was given (latency: at once)
    ticks = load_replay_ticks(cfg)
    ts, price = int(ticks.ts_ns[10]), float(ticks.price[10])
    signal = Signal("sr-1:1", "sr-1", 1, "ABC", Side.BUY, 1.0, price, ts, "entry", "c")
    fills = fast.on_signals([signal])
    assert fills and fills == runner.on_signals([signal])  # same fills from the same tape
    assert fills[0].ts_ns > ts  # filled 1 ms later, on a later tick of the tape


def test_fast_replay_refuses_a_config_it_cannot_run(tmp_path):
    live = build_config({"executor": {"risk": {"max_order_qty": 1, "max_position_qty": 1}}})
    with pytest.raises(ConfigurationError, match=r"gateway\.feed = 'replay'"):
        in_process_executor(live, lambda: None)


def test_socket_providers_share_one_context_bus_and_telemetry(tmp_path):
    c = Container(config=_replay_cfg(tmp_path), runner_id="ex")
    made = []
    senders = [c.signal_sender, c.credit_sender, c.tick_publisher, c.event_publisher]
    receivers = [c.signal_receiver, c.credit_receiver, c.market_receiver]
    try:
        made = [p() for p in senders + receivers]
        assert all(s._telemetry is c.telemetry() for s in made)
        assert [s._counter for s in made] == [
            "signals_msgs_out",
            "credits_msgs_out",
            "ticks_msgs_out",
            "events_msgs_out",
            "signals_msgs_in",
            "credits_msgs_in",
            "market_msgs_in",
        ]
        assert all(s.sock.context is c.zmq_context() for s in made)
        assert made[-1].sock.getsockopt(zmq.RCVHWM) == 10_000
    finally:
        for s in made:
            s.close()
        c.shutdown_resources()


def test_journal_and_strategy_state_are_on_disk_when_orders_go_to_a_real_venue(tmp_path):
    # Orders at a venue must be on disk before they go out: the venue does not forget
    # them when this machine loses power, and the journal must not either. A
    # simulator's orders vanish with the machine: they skip the fsync (milliseconds).
    venue = {"class_path": "workbench.exchanges.broker:CcxtBroker"}
    cases = [(None, 1), (venue, 2)]  # PRAGMA synchronous: 1 = NORMAL, 2 = FULL
    for broker, want in cases:
        cfg = build_config(
            {
                "runtime": {"run_dir": str(tmp_path / str(want))},
                "executor": {"broker": broker or {}},
            },
            base_dir=tmp_path,
        )
        c = Container(config=cfg, runner_id="executor")
        c.broker.override(providers.Object(None))  # the venue is not needed for its journal
        journal = c.journal()
        try:
            assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == want
        finally:
            journal.close()
        # So must the strategy's state (its seq, its outbox) that becomes those orders.
        assert c.state_store().sync is (want == 2)
