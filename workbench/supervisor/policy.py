"""When to restart a runner that died: exponential backoff, jitter, a budget per window.

Pure: the caller passes the time and keeps each runner's recent restart times,
so tests drive it with a fake clock and a seeded random source.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass

from workbench.config import SupervisorConfig


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """What to do about one unexpected exit.

    Attributes:
        delay_s: Seconds to wait before the respawn, or None: give up (budget spent).
        attempt: Which restart within the window this is (1 for the first).
        recent: Restarts already made within the window before this one.
    """

    delay_s: float | None
    attempt: int
    recent: int

    @property
    def give_up(self) -> bool:
        """True when the budget is spent."""
        return self.delay_s is None


class RestartPolicy:
    """Backoff ``initial * 2**attempt`` up to ``max``, +/- ``jitter``; ``max_restarts`` a window.

    Args:
        config: The supervisor section (``restart_*``, ``max_restarts``, ``unlimited_restarts``).
        rng: Source of the jitter (seed it in tests).
    """

    def __init__(self, config: SupervisorConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()

    def delay_s(self, attempt: int) -> float:
        """The jittered delay before restart number ``attempt + 1`` of the window."""
        sc = self.config
        # The exponent is capped: with unlimited restarts ``attempt`` has no bound, and
        # 2**1024 is no float (the max is reached long before 2**60 in any config).
        grown = sc.restart_backoff_initial_s * 2.0 ** min(attempt, 60)
        delay = min(sc.restart_backoff_max_s, grown)
        return delay * (
            1 + self._rng.uniform(-sc.restart_backoff_jitter, sc.restart_backoff_jitter)
        )

    def decide(self, history: collections.deque[float], now: float) -> RestartDecision:
        """Decide about a restart at ``now``; records it in ``history`` unless giving up.

        ``history`` holds this runner's restart times; the ones older than the
        window are dropped first.
        """
        sc = self.config
        while history and now - history[0] > sc.restart_window_s:
            history.popleft()
        recent = len(history)
        if not sc.unlimited_restarts and recent >= sc.max_restarts:
            return RestartDecision(None, recent, recent)
        delay = self.delay_s(recent)
        history.append(now)
        return RestartDecision(delay, recent + 1, recent)
