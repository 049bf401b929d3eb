"""Strategies (and a broker) for the crash tests: the real code, slowed down.

A wire replay runs far faster than a test can kill runners; a strategy that
takes its time over each batch makes one replay last long enough for a dozen
SIGKILLs, and changes none of its signals (the fast replay of plain
SupportResistance on the same data is the reference).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from workbench.domain.model import Order, Signal, TickBatch
from workbench.domain.orders import OrderAck
from workbench.execution.simulator import SimulatedBroker
from workbench.strategies.support_resistance import SupportResistance


class SlowSupportResistance(SupportResistance):
    """SupportResistance that sleeps ``batch_delay_s`` before each batch."""

    def __init__(self, *, batch_delay_s: float = 0.01, **params) -> None:
        super().__init__(**params)
        self._delay_s = batch_delay_s

    def on_batch(self, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
        time.sleep(self._delay_s)
        return super().on_batch(batch, origin_ns)


class SlowVenueBroker(SimulatedBroker):
    """The simulator behind a slow network: every submit takes ``submit_delay_s``.

    With ``hold_until`` a path, each submit first waits (at most 30 s) until
    that file exists: a test holds an order at the venue for as long as it needs.
    Not ``in_process``, so the executor calls it on its broker thread with a
    timeout, as it does a real venue.
    """

    in_process = False

    def __init__(self, *, submit_delay_s: float = 0.0, hold_until: str = "", **params) -> None:
        super().__init__(**params)
        self.submit_delay_s = submit_delay_s
        self.hold_until = Path(hold_until) if hold_until else None

    def submit(self, order: Order) -> OrderAck:
        deadline = time.monotonic() + 30
        while self.hold_until and not self.hold_until.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(self.submit_delay_s)
        return super().submit(order)


class DiesInItsFirstBatch(SupportResistance):
    """SupportResistance whose first process dies in its first batch, before any save.

    The gateway has sent that process every tick its window allows; the
    replacement starts with no state at all.
    """

    def __init__(self, *, marker: str, **params) -> None:
        super().__init__(**params)
        self._marker = Path(marker)

    def on_batch(self, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
        if not self._marker.exists():
            self._marker.write_text("died once")
            time.sleep(0.3)  # the gateway sends on meanwhile
            os._exit(9)
        return super().on_batch(batch, origin_ns)
