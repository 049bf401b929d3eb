"""Live, the executor takes the gateway's conflated market data, and its risk checks still work.

The executor's market socket subscribes to the gateway's ``last/`` snapshots
(each symbol's newest tick at most every ``market_snapshot_interval_ms``), not
to every tick: it must receive far fewer messages than the gateway publishes,
while the price collar still sees a market price and stale data is still
refused once the market goes quiet.
"""

from __future__ import annotations

import time

import pytest
from helpers import SignalPusher, journal_orders, make_config, wait_until

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

RATE_PER_S = 3_000.0
NEVER = [  # a BUY below any price the walk reaches: this strategy never signals by itself
    {"id": "never", "symbol": "ABC", "side": "BUY", "trigger_price": 0.001, "turning_point": 0.05,
     "take_profit": 0.2, "stop_loss": 0.15, "following": True, "rearm": True},
]  # fmt: skip


def test_the_executor_takes_conflated_market_data_and_its_collar_and_staleness_still_work(
    tmp_path,
):
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": RATE_PER_S}, "market_snapshot_interval_ms": 10},
        strategies=[{"id": "sr-1"}, {"id": "quiet", "params": {"conditions": NEVER}}],
        executor={
            "risk": {
                "max_order_qty": 10,
                "max_position_qty": 1e6,
                "price_collar_pct": 5,
                "stale_market_data_s": 1.0,
            }
        },
    )
    sup = Supervisor(cfg)
    pusher = SignalPusher(cfg.bus.signals_address, "quiet")

    def counters(runner: str) -> dict:
        hb = sup.heartbeat(runner)
        return hb.counters if hb else {}

    def send(seq: int, price: float) -> None:
        pusher.send(seq, "ABC", price)

    try:
        sup.start(wait=True, timeout=60)
        wait_until(lambda: counters("gateway").get("ticks_out", 0) >= 6_000, 30, "6k ticks")
        executor = counters("executor")
        time.sleep(0.5)  # a gateway heartbeat later than the executor's
        gateway = counters("gateway")
        market_in = executor.get("market_msgs_in", 0)
        # Snapshots go out at most every 10 ms (one symbol): ~100/s against 3,000 ticks/s
        # (in as many tick messages, fewer when a loaded gateway batches a few per message).
        assert 0 < market_in <= gateway["snapshots_out"], (executor, gateway)
        assert market_in * 10 < gateway["ticks_out"], (market_in, gateway)
        assert executor.get("bad_frames", 0) == 0

        send(1, 100.0)  # near the market (a walk from 100 by 0.01 steps): collar passes
        send(2, 150.0)  # 50% off the market: the collar refuses, against a market price
        wait_until(lambda: {"quiet:1", "quiet:2"} <= set(journal_orders(cfg)), 20, "both journaled")
        sup.stop_runner("gateway")  # the market goes quiet: its last snapshot ages
        time.sleep(1.5)
        send(3, 100.0)
        wait_until(lambda: "quiet:3" in journal_orders(cfg), 20, "the third journaled")
        final = journal_orders(cfg)
    finally:
        pusher.close()
        sup.stop()
    assert final["quiet:1"]["status"] == "FILLED", final["quiet:1"]
    assert final["quiet:2"]["status"] == "REJECTED"
    assert "from the market" in final["quiet:2"]["reason"]  # a market price was known
    assert final["quiet:3"]["status"] == "REJECTED"
    assert "beyond stale_market_data_s" in final["quiet:3"]["reason"]
