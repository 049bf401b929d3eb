"""SweepResult's out-of-sample totals: PnL after fees is what counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.cli import build_parser
from workbench.exceptions import ConfigurationError
from workbench.sweeps.results import SweepResult
from workbench.sweeps.sweep import sweep
from workbench.sweeps.tasks import METRICS


def test_oos_summary_counts_windows_positive_after_fees_not_before():
    wf = pd.DataFrame(
        {
            "oos_net_pnl": [2.0, 1.0],  # both positive before fees
            "oos_fees": [0.5, 1.5],
            "oos_net_pnl_after_fees": [1.5, -0.5],  # the second loses after fees
            "oos_trades": [3, 2],
            "is_net_pnl": [4.0, 4.0],
            "is_net_pnl_after_fees": [3.0, 2.0],
            "oos_error": [None, None],
        }
    )
    r = SweepResult(frame=pd.DataFrame(), params=[], walk_forward=wf, run={"walk_forward": "x"})
    oos = r.oos_summary()
    assert oos["oos_positive_windows_after_fees"] == 0.5
    assert oos["oos_net_pnl_after_fees"] == 1.0 and oos["failed_windows"] == 0
    assert oos["oos_net_pnl_before_fees"] == 3.0 and oos["oos_fees"] == 2.0
    assert oos["is_net_pnl_after_fees"] == 5.0 and oos["is_net_pnl_before_fees"] == 8.0


def test_the_in_sample_figure_printed_beside_the_out_of_sample_one_is_scaled_to_its_length():
    # Train windows of 100 rows overlap and each is 4 test windows long: their plain sum
    # (12) beside the out-of-sample sum looked three times better than it was.
    wf = pd.DataFrame(
        {"is_net_pnl_after_fees": [4.0, 8.0], "train_rows": [100, 100], "test_rows": [25, 25],
         "oos_net_pnl_after_fees": [1.0, 1.0], "oos_error": [None, None]}
    )  # fmt: skip
    oos = SweepResult(frame=pd.DataFrame(), params=[], walk_forward=wf).oos_summary()
    assert oos["is_net_pnl_after_fees"] == 12.0
    assert oos["is_net_pnl_after_fees_scaled"] == 3.0


def test_a_failed_or_skipped_window_is_counted_and_never_positive():
    # A crashed test window summed as 0: the out-of-sample gate passed on the others.
    nan = float("nan")
    wf = pd.DataFrame(
        {
            "oos_net_pnl": [1.0, nan, nan],
            "oos_fees": [0.0, nan, nan],
            "oos_net_pnl_after_fees": [1.0, nan, nan],
            "oos_trades": [2, None, None],
            "is_net_pnl": [1.0, 1.0, nan],
            "is_net_pnl_after_fees": [1.0, 1.0, nan],
            "oos_error": [None, "StrategyError: boom", "skipped: no train run has a sharpe"],
        }
    )
    r = SweepResult(frame=pd.DataFrame(), params=[], walk_forward=wf, run={"walk_forward": "x"})
    oos = r.oos_summary()
    assert (oos["windows"], oos["failed_windows"]) == (3, 2)
    assert oos["oos_positive_windows_after_fees"] == 1 / 3


def test_pnl_after_fees_is_a_metric():
    assert {"fees", "net_pnl_after_fees"} <= set(METRICS)


def test_a_heatmap_of_one_parameter_against_itself_is_a_clear_error():
    frame = pd.DataFrame(
        {"turning_point": [0.1, 0.2], "take_profit": [1.0, 1.0], "net_pnl_after_fees": [1.0, 2.0],
         "error": [None, None]}
    )  # fmt: skip
    r = SweepResult(frame=frame, params=["turning_point", "take_profit"])
    with pytest.raises(ConfigurationError, match="x and y are both 'turning_point'"):
        r.heatmap("turning_point", "turning_point")
    assert r.heatmap("turning_point", "take_profit").data[0].z.tolist() == [[1.0, 2.0]]
    # One axis named: the other parameter takes the other (it took the same one and refused).
    for fig in (r.heatmap(x="take_profit"), r.heatmap(y="turning_point")):
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == (
            "take_profit", "turning_point",
        )  # fmt: skip


def test_the_best_row_is_picked_after_fees_unless_told_otherwise():
    # b makes more before fees and less after them: after fees is what the account sees.
    frame = pd.DataFrame(
        {"combo": ["a", "b"], "net_pnl": [1.0, 2.0], "net_pnl_after_fees": [0.8, 0.5],
         "error": [None, None]}
    )  # fmt: skip
    assert SweepResult(frame=frame, params=["combo"]).best()["combo"] == "a"
    assert SweepResult(frame=frame, params=["combo"]).best("net_pnl")["combo"] == "b"
    args = build_parser().parse_args(["sweep", "--config", "c", "--grid", "x=1", "--out", "o"])
    assert args.metric == "net_pnl_after_fees"


def test_minimizing_a_drawdown_is_refused_it_would_pick_the_deepest():
    # Drawdowns are <= 0: "lower is better" picked the worst combination.
    frame = pd.DataFrame(
        {"combo": ["shallow", "deep"], "max_drawdown": [-1.0, -9.0], "error": [None, None]}
    )
    r = SweepResult(frame=frame, params=["combo"], metric="max_drawdown")
    assert r.best()["combo"] == "shallow"
    with pytest.raises(ConfigurationError, match=r"max_drawdown' is <= 0.*without --minimize"):
        r.best(maximize=False)
    with pytest.raises(ConfigurationError, match="max_daily_drawdown_pct' is <= 0"):
        sweep("unused.toml", grid={"x": [1]}, metric="max_daily_drawdown_pct", maximize=False)


def test_another_metric_is_ranked_higher_first_not_in_the_sweeps_direction():
    # A sweep that minimized its fees ranked `best("net_pnl")` by the lowest PnL.
    frame = pd.DataFrame(
        {"combo": ["a", "b"], "fees": [1.0, 3.0], "net_pnl": [2.0, 5.0], "error": [None, None]}
    )
    r = SweepResult(frame=frame, params=["combo"], metric="fees", maximize=False)
    assert r.best()["combo"] == "a"
    assert r.best("net_pnl")["combo"] == "b"
    assert r.best("net_pnl", maximize=False)["combo"] == "a"


def test_an_infinite_best_is_saved_as_strict_json(tmp_path):
    # No down day: Sortino +inf ranks first; best.json must not hold a bare Infinity.
    frame = pd.DataFrame(
        {"combo": ["steady", "choppy"], "sortino_annual": [float("inf"), 5.1],
         "error": [None, None]}
    )  # fmt: skip
    r = SweepResult(frame=frame, params=["combo"], metric="sortino_annual")
    assert r.best()["combo"] == "steady"
    text = r.save(tmp_path)["best.json"].read_text()
    best = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in best.json"))
    assert best["params"] == {"combo": "steady"} and best["value"] == "+inf"  # not null: "no value"


def test_an_infinite_cell_of_the_heatmap_takes_the_extreme_colour_and_says_inf():
    """plotly drew a +inf cell (no down day: the best Sortino) blank, as if nothing ran."""
    frame = pd.DataFrame(
        {"a": [1, 1, 2, 2], "b": [1, 2, 1, 2], "error": [None] * 4,
         "sortino_annual": [float("inf"), 5.1, 2.0, float("nan")]}
    )  # fmt: skip
    fig = SweepResult(frame=frame, params=["a", "b"], metric="sortino_annual").heatmap()
    (heat,) = fig.data
    z = np.array(heat.z, dtype=float)
    assert z[0, 0] == 5.1 and np.isfinite(z[~np.isnan(z)]).all()  # b=1, a=1: inf at the top
    assert heat.customdata[0][0] == "+inf" and heat.customdata[1][0] == "5.1"
    assert np.isnan(z[1, 1])  # nothing ran there (a NaN row): still blank
