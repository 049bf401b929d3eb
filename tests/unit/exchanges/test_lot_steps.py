"""Order quantities in a market's lot steps, through ccxt's own rounding (no network)."""

from __future__ import annotations

import math

import pytest

ccxt = pytest.importorskip("ccxt")

from helpers import ccxt_binance  # noqa: E402

from workbench.exceptions import OrderRejected  # noqa: E402
from workbench.exchanges.connect import lot_qty, tick_price  # noqa: E402


def binance(amount_step: float | None, least: float | None = 0.001) -> object:
    """A ccxt Binance with USD/JPY loaded by hand (LOT_SIZE step and minQty)."""
    return ccxt_binance("USD/JPY", amount_step, least, max_qty=100_000.0)


def test_a_qty_goes_down_to_the_lot_step():
    assert lot_qty(binance(0.001), "USD/JPY", 1.0015) == 1.001
    assert lot_qty(binance(0.001), "USD/JPY", 2.0) == 2.0


def test_a_qty_a_floats_drift_below_a_step_is_that_step():
    assert lot_qty(binance(0.001), "USD/JPY", 0.7 - 0.4) == 0.3
    assert lot_qty(binance(0.001), "USD/JPY", 0.001 - 1e-18) == 0.001
    assert lot_qty(binance(0.001), "USD/JPY", 0.2999) == 0.299  # a real shortfall stays short


@pytest.mark.parametrize(
    ("step", "qty", "sent"),
    [(1e-8, 10.0, 10.0), (1e-8, 5.0 + 5.0, 10.0), (0.001, 1e6, 1e6), (1.0, 2e10, 2e10),
     (1e-8, 9.999999995, 9.99999999), (1e-8, 1e-8 * 3, 3e-8), (1e-8, 20_000.0, 20_000.0),
     (1.0, 9.9999995, 9.0), (1e-8, 460.7 - 0.1, 460.6), (1e-8, sum([0.1] * 1000), 100.0),
     (1e-8, 10000.3 - 0.1, 10000.2), (1e-5, 99_999.3 - 0.1, 99_999.2)],
)  # fmt: skip
def test_a_qty_is_never_sent_up_past_what_was_asked_but_for_a_drift(step, qty, sent):
    assert lot_qty(binance(step, least=None), "USD/JPY", qty) == sent


def test_below_the_smallest_order_is_refused_naming_qty_minimum_and_step():
    with pytest.raises(OrderRejected) as e:
        lot_qty(binance(0.001), "USD/JPY", 0.0004)
    assert e.value.reason == (
        "binance: qty 0.0004 is below USD/JPY's smallest order (minimum 0.001, lot step 0.001)"
    )
    with pytest.raises(OrderRejected, match=r"qty 0\.005 is below USD/JPY's smallest order"):
        lot_qty(binance(0.001, least=0.01), "USD/JPY", 0.005)  # on a step, under minQty


def test_a_market_without_a_step_or_an_unknown_symbol_leaves_the_qty_to_the_exchange():
    assert lot_qty(binance(None, least=None), "USD/JPY", 1.0015) == 1.0015  # ccxt asserts
    assert lot_qty(binance(0.001), "EUR/USD", 1.0015) == 1.0015


@pytest.mark.parametrize(
    ("side", "price", "sent"),
    [("BUY", 80.00007, 80.0), ("SELL", 80.00007, 80.0001), ("BUY", 80.1 + 0.2, 80.3),
     ("SELL", 80.3 - 1e-13, 80.3), ("BUY", 1e6 + 0.00019, 1e6 + 0.0001), ("SELL", 0.00001, 0.0001)],
)  # fmt: skip
def test_a_price_goes_to_the_tick_a_buys_down_a_sells_up_but_for_a_drift(side, price, sent):
    assert tick_price(binance(0.001), "USD/JPY", side, price) == sent


def test_a_buy_price_below_one_tick_is_refused_and_an_unknown_market_left_alone():
    with pytest.raises(OrderRejected, match=r"price 4e-05 is below USD/JPY's tick 0\.0001"):
        tick_price(binance(0.001), "USD/JPY", "BUY", 0.00004)
    assert tick_price(binance(0.001), "EUR/JPY", "BUY", 1.23456789) == 1.23456789


@pytest.mark.parametrize("price", [1000000.3, 12345.7, 123456789.03])
def test_a_large_price_a_float_step_off_a_tick_is_on_it(price):
    """Past ~4.5e9 ticks a float's own step is more than a millionth of a tick."""
    for drifted in (math.nextafter(price, math.inf), math.nextafter(price, 0)):
        for side in ("BUY", "SELL"):
            assert tick_price(binance(0.001), "USD/JPY", side, drifted) == price
