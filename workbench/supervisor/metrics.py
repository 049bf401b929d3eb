"""Prometheus metrics built from the runners' heartbeats at scrape time."""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from workbench.supervisor.status import RunnerState, RunnerStatus, StatusSource
from workbench.telemetry import LATENCY_BUCKETS_US, Telemetry

_NAME = re.compile(r"[^a-zA-Z0-9_]")
STATES = tuple(RunnerState)


class RunnerCollector(Collector):
    """Exports each runner's state, restarts, counters and latency histograms.

    Args:
        status: The runners' statuses now (`Supervisor.status`).
        own: The supervisor's own counters, exported as runner ``supervisor``.
    """

    def __init__(self, status: StatusSource, own: Telemetry | None = None) -> None:
        self._status = status
        self._own = own

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        up = GaugeMetricFamily(
            "workbench_runner_up", "1 if the runner is running", labels=["runner", "role"]
        )
        state = GaugeMetricFamily(
            "workbench_runner_state", "1 for the runner's current state", labels=["runner", "state"]
        )
        restarts = CounterMetricFamily(
            "workbench_runner_restarts", "Restarts of the runner", labels=["runner"]
        )
        unlogged = CounterMetricFamily(
            "workbench_runner_log_write_errors",
            "Output lines of the runner its log file did not take (disk full, read-only)",
            labels=["runner"],
        )
        age = GaugeMetricFamily(
            "workbench_runner_heartbeat_age_seconds", "Age of the last heartbeat", labels=["runner"]
        )
        counters: dict[str, CounterMetricFamily] = {}
        labelled: dict[str, CounterMetricFamily] = {}
        hists: dict[str, HistogramMetricFamily] = {}
        for s in status:
            r = s.runner
            up.add_metric([r, s.role], 1.0 if s.is_running else 0.0)
            for st in STATES:
                state.add_metric([r, st.value], 1.0 if s.state is st else 0.0)
            restarts.add_metric([r], s.restarts)
            unlogged.add_metric([r], s.log_write_errors)
            if s.heartbeat_age_s is not None:
                age.add_metric([r], s.heartbeat_age_s)
            for key, value in (s.counter_totals or s.counters).items():
                if not isinstance(value, int | float):
                    continue
                if ":" in key:  # "<counter>:<socket>": one family, labelled by socket
                    base, _, sock = key.partition(":")
                    name = "workbench_" + _NAME.sub("_", base)
                    fam = labelled.get(name)
                    if fam is None:
                        fam = labelled[name] = CounterMetricFamily(
                            name, f"Runner counter {base}, per socket", labels=["runner", "socket"]
                        )
                    fam.add_metric([r, sock], value)
                    continue
                name = "workbench_" + _NAME.sub("_", key)
                fam = counters.get(name)
                if fam is None:
                    fam = counters[name] = CounterMetricFamily(
                        name, f"Runner counter {key}", labels=["runner"]
                    )
                fam.add_metric([r], value)
            for key, h in (s.latency_totals or s.latency).items():
                name = "workbench_" + _NAME.sub("_", key) + "_latency_seconds"
                hist = hists.get(name)
                if hist is None:
                    hist = hists[name] = HistogramMetricFamily(
                        name, f"Latency {key}", labels=["runner"]
                    )
                hist.add_metric([r], _cumulative(h["counts"]), h["sum_us"] / 1e6)
        # A copy: other threads add keys meanwhile (the HTTP server's refusals).
        own = dict(self._own.counters) if self._own is not None else {}
        for key, value in own.items():  # the supervisor's own
            base, _, sock = key.partition(":")
            name = "workbench_" + _NAME.sub("_", base)
            if sock:
                fam = labelled.get(name)
                if fam is None:
                    fam = labelled[name] = CounterMetricFamily(
                        name, f"Runner counter {base}, per socket", labels=["runner", "socket"]
                    )
                fam.add_metric(["supervisor", sock], value)
                continue
            fam = counters.get(name)
            if fam is None:
                fam = counters[name] = CounterMetricFamily(
                    name, f"Runner counter {key}", labels=["runner"]
                )
            fam.add_metric(["supervisor"], value)
        yield from (up, state, restarts, unlogged, age, *counters.values(), *labelled.values())
        yield from hists.values()
        yield from executor_state_metrics(status)


TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
BREAKER_STATES = ("closed", "open", "half-open")


def executor_state_metrics(status: list[RunnerStatus]) -> Iterator[Metric]:
    """Trading state and circuit breaker state of each executor, from its heartbeat.

    ``trading_state`` (ACTIVE / REDUCING / HALTED) is absent from older
    executors' heartbeats, which means ACTIVE.
    """
    trading = GaugeMetricFamily(
        "workbench_executor_trading_state",
        "1 for the executor's current trading state",
        labels=["runner", "state"],
    )
    breaker = GaugeMetricFamily(
        "workbench_executor_breaker_state",
        "1 for the current state of the executor's broker circuit breaker",
        labels=["runner", "state"],
    )
    for s in status:
        ex = s.executor
        if ex is None or not s.extra or s.pid is None:
            continue  # a dead executor trades nothing: its last heartbeat's states are gone
        current = (ex.trading_state or "ACTIVE").upper()
        for st in TRADING_STATES:
            trading.add_metric([s.runner, st], 1.0 if current == st else 0.0)
        if "breaker" in s.extra:
            for st in BREAKER_STATES:
                breaker.add_metric([s.runner, st], 1.0 if ex.breaker == st else 0.0)
    yield trading
    yield breaker


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    out, total = [], 0
    for bound, c in zip([*LATENCY_BUCKETS_US, float("inf")], counts, strict=False):
        total += c
        out.append(("+Inf" if bound == float("inf") else repr(bound / 1e6), float(total)))
    return out
