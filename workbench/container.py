"""All dependency-injector wiring, in one place.

Runners ask the container for their runner object; the container picks the
concrete adapters (ZeroMQ sockets, feed, broker, journal) from the config.
Tests swap any part with ``container.<provider>.override(fake)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq
from dependency_injector import containers, providers

from workbench.classpath import deferred
from workbench.config import WorkbenchConfig
from workbench.messaging import codec, security
from workbench.messaging.zmq_adapters import ZmqReceiver, ZmqReplier, ZmqSender
from workbench.runner.state import FileStateStore
from workbench.strategies.base import load_strategy, symbols_of
from workbench.telemetry import Telemetry

if TYPE_CHECKING:
    from workbench.execution.broker import Broker
    from workbench.execution.executor import Executor
    from workbench.execution.tape import MarketTape
    from workbench.messaging.codec import Payload

# Strategies in a replay never have more than the credit window (tens of
# batches) queued, so this bound only ever bites a stalled tap (a notebook),
# which then sees gaps instead of growing the gateway's memory without limit.
TICKS_SNDHWM = 100_000


def _zmq_context(
    linger_ms: int, config: WorkbenchConfig, runner_id: str, telemetry: Telemetry
) -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    try:
        # CURVE identity and ZAP handler for every socket of this runner.
        security.install(ctx, config, runner_id, telemetry)
        yield ctx
    finally:
        security.uninstall(ctx)
        ctx.destroy(linger=linger_ms)


def _to_every_supervisor(sender: ZmqSender, config: WorkbenchConfig) -> ZmqSender:
    """Heartbeats also go to the other hosts' supervisors (same CURVE server key)."""
    for host in config.hosts:
        if host.telemetry_address != sender.address:
            sender.sock.connect(host.telemetry_address)
    return sender


def _tick_subscriptions(strategy) -> list[bytes]:
    syms = symbols_of(strategy)
    subs = [codec.topic(codec.KIND_TICK, s) for s in syms] if syms else [b"tick/"]
    return [*subs, b"mark/", b"eos/"]


def _replay_subscribers(cfg: WorkbenchConfig) -> list[str]:
    return cfg.replay_subscribers() if cfg.gateway.feed == "replay" else []


def _exchange_feed(cfg: WorkbenchConfig):
    from workbench.gateway.exchange_feed import ExchangeFeed  # imports ccxt: only when chosen

    return ExchangeFeed.from_config(cfg)


def _recorded(feed, cfg: WorkbenchConfig, telemetry: Telemetry):
    """The feed, recording every tick it hands out when the recorder is on in live mode."""
    if not cfg.recorder.enabled or cfg.gateway.feed == "replay":
        return feed
    from workbench.marketdata.recorder import RecordingFeed, make_recorder

    return RecordingFeed(feed, make_recorder(cfg, telemetry=telemetry))


def _ack_subscriptions(strategy_id: str, strategy=None) -> list[bytes]:
    from workbench.strategies.outcomes import wants_outcomes

    topics = [codec.topic(codec.KIND_ACK, strategy_id), codec.topic(codec.KIND_EOS, strategy_id)]
    if strategy is not None and wants_outcomes(strategy):
        topics.append(codec.topic(codec.KIND_ORDER, strategy_id))  # its own orders' events
    return topics


@dataclass(frozen=True)
class _Sockets:
    """Builds the runner's socket providers: every one shares context, bus and telemetry."""

    context: Any
    bus: Any
    runtime: Any
    runner_id: Any
    telemetry: Any

    def sender(
        self, socket_type: int, address: Any, *, bind_it: bool = False, **options: Any
    ) -> providers.Singleton:
        """A `ZmqSender` provider (``options``: name, sndhwm, block)."""
        return providers.Singleton(
            ZmqSender,
            self.context,
            socket_type,
            address,
            self.bus,
            self.runner_id,
            self.telemetry,
            bind_it=bind_it,
            **options,
        )

    def receiver(
        self, socket_type: int, address: Any, *, name: str, bind_it: bool = False, **options: Any
    ) -> providers.Singleton:
        """A `ZmqReceiver` provider (``options``: subscriptions, rcvhwm)."""
        return providers.Singleton(
            ZmqReceiver,
            self.context,
            socket_type,
            address,
            self.bus,
            self.telemetry,
            bind_it=bind_it,
            name=name,
            bad_frame_log_interval_s=self.runtime.provided.bad_frame_log_interval_s,
            **options,
        )


def replay_tape(cfg: WorkbenchConfig) -> Callable[[], MarketTape]:
    """Loads the replay file of ``cfg`` as the simulator's tape, when the simulator asks."""

    def tape() -> MarketTape:
        from workbench.execution.tape import MarketTape
        from workbench.gateway.feeds import load_replay_ticks

        return MarketTape.from_table(load_replay_ticks(cfg, lite=True))  # no pyarrow

    return tape


def make_broker(cfg: WorkbenchConfig, tape: Callable[[], MarketTape] | None = None) -> Broker:
    """The configured broker; in a replay a simulator gets the recorded ticks of ``tape``.

    ``tape`` defaults to the replay file's, loaded when needed.
    """
    from workbench.exceptions import ConfigurationError
    from workbench.execution.broker import ReplayableBroker, load_broker, replay_refusal

    b = cfg.executor.broker
    broker = load_broker(b.class_path, b.params)
    if cfg.gateway.feed == "replay":
        if not isinstance(broker, ReplayableBroker):  # fail closed: before it connects
            raise ConfigurationError(f"executor.broker.class_path: {replay_refusal(cfg)}")
        broker.use_tape(tape or replay_tape(cfg))
    elif callable(open_ := getattr(broker, "open", None)):
        open_()  # a live broker connects: a bad key stops the executor here (exit 2)
    return broker


def _checked_risk(cfg: WorkbenchConfig):
    """The risk limits, refusing (fail closed) a live feed without order and position limits."""
    from workbench.config import live_risk_problems
    from workbench.exceptions import ConfigurationError

    problems = live_risk_problems(cfg)
    if problems:
        raise ConfigurationError("\n".join(problems), problems)
    return cfg.executor.risk


class Container(containers.DeclarativeContainer):
    """Builds runners from a `WorkbenchConfig`.

    Provide ``config`` and ``runner_id`` (and ``strategy_id`` for a strategy runner).
    """

    config = providers.Dependency(instance_of=WorkbenchConfig)
    runner_id = providers.Dependency(instance_of=str)
    strategy_id: providers.Object[str | None] = providers.Object(None)

    bus = providers.Callable(lambda c: c.bus, config)
    runtime = providers.Callable(lambda c: c.runtime, config)
    telemetry = providers.Singleton(Telemetry)
    zmq_context = providers.Resource(
        _zmq_context, bus.provided.linger_ms, config, runner_id, telemetry
    )

    _sockets = _Sockets(zmq_context, bus, runtime, runner_id, telemetry)

    _heartbeats_local = _sockets.sender(
        zmq.PUB, bus.provided.telemetry_address, sndhwm=1000, name="heartbeats"
    )
    heartbeats = providers.Singleton(_to_every_supervisor, _heartbeats_local, config)

    # -- gateway ------------------------------------------------------------------
    feed = providers.Selector(
        config.provided.gateway.feed,
        simulated=providers.Factory(
            deferred("workbench.gateway.feeds:SimulatedFeed"), config.provided.gateway.simulated
        ),
        replay=providers.Factory(
            deferred("workbench.gateway.feeds:ReplayFeed.from_config"), config
        ),
        exchange=providers.Factory(_exchange_feed, config),
    )
    recorded_feed = providers.Factory(_recorded, feed, config, telemetry)
    tick_publisher = _sockets.sender(
        zmq.PUB, bus.provided.ticks_address, bind_it=True, sndhwm=TICKS_SNDHWM, name="ticks"
    )
    credit_receiver = _sockets.receiver(
        zmq.PULL, bus.provided.control_address, bind_it=True, name="credits"
    )
    gateway = providers.Factory(
        deferred("workbench.gateway.runner:GatewayRunner"),
        runner_id,
        recorded_feed,
        tick_publisher,
        credit_receiver,
        telemetry,
        heartbeats,
        runtime.provided.heartbeat_interval_s,
        subscribers=providers.Callable(_replay_subscribers, config),
        window_batches=config.provided.gateway.replay.window_batches,
        start_timeout_s=config.provided.gateway.replay.start_timeout_s,
        market_snapshot_interval_ms=config.provided.snapshot_interval_ms.call(),
    )

    # -- strategy -----------------------------------------------------------------
    strategy_config = providers.Callable(lambda c, sid: c.strategy(sid), config, strategy_id)
    strategy = providers.Singleton(
        load_strategy,
        strategy_config.provided.class_path,
        strategy_config.provided.id,
        strategy_config.provided.params,
    )
    tick_receiver = _sockets.receiver(
        zmq.SUB,
        bus.provided.ticks_address,
        subscriptions=providers.Callable(_tick_subscriptions, strategy),
        name="ticks",
    )
    signal_sender = _sockets.sender(  # never blocks: what a full queue refuses waits in the outbox
        zmq.PUSH, bus.provided.signals_address, sndhwm=10_000, name="signals", block=False
    )
    credit_sender = _sockets.sender(
        zmq.PUSH, bus.provided.control_address, sndhwm=1000, name="credits"
    )
    real_venue = providers.Callable(lambda c: not c.executor.broker.is_simulator, config)
    state_path = providers.Callable(lambda c: c.state_path(), config)
    state_store = providers.Singleton(FileStateStore, state_path, sync=real_venue)
    ack_receiver = _sockets.receiver(
        zmq.SUB,
        bus.provided.events_address,
        subscriptions=providers.Callable(_ack_subscriptions, runner_id, strategy),
        name="acks",
    )
    strategy_runner = providers.Factory(
        deferred("workbench.runner.strategy_host:StrategyRunner"),
        strategy,
        tick_receiver,
        signal_sender,
        credit_sender,
        state_store,
        telemetry,
        heartbeats,
        runtime.provided.heartbeat_interval_s,
        acks=ack_receiver,
        resend_after_s=runtime.provided.signal_resend_after_s,
        replay=providers.Callable(lambda c: c.gateway.feed == "replay", config),
    )

    # -- executor -----------------------------------------------------------------
    tape = providers.Callable(replay_tape, config)
    broker = providers.Singleton(make_broker, config, tape)
    journal = providers.Singleton(
        deferred("workbench.execution.journal:Journal"),
        providers.Callable(lambda c: c.journal_path(), config),
        background_checkpoint=True,  # no WAL checkpoint stalls a commit on the signal path
        sync_commits=real_venue,
    )
    breaker = providers.Singleton(
        deferred("workbench.execution.broker:make_breaker"),
        config.provided.executor.broker.breaker_fail_max,
        config.provided.executor.broker.breaker_reset_timeout_s,
    )
    signal_receiver = _sockets.receiver(
        zmq.PULL, bus.provided.signals_address, bind_it=True, name="signals"
    )
    # XPUB: it skips encoding the events no one subscribed to (see ZmqSender).
    event_publisher = _sockets.sender(
        zmq.XPUB, bus.provided.events_address, bind_it=True, sndhwm=100_000, name="events"
    )
    # What the executor publishes through (None: nobody listens, as in a fast replay).
    executor_events = event_publisher.provided.send
    executor_subscribed = providers.Callable(  # no events sink: no socket made for this either
        lambda send, sender: None if send is None else sender().wanted,
        executor_events,
        event_publisher.provider,
    )
    market_receiver = _sockets.receiver(
        zmq.SUB,
        bus.provided.ticks_address,
        # Every symbol's conflated snapshots (``last/``), drained every 20 ms. Not a short
        # queue: libzmq (4.3) aborts (!_io_error) when a full pipe's publisher goes away.
        subscriptions=[codec.topic(codec.KIND_LAST)[:-1]],
        rcvhwm=10_000,
        name="market",
    )
    command_replier = providers.Singleton(
        ZmqReplier,
        zmq_context,
        bus.provided.command_address,
        bus,
        telemetry,
        runner_id,
        bad_frame_log_interval_s=runtime.provided.bad_frame_log_interval_s,
    )
    is_replay = providers.Callable(lambda c: c.gateway.feed == "replay", config)
    executor = providers.Singleton(
        deferred("workbench.execution.executor:Executor"),
        broker,
        journal,
        providers.Callable(_checked_risk, config),
        breaker,
        telemetry,
        executor_events,
        allowed_strategies=providers.Callable(lambda c: {s.id for s in c.strategies}, config),
        replay=is_replay,
        executor_id=runner_id,
        call_timeout_s=config.provided.executor.broker.call_timeout_s,
        subscribed=executor_subscribed,
        reconcile=False,  # in the runner's first step, heartbeating (`ExecutorRunner`)
    )
    # Live, the executor watches the market itself (the gateway's snapshots: collar,
    # staleness, daily loss); in replay it takes the market from each signal's own tick.
    executor_market = providers.Callable(
        lambda replay, make: None if replay else make(), is_replay, market_receiver.provider
    )
    executor_runner = providers.Factory(
        deferred("workbench.execution.runner:ExecutorRunner"),
        runner_id,
        executor,
        signal_receiver,
        event_publisher,
        telemetry,
        heartbeats,
        runtime.provided.heartbeat_interval_s,
        expected_streams=providers.Callable(lambda c: [s.id for s in c.strategies], config),
        exit_on_eos=config.provided.executor.exit_on_eos,
        market=executor_market,
        commands=command_replier,
        gap_timeout_s=config.provided.executor.signal_gap_timeout_s,
        ack_interval_s=config.provided.executor.ack_interval_s,
        reconcile_interval_s=config.provided.executor.broker.reconcile_interval_s,
        run_id=config.provided.run_id,
    )


def in_process_executor(
    cfg: WorkbenchConfig,
    tape: Callable[[], MarketTape],
    publish: Callable[[Payload], None] | None = None,
) -> Executor:
    """The executor a replay's executor runner gets, wired in-process for a fast replay.

    The same providers as the runner's (broker, breaker, risk limits, allowed
    strategies, replay clock), with three overrides: the simulator's tape is
    ``tape`` (the ticks already loaded), the journal is a `MemoryJournal`, and events
    go to ``publish`` (None: nowhere) instead of a socket. No socket is made.

    Raises:
        ConfigurationError: the config is not a replay's, or its broker cannot
            run on recorded ticks.
    """
    from workbench.exceptions import ConfigurationError
    from workbench.execution.journal_memory import MemoryJournal

    if cfg.gateway.feed != "replay":
        raise ConfigurationError(
            f"fast replay needs gateway.feed = 'replay', not {cfg.gateway.feed!r}"
        )
    c = Container(config=cfg, runner_id=cfg.executor.id)
    c.tape.override(providers.Object(tape))
    c.journal.override(providers.Singleton(MemoryJournal))
    c.executor_events.override(providers.Object(publish))
    c.executor_subscribed.override(providers.Object(None))
    return c.executor()  # (`make_broker` refuses a broker that cannot run on the tape)
