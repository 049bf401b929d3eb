"""Live on clocks that disagree: stale prices are refused, live ones are not.

``stale_market_data_s`` judges a price by the exchange's time and by when the
gateway sent it on. Neither clock is the executor's: the exchange's may run
ahead (by its time alone, a market that stopped looked fresh), and the
gateway may run on a host whose clock is behind (by its send time taken as
is, a live market looked stale and every order was refused).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SYMBOL
from fixtures.binance_server.server import BinanceServer
from helpers import ROOT, SignalPusher, journal_orders, make_config, wait_until

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

NEVER = [  # a BUY below any price of the recording: this strategy never signals by itself
    {"id": "never", "symbol": SYMBOL, "side": "BUY", "trigger_price": 0.001,
     "turning_point": 0.05, "take_profit": 0.2, "stop_loss": 0.15, "following": True},
]  # fmt: skip
SKEWED_CLOCK = ROOT / "tests" / "fixtures" / "skewed_clock"


@contextmanager
def live_session(tmp_path: Path, server: BinanceServer) -> Iterator:
    """A paper session on the server's trades; yields ``trade(seq)`` -> the order journaled."""
    cfg = make_config(
        tmp_path,
        gateway={
            "feed": "exchange",
            "market_snapshot_interval_ms": 20,
            "exchange": {
                "exchange": "binance", "symbols": [SYMBOL], "rest_url": server.rest_url,
                "ws_url": server.ws_url, "ws_api_url": server.ws_api_url,
            },
        },
        strategies=[{"id": "quiet", "params": {"conditions": NEVER}}],
        executor={"exit_on_eos": False, "risk": {
            "max_order_qty": 10, "max_position_qty": 1e6, "stale_market_data_s": 0.5,
        }},
    )  # fmt: skip
    sup = Supervisor(cfg)
    pusher = SignalPusher(cfg.bus.signals_address, "quiet")

    def trade(seq: int) -> dict:
        sid = pusher.send(seq, SYMBOL, 86.7)

        # Journaled PENDING_NEW before it goes (write-ahead): read once the venue answered.
        def answered() -> bool:
            return journal_orders(cfg).get(sid, {}).get("status", "PENDING_NEW") != "PENDING_NEW"

        wait_until(answered, 20, f"{sid} answered")
        return journal_orders(cfg)[sid]

    def market_in() -> int:
        hb = sup.heartbeat("executor")
        return hb.counters.get("market_msgs_in", 0) if hb else 0

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: market_in() >= 5, 30, "market snapshots at the executor")
        yield trade
    finally:
        pusher.close()
        sup.stop()


def _assert_live_then_stale(server: BinanceServer, trade) -> None:
    first = trade(1)  # the market is live: the order goes
    assert first["status"] == "FILLED", first
    server.pause_market()  # no trade from now on
    time.sleep(1.0)  # > stale_market_data_s since the last snapshot
    second = trade(2)
    assert second["status"] == "REJECTED", second
    assert "beyond stale_market_data_s" in second["reason"]


def test_a_quiet_market_is_stale_even_when_the_exchanges_clock_is_ahead(tmp_path) -> None:
    with BinanceServer(clock_offset_ms=30_000) as server, live_session(tmp_path, server) as trade:
        _assert_live_then_stale(server, trade)


def test_a_live_market_is_live_when_the_gateways_host_clock_is_behind(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("WORKBENCH_TEST_GATEWAY_CLOCK_S", "-3")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SKEWED_CLOCK), str(ROOT)]))
    with BinanceServer() as server, live_session(tmp_path, server) as trade:
        _assert_live_then_stale(server, trade)
