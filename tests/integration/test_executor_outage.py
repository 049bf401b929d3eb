"""An executor that is down for a while: its strategies trade on, and nothing is lost or doubled.

The strategy's signals queue (ZeroMQ PUSH, 10,000 messages) fills while the
executor is away. A sender that waited for room there would stop the strategy:
no ticks, no heartbeats, and a restart as hung, again and again. What a full
queue refuses is held in the strategy's durable outbox instead, and goes
first, in seq order, once the queue has room.
"""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from helpers import (
    journal_rows,
    logged_all_journaled,
    logged_signal_ids,
    make_config,
    wait_until,
)

from workbench.domain.model import Side, Signal
from workbench.messaging import codec
from workbench.messaging.zmq_adapters import ZmqSender
from workbench.supervisor import Supervisor
from workbench.telemetry import Telemetry

HELD_FOR_S = 4.0
"""How long the strategy must trade on with its queue full: past the supervisor's hung
detection (a 2 s heartbeat timeout, then 1 s), which a sender that waited would meet."""


def signal(seq: int) -> Signal:
    return Signal(f"sr:{seq}", "sr", seq, "ABC", Side.BUY, 1.0, 100.0, 1, "entry", "c")


def test_a_full_queue_takes_what_fits_and_the_rest_keeps_its_seqs(tmp_path):
    """Nobody bound: the PUSH queue fills; sends then say how many went, and never wait."""
    cfg = make_config(tmp_path)
    ctx = zmq.Context()
    tele = Telemetry()
    sender = ZmqSender(
        ctx,
        zmq.PUSH,
        cfg.bus.signals_address,
        cfg.bus,
        "sr",
        tele,
        bind_it=False,
        sndhwm=5,
        block=False,
        name="signals",
    )
    pull = None
    try:
        counts: list[int] = []
        worker = threading.Thread(
            target=lambda: counts.extend(
                [sender.send_many([signal(s) for s in range(1, 21)]), sender.send(signal(99))]
            ),
            daemon=True,
        )
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "a send waited for room in the full queue"
        taken, one = counts
        assert 0 < taken < 20 and one is False
        assert sender.send_many([signal(s) for s in range(21, 31)]) == 0  # still full
        assert tele.get("signals_msgs_out") == taken
        pull = ctx.socket(zmq.PULL)
        pull.bind(cfg.bus.signals_address)  # the executor is back
        got = [codec.decode(pull.recv_multipart()) for _ in range(taken)]
        assert [e.payload.seq for e in got] == list(range(1, taken + 1))
        # Room comes back once the PULL's credit reaches the PUSH (ZeroMQ's I/O
        # threads pass it on asynchronously): until then a send takes nothing.
        rest = [signal(taken + 1), signal(taken + 2)]
        deadline = time.monotonic() + 10
        while rest and time.monotonic() < deadline:
            rest = rest[sender.send_many(rest) :]
            time.sleep(0.01)
        assert not rest
        for n in (taken + 1, taken + 2):
            assert pull.poll(5000)
            late = codec.decode(pull.recv_multipart())
            assert (late.payload.seq, late.seq) == (n, n)  # no gap in the stream
    finally:
        sender.close()
        if pull is not None:
            pull.close(linger=0)
        ctx.destroy(linger=0)


def test_only_a_push_socket_may_refuse_instead_of_waiting(tmp_path):
    cfg = make_config(tmp_path)
    ctx = zmq.Context()
    try:
        with pytest.raises(ValueError, match="ticks: block=False is for a PUSH socket"):
            ZmqSender(ctx, zmq.PUB, cfg.bus.ticks_address, cfg.bus, "gateway", Telemetry(),
                      bind_it=True, block=False, name="ticks")  # fmt: skip
    finally:
        ctx.destroy(linger=0)


def always_armed() -> list[dict]:
    common = {"symbol": "ABC", "turning_point": 0.05, "take_profit": 0.10, "stop_loss": 0.10}
    both = {"following": True, "rearm": True, "qty": 1.0, **common}
    return [
        {"id": "b", "side": "BUY", "trigger_price": 1e9, **both},
        {"id": "s", "side": "SELL", "trigger_price": 0.01, **both},
    ]


def test_a_strategy_trades_through_an_executor_outage_and_every_signal_lands_once(tmp_path):
    cfg = make_config(
        tmp_path,
        gateway={"feed": "simulated", "simulated": {"rate_per_s": 20_000.0}},
        strategies=[{"id": "sr", "params": {"conditions": always_armed()}}],
        runtime={
            "run_dir": str(tmp_path / "runs"),
            "heartbeat_interval_s": 0.2,
            "signal_resend_after_s": 0.5,
        },
    )
    sup = Supervisor(cfg)
    log_file = sup.logs.path("sr")

    def strategy():
        return next(s for s in sup.status() if s.runner == "sr")

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: strategy().counters.get("signals_out", 0) > 0, 20, "signals")
        sup.stop_runner("executor")
        down_at, full = time.monotonic(), None  # (when, ticks then): the queue is full
        while full is None or time.monotonic() - full[0] < HELD_FOR_S:
            time.sleep(0.25)
            during = strategy()
            assert during.restarts == 0, during.detail  # never taken for hung
            if full is None and during.counters.get("signals_held_back", 0) > 0:
                full = (time.monotonic(), during.counters.get("ticks_in", 0))
            assert full or time.monotonic() - down_at < 60, "the signals queue never filled"
        assert during.state.value == "running" and during.heartbeat_age_s < 1.0
        assert during.counters.get("ticks_in", 0) > full[1] + 5_000  # it kept trading
        sup.stop_runner("gateway")  # no new signals: the executor catches up, then it is done
        sup.start_runner("executor")

        jp = cfg.journal_path()
        wait_until(lambda: logged_all_journaled(log_file, jp), 60, "all logged signals journaled")
        sup.stop_runner("sr")
        time.sleep(1.0)  # the executor drains what is in flight
        assert strategy().restarts == 0
    finally:
        sup.stop()
    logged = logged_signal_ids(log_file)
    signals = journal_rows(cfg.journal_path(), "SELECT signal_id FROM signals")
    orders = journal_rows(cfg.journal_path(), "SELECT signal_id, status FROM orders")
    journaled = {s for (s,) in signals}
    assert len(logged) > 1_000
    assert logged <= journaled  # 0 lost
    assert len(signals) == len(journaled) == len(orders)  # 0 doubled
    assert {st for _, st in orders} == {"FILLED"}
