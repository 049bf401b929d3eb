"""Live on an exchange whose clock is not this machine's: stale prices are still refused.

The local Binance server's clock runs 30 s ahead of ours. By the exchange's
trade times alone, a market that stopped a few seconds ago still looks 30 s
in the future, i.e. fresh, and ``stale_market_data_s`` let orders through on
it. The executor also judges a price by when the gateway passed it on.
"""

from __future__ import annotations

import time

import pytest
import zmq
from conftest import SYMBOL
from fixtures.binance_server.server import BinanceServer
from helpers import make_config, wait_until

from workbench.domain.model import Side, Signal
from workbench.execution.journal import Journal
from workbench.messaging import codec
from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

NEVER = [  # a BUY below any price of the recording: this strategy never signals by itself
    {"id": "never", "symbol": SYMBOL, "side": "BUY", "trigger_price": 0.001,
     "turning_point": 0.05, "take_profit": 0.2, "stop_loss": 0.15, "following": True},
]  # fmt: skip


def test_a_quiet_market_is_stale_even_when_the_exchanges_clock_is_ahead(tmp_path) -> None:
    with BinanceServer(clock_offset_ms=30_000) as server:
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
                "max_order_qty": 10, "max_position_qty": 1e6, "stale_market_data_s": 1.0,
            }},
        )  # fmt: skip
        sup = Supervisor(cfg)
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        epoch = time.time_ns()

        def send(seq: int) -> None:
            s = Signal(f"quiet:{seq}", "quiet", seq, SYMBOL, Side.BUY, 1.0, 86.7, 1, "t", "c")
            push.send_multipart(codec.encode(s, "quiet", epoch, seq, time.time_ns()))

        def orders() -> dict[str, dict]:
            j = Journal(cfg.journal_path())
            try:
                return {o["signal_id"]: o for o in j.orders()}
            finally:
                j.close()

        def market_in() -> int:
            hb = sup.heartbeat("executor")
            return hb.counters.get("market_msgs_in", 0) if hb else 0

        try:
            sup.start(wait=True, timeout=60)
            push.connect(cfg.bus.signals_address)
            wait_until(lambda: market_in() >= 5, 30, "market snapshots at the executor")
            send(1)  # the market is live: the order goes
            wait_until(lambda: "quiet:1" in orders(), 20, "the first journaled")
            server.pause_market()  # no trade from now on
            time.sleep(2.0)  # > stale_market_data_s since the last snapshot
            send(2)
            wait_until(lambda: "quiet:2" in orders(), 20, "the second journaled")
            final = orders()
        finally:
            ctx.destroy(linger=0)
            sup.stop()
    assert final["quiet:1"]["status"] == "FILLED", final["quiet:1"]
    assert final["quiet:2"]["status"] == "REJECTED", final["quiet:2"]
    assert "beyond stale_market_data_s" in final["quiet:2"]["reason"]
