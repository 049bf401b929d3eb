"""The messages the runners exchange besides ticks, signals and order events.

Their frame layout is in `workbench.messaging.codec` (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    """

    stream: str
    upto: int


@dataclass(frozen=True, slots=True)
class Resync:
    """A restarted subscriber asks for every tick after ``after_seq``."""

    subscriber: str
    after_seq: int


@dataclass(frozen=True, slots=True)
class Marker:
    """A flow-control barrier in the tick stream; subscribers ack it with `Ack`."""

    mark: int


@dataclass(frozen=True, slots=True)
class Command:
    """An operator command to a runner (``halt``, ``resume``, ``state``) with arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
