"""Positions and PnL over fills, with fees paid in quote, in the traded asset, or in a third one."""

from __future__ import annotations

import pytest

from workbench.domain.accounting import Portfolio, Position
from workbench.domain.model import Fill, Side


def fill(side: Side, qty: float, price: float, fee: float = 0.0, **kw: object) -> Fill:
    return Fill("f", "o", "s", "ABC", side, qty, price, 1, fee, **kw)  # type: ignore[arg-type]


def test_average_cost_realizes_on_the_closing_part_and_flips_at_the_fill_price() -> None:
    p = Position("ABC")
    p.apply(fill(Side.BUY, 2, 100))
    p.apply(fill(Side.BUY, 2, 110))
    assert (p.qty, p.avg_price) == (4, 105)
    assert p.apply(fill(Side.SELL, 5, 120)) == 60  # 4 closed at +15, 1 opens short
    assert (p.qty, p.avg_price, p.realized_pnl) == (-1, 120, 60)


def test_a_buys_fee_in_the_bought_asset_leaves_what_the_account_holds() -> None:
    """Bought 1 at 100, 0.001 of it kept as the fee: 0.999 held, the fee worth 0.1."""
    p = Position("ABC")
    assert p.apply(fill(Side.BUY, 1.0, 100.0, fee=0.1, fee_qty=0.001)) == 0.0
    assert p.qty == pytest.approx(0.999) and p.avg_price == 100.0 and p.fees == 0.1
    # Sold at 110: +10 on what is held, the fee already paid.
    assert p.apply(fill(Side.SELL, 0.999, 110.0)) == pytest.approx(9.99)
    assert p.qty == 0.0 and p.realized_pnl - p.fees == pytest.approx(9.99 - 0.1)


def test_a_fee_in_the_asset_on_a_sell_takes_more_of_the_position() -> None:
    p = Position("ABC")
    p.apply(fill(Side.BUY, 2.0, 100.0))
    p.apply(fill(Side.SELL, 1.0, 110.0, fee=0.11, fee_qty=0.001))
    # 1.001 left the account: 1 sold, 0.001 paid, each worth 110 against a cost of 100.
    assert p.qty == pytest.approx(0.999) and p.realized_pnl == pytest.approx(10.01)
    assert p.fees == 0.11
    assert Fill("f", "o", "s", "ABC", Side.SELL, 1.0, 110.0, 1, 0.11, 0.001).position_change == (
        pytest.approx(-1.001)
    )


def test_the_pnl_with_a_fee_in_the_asset_is_the_accounts_own() -> None:
    """Cash and holdings valued at a mark, against the account: no fee counted twice."""
    p, cash = Position("ABC"), 0.0
    for f in (
        fill(Side.BUY, 3.0, 100.0, fee=0.3, fee_qty=0.003),
        fill(Side.SELL, 1.0, 104.0, fee=0.104),  # quote fee: out of the cash
        fill(Side.BUY, 0.5, 98.0, fee=0.049, fee_qty=0.0005),
    ):
        p.apply(f)
        cash -= f.side.sign * f.qty * f.price + (0.0 if f.fee_qty else f.fee)
    held, mark = 3.0 - 0.003 - 1.0 + 0.5 - 0.0005, 101.0
    assert p.qty == pytest.approx(held)
    assert p.realized_pnl - p.fees + p.unrealized(mark) == pytest.approx(cash + held * mark)


def test_a_fee_in_a_third_asset_is_summed_as_that_asset_not_valued() -> None:
    book = Portfolio()
    book.apply(fill(Side.BUY, 1.0, 100.0, fee=0.0002, fee_asset="BNB"))
    book.apply(fill(Side.SELL, 1.0, 101.0, fee=0.05))
    book.apply(fill(Side.SELL, 1.0, 101.0, fee=0.0001, fee_asset="BNB"))
    assert book.fees == 0.05 and book.other_fees == {"BNB": pytest.approx(0.0003)}
    assert book.position("ABC") == -1.0 and book.realized_pnl == 1.0


def test_asset_fees_count_what_fees_took_from_the_open_position_since_it_opened() -> None:
    p = Position("ABC")
    p.apply(fill(Side.BUY, 1.0, 100.0, fee=0.1, fee_qty=0.001))
    p.apply(fill(Side.BUY, 1.0, 100.0, fee=0.1, fee_qty=0.001))
    assert p.asset_fees == pytest.approx(0.002)
    p.apply(fill(Side.SELL, 1.0, 100.0))
    assert p.asset_fees == pytest.approx(0.002)  # still open: the rest still lacks them
    p.apply(fill(Side.SELL, 0.998, 100.0))
    assert p.qty == pytest.approx(0.0, abs=1e-12) and p.asset_fees == 0.0
    p.apply(fill(Side.SELL, 1.0, 100.0, fee=0.1, fee_qty=0.001))  # opens short
    assert p.qty == pytest.approx(-1.001) and p.asset_fees == 0.001
    p.apply(fill(Side.BUY, 3.0, 100.0, fee=0.3, fee_qty=0.003))  # flips long
    assert p.qty == pytest.approx(1.996) and p.asset_fees == 0.003
