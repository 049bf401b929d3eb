"""Taps on real sockets through `ZmqReceiver`: rows in, bad frames counted per socket, gaps seen."""

from __future__ import annotations

import time

import zmq
from helpers import make_config, wait_until

from workbench.domain.model import TickBatch
from workbench.messaging.codec import Event
from workbench.messaging.zmq_adapters import ZmqSender
from workbench.taps import Taps
from workbench.telemetry import Telemetry

GARBAGE = [b"tick/ABC/", b"\xdc\x00"]


def batch(first_seq: int, n: int = 3) -> TickBatch:
    return TickBatch("ABC", first_seq, [1_700_000_000 * 10**9 + i for i in range(n)],
                     [100.0 + i for i in range(n)], [1.0] * n)  # fmt: skip


def test_taps_fill_rings_count_bad_frames_and_missed_messages(tmp_path):
    cfg = make_config(tmp_path)
    ctx = zmq.Context()
    tele = Telemetry()
    ticks = ZmqSender(ctx, zmq.PUB, cfg.bus.ticks_address, cfg.bus, "gateway", tele, bind_it=True)
    events = ZmqSender(ctx, zmq.PUB, cfg.bus.events_address, cfg.bus, "executor", tele,
                       bind_it=True)  # fmt: skip
    taps = Taps(cfg)
    try:
        taps.start()
        seq = 1
        deadline = time.monotonic() + 10
        while taps.ticks.total == 0:  # until the subscription has arrived
            assert time.monotonic() < deadline, "the tap never received a tick"
            ticks.send(batch(seq))
            seq += 3
            time.sleep(0.05)
        for _ in range(5):
            ticks.send_raw(GARBAGE)
        ticks._seqs[b"tick/ABC/"] += 2  # two messages never sent: a gap of 2
        ticks.send(batch(seq))
        # A stream whose first 4 messages went before the tap joined: 4 missed
        # (they went uncounted: a fast replay's ticks all missed, "missed 0").
        ticks._seqs[b"tick/XYZ/"] = 4
        ticks.send(TickBatch("XYZ", 1, [1_700_000_000 * 10**9], [50.0], [1.0]))
        events.send(Event("order_filled", {"ts_ns": 1, "fill_id": "f1", "symbol": "ABC",
                                           "side": "BUY", "qty": 1.0, "price": 100.0}))  # fmt: skip
        wait_until(lambda: len(taps.fills) == 1, 10, "the fill in its ring")
        wait_until(lambda: taps.telemetry.get("bad_frames") == 5, 10, "5 bad frames counted")
        assert taps.telemetry.get("bad_frames_by_socket:tap.ticks") == 5
        wait_until(lambda: taps.ticks.rows()[-1][1] == "XYZ", 10, "the XYZ batch")
        before_join = (taps.ticks.rows()[0][4] - 1) // 3  # ABC batches sent before it joined
        assert taps.ticks.missed == 2
        assert taps.ticks.before_join == 4 + before_join
        assert taps.ticks.rows()[-2][4] == seq + 2  # the last batch arrived after the garbage
        assert taps.events.rows()[-1][1] == "order_filled"
    finally:
        taps.stop()
        ticks.close()
        events.close()
        ctx.destroy(linger=0)
