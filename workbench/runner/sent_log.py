"""Which signals went on the wire, logged when the strategy host is next idle."""

from __future__ import annotations

import time
from typing import Any

from workbench.domain.model import Signal
from workbench.telemetry import Telemetry


class SentLog:
    """Signals that went, each logged (``signals_sent``) and timed once, later.

    Not at once: while the signals are in flight, the host's CPU is better
    left to its ZeroMQ I/O thread. Signals a full queue held are logged when
    they go; a held re-send of one logged already is not logged again.
    """

    def __init__(self, telemetry: Telemetry, log: Any) -> None:
        self._telemetry = telemetry
        self._log = log
        self._waiting: list[tuple[int, list[Signal]]] = []  # (sent_ns, signals)
        self._upto = 0  # the highest seq logged or waiting: a first send goes in seq order
        self._resent: list[Signal] = []  # held re-sends that went: logged as such

    def __bool__(self) -> bool:
        return bool(self._waiting or self._resent)

    @property
    def oldest_ns(self) -> int:
        """When the oldest signal waiting to be logged went (0 if none waits for its time)."""
        return self._waiting[0][0] if self._waiting else 0

    def sent_before(self, seq: int) -> None:
        """Signals up to ``seq`` went before (a restored state's): never logged as sent here."""
        self._upto = max(self._upto, seq)

    def went(self, signals: list[Signal]) -> None:
        """``signals`` went now (their first send, or held ones released).

        A held one sent before (a re-send, or one a restored state had) is
        logged as ``signals_resent``: each signal shows on the wire in the log.
        """
        before = self._upto
        new = [s for s in signals if s.seq > before]
        if new:
            self._upto = new[-1].seq
            self._waiting.append((time.time_ns(), new))
        if len(new) < len(signals):
            self._resent.extend(s for s in signals if s.seq <= before)

    def flush(self) -> None:
        """Log and time what went since the last call (a crash may lose these lines)."""
        for sent_ns, signals in self._waiting:
            for s in signals:
                if s.origin_ns:
                    self._telemetry.observe_latency_ns("tick_to_signal", sent_ns - s.origin_ns)
            self._log.info("signals_sent", signal_ids=[s.id for s in signals])
        self._waiting.clear()
        if self._resent:
            ids = [s.id for s in self._resent]
            self._log.info("signals_resent", signal_ids=ids[:50], count=len(ids), held=True)
            self._resent.clear()
