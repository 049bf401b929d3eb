"""The messages the runners exchange besides ticks, signals and order events.

Their frame layout is in `workbench.messaging.codec` (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.exceptions import CodecError


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """End of a replay: ``count`` items were sent, the last with ``last_seq``."""

    stream: str
    count: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A runner's liveness and counters, sent every heartbeat interval."""

    role: str
    pid: int
    state: str
    counters: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened (order filled, alert, ...) with plain data."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ack:
    """Everything of delivery leg ``stream`` up to ``upto`` is safe on the far side.

    ``stream`` names the leg by its strategy: a strategy acking the gateway's
    mark ``upto``, or the executor acking a strategy's signal seq ``upto``.
    ``missing``: seq ranges (first, last) at or below ``upto`` the executor
    gave up waiting for and never received: the sender keeps and re-sends them.
    """

    stream: str
    upto: int
    missing: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Resync:
    """A subscriber asks for every tick after ``after_seq`` (its first answer to a mark).

    ``nonce`` comes back in the gateway's echo (`Marker.resync_of`), sent before
    the re-sent batches: what arrives before the echo was sent before the
    request was served, and may run past ``after_seq``.
    """

    subscriber: str
    after_seq: int
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class Marker:
    """A flow-control barrier in the tick stream; subscribers ack it with `Ack`.

    With ``resync_of`` set it is the echo of that subscriber's `Resync` with
    ``nonce``, sent just before the batches re-sent for it; no one acks an echo.
    """

    mark: int
    resync_of: str = ""
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class Command:
    """An operator command to a runner (``halt``, ``resume``, ``state``) with arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


MAX_ACK_MISSING = 64
"""Most seq ranges one `Ack` lists as missing."""


def missing_ranges(v: Any, upto: int) -> tuple[tuple[int, int], ...]:
    """An ack's missing ranges from the wire: pairs 1 <= first <= last <= upto, in order.

    Raises:
        CodecError: anything else.
    """
    if type(v) is not list or len(v) > MAX_ACK_MISSING:
        raise CodecError(f"ack missing ranges must be a list of at most {MAX_ACK_MISSING}")
    out: list[tuple[int, int]] = []
    for r in v:
        if type(r) is not list or len(r) != 2 or not all(type(x) is int for x in r):
            raise CodecError("an ack missing range must be [first, last]")
        first, last = r
        if not (1 <= first <= last <= upto) or (out and first <= out[-1][1]):
            raise CodecError(f"ack missing range {r} is out of order or beyond upto {upto}")
        out.append((first, last))
    return tuple(out)
