"""The equity curve at full tick resolution, and how a report samples it for plotting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from workbench.replays.stats import BookHistory, SymbolTicks


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` hashes first, which is far slower on 1M ints)."""
    s = np.sort(np.asarray(values), kind="stable")
    if len(s) < 2:
        return s
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Equity at every distinct tick (and fill) timestamp, full resolution."""

    ts_ns: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray


def equity_curve(ticks: SymbolTicks, history: dict[str, BookHistory]) -> EquityCurve:
    """Realised plus unrealised PnL after fees over time, summed over symbols.

    Evaluated at each distinct timestamp of the ticks and fills, *after*
    everything at that timestamp: each symbol's book is the state after its
    last fill at or before it, marked at its last tick price at or before it
    (its last fill price while it has not ticked yet). Ticks sharing a
    timestamp thus share one equity value. Per traded symbol this is two
    `searchsorted` calls over the grid (a vectorised as-of join), so the cost
    is O(ticks x traded symbols) with no per-tick Python.

    Drawdown is equity minus its running maximum, starting from 0 (the equity
    before the first fill), so it is always <= 0.
    """
    fill_ts = [np.asarray(h.ts_ns, dtype=np.int64) for h in history.values()]
    grid = sorted_unique(np.concatenate([ticks.ts_ns, *fill_ts]))
    equity = np.zeros(len(grid), dtype=np.float64)
    for symbol in sorted(history):
        h = history[symbol]
        f_ts = np.asarray(h.ts_ns, dtype=np.int64)
        start = int(np.searchsorted(grid, f_ts[0]))  # the book is empty before its first fill
        at = grid[start:]
        i = np.searchsorted(f_ts, at, side="right") - 1  # >= 0: at >= f_ts[0]
        mark = np.asarray(h.fill_price)[i]  # until the symbol's first tick
        t_ts, t_px = ticks.group(symbol)
        if len(t_ts):
            j = np.searchsorted(t_ts, at, side="right") - 1
            mark = np.where(j >= 0, t_px[np.maximum(j, 0)], mark)
        qty, avg = np.asarray(h.qty)[i], np.asarray(h.avg_price)[i]
        # Same expression as Position.realized_pnl + Position.unrealized(mark);
        # per fill first, then spread over the grid (one gather, not two).
        realized = (np.asarray(h.realized_pnl) - np.asarray(h.fees))[i]
        equity[start:] += realized + (mark - avg) * qty
    peak = np.maximum(np.maximum.accumulate(equity), 0.0) if len(equity) else equity
    return EquityCurve(grid, equity, equity - peak)


def extrema_sample(values: np.ndarray, budget: int) -> np.ndarray:
    """Sorted row indices keeping the shape of a long series in <= ``budget`` rows.

    Keeps the first and last row and, in ``(budget - 2) // 2`` equal buckets,
    each bucket's minimum and maximum row, so spikes survive (unlike striding).
    """
    n = len(values)
    if n <= budget:
        return np.arange(n)
    keep = [np.array([0, n - 1])]
    buckets = (budget - 2) // 2
    if buckets > 0:
        grouped = pd.Series(values).groupby(np.arange(n) * buckets // n, sort=True)
        keep += [grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy()]
    return sorted_unique(np.concatenate(keep))


def equity_sample(curve: EquityCurve, fill_ts: np.ndarray, max_points: int) -> np.ndarray:
    """Rows of ``curve`` to store: <= ``max_points``, never losing what matters.

    Always kept: the first and last row, the max-drawdown trough and the peak
    before it; then the row of every fill timestamp (evenly thinned only if the
    fills alone outnumber ``max_points``); the rest of the budget goes to
    per-bucket minima and maxima.
    """
    n = len(curve.equity)
    if n <= max_points:
        return np.arange(n)
    trough = int(np.argmin(curve.drawdown))
    peak = int(np.argmax(curve.equity[: trough + 1]))
    core = sorted_unique(np.array([0, n - 1, trough, peak]))
    at_fills = np.setdiff1d(np.searchsorted(curve.ts_ns, fill_ts), core)
    room = max_points - len(core)
    if len(at_fills) > room:
        picks = np.linspace(0, len(at_fills) - 1, room).round().astype(np.int64)
        at_fills = at_fills[sorted_unique(picks)]
    must = np.union1d(core, at_fills)
    rest = max_points - len(must)
    if rest < 1:
        return must
    # extrema_sample's first and last rows are already in `must`.
    return np.union1d(must, extrema_sample(curve.equity, rest + 2))
