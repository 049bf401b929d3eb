"""A local Binance server per test, and exchange configs pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures.binance_server.server import API_KEY, API_SECRET, BinanceServer

from workbench.config import RiskConfig
from workbench.exchanges.broker import CcxtBroker
from workbench.exchanges.config import ExchangeConfig
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.telemetry import Telemetry

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


@pytest.fixture
def executors(
    server: BinanceServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Path], Executor]]:
    """Builds executors on a journal file with a `CcxtBroker` on ``server``; all closed."""
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", API_KEY)
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", API_SECRET)
    made: list[Executor] = []

    def make(path: Path, call_timeout_s: float = 8.0, **broker: object) -> Executor:
        venue = CcxtBroker(**broker_params(server, **broker)).open()
        risk = RiskConfig(max_order_qty=10, max_position_qty=10)
        ex = Executor(
            venue, Journal(path), risk, make_breaker(5, 60), Telemetry(),
            call_timeout_s=call_timeout_s,
        )  # fmt: skip
        made.append(ex)
        return ex

    yield make
    for ex in made:
        stop(ex)


def stop(ex: Executor) -> None:
    """What a stopping executor process lets go of: the exchange and the journal."""
    ex.broker.close()  # type: ignore[attr-defined]
    ex.journal.close()


def broker_params(server: BinanceServer, **over: object) -> dict[str, object]:
    """``[executor.broker] params`` for ``server`` (no secrets: those come from the env)."""
    return {
        "exchange": "binance",
        "symbols": [SYMBOL],
        "rest_url": server.rest_url,
        "ws_url": server.ws_url,
        "ws_api_url": server.ws_api_url,
        "timeout_ms": 1500,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "poll_interval_s": 0.3,
        **over,
    }
