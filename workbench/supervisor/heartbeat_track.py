"""A runner's last heartbeat and its counter rates, as its `RunnerWatcher` keeps them."""

from __future__ import annotations

from typing import Any

from workbench.messaging.codec import Heartbeat

# Two heartbeats closer than this give no meaningful rate.
MIN_RATE_INTERVAL_S = 0.05


class HeartbeatTrack:
    """A runner's last heartbeat and the counter rates between its last two."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new process)."""
        self.at = 0.0
        self.heartbeat: Heartbeat | None = None
        self.rates: dict[str, float] = {}
        self.finished = False
        self._prev: tuple[float, dict[str, Any]] | None = None

    def observe(self, hb: Heartbeat, now: float) -> None:
        """Take ``hb`` arrived at ``now``."""
        self.at = now
        self.heartbeat = hb
        if self._prev is None:
            self._prev = (now, hb.counters)
        else:
            t0, c0 = self._prev
            dt = now - t0
            if dt > MIN_RATE_INTERVAL_S:
                self.rates = {
                    k: round((v - c0.get(k, 0)) / dt, 1)
                    for k, v in hb.counters.items()
                    if isinstance(v, int | float)
                }
                self._prev = (now, hb.counters)
        if hb.state == "finished":
            self.finished = True
