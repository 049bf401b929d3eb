"""A ccxt "closed" order with less filled than its amount: ended by the venue, whatever its size."""

from __future__ import annotations

import pytest

from workbench.domain.model import Fill, OrderStatus, Side
from workbench.exchanges.broker import _snapshot
from workbench.exchanges.venue_orders import VenueOrder


def order(qty: float, filled: float) -> VenueOrder:
    return VenueOrder("c1", "v1", "USD/JPY", "buy", qty, 0.0, "closed", filled, 86.7, 1)


@pytest.mark.parametrize("qty", [1.0, 0.3, 1e9, 123456789.123])
def test_a_whole_fill_whose_float_sum_is_a_hair_short_is_filled(qty):
    filled = qty * (1 - 4e-16)  # trades summed in floats: a few ulps short at most
    assert _snapshot(order(qty, filled), []).status is OrderStatus.FILLED


def test_a_part_fill_the_venue_closed_is_expired_once_its_trades_are_listed():
    snap = _snapshot(order(1e9, 4e8), [])
    assert snap.status is OrderStatus.FILLED  # no trades listed yet: proves nothing
    trade = Fill("T1", "", "", "USD/JPY", Side.BUY, 4e8, 86.7, 1)
    snap = _snapshot(order(1e9, 4e8), [trade])
    assert snap.status is OrderStatus.EXPIRED
    assert snap.reason == "closed by the venue with 4e+08 of 1e+09 filled"


def test_a_cancelled_order_of_millions_whose_trades_sum_a_hair_off_is_reported_closed():
    """Absolute 1e-9 took the float sum of its listed trades for trades not listed yet."""
    from types import SimpleNamespace

    from workbench.exchanges.broker import CcxtBroker, _Known
    from workbench.exchanges.venue_orders import VenueFill

    parts = [235278.3, 3501235.9, 573118.0, 311448.1, 48098.6]  # 4669178.9 in decimals
    o = VenueOrder("c1", "9", "VET/USDT", "buy", 5e6, 0.03, "canceled", 4669178.9, 0.03, 5)
    trades = [
        VenueFill(str(i), "9", "VET/USDT", "buy", q, 0.03, 0.0, "USDT", i)
        for i, q in enumerate(parts)
    ]
    broker = object.__new__(CcxtBroker)  # only its report logic, on a stand-in venue
    broker.cfg = SimpleNamespace(exchange="binance")
    broker.venue = SimpleNamespace(order_fills=lambda venue_id, symbol, from_id=0: trades)
    known = _Known("O-1", "s:1", "VET/USDT", "9", latest=o)
    out: list = []
    assert broker._report("c1", known, out) is True
    assert [r.status for r in out] == [OrderStatus.PARTIALLY_FILLED] * 5 + [OrderStatus.CANCELLED]
