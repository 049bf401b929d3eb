"""In-process counters and latency histograms a runner ships in its heartbeats.

Kept dependency-free and cheap: runners stay small, and the supervisor turns
what arrives into Prometheus metrics.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

import structlog

# Latency bucket upper bounds in microseconds (roughly x2 steps, 10 us .. 10 s).
LATENCY_BUCKETS_US: tuple[float, ...] = (
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
)


class LatencyHistogram:
    """Cumulative-free bucket counts plus sum, Prometheus-shaped."""

    __slots__ = ("counts", "sum_us", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self.sum_us = 0.0
        self.total = 0

    def observe_us(self, value_us: float) -> None:
        """Record one latency in microseconds."""
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_US, value_us)] += 1
        self.sum_us += value_us
        self.total += 1

    def quantile_us(self, q: float) -> float:
        """Approximate quantile: the upper bound of the bucket holding it."""
        if not self.total:
            return 0.0
        rank = q * self.total
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return LATENCY_BUCKETS_US[i] if i < len(LATENCY_BUCKETS_US) else float("inf")
        return float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the heartbeat."""
        return {"counts": list(self.counts), "sum_us": self.sum_us, "total": self.total}


def quantile_us(hist: dict[str, Any], q: float) -> float | None:
    """Approximate quantile of a heartbeat histogram dict (bucket upper bound), µs."""
    counts = hist.get("counts") or []
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= rank and c:
            return LATENCY_BUCKETS_US[i] if i < len(LATENCY_BUCKETS_US) else float("inf")
    return float("inf")


class Telemetry:
    """Counters and histograms of one runner."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.latencies: dict[str, LatencyHistogram] = {}
        self.started_ns = time.time_ns()

    def inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counters[name] = self.counters.get(name, 0) + n

    def declare(self, *names: str) -> None:
        """Counters that exist from the start at 0, before their first `inc`.

        An alert on ``increase(...)`` cannot see a series born at its first
        value: the first signal gap after a start would go unnoticed.
        """
        for name in names:
            self.counters.setdefault(name, 0)

    def get(self, name: str) -> int:
        """Current value of counter ``name`` (0 if never incremented)."""
        return self.counters.get(name, 0)

    def observe_latency_ns(self, name: str, ns: int) -> None:
        """Record a latency in nanoseconds into histogram ``name``.

        A negative one (two hosts' clocks apart, or a clock stepped back) is
        not a latency: it is counted in ``latency_clock_skew`` instead of
        filling the lowest bucket and pulling the sum below zero.
        """
        if ns < 0:
            self.inc("latency_clock_skew")
            return
        h = self.latencies.get(name)
        if h is None:
            h = self.latencies[name] = LatencyHistogram()
        h.observe_us(ns / 1_000)

    def snapshot(self) -> tuple[dict[str, int], dict[str, Any]]:
        """Counters and histogram data for a heartbeat."""
        return dict(self.counters), {k: h.to_dict() for k, h in self.latencies.items()}


class BurstLog:
    """Logs a repeated problem once per interval, with the count it held back."""

    def __init__(self, event: str, interval_s: float) -> None:
        self._event = event
        self._interval_ns = int(interval_s * 1e9)
        self._last_ns = 0
        self._suppressed = 0
        self._log = structlog.get_logger()

    def __call__(self, **context: Any) -> bool:
        """Report one occurrence with its context; True when this one was logged."""
        now = time.monotonic_ns()
        if self._last_ns and now - self._last_ns < self._interval_ns:
            self._suppressed += 1
            return False
        self._log.warning(self._event, suppressed_since_last=self._suppressed, **context)
        self._last_ns = now
        self._suppressed = 0
        return True
