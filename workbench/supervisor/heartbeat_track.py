"""A runner's last heartbeat and its counter rates, as its `RunnerWatcher` keeps them."""

from __future__ import annotations

from typing import Any

from workbench.messaging.codec import Heartbeat
from workbench.messaging.heartbeat_extras import latency_of

# Two heartbeats closer than this give no meaningful rate.
MIN_RATE_INTERVAL_S = 0.05


class HeartbeatTrack:
    """A runner's last heartbeat and the counter rates between its last two.

    What earlier processes of the runner counted (as of their last heartbeats)
    is carried over a restart, so `counter_totals` and `latency_totals` never
    go back: a restarted executor's counters start at 0, and Prometheus
    would miss what the new one counts up to the old value before a scrape
    (a low count such as ``signal_gaps`` most of all).
    """

    def __init__(self) -> None:
        self.carried: dict[str, float] = {}
        self.carried_latency: dict[str, dict[str, Any]] = {}
        self.heartbeat: Heartbeat | None = None
        self.reset()

    def reset(self) -> None:
        """A new process: its predecessor's last counts are carried, the rest forgotten."""
        if self.heartbeat is not None:
            self.carried = self.counter_totals()
            self.carried_latency = self.latency_totals()
        self.at = 0.0
        self.heartbeat = None
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

    def status_parts(self, now: float, alive: bool) -> dict[str, Any]:
        """The heartbeat's fields of `RunnerStatus` (``alive``: the runner has a process)."""
        hb = self.heartbeat
        return {
            "heartbeat_age_s": round(now - self.at, 3) if self.at and alive else None,
            "rates": dict(self.rates) if alive else {},  # a dead gateway makes no ticks/s
            "counters": dict(hb.counters) if hb else {},
            "extra": dict(hb.extra) if hb else {},
            "counter_totals": self.counter_totals(),
            "latency_totals": self.latency_totals(),
        }

    def counter_totals(self) -> dict[str, float]:
        """Every numeric counter summed over this runner's processes so far."""
        out = dict(self.carried)
        for k, v in (self.heartbeat.counters if self.heartbeat else {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
        return out

    def latency_totals(self) -> dict[str, dict[str, Any]]:
        """Every latency histogram summed over this runner's processes so far."""
        out = {k: dict(h) for k, h in self.carried_latency.items()}
        now = latency_of(self.heartbeat.extra) if self.heartbeat else {}
        for k, h in now.items():
            if not _histogram(h):
                continue
            old = out.get(k)
            if old is None or len(old["counts"]) != len(h["counts"]):
                out[k] = {"counts": list(h["counts"]), "sum_us": h["sum_us"], "total": h["total"]}
                continue
            out[k] = {
                "counts": [a + b for a, b in zip(old["counts"], h["counts"], strict=True)],
                "sum_us": old["sum_us"] + h["sum_us"],
                "total": old["total"] + h["total"],
            }
        return out


def _histogram(h: Any) -> bool:
    """A histogram dict as `Telemetry.snapshot` makes it."""
    return (
        isinstance(h, dict)
        and isinstance(h.get("counts"), list)
        and isinstance(h.get("sum_us"), int | float)
        and isinstance(h.get("total"), int)
    )
