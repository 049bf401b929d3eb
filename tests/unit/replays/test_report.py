"""`fills_hash`, the summary, and what `ReplayResult.save` writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re

import pandas as pd
import pytest

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal
from workbench.execution.journal import Journal
from workbench.marketdata.table import TickTable
from workbench.replays.report import ReplayResult, build_result, fills_hash

SUMMARY_KEYS = [
    "ticks",
    "symbols",
    "signals",
    "orders",
    "fills",
    "rejected",
    "trades",
    "wins",
    "losses",
    "win_rate",
    "net_pnl",
    "realized_pnl",
    "unrealized_pnl",
    "fees",
    "net_pnl_after_fees",
    "capital",
    "return_on_capital",
    "max_drawdown",
    "sharpe",
    "sharpe_basis",
    "final_positions",
    "fills_sha256",
]
SAVED = [
    "fills.parquet",
    "orders.parquet",
    "trades.parquet",
    "positions.parquet",
    "equity.parquet",
    "summary.json",
    "performance.json",
    "fills.sha256",
    "run.json",
    "report.html",
]


def fill(fid: str, side: str, qty: float, price: float, ts: int, symbol: str = "X") -> Fill:
    return Fill(fid, f"O-mom:{fid}", f"mom:{fid}", symbol, Side(side), qty, price, ts)


FILLS = [
    fill("1", "BUY", 2, 10.0, 1),
    fill("2", "SELL", 1, 12.0, 2),
    fill("3", "SELL", 1, 9.0, 3),
    fill("4", "SELL", 1, 11.0, 4),
]
TICKS = TickTable(["X"] * 5, [1, 2, 3, 4, 5], [10.0, 12.0, 9.0, 11.0, 10.5], [1.0] * 5)


def result(**kw) -> ReplayResult:
    return build_result(FILLS, [], TICKS, signals=4, **kw)


# -- fills_hash ---------------------------------------------------------------------------------


def test_fills_hash_is_sha256_of_the_documented_canonical_text():
    f = [fill("b", "SELL", 1, 12.5, 7), fill("a", "BUY", 2, 10.0, 7), fill("c", "BUY", 1, 3.0, 1)]
    text = (
        "c,O-mom:c,mom:c,X,BUY,1.0,3.0,1\n"
        "a,O-mom:a,mom:a,X,BUY,2.0,10.0,7\n"
        "b,O-mom:b,mom:b,X,SELL,1.0,12.5,7\n"
    )
    assert fills_hash(f) == hashlib.sha256(text.encode()).hexdigest()


def test_fills_hash_ignores_input_order():
    shuffled = FILLS[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != FILLS
    assert fills_hash(shuffled) == fills_hash(FILLS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "9"),
        ("order_id", "O-x"),
        ("signal_id", "mom:x"),
        ("symbol", "Y"),
        ("side", Side.SELL),
        ("qty", 2.0000000001),
        ("price", 10.000000000001),
        ("ts_ns", 2),
        ("fee", 0.5),
        ("fee_qty", 0.001),
        ("fee_asset", "BNB"),
    ],
)
def test_fills_hash_changes_when_any_field_changes(field, value):
    changed = [dataclasses.replace(FILLS[0], **{field: value}), *FILLS[1:]]
    assert fills_hash(changed) != fills_hash(FILLS)


def test_fills_hash_treats_int_and_float_quantities_alike():
    assert fills_hash([dataclasses.replace(FILLS[0], qty=2)]) == fills_hash(FILLS[:1])


def test_fees_change_the_hash_and_fee_free_fills_hash_as_before_fees_existed():
    f = FILLS[0]
    line = (
        f"{f.id},{f.order_id},{f.signal_id},{f.symbol},{f.side.value},"
        f"{float(f.qty)!r},{float(f.price)!r},{f.ts_ns}\n"
    )
    assert fills_hash([f]) == hashlib.sha256(line.encode()).hexdigest()
    assert fills_hash([dataclasses.replace(f, fee=0.01)]) != fills_hash([f])


def test_summary_carries_fees_net_pnl_after_fees_and_the_capital_base():
    fills = [
        Fill("1", "O-a:1", "a:1", "X", Side.BUY, 1.0, 10.0, 1, fee=0.5),
        Fill("2", "O-a:2", "a:2", "X", Side.SELL, 1.0, 12.0, 2, fee=0.25),
    ]
    s = build_result(fills, [], TICKS, signals=2, capital=1_000.0).summary
    assert (s["realized_pnl"], s["fees"], s["net_pnl_after_fees"]) == (2.0, 0.75, 1.25)
    assert (s["capital"], s["return_on_capital"]) == (1_000.0, 0.00125)


def test_no_fills_hash_to_sha256_of_nothing():
    assert fills_hash([]) == hashlib.sha256(b"").hexdigest()


# -- frames and summary -------------------------------------------------------------------------


def test_fills_frame_columns_and_strategy_id():
    f = [Fill("1", "O-a:b:3", "a:b:3", "X", Side.BUY, 1.0, 10.0, 1_700_000_000_123_456_789)]
    r = build_result(f, [], TICKS, signals=1)
    assert list(r.fills.columns) == [
        "fill_id",
        "order_id",
        "signal_id",
        "strategy_id",
        "symbol",
        "side",
        "qty",
        "price",
        "fee",
        "ts",
        "ts_ns",
    ]
    row = r.fills.iloc[0]
    assert row["strategy_id"] == "a:b"
    assert row["side"] == "BUY"
    assert row["ts"] == pd.Timestamp("2023-11-14T22:13:20.123456789", tz="UTC")
    assert row["ts_ns"] == 1_700_000_000_123_456_789


def test_summary_has_documented_keys_in_order_and_values():
    # Buy 2@10; sell 1@12 (+2), 1@9 (-1), 1@11 (opens a short, still open).
    s = result().summary
    assert list(s) == SUMMARY_KEYS
    assert (s["ticks"], s["symbols"], s["signals"], s["fills"], s["orders"]) == (5, 1, 4, 4, 0)
    assert (s["trades"], s["wins"], s["losses"], s["win_rate"]) == (2, 1, 1, 0.5)
    assert s["realized_pnl"] == 1.0
    assert s["unrealized_pnl"] == 0.5  # short 1 from 11, marked at 10.5
    assert s["net_pnl"] == 1.5
    assert s["final_positions"] == {"X": -1.0}
    assert s["fills_sha256"] == fills_hash(FILLS)
    # Equity 0, 4, 1, 1, 1.5: worst drop is 4 -> 1.
    assert s["max_drawdown"] == -3.0


def test_sharpe_is_mean_over_sample_stdev_of_trade_pnl():
    # Trade PnL +2 and -1: mean 0.5, stdev sqrt(4.5).
    s = result().summary
    assert s["sharpe"] == round(0.5 / 4.5**0.5, 10)
    assert "not annualised" in s["sharpe_basis"]


def test_summary_floats_are_rounded_for_stable_json():
    f = [fill("1", "BUY", 1, 0.1, 1), fill("2", "SELL", 1, 0.4, 2)]
    t = TickTable(["X", "X"], [1, 2], [0.1, 0.4], [1.0, 1.0])
    s = build_result(f, [], t, signals=2).summary
    assert 0.4 - 0.1 != 0.3
    assert s["net_pnl"] == 0.3
    assert json.loads(json.dumps(s)) == s


def test_orders_come_from_the_journal_sorted_without_wall_clock():
    journal = Journal(":memory:")
    for seq, ts in ((2, 20), (1, 10)):
        sig = Signal(f"mom:{seq}", "mom", seq, "X", Side.BUY, 1.0, 10.0, ts)
        journal.begin_order(sig, Order.from_signal(sig), OrderStatus.PENDING_NEW)
    journal.finish_order("O-mom:1", OrderStatus.FILLED, [fill("1", "BUY", 1, 10.0, 10)])
    journal.finish_order("O-mom:2", OrderStatus.REJECTED, [], reason="risk: max position")
    r = build_result(journal.fills(), journal.orders(), TICKS, signals=2)
    assert list(r.orders.columns) == [
        "order_id",
        "signal_id",
        "symbol",
        "side",
        "qty",
        "price",
        "ts_ns",
        "status",
        "reason",
    ]
    assert list(r.orders["order_id"]) == ["O-mom:1", "O-mom:2"]
    assert list(r.orders["status"]) == ["FILLED", "REJECTED"]
    assert r.orders["reason"].iloc[1] == "risk: max position"
    assert (r.summary["orders"], r.summary["rejected"]) == (2, 1)


def test_empty_replay_gives_zeros_and_no_sharpe():
    for ticks in (TickTable.empty(), TICKS):
        s = build_result([], [], ticks, signals=0).summary
        assert s["trades"] == s["fills"] == s["wins"] == s["losses"] == 0
        assert s["net_pnl"] == s["max_drawdown"] == s["win_rate"] == 0.0
        assert s["sharpe"] is None
        assert s["final_positions"] == {}


def test_one_trade_has_no_sharpe():
    f = [fill("1", "BUY", 1, 10.0, 1), fill("2", "SELL", 1, 12.0, 2)]
    assert build_result(f, [], TICKS, signals=2).summary["sharpe"] is None


# -- save, report, figures ----------------------------------------------------------------------


def test_save_writes_every_file_and_returns_their_paths(tmp_path):
    out = tmp_path / "deep" / "out"
    r = result(run={"mode": "fast", "elapsed_s": 0.25, "data_path": tmp_path})
    paths = r.save(out)
    assert list(paths) == SAVED
    assert all(p.parent == out and p.is_file() for p in paths.values())
    assert paths["fills.sha256"].read_text() == fills_hash(FILLS) + "\n"
    assert json.loads(paths["run.json"].read_text())["data_path"] == str(tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["fills.parquet"]), r.fills)
    assert len(pd.read_parquet(paths["trades.parquet"])) == 2


def test_summary_json_is_byte_identical_across_runs(tmp_path):
    shuffled = list(reversed(FILLS))
    a = build_result(FILLS, [], TICKS, signals=4, run={"elapsed_s": 1.0}).save(tmp_path / "a")
    b = build_result(shuffled, [], TICKS, signals=4, run={"elapsed_s": 2.0}).save(tmp_path / "b")
    text = a["summary.json"].read_bytes()
    assert text == b["summary.json"].read_bytes()
    assert text.endswith(b"}\n")
    assert text.decode() == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert a["run.json"].read_bytes() != b["run.json"].read_bytes()


def test_report_html_is_standalone_with_both_figures(tmp_path):
    html = result().save(tmp_path)["report.html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert 'id="wb-price"' in html and 'id="wb-equity"' in html
    assert "Plotly.newPlot" in html
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # the library, inline, once
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert fills_hash(FILLS) in html


def test_price_figure_marks_buys_and_sells_at_their_fills():
    fig = result().figures()["price"]
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    buy, sell = markers["X buy"], markers["X sell"]
    assert (buy.marker.symbol, buy.marker.color) == ("triangle-up", "green")
    assert (sell.marker.symbol, sell.marker.color) == ("triangle-down", "red")
    assert list(buy.y) == [10.0]
    assert list(sell.y) == [12.0, 9.0, 11.0]
    line = next(t for t in fig.data if t.mode == "lines")
    assert list(line.y) == [10.0, 12.0, 9.0, 11.0, 10.5]


def test_equity_figure_has_equity_over_drawdown_on_a_shared_axis():
    fig = result().figures()["equity"]
    eq, dd = fig.data
    assert list(eq.y) == [0.0, 4.0, 1.0, 1.0, 1.5]
    assert list(dd.y) == [0.0, 0.0, -3.0, -3.0, -2.5]
    assert (eq.yaxis, dd.yaxis) == ("y", "y2")
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"


def test_empty_result_saves_and_plots(tmp_path):
    r = build_result([], [], TickTable.empty(), signals=0)
    assert set(r.figures()) == {"price", "equity"}
    assert list(r.save(tmp_path)) == SAVED


def test_repr_html_is_a_summary_table():
    html = result()._repr_html_()
    assert html.startswith("<table") and "net_pnl" in html and "1.5" in html
    assert "net_pnl=1.5" in repr(result())


def test_a_built_result_has_no_config_until_replay_sets_it():
    assert result().config is None


def test_equity_and_drawdown_are_after_fees():
    fills = [
        Fill("1", "O-a:1", "a:1", "X", Side.BUY, 1.0, 10.0, 1, fee=0.5),
        Fill("2", "O-a:2", "a:2", "X", Side.SELL, 1.0, 10.0, 2, fee=0.25),
    ]
    r = build_result(fills, [], TICKS, signals=2)
    assert r.equity["equity"].iloc[-1] == -0.75 == r.summary["net_pnl_after_fees"]
    assert r.summary["max_drawdown"] == -0.75


def test_fees_paid_in_a_third_asset_are_not_summed_as_quote_money():
    """0.5 BNB twice is no 1.0 of the quote currency: the summary and the curve agree."""
    f = [
        Fill("1", "O-m:1", "m:1", "X", Side.BUY, 1.0, 10.0, 1, 0.5, fee_asset="BNB"),
        Fill("2", "O-m:2", "m:2", "X", Side.SELL, 1.0, 11.0, 2, 0.5, fee_asset="BNB"),
        Fill("3", "O-m:3", "m:3", "X", Side.BUY, 1.0, 10.0, 3, 0.25),
    ]
    r = build_result(f, [], TICKS, signals=3)
    assert r.summary["fees"] == 0.25
    assert r.fills["fee"].tolist() == [0.0, 0.0, 0.25]
