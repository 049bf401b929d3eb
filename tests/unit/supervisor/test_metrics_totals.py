"""``/metrics`` across runner restarts: counters never go back, dead executors trade nothing."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from supervisor_fakes import Rig

from workbench.supervisor.metrics import RunnerCollector
from workbench.supervisor.status import RunnerState
from workbench.telemetry import LATENCY_BUCKETS_US, Telemetry


def metrics(r: Rig) -> str:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RunnerCollector(lambda: [r.w.status()]))
    return generate_latest(registry).decode()


def hist(n: int, us: float) -> dict:
    counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
    counts[3] = n
    return {"counts": counts, "sum_us": us, "total": n}


def crash_and_respawn(r: Rig) -> None:
    r.proc.rc = -9
    r.w.tick()
    r.clock.advance(10)
    r.w.tick()
    assert r.w.state is RunnerState.STARTING and len(r.procs) == 2


def test_counters_and_histograms_carry_over_a_restart():
    # A restarted executor counts from 0 again: 3 gaps, a crash, 1 gap more was exported as
    # 3 then 1, and Prometheus took the 1 for a reset, not for 4 in all.
    r = Rig("executor", "executor")
    r.running()
    latency = {"latency": {"tick_to_order": hist(2, 300.0)}}
    r.beat(counters={"signal_gaps": 3, "fills": 10}, extra=latency)
    crash_and_respawn(r)
    text = metrics(r)  # starting: the series stay, at their totals
    assert 'workbench_signal_gaps_total{runner="executor"} 3.0' in text
    assert 'workbench_fills_total{runner="executor"} 10.0' in text
    r.beat(
        counters={"signal_gaps": 1, "fills": 0}, extra={"latency": {"tick_to_order": hist(1, 50.0)}}
    )
    status = r.w.status()
    assert status.counters == {"signal_gaps": 1, "fills": 0}  # the process's own, as before
    assert status.counter_totals == {"signal_gaps": 4, "fills": 10}
    text = metrics(r)
    assert 'workbench_signal_gaps_total{runner="executor"} 4.0' in text
    assert 'workbench_tick_to_order_latency_seconds_count{runner="executor"} 3.0' in text
    assert 'workbench_tick_to_order_latency_seconds_sum{runner="executor"} 0.00035' in text


def test_a_dead_executor_exports_no_trading_or_breaker_state():
    r = Rig("executor", "executor", max_restarts=0)
    r.running()
    r.beat(extra={"trading_state": "ACTIVE", "breaker": "closed"})
    assert 'workbench_executor_trading_state{runner="executor",state="ACTIVE"} 1.0' in metrics(r)
    r.proc.rc = -9
    r.w.tick()
    assert r.w.state is RunnerState.FAILED
    text = metrics(r)
    assert "workbench_executor_trading_state{" not in text
    assert "workbench_executor_breaker_state{" not in text


def test_a_negative_latency_is_counted_as_clock_skew_not_observed():
    t = Telemetry()
    t.observe_latency_ns("tick_to_signal", 400_000)
    t.observe_latency_ns("tick_to_signal", -2_600_000)  # another host's clock 3 ms ahead
    h = t.latencies["tick_to_signal"]
    assert (h.total, h.sum_us) == (1, 400.0)
    assert t.get("latency_clock_skew") == 1


def test_declared_counters_exist_at_zero_before_their_first_count():
    t = Telemetry()
    t.declare("signal_gaps", "fills")
    t.inc("fills", 2)
    t.declare("fills")  # declaring again keeps the count
    assert t.snapshot()[0] == {"signal_gaps": 0, "fills": 2}
