"""100k malformed frames into every bound receiving socket: counted per socket, nobody restarts."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
import zmq
from helpers import make_config, wait_until

from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

FRAMES = 100_000
GARBAGE = {  # socket -> a frame that passes the socket's topic filter but cannot decode
    "signals": [b"sig/evil/", b"\xc1"],
    "credits": [b"ack/evil/", b"\x92\x01"],
    "telemetry": [b"hb/evil/", b"\xdc\x00"],
}


def bad_frames(metrics: str) -> dict[tuple[str, str], float]:
    pattern = r'workbench_bad_frames_by_socket_total\{runner="([^"]+)",socket="([^"]+)"\} (\S+)'
    return {(r, s): float(v) for r, s, v in re.findall(pattern, metrics)}


def test_100k_malformed_frames_into_each_bound_socket_are_counted_and_dropped(tmp_path):
    cfg = make_config(tmp_path, gateway={"simulated": {"rate_per_s": 200.0}})
    sup = Supervisor(cfg)
    ctx = zmq.Context()
    try:
        sup.start(wait=True, timeout=60)
        targets = {
            "signals": (zmq.PUSH, cfg.bus.signals_address),
            "credits": (zmq.PUSH, cfg.bus.control_address),  # the live gateway reads it too
            "telemetry": (zmq.PUB, cfg.bus.telemetry_address),
        }
        socks = {}
        for name, (kind, address) in targets.items():
            s = ctx.socket(kind)
            s.setsockopt(zmq.SNDHWM, 0)  # the test never drops: every frame reaches the socket
            s.setsockopt(zmq.LINGER, 0)
            s.connect(address)
            socks[name] = s
        time.sleep(0.5)  # the PUB's subscription arrives
        for name, s in socks.items():
            for _ in range(FRAMES):
                s.send_multipart(GARBAGE[name])

        def counted() -> dict[tuple[str, str], float]:
            with urllib.request.urlopen(sup.health_url + "/metrics", timeout=5) as r:
                return bad_frames(r.read().decode())

        want = {("executor", "signals"), ("gateway", "credits"), ("supervisor", "telemetry")}
        last: dict[tuple[str, str], float] = {}

        def enough() -> bool:
            last.update(counted())
            return all(last.get(k, 0) >= 0.99 * FRAMES for k in want)

        try:
            wait_until(enough, 60, "99% of the malformed frames counted on every socket")
        except AssertionError as e:
            raise AssertionError(f"{e}: counted {last}, runners {sup.status()}") from None
        time.sleep(1.0)  # long enough for a crashed runner to show
        status = {s["runner"]: s for s in sup.status()}
        final = counted()
    finally:
        ctx.destroy(linger=0)
        sup.stop()
    assert all(s["state"] == "running" and s["restarts"] == 0 for s in status.values()), status
    for key in want:
        assert 0.99 * FRAMES <= final[key] <= FRAMES, (key, final)


def test_the_executor_fills_nothing_from_strangers_or_at_absurd_values(tmp_path):
    from workbench.domain.model import Side, Signal
    from workbench.execution.journal import Journal
    from workbench.messaging import codec

    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 200.0}},
        executor={
            "risk": {"max_order_qty": 10, "max_position_qty": 10, "price_collar_pct": 5},
            "signal_gap_timeout_s": 2.0,  # seqs 1..900 never come (see below)
        },
    )
    sup = Supervisor(cfg)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    try:
        sup.start(wait=True, timeout=60)
        push.connect(cfg.bus.signals_address)
        sent = [
            Signal("evil:1", "evil", 1, "ABC", Side.BUY, 1e12, 100.0, 1, "x", "c"),  # stranger
            Signal("sr-1:901", "sr-1", 901, "ABC", Side.BUY, 1.0, 0.0, 1, "x", "c"),  # price 0
            Signal("sr-1:902", "sr-1", 902, "ABC", Side.BUY, 1.0, -1.0, 1, "x", "c"),  # < 0
            Signal("sr-1:903", "sr-1", 903, "ABC", Side.BUY, 1.0, 1e308, 1, "x", "c"),  # collar
            Signal("sr-1:904", "sr-1", 904, "ABC", Side.BUY, 1e12, 100.0, 1, "x", "c"),  # size
        ]
        for i, s in enumerate(sent, 1):
            push.send_multipart(codec.encode(s, "evil", 1, i, time.time_ns()))

        def executor_counters() -> dict:
            hb = sup.heartbeat("executor")
            return hb.counters if hb else {}

        wait_until(
            lambda: (
                executor_counters().get("signals_refused", 0) >= 1
                and executor_counters().get("bad_frames", 0) >= 2
            ),
            20,
            "the stranger refused and the bad values dropped",
        )
        # 903 and 904 wait behind the hole before them (seqs 1..900 never came):
        # after the gap bound they are acted on, and the risk engine rejects both.
        wait_until(lambda: executor_counters().get("orders_rejected", 0) >= 2, 30, "rejections")
    finally:
        ctx.destroy(linger=0)
        sup.stop()
    j = Journal(cfg.journal_path())
    try:
        orders = {o["signal_id"]: o for o in j.orders()}
        fills = j.fills()
    finally:
        j.close()
    assert "evil:1" not in orders and "sr-1:901" not in orders and "sr-1:902" not in orders
    assert (
        orders["sr-1:903"]["status"] == "REJECTED"
        and "price_collar_pct" in orders["sr-1:903"]["reason"]
    )
    assert (
        orders["sr-1:904"]["status"] == "REJECTED"
        and "max_order_qty" in orders["sr-1:904"]["reason"]
    )
    assert not [f for f in fills if f.signal_id in ("sr-1:903", "sr-1:904")]
