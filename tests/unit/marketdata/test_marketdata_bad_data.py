"""Every kind of bad tick file is a DataError naming the file, the row and the column."""

import os
from pathlib import Path

import pytest

from workbench.exceptions import DataError
from workbench.marketdata import load_ticks

ISO = "timestamp,bid,ask\n"
OK_ISO = "2020-01-01T00:00:00Z,1.1,1.2\n"
HIST = "20200101 170000065,1.1,1.2,0\n"


def write(tmp_path: Path, text: str, name: str = "eurusd-ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_names(err: DataError, path: Path, row: int | None, column: str | None) -> None:
    message = str(err)
    assert err.path == str(path)
    assert path.name in message
    assert err.row == row
    assert err.column == column
    if row is not None:
        assert f"row {row}" in message
    if column is not None:
        assert repr(column) in message


ROW_CASES = {
    "unparseable ISO timestamp": (ISO + OK_ISO + "yesterday,1.1,1.2\n", 2, "timestamp", "ISO"),
    "impossible ISO date": (ISO + OK_ISO + "2020-02-30T00:00:00Z,1.1,1.2\n", 2, "timestamp", ""),
    "unparseable ts_ns": ("ts_ns,price\n1,1.0\n1.5e9,1.0\n", 2, "ts_ns", "1.5e9"),
    "ts_ns past int64": ("ts_ns,price\n1,1.0\n99999999999999999999,1.0\n", 2, "ts_ns", "2262"),
    "negative ts_ns": ("ts_ns,price\n-5,1.0\n", 1, "ts_ns", "'-5' is not between 1970"),
    "ISO date past 2262": (ISO + OK_ISO + "9999-01-01T00:00:00Z,1.1,1.2\n", 2, "timestamp", "9999"),
    "unparseable HistData stamp": (HIST + "20201301 170000065,1.1,1.2,0\n", 2, "timestamp", ""),
    "HistData seconds out of range": (HIST + "20200101 170060000,1.1,1.2,0\n", 2, "timestamp", ""),
    "unparseable number": (
        ISO + OK_ISO + OK_ISO + "2020-01-01T00:00:01Z,abc,1.2\n",
        3,
        "bid",
        "abc",
    ),
    "NaN price": ("ts_ns,price\n1,1.0\n2,nan\n", 2, "price", "nan"),
    "zero price": ("ts_ns,price\n1,0\n", 1, "price", "> 0"),
    "negative price": ("ts_ns,price\n1,1.0\n2,-3.5\n", 2, "price", "-3.5"),
    "infinite price": ("ts_ns,price\n1,inf\n", 1, "price", "inf"),
    "negative ask": (ISO + "2020-01-01T00:00:00Z,1.1,-1.2\n", 1, "ask", "-1.2"),
    "NaN bid": (ISO + OK_ISO + "2020-01-01T00:00:00Z,NaN,1.2\n", 2, "bid", "nan"),
    "crossed quote": (
        ISO + OK_ISO + "2020-01-01T00:00:01Z,1.3,1.2\n",
        2,
        "bid",
        "bid 1.3 > ask 1.2",
    ),
    "mid overflowing to inf": (  # both quotes finite: the mid is not
        ISO + OK_ISO + "2020-01-01T00:00:01Z,1.5e308,1.7e308\n",
        2,
        "bid",
        "the mid of bid and ask must be a finite number > 0, got inf",
    ),
    "negative size": ("ts_ns,price,size\n1,1.0,1\n2,1.0,-2\n", 2, "size", "-2"),
    "NaN size": ("ts_ns,price,size\n1,1.0,nan\n", 1, "size", "nan"),
    "empty symbol": ("ts_ns,symbol,price\n1,A,1.0\n2,,1.0\n", 2, "symbol", "empty symbol"),
    # 'ABC ' was another symbol: a strategy on ABC saw half the ticks.
    "spaced symbol": ("ts_ns,symbol,price\n1,ABC,1.0\n2,ABC ,1.0\n", 2, "symbol", "'ABC ' has"),
    "digit separator": ("ts_ns,price\n1,1.0\n2,1_00.0\n", 2, "price", "'1_00.0'"),
    "separated ts_ns": ("ts_ns,price\n1,1.0\n1_000,1.0\n", 2, "ts_ns", "'1_000'"),
    "backwards timestamp": (
        "ts_ns,price\n5,1.0\n7,1.0\n6,1.0\n",
        3,
        "ts_ns",
        "1970-01-01T00:00:00.000000006Z (6) comes after 1970-01-01T00:00:00.000000007Z (7)",
    ),
    "too few fields": ("ts_ns,price\n1,1.0\n2\n", 2, None, "expected 2 fields, found 1"),
    "too many fields": ("ts_ns,price\n1,1.0,9\n", 1, None, "expected 2 fields, found 3"),
}


@pytest.mark.parametrize("case", ROW_CASES, ids=list(ROW_CASES))
def test_bad_row_names_file_row_and_column(tmp_path: Path, case: str) -> None:
    text, row, column, fragment = ROW_CASES[case]
    path = write(tmp_path, text)

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert_names(err.value, path, row, column)
    assert fragment in str(err.value)


def test_first_bad_row_is_reported_across_columns(tmp_path: Path) -> None:
    path = write(tmp_path, ISO + OK_ISO + OK_ISO + "2020-01-01T00:00:00Z,x,1.2\nnope,1.1,1.2\n")

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert (err.value.row, err.value.column) == (3, "bid")


def test_bad_row_in_a_later_chunk_gets_its_file_row(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("workbench.marketdata.loaders.CHUNK_ROWS", 3)
    rows = [f"{k},1.0\n" for k in range(1, 11)]
    rows[7] = "8,oops\n"
    path = write(tmp_path, "ts_ns,price\n" + "".join(rows))

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert_names(err.value, path, 8, "price")


def test_blank_lines_are_skipped_but_keep_their_row_number(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n\n3,-1\n\n")

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert err.value.row == 3
    assert len(load_ticks(write(tmp_path, "ts_ns,price\n1,1.0\n\n3,1.0\n\n", "b.csv"))) == 2


def test_backwards_timestamp_across_rows_names_both_times(tmp_path: Path) -> None:
    path = write(tmp_path, ISO + "2020-01-01T00:00:02Z,1.1,1.2\n2020-01-01T00:00:01Z,1.1,1.2\n")

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert_names(err.value, path, 2, "timestamp")
    assert "2020-01-01T00:00:01.000000000Z" in str(err.value)
    assert "2020-01-01T00:00:02.000000000Z" in str(err.value)
    assert "on row 1" in str(err.value)


STRUCTURE_CASES = {
    "empty file": ("", "file is empty"),
    "blank lines only": ("\n  \n\n", "file is empty"),
    "header only": ("ts_ns,price\n", "no data rows"),
    "header and blank lines": ("ts_ns,price\n\n\n", "no data rows"),
}


@pytest.mark.parametrize("repair", [False, True])
@pytest.mark.parametrize("case", STRUCTURE_CASES, ids=list(STRUCTURE_CASES))
def test_empty_files_are_errors_even_with_repair(tmp_path: Path, case: str, repair: bool) -> None:
    text, fragment = STRUCTURE_CASES[case]
    path = write(tmp_path, text)

    with pytest.raises(DataError, match=fragment) as err:
        load_ticks(path, repair=repair)

    assert_names(err.value, path, None, None)


@pytest.mark.parametrize("repair", [False, True])
def test_missing_price_column_lists_existing_and_required(tmp_path: Path, repair: bool) -> None:
    path = write(tmp_path, "ts_ns,volume\n1,2\n")

    with pytest.raises(DataError) as err:
        load_ticks(path, repair=repair)

    message = str(err.value)
    assert_names(err.value, path, None, "price")
    assert "['ts_ns', 'volume']" in message
    assert "bid and ask" in message


def test_missing_timestamp_column(tmp_path: Path) -> None:
    path = write(tmp_path, "time,price\n1,2\n")

    with pytest.raises(DataError, match="ts_ns, ts or timestamp") as err:
        load_ticks(path)

    assert_names(err.value, path, None, "ts_ns/ts/timestamp")


def test_mid_price_needs_both_bid_and_ask(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,bid\n2020-01-01,1.0\n")

    with pytest.raises(DataError) as err:
        load_ticks(path)

    assert_names(err.value, path, None, "ask")
    assert load_ticks(path, price="bid").price.tolist() == [1.0]


def test_duplicate_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price,Price\n1,2,3\n")

    with pytest.raises(DataError, match="duplicate column 'Price'"):
        load_ticks(path)


def test_headerless_histdata_read_as_csv_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, HIST)

    with pytest.raises(DataError, match="fmt='histdata'"):
        load_ticks(path, fmt="csv")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    with pytest.raises(DataError, match="No such file") as err:
        load_ticks(path)

    assert err.value.path == str(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file"):
        load_ticks(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n")
    path.chmod(0)

    with pytest.raises(DataError, match="Permission denied"):
        load_ticks(path)


@pytest.mark.parametrize("fmt", ["auto", "csv", "histdata"])
def test_binary_garbage_is_not_a_csv(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(bytes(range(256)) * 10)

    with pytest.raises(DataError, match="not a CSV or Parquet file") as err:
        load_ticks(path, fmt=fmt)

    assert err.value.path == str(path)


def test_non_utf8_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes("ts_ns,price,note\n1,1.0,caf\xe9\n".encode("latin-1"))

    with pytest.raises(DataError, match="not UTF-8"):
        load_ticks(path)


def test_non_utf8_after_the_sniffed_head_names_a_row(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    body = "".join(f"{k},1.0\n" for k in range(1, 20_001)).encode()
    path.write_bytes(b"ts_ns,price\n" + body + b"20001,\xff\n")

    with pytest.raises(DataError, match="not readable as CSV") as err:
        load_ticks(path)

    assert err.value.row is not None


@pytest.mark.parametrize("fmt", ["auto", "parquet"])
def test_garbage_named_parquet_is_an_error(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n", "ticks.parquet")

    with pytest.raises(DataError, match="not a readable Parquet file") as err:
        load_ticks(path, fmt=fmt)

    assert err.value.path == str(path)


def test_csv_read_as_parquet_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n")

    with pytest.raises(DataError, match="Parquet"):
        load_ticks(path, fmt="parquet")


@pytest.mark.parametrize(("option", "value"), [("fmt", "xlsx"), ("price", "last")])
def test_unknown_options_are_value_errors(tmp_path: Path, option: str, value: str) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n")

    with pytest.raises(ValueError, match=f"No .* named '{value}'"):
        load_ticks(path, **{option: value})


def test_a_parquet_timestamp_before_1970_is_named_as_in_a_csv(tmp_path: Path) -> None:
    # The columnar fast path took int64 -5 (and an Arrow 1969 timestamp) as they came.
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, ts in (
        ("ns.parquet", pa.array([-5, 1], pa.int64())),
        ("stamp.parquet", pa.array([-(10**9), 1], pa.timestamp("ns", tz="UTC"))),
    ):
        column = "ts_ns" if name == "ns.parquet" else "ts"
        path = tmp_path / name
        pq.write_table(pa.table({column: ts, "price": [1.0, 1.0]}), path)
        with pytest.raises(DataError, match="is not between 1970 and 2262") as e:
            load_ticks(path)
        assert_names(e.value, path, 1, column)
