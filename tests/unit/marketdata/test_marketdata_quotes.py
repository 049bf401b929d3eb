"""Bid and ask kept beside the price: quote files, the table's optional columns, round trips."""

from pathlib import Path

import numpy as np
import pytest

from workbench.exceptions import DataError
from workbench.marketdata import TickTable, load_ticks, write_ticks

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
real = pytest.mark.skipif(not DATA.is_dir(), reason=f"real market data folder {DATA} is absent")


def quotes() -> TickTable:
    return TickTable(["A", "B", "A"], [1, 2, 3], [1.5, 2.5, 3.5], [1.0] * 3,
                     bid=[1.0, 2.0, 3.0], ask=[2.0, 3.0, 4.0])  # fmt: skip


def test_bid_and_ask_go_together_and_match_the_length():
    with pytest.raises(ValueError, match="both or neither"):
        TickTable(["A"], [1], [1.0], [1.0], bid=[1.0])
    with pytest.raises(ValueError, match="bid=2"):
        TickTable(["A"], [1], [1.0], [1.0], bid=[1.0, 2.0], ask=[1.0, 2.0])


def test_quotes_follow_rows_and_take_and_count_in_equality():
    t = quotes()
    assert t.has_quotes and not TickTable(["A"], [1], [1.0], [1.0]).has_quotes
    assert t.rows(1, 3).bid.tolist() == [2.0, 3.0]  # type: ignore[union-attr]
    assert t.take(np.array([2, 0])).ask.tolist() == [4.0, 2.0]  # type: ignore[union-attr]
    assert t != TickTable(t.symbol, t.ts_ns, t.price, t.size)
    assert t != TickTable(t.symbol, t.ts_ns, t.price, t.size, bid=t.bid, ask=t.ask + 1)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_quotes_survive_a_round_trip(tmp_path, suffix):
    t = quotes()
    assert load_ticks(write_ticks(t, tmp_path / f"q.{suffix}")) == t


def test_a_file_with_price_and_quotes_keeps_both_and_checks_crossed_quotes(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("ts_ns,price,bid,ask\n1,1.5,1.0,2.0\n2,1.6,1.1,2.1\n")
    t = load_ticks(good, symbol="X")
    assert t.price.tolist() == [1.5, 1.6] and t.bid.tolist() == [1.0, 1.1]  # type: ignore[union-attr]
    bad = tmp_path / "bad.csv"
    bad.write_text("ts_ns,price,bid,ask\n1,1.5,1.0,2.0\n2,1.6,2.2,2.1\n")
    with pytest.raises(DataError, match="crossed") as e:
        load_ticks(bad, symbol="X")
    assert e.value.row == 2 and e.value.column == "bid"


def test_bid_only_files_keep_no_quotes(tmp_path):
    f = tmp_path / "bids.csv"
    f.write_text("ts_ns,bid\n1,1.0\n")
    t = load_ticks(f, symbol="X", price="bid")
    assert t.price.tolist() == [1.0] and not t.has_quotes


@real
@pytest.mark.parametrize("name", ["eurusd-quotes-2020-01.csv", "usdjpy-quotes-2013-01.csv"])
def test_real_quote_files_keep_bid_and_ask_for_every_row(name, tmp_path):
    t = load_ticks(DATA / name)
    assert t.bid is not None and t.ask is not None and len(t.bid) == len(t)
    assert np.all(t.bid <= t.ask) and np.array_equal((t.bid + t.ask) / 2, t.price)
    assert load_ticks(DATA / name, price="ask").price.tolist() == t.ask.tolist()
    pq = write_ticks(t, tmp_path / "q.parquet")  # the vectorised Parquet path keeps them too
    assert load_ticks(pq) == t
