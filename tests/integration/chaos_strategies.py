"""Strategies for the crash tests: the real SupportResistance, slowed down.

A wire replay runs far faster than a test can kill runners; a strategy that
takes its time over each batch makes one replay last long enough for a dozen
SIGKILLs, and changes none of its signals (the fast replay of plain
SupportResistance on the same data is the reference).
"""

from __future__ import annotations

import time

from workbench.domain.model import Signal, TickBatch
from workbench.strategies.support_resistance import SupportResistance


class SlowSupportResistance(SupportResistance):
    """SupportResistance that sleeps ``batch_delay_s`` before each batch."""

    def __init__(self, *, batch_delay_s: float = 0.01, **params) -> None:
        super().__init__(**params)
        self._delay_s = batch_delay_s

    def on_batch(self, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
        time.sleep(self._delay_s)
        return super().on_batch(batch, origin_ns)
