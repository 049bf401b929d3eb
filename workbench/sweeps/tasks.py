"""What one sweep task does: a fast replay of one combination on (a slice of) the data.

These functions run on Dask workers, so they take only picklable values
(config, `TickTable`, plain dicts) and return one flat, picklable row. A
failure is part of the row (``error``), never an exception, so one bad
combination does not stop a sweep.
"""

from __future__ import annotations

import os
import time
from typing import Any

from workbench.config import WorkbenchConfig
from workbench.marketdata.table import TickTable

SUMMARY_COLUMNS = (
    "ticks",
    "signals",
    "orders",
    "fills",
    "rejected",
    "trades",
    "wins",
    "losses",
    "win_rate",
    "net_pnl",
    "fees",
    "net_pnl_after_fees",
    "realized_pnl",
    "unrealized_pnl",
    "max_drawdown",
    "sharpe",
)
PERFORMANCE_COLUMNS = (
    "total_return",
    "annual_return",
    "sharpe_annual",
    "sortino_annual",
    "calmar",
    "max_drawdown_pct",
    "max_daily_drawdown_pct",
    "exposure",
    "turnover",
    "days",
)
METRICS = SUMMARY_COLUMNS + PERFORMANCE_COLUMNS
"""Every statistic a sweep row holds, and so every metric a sweep can rank by."""


def slice_table(table: TickTable, rows: tuple[int, int] | None) -> TickTable:
    """Rows ``lo:hi`` of ``table`` (the whole table for ``None``)."""
    if rows is None:
        return table
    return table.rows(*rows)


def replay_row(
    cfg: WorkbenchConfig,
    table: TickTable,
    params: dict[str, Any],
    rows: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Fast-replay ``params`` on ``table[rows]`` and return its sweep row.

    The row holds the parameters, every statistic of `METRICS`, the fills
    hash, the elapsed seconds and the thread's CPU seconds (their gap is time
    other processes took), the worker's pid, and ``error`` (None, or
    ``"ExceptionName: message"`` when this combination failed).

    ``cfg`` is run as given: the worker's ``WORKBENCH__`` variables are not
    applied (the client applied its own when it made ``cfg``), so every
    worker runs what the client's single replay and ``best/`` run.
    """
    from workbench.replays.report import build_result
    from workbench.replays.session import prepare_config, run_fast

    t0, cpu0 = time.perf_counter(), time.thread_time()
    row: dict[str, Any] = dict(params)
    try:
        run_cfg = prepare_config(cfg, condition_overrides=params, environment=False)
        ticks = slice_table(table, rows)
        fills, orders, signals = run_fast(run_cfg, ticks)
        result = build_result(
            fills, orders, ticks, signals=signals, capital=run_cfg.report.capital, max_points=64
        )
    except Exception as e:  # a sweep reports the failing combination and goes on
        row.update({m: None for m in METRICS})
        row.update(fills_sha256=None, error=f"{type(e).__name__}: {e}")
    else:
        row.update({m: result.summary[m] for m in SUMMARY_COLUMNS})
        row.update({m: result.performance[m] for m in PERFORMANCE_COLUMNS})
        row.update(fills_sha256=result.summary["fills_sha256"], error=None)
    row["elapsed_s"] = time.perf_counter() - t0
    row["cpu_s"] = time.thread_time() - cpu0
    row["pid"] = os.getpid()
    return row
