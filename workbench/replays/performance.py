"""Return statistics on a capital base: the numbers users know from pyfolio/empyrical.

The replay summary (`workbench.replays.summary.summarise`) stays in price units
and is pinned by golden files; this module adds the capital-based view next to
it, in ``ReplayResult.performance`` and ``performance.json``.

Basis (also in `PERFORMANCE_BASIS`, saved with the numbers):

* Account value ``V(t) = capital + equity(t)``, where ``equity`` is realised
  plus unrealised PnL at full tick resolution (`stats.equity_curve`).
* Daily closes: ``V`` at the last timestamp of every UTC calendar day that has
  ticks; daily returns ``r_1 = close_1 / capital - 1``,
  ``r_i = close_i / close_{i-1} - 1``.
* 252 periods a year, risk-free rate 0, as empyrical's defaults:
  annual return ``(1 + total)^(252 / days) - 1``; Sharpe
  ``mean(r) / std(r, ddof=1) * sqrt(252)``; Sortino
  ``mean(r) * 252 / (sqrt(mean(min(r, 0)^2)) * sqrt(252))``; Calmar
  ``annual return / |max daily drawdown|``, the drawdown counted from the
  starting capital. Days are counted on the calendar, so a replay's first
  and last day are partial: the ratios are null unless the replay spans at
  least `MIN_RATIO_SPAN_DAYS` (2 x 24 h, first tick to last) and 2 daily
  closes, and the annual return unless it spans a whole day (a 6-hour file
  across midnight made 2 "days" and a Sharpe of 30; moved 6 hours, none).
  A denominator
  within float noise of zero (`stats.NOISE`: 1e-9, relative to the largest
  ``|r|``; for Calmar, to 1) is zero; the ratio is then ``+inf`` for a
  positive numerator (no down day: Sortino; no drawdown: Calmar), ``-inf``
  for a negative one, null for zero. JSON has no infinity: ``performance.json``
  holds ``"+inf"`` (``"-inf"``) for it; a sweep ranks ``+inf`` above every number.
* ``max_drawdown_pct``: the deepest fall of ``V`` from its running peak
  (starting at ``capital``), at tick resolution, in percent (<= 0).
* ``exposure``: the fraction of the time from the first to the last tick with
  any position open. ``turnover``: traded notional (sum of ``|qty x price|``)
  divided by capital, over the whole replay.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.domain.accounting import is_drift
from workbench.replays.equity import EquityCurve
from workbench.replays.stats import is_noise, rounded, unbounded

PERIODS_PER_YEAR = 252
DAY_NS = 86_400 * 1_000_000_000
MIN_RATIO_SPAN_DAYS = 2
"""A replay shorter than this (first tick to last) has no annualised ratio."""

PERFORMANCE_BASIS = (
    "V = capital + realised + unrealised PnL; daily returns from V at the last tick of each "
    "UTC day with ticks (first day against capital); 252 periods/year, risk-free 0 "
    "(empyrical defaults); Sharpe mean/std(ddof=1)*sqrt(252); Sortino mean*252/downside risk; "
    "Calmar annual return/|max daily drawdown from capital|; ratios null under 2 days of "
    "span (first tick to last) or 2 closes, annual return under 1 day of span, "
    '+inf/-inf by the numerator\'s sign over a zero (to 1e-9) denominator ("+inf" in JSON), '
    "null over zero; max_drawdown_pct at tick "
    "resolution; exposure = time share with a position open; turnover = traded notional/capital"
)


def daily_closes(curve: EquityCurve, capital: float) -> tuple[np.ndarray, np.ndarray]:
    """``(day_index, account value at that day's last timestamp)`` for every day with data."""
    if not len(curve.ts_ns):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    day = curve.ts_ns // DAY_NS
    last = np.flatnonzero(np.r_[day[1:] != day[:-1], True])
    return day[last], capital + curve.equity[last]


def daily_returns(closes: np.ndarray, capital: float) -> np.ndarray:
    """Simple returns of consecutive daily closes, the first one against ``capital``."""
    prev = np.r_[capital, closes[:-1]]
    return closes / prev - 1.0


def max_drawdown_fraction(values: np.ndarray, capital: float) -> float:
    """Deepest fall from the running peak of ``values`` (peak starts at ``capital``), <= 0."""
    if not len(values):
        return 0.0
    peak = np.maximum.accumulate(np.maximum(values, capital))
    return float(np.min(values / peak - 1.0))


def sharpe_annual(r: np.ndarray) -> float | None:
    """Annualised Sharpe of daily returns ``r`` (see the module docstring)."""
    if len(r) < 2:
        return None
    mean, sd, scale = float(np.mean(r)), float(np.std(r, ddof=1)), float(np.max(np.abs(r)))
    if is_noise(sd, scale):
        return unbounded(mean, scale)
    return mean / sd * math.sqrt(PERIODS_PER_YEAR)


def sortino_annual(r: np.ndarray) -> float | None:
    """Annualised Sortino of daily returns ``r``: ``+inf`` with no down day and a gain."""
    if len(r) < 2:
        return None
    mean, scale = float(np.mean(r)), float(np.max(np.abs(r)))
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if is_noise(downside, scale):
        return unbounded(mean, scale)
    return mean * PERIODS_PER_YEAR / (downside * math.sqrt(PERIODS_PER_YEAR))


def calmar(annual: float | None, daily_dd: float, days: int) -> float | None:
    """Annual return over ``|daily_dd|``: ``+inf`` with no drawdown and a gain."""
    if annual is None or days < 2:
        return None
    return unbounded(annual, 1.0) if is_noise(daily_dd, 1.0) else annual / abs(daily_dd)


def annual_return(total: float, days: int) -> float | None:
    """``total`` compounded to a year of ``days``; None below 1 day, at -100% or beyond a float."""
    if days < 1 or total <= -1.0:
        return None
    try:
        return (1.0 + total) ** (PERIODS_PER_YEAR / days) - 1.0
    except OverflowError:  # +1,700% in a day: no float holds it a year on
        return None


def exposure(fills: pd.DataFrame, first_ns: int, last_ns: int) -> float:
    """Share of ``[first_ns, last_ns]`` with a nonzero position in any symbol."""
    span = last_ns - first_ns
    if span <= 0 or fills.empty:
        return 0.0
    qty: dict[str, float] = {}
    peak: dict[str, float] = {}  # each position's largest size since it opened
    open_since: int | None = None
    held = 0
    sign = np.where(fills["side"].to_numpy() == "BUY", 1.0, -1.0)
    cols = zip(
        fills["symbol"].tolist(),
        (sign * fills["qty"].to_numpy()).tolist(),
        fills["ts_ns"].tolist(),
        strict=True,
    )
    for symbol, dq, ts in cols:
        before = any(qty.values())
        q = qty.get(symbol, 0.0) + float(dq)
        if is_drift(q, peak.get(symbol, 0.0), dq):  # closed, but for a float's drift
            q = peak[symbol] = 0.0
        else:
            peak[symbol] = max(peak.get(symbol, 0.0), abs(q))
        qty[symbol] = q
        after = any(qty.values())
        t = min(max(int(ts), first_ns), last_ns)
        if after and not before:
            open_since = t
        elif before and not after and open_since is not None:
            held += t - open_since
            open_since = None
    if open_since is not None:
        held += last_ns - open_since
    return held / span


def performance(curve: EquityCurve, fills: pd.DataFrame, capital: float) -> dict:
    """The capital-based statistics of one replay (see the module docstring for the basis)."""
    if not capital > 0:
        raise ValueError(f"report.capital must be > 0, got {capital}")
    _, closes = daily_closes(curve, capital)
    r = daily_returns(closes, capital)
    days = len(r)
    total = float(closes[-1] / capital - 1.0) if days else 0.0
    first = int(curve.ts_ns[0]) if len(curve.ts_ns) else 0
    last = int(curve.ts_ns[-1]) if len(curve.ts_ns) else 0
    span_days = (last - first) / DAY_NS
    annual = annual_return(total, days) if span_days >= 1 else None
    daily_dd = max_drawdown_fraction(closes, capital)
    values = capital + curve.equity
    notional = float(np.abs(fills["qty"].to_numpy() * fills["price"].to_numpy()).sum())
    ratios = span_days >= MIN_RATIO_SPAN_DAYS  # else partial days would pass for whole ones
    return {
        "capital": rounded(capital),
        "days": days,
        "span_days": rounded(span_days),
        "total_return": rounded(total),
        "annual_return": rounded(annual),
        "sharpe_annual": rounded(sharpe_annual(r)) if ratios else None,
        "sortino_annual": rounded(sortino_annual(r)) if ratios else None,
        "calmar": rounded(calmar(annual, daily_dd, days)) if ratios else None,
        "max_drawdown_pct": rounded(max_drawdown_fraction(values, capital) * 100.0),
        "max_daily_drawdown_pct": rounded(daily_dd * 100.0),
        "exposure": rounded(exposure(fills, first, last)),
        "turnover": rounded(notional / capital),
        "basis": PERFORMANCE_BASIS,
    }
