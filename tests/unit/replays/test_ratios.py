"""Ratios over a zero spread: float noise is zero, a positive mean over it +inf, "+inf" in JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable
from workbench.replays.equity import EquityCurve
from workbench.replays.performance import performance
from workbench.replays.promote import evaluate
from workbench.replays.report import build_result
from workbench.replays.summary import sharpe
from workbench.sweeps.results import best_index

# Three equal 0.03 trades, as float prices give them: 90.03 - 90.0 and 90.07 - 90.04.
NOISY = [0.030000000000001137, 0.029999999999986926, 0.030000000000001137]


def _refuse_infinity(name: str) -> float:
    raise ValueError(f"not strict JSON: {name}")


def _fill(fid: str, side: str, price: float, ts: int) -> Fill:
    return Fill(fid, f"O-m:{fid}", f"m:{fid}", "X", Side(side), 1.0, price, ts)


def test_equal_trades_apart_by_float_noise_have_the_sharpe_of_equal_trades():
    assert NOISY[0] == 90.03 - 90.0 and NOISY[1] == 90.07 - 90.04
    # It was mean / 5e-15 = 5.6e12, and beat the exactly equal trades (null, left out).
    assert sharpe(np.array(NOISY)) == math.inf
    assert sharpe(np.array([0.08] * 5)) == math.inf
    assert sharpe(np.array([-0.08] * 5)) == -math.inf
    assert sharpe(np.zeros(3)) is None  # zero over zero
    # Noise over noise: PnLs that are float noise on prices near 90.
    assert sharpe(np.array([1e-17, -1e-17, 2e-17]), np.full(3, 90.0)) is None
    # A sub-cent market's tiny but real PnLs have a ratio (its floor was 1e-9, absolute).
    assert sharpe(np.array([1e-9, 2e-9, 3e-9]), np.full(3, 1e-5)) == pytest.approx(2.0)
    assert sharpe(np.array([2.0, -1.0])) == pytest.approx(0.5 / 4.5**0.5)


def test_noisy_equal_trades_pass_no_sharpe_gate_and_save_strict_json(tmp_path):
    prices = [(90.0, 90.03), (90.04, 90.07), (90.0, 90.03)]
    fills = [
        _fill(f"{k}{side}", side, price, 10 * k + j)
        for k, pair in enumerate(prices)
        for j, (side, price) in enumerate(zip(("BUY", "SELL"), pair, strict=True))
    ]
    ticks = TickTable(["X"] * 6, [f.ts_ns for f in fills], [f.price for f in fills], [1.0] * 6)
    result = build_result(fills, [], ticks, signals=6)
    assert list(result.trades["pnl"]) == NOISY
    assert result.summary["sharpe"] == math.inf
    saved = json.loads(
        (result.save(tmp_path)["summary.json"]).read_text(), parse_constant=_refuse_infinity
    )
    assert saved["sharpe"] == "+inf"  # JSON has no infinity; null would be "no Sharpe"
    for summary in (result.summary, saved):  # `promote --min-sharpe 1000000` passed on noise
        check, _ = evaluate(summary, min_sharpe=1_000_000)
        # Unbounded: no measured spread passes no gate, and says so (not "None").
        assert not check.ok and check.value == math.inf and "inf vs limit" in str(check)


def test_ranking_by_sharpe_puts_equal_winning_trades_first_and_noise_ties_them():
    frame = pd.DataFrame(
        {
            "sharpe": [sharpe(np.array(t)) for t in ([2.0, -1.0], NOISY, [0.08] * 5, [-1.0] * 2)],
            "error": [None] * 4,
        }
    )
    assert best_index(frame, "sharpe") == 1  # the first of the two equal-trade sets
    assert frame.loc[1, "sharpe"] == frame.loc[2, "sharpe"]
    assert best_index(frame, "sharpe", maximize=False) == 3


# -- daily ratios -------------------------------------------------------------------------------

DAY = 86_400 * 10**9
NOON = 1_704_196_800 * 10**9  # 2024-01-02 12:00 UTC
NO_FILLS = pd.DataFrame({"symbol": [], "side": [], "qty": [], "price": [], "ts_ns": []})


def _daily(equity: list[float]) -> dict:
    """`performance` of one equity point a day on 10,000 of capital."""
    eq = np.array(equity, dtype=float)
    ts = NOON + np.arange(len(eq), dtype=np.int64) * DAY
    return performance(EquityCurve(ts, eq, eq - np.maximum.accumulate(np.maximum(eq, 0))),
                       NO_FILLS, 10_000.0)  # fmt: skip


def test_no_down_day_and_no_drawdown_rank_best_on_sortino_and_calmar():
    # A gained every day: its Sortino and Calmar were null, and every sweep ranked B first.
    rows = {"A": _daily([2, 4, 6, 8, 10, 12, 14, 16]), "B": _daily([2, 1, 3, 2, 4, 1, 2, 3])}
    assert rows["A"]["sortino_annual"] == rows["A"]["calmar"] == math.inf
    assert math.isfinite(rows["B"]["sortino_annual"]) and math.isfinite(rows["B"]["calmar"])
    frame = pd.DataFrame([{**p, "error": None} for p in rows.values()], index=list(rows))
    assert best_index(frame, "sortino_annual") == best_index(frame, "calmar") == "A"


def test_daily_ratios_over_float_noise_are_unbounded_not_huge_and_flat_is_null():
    # 4 - 4e-13: a close below the peak by float noise is no drawdown (Calmar was 1e12-ish).
    noisy = _daily([2, 4, 4 - 4e-13, 6])
    assert noisy["calmar"] == noisy["sortino_annual"] == math.inf
    losing = _daily([10_000 * 0.999**k - 10_000 for k in (1, 2, 3, 4)])  # -0.1% a day
    assert losing["sharpe_annual"] == -math.inf and losing["sortino_annual"] < 0
    flat = _daily([0, 0, 0])
    assert flat["sharpe_annual"] is None and flat["sortino_annual"] is None
    assert flat["calmar"] is None


def test_an_infinite_ratio_is_a_string_in_performance_json(tmp_path):
    # A long held over four rising days: no down day.
    fills = [_fill("1", "BUY", 100.0, NOON)]
    ts = [NOON + k * DAY for k in range(4)]
    ticks = TickTable(["X"] * 4, ts, [100.0, 101.0, 102.0, 103.0], [1.0] * 4)
    result = build_result(fills, [], ticks, signals=1)
    assert result.performance["sortino_annual"] == math.inf
    text = result.save(tmp_path)["performance.json"].read_text()
    saved = json.loads(text, parse_constant=_refuse_infinity)
    assert saved["sortino_annual"] == saved["calmar"] == "+inf"
