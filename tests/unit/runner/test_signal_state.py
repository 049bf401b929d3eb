"""Signals in the strategy host's state file: round trip, older rows, bad rows."""

from __future__ import annotations

import pytest

from workbench.domain.model import OrderType, Side, Signal, TimeInForce
from workbench.exceptions import ConfigurationError
from workbench.messaging.codec import pack
from workbench.runner.state import signal_from_state, signal_to_state

MARKET = Signal("s:1", "s", 1, "XYZ", Side.BUY, 2.0, 100.5, 7, "why", "b", 9)
LIMIT = Signal("s:2", "s", 2, "XYZ", Side.SELL, 1, 99.0, 8, order_type=OrderType.LIMIT,
               order_price=98.5, tif=TimeInForce.IOC)  # fmt: skip


@pytest.mark.parametrize("signal", [MARKET, LIMIT])
def test_a_signal_round_trips_as_a_list_and_packed(signal):
    row = signal_to_state(signal)
    assert signal_from_state(row) == signal
    assert signal_from_state(pack(row)) == signal


def test_a_row_saved_before_order_types_is_a_market_gtc_signal():
    row = signal_to_state(MARKET)
    assert len(row) == 11
    s = signal_from_state(row)
    assert s.order_type is OrderType.MARKET and s.tif is TimeInForce.GTC and s.order_price == 0.0


@pytest.mark.parametrize(
    ("index", "bad", "field"),
    [(0, 5, "id"), (2, "1", "seq"), (5, "2", "qty"), (7, True, "ts_ns"), (12, None, "order_price")],
)
def test_a_field_of_the_wrong_type_is_named(index, bad, field):
    row = signal_to_state(LIMIT)
    row[index] = bad
    with pytest.raises(ConfigurationError, match=f"saved signal .*: {field} must be"):
        signal_from_state(row)


@pytest.mark.parametrize("row", [[], ["s:1"] * 12, {"id": "s:1"}])
def test_a_row_of_the_wrong_shape_is_refused(row):
    with pytest.raises(ConfigurationError, match="expected a list of 11, 14 or 15 fields"):
        signal_from_state(pack(row))
