"""The loader on real quote files nobody in this project made (../shared/data)."""

import csv
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest

from workbench.marketdata import load_ticks

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
EURUSD = DATA / "eurusd-quotes-2020-01.csv"
USDJPY = DATA / "usdjpy-quotes-2013-01.csv"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real market data folder {DATA} is absent (a user's clone)"
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EST = timezone(timedelta(hours=-5))


def ns(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1) * 1000


def raw_rows(path: Path, header: bool) -> list[list[str]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[1:] if header else rows


def test_eurusd_histdata_file_loads_every_row() -> None:
    table = load_ticks(EURUSD)

    assert len(table) == 9_500
    assert set(table.symbol) == {"EURUSD"}
    assert table.notes == []


def test_eurusd_times_are_est_fixed_offset_converted_to_utc() -> None:
    table = load_ticks(EURUSD)

    assert table.ts_ns[0] == ns(datetime(2020, 1, 1, 22, 0, 0, 65_000, tzinfo=UTC))
    assert table.ts_ns[-1] == ns(datetime(2020, 1, 2, 4, 0, 52, 125_000, tzinfo=UTC))
    expected = [
        ns(datetime.strptime(r[0], "%Y%m%d %H%M%S%f").replace(tzinfo=EST))
        for r in raw_rows(EURUSD, header=False)
    ]
    assert table.ts_ns.tolist() == expected


def test_eurusd_prices_are_mids_in_file_order() -> None:
    table = load_ticks(EURUSD)

    rows = raw_rows(EURUSD, header=False)
    assert table.price[0] == (1.1212 + 1.12172) / 2
    assert table.price.tolist() == [(float(r[1]) + float(r[2])) / 2 for r in rows]
    assert table.size.tolist() == [1.0] * len(rows)


def test_usdjpy_iso_file_loads_every_row() -> None:
    table = load_ticks(USDJPY)

    assert len(table) == 1_000
    assert set(table.symbol) == {"USDJPY"}


def test_usdjpy_times_and_prices_match_the_file() -> None:
    table = load_ticks(USDJPY)

    rows = raw_rows(USDJPY, header=True)
    assert table.ts_ns[0] == ns(datetime(2013, 1, 1, 22, 0, 0, 295_000, tzinfo=UTC))
    assert table.ts_ns[-1] == ns(datetime(2013, 1, 1, 22, 35, 13, 494_000, tzinfo=UTC))
    assert table.ts_ns.tolist() == [ns(datetime.fromisoformat(r[0])) for r in rows]
    assert table.price.tolist() == [(float(r[1]) + float(r[2])) / 2 for r in rows]


def test_repeated_timestamps_and_quotes_are_kept() -> None:
    for path, header in ((EURUSD, False), (USDJPY, True)):
        table = load_ticks(path)
        rows = raw_rows(path, header)
        same_ts = sum(a[0] == b[0] for a, b in pairwise(rows))
        same_quote = sum(a[1:3] == b[1:3] for a, b in pairwise(rows))
        assert sum(a == b for a, b in pairwise(table.ts_ns.tolist())) == same_ts
        assert sum(a == b for a, b in pairwise(table.price.tolist())) >= same_quote > 0
    assert same_ts > 0  # USD/JPY has runs of identical timestamps


def test_bid_and_ask_price_modes() -> None:
    rows = raw_rows(USDJPY, header=True)

    assert load_ticks(USDJPY, price="bid").price.tolist() == [float(r[1]) for r in rows]
    assert load_ticks(USDJPY, price="ask").price.tolist() == [float(r[2]) for r in rows]


def test_explicit_formats_match_auto_detection() -> None:
    assert load_ticks(EURUSD, fmt="histdata") == load_ticks(EURUSD)
    assert load_ticks(USDJPY, fmt="csv") == load_ticks(USDJPY)


def test_symbol_argument_overrides_the_file_name() -> None:
    assert set(load_ticks(EURUSD, symbol="EUR/USD").symbol) == {"EUR/USD"}
