"""When to restart a runner that died: exponential backoff, jitter, a budget per window.

The budget is ``max_restarts`` within ``restart_window_s``, and as many in a
row with no run that stayed up ``restart_window_s`` between them (the
caller's ``streak``): a runner that hangs at start-up takes ``start_timeout_s``
per attempt, so fewer than ``max_restarts`` fit in any window, and it would
otherwise be restarted for ever, never `failed`. The backoff grows with the
larger of the two counts.

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
        streak: Restarts already made in a row before this one (see the module docstring).
    """

    delay_s: float | None
    attempt: int
    recent: int
    streak: int = 0

    @property
    def give_up(self) -> bool:
        """True when the budget is spent."""
        return self.delay_s is None

    def spent(self, window_s: float) -> str:
        """How the budget was spent, for the failed runner's detail."""
        if self.recent >= self.streak:
            return f"{self.recent} restarts in {window_s:g} s"
        return f"{self.streak} restarts in a row, none up {window_s:g} s"


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

    def decide(
        self, history: collections.deque[float], now: float, streak: int = 0
    ) -> RestartDecision:
        """Decide about a restart at ``now``; records it in ``history`` unless giving up.

        ``history`` holds this runner's restart times; the ones older than the
        window are dropped first. ``streak``: the restarts made since its last
        process that stayed up ``restart_window_s`` (the caller counts them).
        """
        sc = self.config
        while history and now - history[0] > sc.restart_window_s:
            history.popleft()
        recent = len(history)
        spent = max(recent, streak)
        if not sc.unlimited_restarts and spent >= sc.max_restarts:
            return RestartDecision(None, spent, recent, streak)
        delay = self.delay_s(spent)
        history.append(now)
        return RestartDecision(delay, spent + 1, recent, streak)
