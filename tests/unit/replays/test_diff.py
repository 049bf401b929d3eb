"""`workbench diff`: differences of two replay output folders, exact to the nanosecond."""

from __future__ import annotations

import pandas as pd

from workbench.replays.diff import diff_runs, format_diff

T0 = 1_700_000_000_123_456_789


def write_run(folder, rows):
    folder.mkdir()
    df = pd.DataFrame(rows, columns=["signal_id", "symbol", "side", "qty", "price", "ts_ns"])
    df.to_parquet(folder / "orders.parquet")
    df.to_parquet(folder / "fills.parquet")
    return folder


def test_a_run_with_a_signal_more_prints_its_time_as_an_integer(tmp_path):
    # The one-sided row made the merged ts_ns column float: "ts_ns=1.7e+18".
    common = ("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0)
    a = write_run(tmp_path / "a", [common, ("sr-1:2", "ABC", "SELL", 1.0, 101.0, T0 + 7)])
    b = write_run(tmp_path / "b", [common])
    diff = diff_runs(a, b)
    assert list(diff["field"]) == ["only in a", "only in a"]  # the signal and its fill
    assert diff["ts_ns"].tolist() == [T0 + 7, T0 + 7]
    assert f"ts_ns={T0 + 7}" in format_diff(diff)


def test_times_a_few_nanoseconds_apart_differ_whatever_else_the_runs_hold(tmp_path):
    # As floats, T0 and T0 + 100 are the same number.
    a = write_run(tmp_path / "a", [("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0)])
    b = write_run(
        tmp_path / "b",
        [("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0 + 100), ("sr-1:2", "ABC", "BUY", 1.0, 9.0, T0)],
    )
    diff = diff_runs(a, b)
    ts = diff[diff["field"] == "ts_ns"]
    assert ts[["a", "b"]].values.tolist() == [[str(T0), str(T0 + 100)]] * 2
