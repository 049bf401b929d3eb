"""Ratios over a zero spread: float noise is zero, a positive mean over it +inf, null in JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.domain.model import Fill, Side
from workbench.marketdata.table import TickTable
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
    assert sharpe(np.array([1e-17, -1e-17, 2e-17])) is None  # noise over noise
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
    assert saved["sharpe"] is None
    for summary in (result.summary, saved):  # `promote --min-sharpe 1000000` passed on noise
        (check,) = evaluate(summary, min_sharpe=1_000_000)
        assert not check.ok


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
