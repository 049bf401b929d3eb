"""A local Binance server per test, and exchange configs pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures.binance_server.server import API_KEY, API_SECRET, BinanceServer

from workbench.exchanges.config import ExchangeConfig

SYMBOL = "USD/JPY"


@pytest.fixture
def server() -> Iterator[BinanceServer]:
    """The server on a free port, streaming recorded trades 20 ms apart; always stopped."""
    s = BinanceServer(slow_s=2.5).start()
    try:
        yield s
    finally:
        s.stop()


def exchange_config(server: BinanceServer, **over: object) -> ExchangeConfig:
    """An `ExchangeConfig` for ``server`` with its test key (given as the environment would)."""
    fields: dict[str, object] = {
        "exchange": "binance",
        "symbols": [SYMBOL],
        "rest_url": server.rest_url,
        "ws_url": server.ws_url,
        "ws_api_url": server.ws_api_url,
        "timeout_ms": 1500,  # generous for a loaded machine; faults answer after 2.5 s
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "poll_interval_s": 0.3,
        "stale_after_s": 1.0,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        **over,
    }
    return ExchangeConfig(**fields)
