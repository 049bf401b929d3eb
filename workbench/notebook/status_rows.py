"""The notebook's runner status table: one row per runner, the columns it shows."""

from __future__ import annotations

from typing import Any

from workbench.supervisor import RunnerState, RunnerStatus
from workbench.telemetry import quantile_us

STATUS_COLUMNS = (
    "runner",
    "role",
    "state",
    "pid",
    "uptime_s",
    "restarts",
    "heartbeat_age_s",
    "ticks_per_s",
    "signals",
    "orders",
    "fills",
    "p50_us",
    "p99_us",
    "exit_code",
    "detail",
)


def status_row(s: RunnerStatus) -> dict[str, Any]:
    """One `RunnerStatus` as a row of `STATUS_COLUMNS` (rates, counts, latency quantiles)."""
    c, rates = s.counters, s.rates
    lat = s.latency
    hist = lat.get("tick_to_order") or lat.get("tick_to_signal") or {}
    return {
        "runner": s.runner,
        **s.health(),
        "ticks_per_s": rates.get("ticks_in", rates.get("ticks_out", 0.0)),
        "signals": c.get("signals_out", c.get("signals_in", 0)),
        "orders": c.get("orders_out", 0),
        "fills": c.get("fills", 0),
        "p50_us": quantile_us(hist, 0.5) if hist else None,
        "p99_us": quantile_us(hist, 0.99) if hist else None,
    }


__all__ = ["STATUS_COLUMNS", "status_row"]


def condition_levels(statuses: list[RunnerStatus]) -> list[dict[str, Any]]:
    """Every condition's state and levels, from the heartbeats of running strategies."""
    out = []
    for s in statuses:
        if s.state not in (RunnerState.RUNNING, RunnerState.UNHEALTHY):
            continue
        st = s.strategy
        for lv in (st.levels or ()) if st is not None else ():
            out.append({"strategy": s.runner, **lv})
    return out
