"""A ccxt.pro exchange built from an `ExchangeConfig`, and ccxt errors mapped to ours.

Every exchange gets ccxt's rate limiter and the config's timeout. The URL
overrides (``rest_url``, ``ws_url``, ``ws_api_url``) replace the exchange's
endpoints after sandbox mode is applied: a local server in tests, or a
private gateway. They are plain config, not a test path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from workbench.exceptions import ConfigurationError as _ConfigurationError

try:
    import ccxt
    import ccxt.pro as ccxtpro
except ImportError as e:  # the optional extra is missing
    raise _ConfigurationError(
        'gateway.feed: an exchange needs ccxt: pip install -e ".[exchange]"'
    ) from e

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from workbench.exceptions import ConfigurationError, OrderRejected, TemporaryError, WorkbenchError
from workbench.exchanges.config import ExchangeConfig

# Binance error codes that mean the key, its permissions or the signature are wrong
# (ccxt reports some of them as OperationRejected or BadRequest on the spot API).
_AUTH_CODES = (
    '"code":-2014',
    '"code":-2015',
    '"code":-1022',
    '"code": -2014',
    '"code": -2015',
    '"code": -1022',
)
_CLOCK_CODES = ('"code":-1021', '"code": -1021')
_REST_KEYS = ("public", "private", "v1", "v3", "sapi", "sapiV2", "sapiV3", "sapiV4")
# Spot only: no futures/margin market lists, no wallet endpoints at start.
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "defaultType": "spot",
    },
}
WHERE = "gateway.exchange"


def make_exchange(cfg: ExchangeConfig, *, private: bool = False) -> Any:
    """A ccxt.pro exchange instance for ``cfg`` (call ``await ex.close()`` when done).

    Args:
        private: Load the API key and secret (orders, balances). Public data
            needs none, so a feed's exchange never holds them.

    Raises:
        ConfigurationError: unknown exchange id, or credentials incomplete
            (or missing when ``private``).
    """
    cls = getattr(ccxtpro, cfg.exchange, None)
    if cls is None:
        raise ConfigurationError(
            f"{WHERE}.exchange: ccxt has no WebSocket exchange {cfg.exchange!r} "
            f"(see ccxt.pro.exchanges)"
        )
    options = {**_DEFAULT_OPTIONS.get(cfg.exchange, {}), **cfg.options}
    params: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": cfg.timeout_ms,
        "options": options,
    }
    creds = cfg.credentials(WHERE) if private else None
    if private and creds is None:
        raise ConfigurationError(
            f"{WHERE}.api_key: {cfg.exchange}: orders need an API key and secret; set "
            "WORKBENCH__GATEWAY__EXCHANGE__API_KEY and WORKBENCH__GATEWAY__EXCHANGE__API_SECRET"
        )
    if creds is not None:
        params["apiKey"] = creds[0].get_secret_value()
        params["secret"] = creds[1].get_secret_value()
    ex = cls(params)
    if cfg.sandbox:
        if not ex.urls.get("test"):  # ccxt raises a bare TypeError for these
            raise ConfigurationError(
                f"{WHERE}.sandbox: {cfg.exchange} has no sandbox (testnet) in ccxt; "
                "set sandbox = false, or rest_url / ws_url to a test server"
            )
        ex.set_sandbox_mode(True)
    _override_urls(ex, cfg)
    return ex


def guard_clients(ex: Any, on_bad_frame: Callable[[Exception], None]) -> None:
    """Make every WebSocket client of ``ex`` drop a frame it cannot read.

    ccxt reads frames in a callback: an exception there (malformed JSON, a
    price ccxt cannot parse) stops the client's receive loop for good,
    silently, with the socket open, until its keep-alive gives up (minutes).
    Guarded, ``on_bad_frame`` hears of the frame and the next one is read.
    """
    make = ex.client

    def client(url: str) -> Any:
        c = make(url)
        if not getattr(c, "_workbench_guarded", False):
            handle = c.handle_message

            def guarded(message: Any) -> None:
                try:
                    handle(message)
                except Exception as e:
                    on_bad_frame(e)

            c.handle_message = guarded
            c._workbench_guarded = True
        return c

    ex.client = client


def _override_urls(ex: Any, cfg: ExchangeConfig) -> None:
    api = dict(ex.urls["api"])
    if cfg.rest_url:
        for k in _REST_KEYS:
            if k in api:
                api[k] = cfg.rest_url
    if cfg.ws_url or cfg.ws_api_url:
        ws = dict(api.get("ws") or {})
        if cfg.ws_url:
            ws["spot"] = ws["margin"] = cfg.ws_url
        if cfg.ws_api_url:
            ws["ws-api"] = {**(ws.get("ws-api") or {}), "spot": cfg.ws_api_url}
        api["ws"] = ws
    ex.urls["api"] = api


def map_error(e: BaseException, exchange: str, action: str, order_id: str = "") -> WorkbenchError:
    """The workbench error for a ccxt error raised by ``action`` on ``exchange``.

    - a bad or unauthorised key, a bad signature: `ConfigurationError` naming
      ``gateway.exchange.api_key`` (retrying cannot help);
    - an unknown symbol: `ConfigurationError` naming ``gateway.exchange.symbols``;
    - an order the exchange refused (a create it answered with a bad request or
      a refusal, e.g. a filter failure): `OrderRejected`;
    - the network, a timeout, 5xx, rate limits: `TemporaryError`.
    """
    text = str(e)
    if clock_refused(e):
        return ClockRefused(
            f"{exchange} {action}: the exchange refused the request's timestamp: this "
            f"machine's clock is off from {exchange}'s by more than it allows (the offset "
            f"is measured again; keep the clock synchronised, e.g. NTP): {_short(text)}"
        )
    if isinstance(e, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended) or (
        isinstance(e, ccxt.ExchangeError) and any(c in text for c in _AUTH_CODES)
    ):
        return ConfigurationError(
            f"{WHERE}.api_key: {exchange} refused the API key or its signature on {action} "
            f"(check the key, the secret, its permissions and IP whitelist): {_short(text)}"
        )
    if isinstance(e, ccxt.DDoSProtection | ccxt.RateLimitExceeded):  # 418 (banned a while), 429
        return RateLimited(f"{exchange} {action}: {type(e).__name__}: {_short(text)}")
    if isinstance(e, ccxt.BadSymbol):
        return ConfigurationError(f"{WHERE}.symbols: {exchange}: {_short(text)}")
    if isinstance(e, ccxt.NetworkError):  # timeouts, 5xx, DDoSProtection/429, rate limits
        return TemporaryError(f"{exchange} {action}: {type(e).__name__}: {_short(text)}")
    if isinstance(e, ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.OrderNotFound):
        return OrderRejected(order_id or "?", f"{exchange}: {_short(text)}")
    if action == "create_order" and isinstance(e, ccxt.BadRequest | ccxt.OperationRejected):
        # Refused before the matching engine (Binance: -1013 filter failures such as
        # NOTIONAL, -11xx malformed, "Market is closed"): a rejection, not in doubt.
        return OrderRejected(order_id or "?", f"{exchange}: {_short(text)}")
    if isinstance(e, ccxt.ExchangeError):
        return TemporaryError(f"{exchange} {action}: {type(e).__name__}: {_short(text)}")
    return TemporaryError(f"{exchange} {action}: {type(e).__name__}: {_short(text)}")


class NotCarriedOut(TemporaryError):
    """The exchange refused a request before carrying it out: sending it again is safe."""


class ClockRefused(NotCarriedOut):
    """The exchange refused a signed request's timestamp (this machine's clock is off)."""


class RateLimited(NotCarriedOut):
    """A 429 or 418: the exchange refused the request for its rate limit; pause, then retry."""


def clock_refused(e: BaseException) -> bool:
    """Whether ``e`` says a signed request's timestamp was off the exchange's clock.

    Binance's -1021 (ccxt raises `InvalidNonce` on spot, `BadRequest` on other
    APIs): the request was refused before it was carried out.
    """
    return isinstance(e, ccxt.InvalidNonce) or any(c in str(e) for c in _CLOCK_CODES)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


LOT_DRIFT = 1e-12
"""Relative float drift looked through: a qty this close below a lot boundary is on it."""


def _down(ex: Any, symbol: str, qty: float) -> float:
    try:
        return float(ex.amount_to_precision(symbol, qty))  # truncates (the exchange's override)
    except ccxt.InvalidOrder:  # "must be greater than minimum amount precision"
        return 0.0


def lot_amount(ex: Any, symbol: str, qty: float) -> float:
    """``qty`` as ccxt sends it: down to the market's lot step, 0.0 below one step.

    A qty a float's drift below a step boundary (``0.7 - 0.4`` is
    ``0.29999999999999993``; sums of many fills drift more) is on that
    boundary, not one step less: else a flatten leaves a lot it can never
    close. The drift looked through is `LOT_DRIFT` of the qty, and at most a
    thousandth of a step: a qty on a step, or really short of one, is never
    sent up. ``qty`` itself when ccxt cannot say (an unknown market, no step):
    the exchange decides.
    """
    try:
        down = _down(ex, symbol, qty)
        # Finer looks too: on a fine step a large qty's drift may span a whole step.
        for drift in (LOT_DRIFT, LOT_DRIFT / 100, LOT_DRIFT / 10_000):
            up = _down(ex, symbol, qty + abs(qty) * drift)
            if up > down and up - qty <= (up - down) * 1e-3:
                return up
    except Exception:  # not only ccxt's: no step known (ccxt asserts), an odd market
        return qty
    return down


def lot_qty(ex: Any, symbol: str, qty: float) -> float:
    """``qty`` rounded down to the market's lot step, as the exchange will take it.

    Raises:
        OrderRejected: it is below the market's smallest order (naming both).
    """
    amount = lot_amount(ex, symbol, qty)
    market = (getattr(ex, "markets", None) or {}).get(symbol) or {}
    try:
        least = float(((market.get("limits") or {}).get("amount") or {}).get("min") or 0.0)
    except (AttributeError, TypeError, ValueError):  # an odd market: the exchange decides
        least = 0.0
    if amount <= 0.0 or amount < least:
        step = (market.get("precision") or {}).get("amount")
        raise OrderRejected(
            "",
            f"{ex.id}: qty {qty:.12g} is below {symbol}'s smallest order "
            f"(minimum {least!r}, lot step {step})",
        )
    return amount


def tick_price(ex: Any, symbol: str, side: str, price: float) -> float:
    """``price`` on the market's tick: a BUY's rounded down, a SELL's up.

    So a limit never asks a worse price than the strategy did, and a stop
    (a buy stop covers a short, a sell stop a long) never triggers later. ccxt
    itself would round to the nearest tick, either way. A price a float's drift
    off a tick is on it; ``price`` itself when ccxt cannot say (an unknown
    market, significant-digit precision): the exchange decides.

    Raises:
        OrderRejected: a buy's price below one tick.
    """
    if not math.isfinite(price) or price <= 0:  # not a price: the risk checks refuse it
        return price
    try:
        digits = ex.market(symbol)["precision"]["price"]
        if ex.precisionMode == TICK_SIZE:
            tick = Decimal(str(digits))
        elif ex.precisionMode == DECIMAL_PLACES:
            tick = Decimal(1).scaleb(-int(digits))
        else:
            return price
        steps = Decimal(repr(float(price))) / tick
    except Exception:  # not only ccxt's: no market, no precision, an odd value
        return price
    near = steps.to_integral_value(ROUND_HALF_EVEN)
    drift = max(Decimal("1e-6"), Decimal(4 * math.ulp(price)) / tick)  # a float's, in ticks
    if abs(steps - near) <= drift:
        n = near
    else:
        n = steps.to_integral_value(ROUND_FLOOR if side.upper() == "BUY" else ROUND_CEILING)
    if n <= 0:
        raise OrderRejected("", f"{ex.id}: price {price:.12g} is below {symbol}'s tick {tick}")
    return float(n * tick)
