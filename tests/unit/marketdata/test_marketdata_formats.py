"""Accepted columns and formats, symbol rules, and CSV/Parquet round trips."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.exceptions import DataError
from workbench.marketdata import TickTable, load_ticks, symbol_from_path, write_ticks

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1) * 1000


def write(tmp_path: Path, text: str, name: str = "abc-ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_workbench_csv_with_all_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,symbol,price,size\n1,X,1.5,2\n2,Y,2.5,0\n3,X,3.5,1e3\n")

    table = load_ticks(path)

    assert table == TickTable(["X", "Y", "X"], [1, 2, 3], [1.5, 2.5, 3.5], [2.0, 0.0, 1000.0])


def test_column_names_are_case_and_space_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, " TS_NS , Price \n1,1.5\n")

    assert load_ticks(path).price.tolist() == [1.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05.25+02:00", datetime(2024, 1, 2, 1, 4, 5, 250_000, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-01T22:04:05-05:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("column", ["ts", "timestamp"])
def test_iso_timestamps_become_utc_ns(
    tmp_path: Path, column: str, text: str, expected: datetime
) -> None:
    path = write(tmp_path, f"{column},price\n{text},1.0\n")

    assert load_ticks(path).ts_ns.tolist() == [ns(expected)]


def test_iso_nanoseconds_are_kept_exactly(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,price\n2024-01-02T00:00:00.123456789Z,1\n2024-01-02T00:00:01.5,1\n")

    base = ns(datetime(2024, 1, 2, tzinfo=UTC))
    assert load_ticks(path).ts_ns.tolist() == [base + 123_456_789, base + 1_500_000_000]


def test_mixed_naive_and_aware_iso_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,price\n2024-01-02T00:00:00,1\n2024-01-02T01:00:00+01:00,1\n")

    ts = load_ticks(path).ts_ns.tolist()
    assert ts[0] == ts[1]


def test_price_column_wins_over_bid_and_ask(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,bid,ask,price\n1,1.0,3.0,2.5\n")

    assert load_ticks(path, price="bid").price.tolist() == [2.5]


@pytest.mark.parametrize(("mode", "expected"), [("mid", 2.0), ("bid", 1.0), ("ask", 3.0)])
def test_price_modes(tmp_path: Path, mode: str, expected: float) -> None:
    path = write(tmp_path, "ts_ns,bid,ask\n1,1.0,3.0\n")

    assert load_ticks(path, price=mode).price.tolist() == [expected]


def test_locked_quote_is_allowed(tmp_path: Path) -> None:
    assert load_ticks(write(tmp_path, "ts_ns,bid,ask\n1,2.0,2.0\n")).price == [2.0]


def test_symbol_column_wins_over_argument_and_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,symbol,price\n1,XYZ,1.0\n", "eurusd-x.csv")

    assert load_ticks(path, symbol="ARG").symbol == ["XYZ"]


def test_symbol_argument_wins_over_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n2,1.0\n", "eurusd-x.csv")

    assert load_ticks(path, symbol="ARG").symbol == ["ARG", "ARG"]
    assert load_ticks(path).symbol == ["EURUSD", "EURUSD"]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("eurusd-quotes-2020-01.csv", "EURUSD"),
        ("usdjpy_2013.parquet", "USDJPY"),
        ("/data/es.csv", "ES"),
        ("-odd.csv", "-ODD"),
    ],
)
def test_symbol_from_path(name: str, symbol: str) -> None:
    assert symbol_from_path(name) == symbol


def test_histdata_format_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "20200101 170000065,1.0,2.0,0\n20200101 170000065,1.0,2.0,0\n", "x.txt")

    table = load_ticks(path, fmt="histdata")

    expected = ns(datetime(2020, 1, 1, 22, 0, 0, 65_000, tzinfo=UTC))
    assert table.ts_ns.tolist() == [expected, expected]
    assert table.price.tolist() == [1.5, 1.5]
    assert table.size.tolist() == [1.0, 1.0]


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffts_ns,price\r\n1,1.0\r\n".encode())

    assert load_ticks(path).ts_ns.tolist() == [1]


def test_rows_are_read_across_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("workbench.marketdata.loaders.CHUNK_ROWS", 3)
    path = write(tmp_path, "ts_ns,price\n" + "".join(f"{k},{k}.5\n" for k in range(1, 11)))

    table = load_ticks(path)

    assert table.ts_ns.tolist() == list(range(1, 11))
    assert table.price.tolist() == [k + 0.5 for k in range(1, 11)]


def tricky_table() -> TickTable:
    prices = [
        0.1 + 0.2,
        1e-7,
        123456789.12345679,
        1.1215600000000001,
        5e-324,
        1.7976931348623157e308,
    ]
    n = len(prices)
    symbols = ["A", "A", "B,C", 'Q"T', "A", "é"]
    return TickTable(symbols, [k * 1_000_000_007 for k in range(n)], prices, [0.5] * n)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_load_gives_an_equal_table(tmp_path: Path, suffix: str) -> None:
    table = tricky_table()
    path = write_ticks(table, tmp_path / "sub" / f"t{suffix}")

    assert load_ticks(path) == table


def test_written_csv_has_the_documented_header(tmp_path: Path) -> None:
    path = write_ticks(TickTable(["A"], [1], [0.1], [1.0]), tmp_path / "t.csv")

    assert path.read_text() == "ts_ns,symbol,price,size\n1,A,0.1,1.0\n"


def test_write_rejects_unknown_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"No tick file format for suffix '\.xlsx'"):
        write_ticks(TickTable.empty(), tmp_path / "t.xlsx")


def test_parquet_is_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    table = tricky_table()
    write_ticks(table, tmp_path / "t.parquet")
    (tmp_path / "t.parquet").rename(tmp_path / "t.csv")

    assert load_ticks(tmp_path / "t.csv") == table


def write_parquet(tmp_path: Path, columns: dict, name: str = "abc-q.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_parquet_arrow_timestamps_of_any_unit_and_zone(
    tmp_path: Path, unit: str, tz: str | None
) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamp = pa.array([when if tz else when.replace(tzinfo=None)], pa.timestamp(unit, tz=tz))
    path = write_parquet(tmp_path, {"ts": stamp, "bid": [1.0], "ask": [2.0]})

    table = load_ticks(path)

    assert table.ts_ns.tolist() == [ns(when)]
    assert table.price.tolist() == [1.5]
    assert table.symbol == ["ABC"]


def test_parquet_with_iso_text_dictionary_symbols_and_int_prices(tmp_path: Path) -> None:
    symbols = pa.array(["X", "Y"]).dictionary_encode()
    path = write_parquet(
        tmp_path,
        {
            "timestamp": ["2024-01-02T00:00:00Z", "2024-01-02T00:00:01Z"],
            "symbol": symbols,
            "price": pa.array([3, 4], pa.int32()),
            "size": pa.array([1.5, 2.5], pa.float32()),
        },
    )

    table = load_ticks(path)

    base = ns(datetime(2024, 1, 2, tzinfo=UTC))
    assert table == TickTable(["X", "Y"], [base, base + 10**9], [3.0, 4.0], [1.5, 2.5])


def test_parquet_null_is_a_missing_value_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, {"ts_ns": [1, 2, 3], "price": [1.0, None, 2.0]})

    with pytest.raises(DataError, match="missing value") as err:
        load_ticks(path)

    assert (err.value.row, err.value.column) == (2, "price")
    assert path.name in str(err.value)


def test_parquet_repair_removes_nulls_and_sorts(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, {"ts_ns": [3, None, 1], "price": [1.0, 2.0, 3.0]})

    table = load_ticks(path, repair=True)

    assert table.ts_ns.tolist() == [1, 3]
    assert table.price.tolist() == [3.0, 1.0]
    assert len(table.notes) == 2


@pytest.mark.parametrize(("column", "values"), [("ts_ns", [1.0]), ("ts", [1]), ("ts", [1.0])])
def test_parquet_timestamp_column_of_the_wrong_type_is_rejected(
    tmp_path: Path, column: str, values: list
) -> None:
    path = write_parquet(tmp_path, {column: values, "price": [1.0]})

    with pytest.raises(DataError, match="cannot hold timestamps") as err:
        load_ticks(path)

    assert err.value.column == column


def test_parquet_ts_ns_as_text_is_parsed_as_integers(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, {"ts_ns": ["5", "6"], "price": ["1.5", "2"]})

    table = load_ticks(path)

    assert (table.ts_ns.tolist(), table.price.tolist()) == ([5, 6], [1.5, 2.0])


def test_missing_parquet_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file: No such file"):
        load_ticks(tmp_path / "nope.parquet")


def test_parquet_missing_column_is_an_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, {"ts_ns": [1], "bid": [1.0]})

    with pytest.raises(DataError, match="missing required column 'ask'"):
        load_ticks(path)


def test_empty_parquet_is_an_error(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path, {"ts_ns": pa.array([], pa.int64()), "price": pa.array([], pa.float64())}
    )

    with pytest.raises(DataError, match="no data rows"):
        load_ticks(path)


def test_number_texts_parse_exactly_whether_repeated_or_not(tmp_path: Path) -> None:
    sizes = ["0", "-0", "1e3", "1000", "0"] + [repr(k / 7) for k in range(1, 2000)]
    body = "".join(f"{k},0.1,{s}\n" for k, s in enumerate(sizes))
    table = load_ticks(write(tmp_path, "ts_ns,price,size\n" + body))

    assert [repr(v) for v in table.size.tolist()] == [repr(float(s)) for s in sizes]
    assert table.price.tolist() == [0.1] * len(sizes)


def test_parquet_read_as_csv_says_so(tmp_path: Path) -> None:
    path = write_ticks(tricky_table(), tmp_path / "t.parquet")

    with pytest.raises(DataError, match="this is a Parquet file"):
        load_ticks(path, fmt="csv")
