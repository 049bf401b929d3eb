"""The codec's start-up self-check (jupyter_client style): one sample of every kind."""

from __future__ import annotations

import datetime as _dt

from workbench.domain.model import OrderType, Side, Signal, Tick, TickBatch, TimeInForce
from workbench.domain.orders import OrderEvent
from workbench.exceptions import CodecError
from workbench.messaging.codec import Payload, decode, encode
from workbench.messaging.messages import (
    Ack,
    Command,
    EndOfStream,
    Event,
    Heartbeat,
    Marker,
    Resync,
)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def samples() -> list[Payload]:
    """One message of every kind, for the start-up self-check and tests."""
    return [
        TickBatch(
            "ABC",
            1,
            [1_700_000_000_000_000_000, 1_700_000_000_100_000_000],
            [100.0, 100.01],
            [1.0, 2.0],
        ),
        Tick("ABC", 1_700_000_000_100_000_000, 100.01, 2.0, 2),
        Signal(
            "sr-1:1",
            "sr-1",
            1,
            "ABC",
            Side.BUY,
            1.0,
            100.01,
            1_700_000_000_100_000_000,
            "entry",
            "c1",
            5,
        ),
        EndOfStream("gateway", 2, 1),
        Heartbeat("gateway", 42, "running", {"ticks_out": 2}, {"latency_us": [1, 2]}),
        Event("order_filled", {"order_id": "O-sr-1:1", "price": 100.01, "when": _EPOCH}),
        Ack("sr-1", 7),
        Resync("sr-1", 41, 977),
        Marker(3),
        Marker(3, "sr-1", 977),
        Command("halt", {"flatten": True}),
        Signal(
            "sr-1:2",
            "sr-1",
            2,
            "ABC",
            Side.SELL,
            1.0,
            100.0,
            1_700_000_000_200_000_000,
            "entry",
            "c1",
            0,
            OrderType.LIMIT,
            100.5,
            TimeInForce.IOC,
        ),
        OrderEvent(
            "sr-1",
            "sr-1:1",
            "O-sr-1:1",
            "FILLED",
            "ABC",
            "BUY",
            1.0,
            100.01,
            0.02,
            1_700_000_000_100_000_000,
            1.0,
        ),
    ]


def check() -> None:
    """Round-trip a sample of every message kind; fail loudly if any differs.

    Raises:
        CodecError: the codec does not round-trip on this build.
    """
    for i, p in enumerate(samples()):
        env = decode(encode(p, "self-check", 1, i + 1, 2))
        if env.payload != p or env.seq != i + 1 or env.sender != "self-check":
            raise CodecError(f"codec self-check failed for {type(p).__name__}: {env.payload!r}")
