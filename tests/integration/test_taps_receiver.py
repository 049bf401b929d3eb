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
        ticks._seqs[b"tick/ABC/"] += 2  # two messages lost: counted as 6 ticks, by tick seq
        ticks.send(batch(seq + 6))
        # Another symbol of the same gateway: one tick seq runs over all; lower is no gap.
        ticks.send(TickBatch("XYZ", 1, [1_700_000_000 * 10**9], [50.0], [1.0]))
        # Events: 4 signals went before the tap heard any, then 2 fills were lost.
        events._seqs[b"evt/signal_received/"] = 4
        events.send(Event("signal_received", {"ts_ns": 1, "signal_id": "s:5"}))
        events.send(Event("order_filled", {"ts_ns": 1, "fill_id": "f1", "symbol": "ABC",
                                           "side": "BUY", "qty": 1.0, "price": 100.0}))  # fmt: skip
        events._seqs[b"evt/order_filled/"] += 2
        events.send(Event("order_filled", {"ts_ns": 2, "fill_id": "f4"}))
        wait_until(lambda: len(taps.fills) == 2, 10, "the fills in their ring")
        wait_until(lambda: taps.telemetry.get("bad_frames") == 5, 10, "5 bad frames counted")
        assert taps.telemetry.get("bad_frames_by_socket:tap.ticks") == 5
        wait_until(lambda: taps.ticks.rows()[-1][1] == "XYZ", 10, "the XYZ batch")
        first_heard = taps.ticks.rows()[0][4]
        assert taps.ticks.before_join == first_heard - 1  # ticks, not batches
        assert taps.ticks.missed == 6
        assert taps.ticks.rows()[-2][4] == seq + 8  # the last batch arrived after the garbage
        assert (taps.signals.before_join, taps.signals.missed) == (4, 0)
        assert (taps.fills.before_join, taps.fills.missed) == (0, 2)
        assert taps.events.before_join >= 4 and taps.events.missed == 2
        assert taps.events.rows()[-1][1] == "order_filled"
        assert taps.ticks.frame(last=0).empty and len(taps.ticks.frame(last=2)) == 2
    finally:
        taps.stop()
        ticks.close()
        events.close()
        ctx.destroy(linger=0)
