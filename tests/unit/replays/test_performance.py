"""Capital-based statistics agree with empyrical-reloaded on the same daily returns."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from workbench.replays import performance as perf
from workbench.replays.equity import EquityCurve

DAY = perf.DAY_NS
START = 1_704_067_200_000_000_000  # 2024-01-01 UTC


def curve(days: int = 40, per_day: int = 24, seed: int = 1) -> EquityCurve:
    rng = np.random.default_rng(seed)
    n = days * per_day
    ts = START + np.arange(n, dtype=np.int64) * (DAY // per_day)
    equity = np.cumsum(rng.normal(0.5, 40.0, n))
    peak = np.maximum(np.maximum.accumulate(equity), 0.0)
    return EquityCurve(ts, equity, equity - peak)


def no_fills() -> pd.DataFrame:
    return pd.DataFrame({"symbol": [], "side": [], "qty": [], "price": [], "ts_ns": []})


CAPITAL = 10_000.0


@pytest.fixture
def daily():
    c = curve()
    _, closes = perf.daily_closes(c, CAPITAL)
    return c, closes, perf.daily_returns(closes, CAPITAL)


def test_daily_closes_are_the_last_value_of_each_utc_day(daily):
    c, closes, r = daily
    assert len(closes) == 40
    assert closes[0] == CAPITAL + c.equity[23]
    assert r[0] == pytest.approx(closes[0] / CAPITAL - 1)


def test_ratios_match_empyrical(daily):
    c, _, r = daily
    p = perf.performance(c, no_fills(), CAPITAL)
    assert p["days"] == 40
    assert p["sharpe_annual"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-8)
    assert p["sortino_annual"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-8)
    assert p["annual_return"] == pytest.approx(empyrical.annual_return(r), rel=1e-8)
    assert p["total_return"] == pytest.approx(empyrical.cum_returns_final(r), rel=1e-8)
    # Drawdown counted from the starting capital: empyrical with a leading flat day.
    dd = empyrical.max_drawdown(np.r_[0.0, r])
    assert p["max_daily_drawdown_pct"] == pytest.approx(dd * 100, rel=1e-8)
    assert p["calmar"] == pytest.approx(empyrical.annual_return(r) / abs(dd), rel=1e-8)


def test_tick_resolution_drawdown_is_at_least_the_daily_one(daily):
    c, _, _ = daily
    p = perf.performance(c, no_fills(), CAPITAL)
    assert p["max_drawdown_pct"] <= p["max_daily_drawdown_pct"] < 0


def test_one_day_gives_null_ratios_not_errors():
    p = perf.performance(curve(days=1), no_fills(), CAPITAL)
    assert p["days"] == 1
    assert p["sharpe_annual"] is None and p["sortino_annual"] is None and p["calmar"] is None


@pytest.mark.parametrize("shift_h", [0, -6, 12])
def test_six_hours_across_midnight_are_not_two_days_of_returns(shift_h):
    # 22:00 to 04:00 UTC made two partial "days": Sharpe 30.7 and Sortino +inf, where the
    # same hours moved 6 h earlier had none (a review helper's repro on the EUR/USD file).
    n = 6 * 60
    ts = START - 2 * 3600 * 10**9 + shift_h * 3600 * 10**9 + np.arange(n) * 60 * 10**9
    equity = np.linspace(0.0, 5.0, n)
    p = perf.performance(EquityCurve(ts, equity, np.zeros(n)), no_fills(), CAPITAL)
    assert p["span_days"] == pytest.approx((n - 1) / (24 * 60))
    assert p["sharpe_annual"] is p["sortino_annual"] is p["calmar"] is p["annual_return"] is None
    assert p["total_return"] == pytest.approx(5.0 / CAPITAL)


def test_ratios_need_two_days_of_span_not_two_calendar_days():
    c = curve(days=3)
    short = EquityCurve(c.ts_ns[23:48], c.equity[23:48], c.drawdown[23:48])  # 2 closes, 24 h
    assert perf.performance(short, no_fills(), CAPITAL)["sharpe_annual"] is None
    p = perf.performance(c, no_fills(), CAPITAL)  # 3 closes over 71 h
    assert p["span_days"] == pytest.approx(71 / 24) and p["sharpe_annual"] is not None


def test_exposure_and_turnover():
    ts = np.array([0, 10, 20, 30, 40, 100], dtype=np.int64) + START
    c = EquityCurve(ts, np.zeros(6), np.zeros(6))
    fills = pd.DataFrame(
        {
            "symbol": ["A", "A", "B", "B"],
            "side": ["BUY", "SELL", "SELL", "BUY"],
            "qty": [2.0, 2.0, 1.0, 1.0],
            "price": [10.0, 11.0, 5.0, 4.0],
            "ts_ns": ts[[0, 1, 2, 4]],
        }
    )
    p = perf.performance(c, fills, 100.0)
    assert p["exposure"] == pytest.approx((10 + 20) / 100)
    assert p["turnover"] == pytest.approx((20 + 22 + 5 + 4) / 100.0)


def test_capital_must_be_positive():
    with pytest.raises(ValueError, match=r"report\.capital"):
        perf.performance(curve(days=2), no_fills(), 0.0)


def test_fast_replay_reports_performance_on_the_configured_capital(tmp_path):
    from workbench.config import build_config
    from workbench.marketdata import synth_ticks, write_ticks
    from workbench.replays import replay

    data = write_ticks(
        synth_ticks("ABC", 3000, 5, interval_ns=600 * 10**9), tmp_path / "ticks.parquet"
    )
    cfg = build_config({"report": {"capital": 500.0}})
    r = replay(cfg, data, mode="fast", out=tmp_path / "out")
    p = r.performance
    assert p["capital"] == 500.0 and p["days"] >= 20
    assert p["total_return"] == pytest.approx(r.summary["net_pnl"] / 500.0, abs=1e-9)
    assert (tmp_path / "out" / "performance.json").exists()
