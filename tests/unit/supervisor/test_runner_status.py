"""`RunnerStatus`, typed heartbeat extras, end-of-stream, and what /health and /metrics read."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest

from workbench.messaging.heartbeat_extras import (
    EosSummary,
    ExecutorExtra,
    GatewayExtra,
    StrategyExtra,
    extra_of,
)
from workbench.supervisor.eos import EndOfStream
from workbench.supervisor.http import HealthServer
from workbench.supervisor.metrics import RunnerCollector
from workbench.supervisor.status import RunnerState, RunnerStatus
from workbench.telemetry import Telemetry

EXECUTOR_EXTRA = {
    "positions": {"ABC": 2.0},
    "realized_pnl": 1.5,
    "breaker": "open",
    "eos": ["sr-1"],
    "trading_state": "HALTED",
    "trading_reason": "operator",
    "signals_held": 0,
    "latency": {"tick_to_order": {"counts": [1] + [0] * 19, "sum_us": 5.0, "total": 1}},
}


def executor(state: RunnerState = RunnerState.RUNNING) -> RunnerStatus:
    return RunnerStatus("executor", "executor", state, pid=7, heartbeat_age_s=0.1,
                        counters={"fills": 3}, extra=EXECUTOR_EXTRA)  # fmt: skip


def test_status_is_frozen_typed_and_still_reads_like_the_old_dict():
    s = executor()
    assert s["state"] == "running" and s["pid"] == 7 and s["counters"]["fills"] == 3
    assert s.executor == ExecutorExtra.from_wire(EXECUTOR_EXTRA)
    assert s.executor.trading_state == "HALTED" and s.gateway is None
    assert set(s.health()) == {"role", "state", "pid", "uptime_s", "restarts",
                               "heartbeat_age_s", "exit_code", "detail"}  # fmt: skip
    try:
        s.pid = 8  # type: ignore[misc]
        raise AssertionError("mutable")
    except AttributeError:
        pass
    try:
        s["nope"]
        raise AssertionError("no KeyError")
    except KeyError:
        pass


def test_extras_round_trip_with_the_wire_keys_the_runners_send():
    gw = GatewayExtra(ticks_total=5, eos=True, mark=2, first_tick_ns=1, last_tick_ns=9)
    assert set(gw.to_wire()) == {"ticks_total", "eos", "mark", "first_tick_ns", "last_tick_ns"}
    assert extra_of("gateway", gw.to_wire()) == gw
    st = StrategyExtra(last_signal_seq=3, outbox=1)
    assert "levels" not in st.to_wire()
    lv = StrategyExtra(levels=({"id": "c", "trigger": 1.0},))
    assert extra_of("strategy", lv.to_wire()) == lv
    summary = EosSummary(signals=1, orders=1, fills=1, ticks={"sr-1": 4})
    ex = ExecutorExtra(orders_in_doubt=("o-1",), eos_summary=summary)
    wire = ex.to_wire()
    assert wire["orders_in_doubt"] == ["o-1"] and wire["eos_summary"]["ticks"] == {"sr-1": 4}
    assert extra_of("executor", wire) == ex
    assert "orders_in_doubt" not in ExecutorExtra().to_wire()
    assert extra_of("executor", {}) == ExecutorExtra()  # an older runner's heartbeat reads
    assert extra_of("tap", {}) is None


def test_end_of_stream_takes_the_first_report_only():
    eos = EndOfStream()
    assert eos.offer({"signals": 1}, 10)
    assert not eos.offer({"signals": 2}, 20)
    assert eos.reached.is_set() and eos.summary == {"signals": 1, "eos_ns": 10}


def test_the_replay_ends_when_the_executor_completed_it_not_when_a_heartbeat_said_so():
    eos = EndOfStream()
    assert eos.offer({"signals": 1, "completed_ns": 1_000}, 480_000_000)  # a heartbeat, later
    assert eos.summary is not None and eos.summary["eos_ns"] == 1_000
    wire = EosSummary(completed_ns=1_000).to_wire()
    assert EosSummary.from_wire(wire).completed_ns == 1_000


def test_health_and_metrics_read_a_status_callable():
    statuses = [executor()]
    own = Telemetry()
    own.inc("bad_frames_by_socket:telemetry", 2)
    server = HealthServer(lambda: statuses, "127.0.0.1", 0, run_id="r1", own=own)
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/health") as r:
            body = json.loads(r.read())
        assert body["status"] == "ok" and body["run_id"] == "r1"
        assert body["runners"]["executor"]["state"] == "running"
        statuses[0] = executor(RunnerState.FAILED)
        try:
            urllib.request.urlopen(f"{server.url}/health")
            raise AssertionError("no 503")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and json.loads(e.read())["status"] == "degraded"
    finally:
        server.stop()


def test_collector_exports_states_counters_latency_and_executor_state():
    registry = CollectorRegistry()
    own = Telemetry()
    own.inc("bad_frames_by_socket:events")
    registry.register(RunnerCollector(lambda: [executor()], own))
    text = generate_latest(registry).decode()
    assert 'workbench_runner_state{runner="executor",state="running"} 1.0' in text
    assert 'workbench_fills_total{runner="executor"} 3.0' in text
    assert 'workbench_tick_to_order_latency_seconds_count{runner="executor"} 1.0' in text
    assert 'workbench_executor_trading_state{runner="executor",state="HALTED"} 1.0' in text
    assert 'workbench_executor_breaker_state{runner="executor",state="open"} 1.0' in text
    assert 'workbench_bad_frames_by_socket_total{runner="supervisor",socket="events"} 1.0' in text
