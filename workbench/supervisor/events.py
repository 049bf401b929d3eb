"""Supervisor events: the recent ones kept, every one handed to the subscribers."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from workbench.supervisor.status import SupervisorEvent

log = structlog.get_logger()

EVENTS_KEPT = 1000


class Emit(Protocol):
    """The supervisor's event sink: ``emit(kind, runner, **data)``."""

    def __call__(self, kind: str, runner: str, /, **data: Any) -> None: ...


class EventHub:
    """Keeps the last `EVENTS_KEPT` events and calls each subscriber with every new one."""

    def __init__(self) -> None:
        self.recent: collections.deque[SupervisorEvent] = collections.deque(maxlen=EVENTS_KEPT)
        self._subscribers: list[Callable[[SupervisorEvent], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every event; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, kind: str, runner: str, /, **data: Any) -> None:
        """Record an event and hand it to every subscriber (on the calling thread)."""
        ev = SupervisorEvent(kind, runner, time.time_ns(), data)
        self.recent.append(ev)
        with self._lock:
            subs = list(self._subscribers)
        for cb in subs:
            try:
                cb(ev)
            except Exception as e:  # a notebook callback must never kill the supervisor
                log.warning("subscriber_raised", error=repr(e))
