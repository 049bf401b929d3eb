"""End-of-stream as the supervisor sees it: the first report wins, wherever it came from.

The executor says a replay is complete twice: an ``eos`` event, and (for a
supervisor whose event subscription was still reconnecting) ``eos_summary``
on its heartbeats. Both land here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class EndOfStream:
    """Holds the executor's end-of-stream summary once one arrived."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.summary: dict[str, Any] | None = None

    def offer(self, summary: Mapping[str, Any], sent_ns: int) -> bool:
        """Record ``summary`` (sent at ``sent_ns``) unless one arrived already.

        ``eos_ns`` is when the executor completed the replay, as the summary
        says; a heartbeat carrying it may be sent up to an interval later.

        Returns:
            True when this was the first: the caller announces it.
        """
        if self.reached.is_set():
            return False
        self.summary = {**summary, "eos_ns": int(summary.get("completed_ns") or sent_ns)}
        self.reached.set()
        return True
