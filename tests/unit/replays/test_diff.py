"""`workbench diff`: differences of two replay output folders, exact to the nanosecond."""

from __future__ import annotations

import pandas as pd

from workbench.replays.diff import diff_runs, format_diff

T0 = 1_700_000_000_123_456_789


def write_run(folder, rows, fees=None):
    folder.mkdir()
    df = pd.DataFrame(rows, columns=["signal_id", "symbol", "side", "qty", "price", "ts_ns"])
    df.to_parquet(folder / "orders.parquet")
    df.assign(fee=fees or [0.0] * len(df)).to_parquet(folder / "fills.parquet")
    return folder


def test_fees_are_compared_and_tiny_prices_relatively(tmp_path):
    # A fill that paid twice the fee, and a price of 1e-10 against 1.5e-10, showed no difference.
    rows = [("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0), ("sr-1:2", "XYZ", "BUY", 1e6, 1e-10, T0 + 1)]
    a = write_run(tmp_path / "a", rows, fees=[0.01, 0.0])
    other = [rows[0], ("sr-1:2", "XYZ", "BUY", 1e6, 1.5e-10, T0 + 1)]
    b = write_run(tmp_path / "b", other, fees=[0.02, 0.0])
    diff = diff_runs(a, b)
    assert list(zip(diff["kind"], diff["signal_id"], diff["field"], strict=True)) == [
        ("fill", "sr-1:1", "fee"), ("signal", "sr-1:2", "price"), ("fill", "sr-1:2", "price"),
    ]  # fmt: skip
    assert diff_runs(a, a).empty


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


def _trade(journal, seq: int) -> None:
    from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal

    s = Signal(f"sr-1:{seq}", "sr-1", seq, "ABC", Side.BUY, 1.0, 100.0, seq)
    o = Order.from_signal(s, journal.client_id_salt)
    journal.begin_order(s, o, OrderStatus.PENDING_NEW)
    journal.finish_order(o.id, OrderStatus.FILLED, [Fill(f"F-{seq}", o.id, s.id, "ABC",
                                                         Side.BUY, 1.0, 100.0, seq)])  # fmt: skip


def test_a_live_journal_is_read_from_one_snapshot(tmp_path, monkeypatch):
    # Between the two reads the executor journals a signal and its fill: the fill
    # must not show without its signal (a false "only in b").
    from workbench.execution.journal import Journal
    from workbench.replays import diff

    live = Journal(tmp_path / "journal.sqlite")
    _trade(live, 1)
    real, calls = pd.read_sql_query, []

    def read(sql, con, *a, **k):
        out = real(sql, con, *a, **k)
        calls.append(sql)
        if len(calls) == 1:
            _trade(live, 2)
        return out

    monkeypatch.setattr(diff.pd, "read_sql_query", read)
    try:
        rec = diff.load_run(tmp_path)
    finally:
        live.close()
    assert list(rec.signals["signal_id"]) == list(rec.fills["signal_id"]) == ["sr-1:1"]


def test_a_run_folder_named_with_uri_characters_is_read_and_nothing_created(tmp_path):
    import pytest

    from workbench.exceptions import DataError
    from workbench.execution.journal import Journal
    from workbench.replays.diff import load_run

    for name in ("run?1", "run#1", "run%41"):
        folder = tmp_path / name
        folder.mkdir()
        j = Journal(folder / "journal.sqlite")
        _trade(j, 1)
        j.close()
        assert list(load_run(folder).fills["signal_id"]) == ["sr-1:1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run#1", "run%41", "run?1"]
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.sqlite"):
        load_run(tmp_path / "empty.sqlite")


def test_a_truncated_replay_output_is_an_error_naming_the_file_exit_2(tmp_path, capsys):
    # A cut-short fills.parquet gave pyarrow's traceback and exit 1 ("they differ").
    from workbench.cli import main

    row = ("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0)
    a, b = write_run(tmp_path / "a", [row]), write_run(tmp_path / "b", [row])
    whole = (b / "fills.parquet").read_bytes()
    (b / "fills.parquet").write_bytes(whole[: len(whole) // 2])
    assert main(["diff", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {b / 'fills.parquet'}: not a readable replay output: ")
    assert "Traceback" not in err


def test_a_replay_output_without_the_columns_is_an_error_naming_the_file(tmp_path):
    import pytest

    from workbench.exceptions import DataError
    from workbench.replays.diff import load_run

    b = write_run(tmp_path / "b", [("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0)])
    pd.DataFrame({"x": [1]}).to_parquet(b / "orders.parquet")
    with pytest.raises(DataError, match=r"orders\.parquet: not a readable replay output: No match"):
        load_run(b)


def test_runs_from_before_fills_had_a_fee_are_still_compared(tmp_path):
    # A version-0 journal and an older replay output have no fee column: diff refused both.
    import shutil
    from pathlib import Path

    v0 = Path(__file__).resolve().parents[2] / "fixtures" / "journal_v0.sqlite"
    for name in ("a.sqlite", "b.sqlite"):  # copies: reading one leaves -wal/-shm files
        shutil.copy(v0, tmp_path / name)
    assert diff_runs(tmp_path / "a.sqlite", tmp_path / "b.sqlite").empty
    old = tmp_path / "old"
    old.mkdir()
    columns = ["signal_id", "symbol", "side", "qty", "price", "ts_ns"]
    rows = pd.DataFrame([("sr-1:1", "ABC", "BUY", 1.0, 100.0, T0)], columns=columns)
    rows.to_parquet(old / "orders.parquet")
    rows.to_parquet(old / "fills.parquet")  # no fee
    new = write_run(tmp_path / "new", list(rows.itertuples(index=False, name=None)), fees=[0.5])
    assert list(diff_runs(old, new)["field"]) == ["fee"]
