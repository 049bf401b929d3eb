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


def test_a_sandbox_on_an_exchange_without_one_is_a_configuration_error() -> None:
    # ccxt's set_sandbox_mode raised a bare TypeError: the runner crashed, restarted, crashed.
    from workbench.exchanges.config import ExchangeConfig
    from workbench.exchanges.connect import make_exchange

    with pytest.raises(ConfigurationError, match=r"sandbox: bitfinex has no sandbox"):
        make_exchange(ExchangeConfig(exchange="bitfinex", symbols=["BTC/USD"], sandbox=True))
    ex = make_exchange(ExchangeConfig(exchange="binance", sandbox=True))
    assert "testnet" in str(ex.urls["api"])


@pytest.mark.parametrize("error", [ccxt.RateLimitExceeded("429"), ccxt.DDoSProtection("418")])
def test_a_rate_limit_was_not_carried_out(error) -> None:
    from workbench.exchanges.connect import NotCarriedOut, RateLimited

    mapped = map_error(error, "binance", "create_order")
    assert isinstance(mapped, RateLimited) and isinstance(mapped, NotCarriedOut)
    assert isinstance(mapped, TemporaryError)
