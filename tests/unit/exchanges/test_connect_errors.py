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


def _binance_error(status: int, body: str) -> Exception:
    """What ccxt's Binance raises for this answer to a create (its own error mapping)."""
    ex = ccxt.binance()
    url = "https://api.binance.com/api/v3/order"
    try:
        ex.handle_errors(status, "", url, "POST", {}, body, ex.parse_json(body), {}, {})
    except ccxt.BaseError as e:
        return e
    raise AssertionError(f"ccxt raised nothing for {body}")


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        (-1013, "Filter failure: NOTIONAL"),  # below the minimum notional
        (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS"),  # a sixth stop on the symbol
        (-1111, "Precision is over the maximum defined for this asset."),
        (-2010, "Market is closed."),
    ],
)
def test_a_create_refused_before_the_matching_engine_is_a_rejection_not_in_doubt(code, msg):
    # Binance's errors.md, -1013: "The request is rejected by the API (i.e. the request
    # didn't reach the Matching Engine.)". Taken as in doubt, each counted for the breaker
    # (five opened it, refusing every order) and sat 15 s in doubt, alerted.
    error = _binance_error(400, f'{{"code":{code},"msg":"{msg}"}}')
    err = map_error(error, "binance", "create_order", "O-sr-1:1")
    assert isinstance(err, OrderRejected) and msg in err.reason
    # Elsewhere a bad request proves nothing about an order: a look-up or a cancel
    # that took it for "no such order" could send one twice.
    assert not isinstance(map_error(error, "binance", "fetch_order", "O-sr-1:1"), OrderRejected)


@pytest.mark.parametrize(
    ("status", "code", "msg"),
    [
        (500, -1000, "An unknown error occurred while processing the request."),
        (503, -1001, "Internal error; unable to process your request. Please try again."),
        (503, -1006, "An unexpected response was received from the message bus."),
        (503, -1008, "Server is currently overloaded with other requests."),
    ],
)
def test_a_create_with_an_unknown_outcome_stays_in_doubt(status, code, msg):
    error = _binance_error(status, f'{{"code":{code},"msg":"{msg}"}}')
    err = map_error(error, "binance", "create_order", "O-sr-1:1")
    assert isinstance(err, TemporaryError) and not isinstance(err, OrderRejected)
