"""ccxt's errors mapped to the workbench's: what is retried, what is the config's fault."""

from __future__ import annotations

import pytest

ccxt = pytest.importorskip("ccxt")

from workbench.exceptions import ConfigurationError, OrderRejected, TemporaryError  # noqa: E402
from workbench.exchanges.connect import clock_refused, map_error  # noqa: E402

REFUSED_CLOCK = '{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'


@pytest.mark.parametrize(
    "error",
    [ccxt.InvalidNonce("binance " + REFUSED_CLOCK), ccxt.BadRequest("binance " + REFUSED_CLOCK)],
)
def test_a_refused_timestamp_is_temporary_and_says_the_clock_is_off(error) -> None:
    # ccxt raises InvalidNonce for -1021 on spot and BadRequest on other Binance APIs.
    assert clock_refused(error)
    err = map_error(error, "binance", "create_order", "sr-1:1")
    assert isinstance(err, TemporaryError)
    assert "clock is off" in str(err) and "-1021" in str(err)


def test_other_errors_are_not_clock_errors() -> None:
    assert not clock_refused(ccxt.RequestTimeout("binance timed out"))
    assert isinstance(map_error(ccxt.RequestTimeout("t"), "binance", "x"), TemporaryError)
    assert isinstance(map_error(ccxt.InvalidOrder("bad qty"), "binance", "x"), OrderRejected)
    key = ccxt.AuthenticationError('{"code":-2015,"msg":"Invalid API-key"}')
    assert isinstance(map_error(key, "binance", "x"), ConfigurationError)
