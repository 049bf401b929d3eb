"""`RestartPolicy`: backoff, jitter and the restart budget, with a fake clock."""

from __future__ import annotations

import collections
import random

from workbench.config import SupervisorConfig
from workbench.supervisor.policy import RestartPolicy


def policy(**kw) -> RestartPolicy:
    base = {"restart_backoff_initial_s": 0.1, "restart_backoff_max_s": 1.0}
    return RestartPolicy(SupervisorConfig(**{**base, **kw}), random.Random(7))


def test_backoff_doubles_up_to_the_cap_without_jitter():
    p = policy(restart_backoff_jitter=0.0, max_restarts=10)
    history: collections.deque[float] = collections.deque()
    delays = [p.decide(history, 100.0 + i).delay_s for i in range(6)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_jitter_stays_within_its_fraction():
    p = policy(restart_backoff_jitter=0.2)
    delays = [p.delay_s(0) for _ in range(200)]
    assert all(0.08 <= d <= 0.12 for d in delays)
    assert max(delays) - min(delays) > 0.02  # it does vary


def test_budget_per_window_then_the_window_slides():
    p = policy(max_restarts=2, restart_window_s=10.0)
    history: collections.deque[float] = collections.deque()
    assert not p.decide(history, 0.0).give_up
    second = p.decide(history, 1.0)
    assert (second.attempt, second.recent) == (2, 1)
    third = p.decide(history, 2.0)
    assert third.give_up and third.recent == 2 and len(history) == 2
    later = p.decide(history, 10.5)  # the first restart left the window
    assert not later.give_up and later.attempt == 2


def test_unlimited_restarts_never_give_up():
    p = policy(max_restarts=0, unlimited_restarts=True)
    history: collections.deque[float] = collections.deque()
    assert not any(p.decide(history, float(i)).give_up for i in range(50))


def test_unlimited_restarts_keep_the_max_delay_past_a_thousand_in_a_window():
    """``2**1024`` is no float: the 1025th restart of a long crash loop raised OverflowError in
    the supervisor's loop, which stopped every runner (even with an initial delay of 0)."""
    for initial in (0.1, 0.0):
        p = policy(restart_backoff_initial_s=initial, restart_backoff_jitter=0.0,
                   unlimited_restarts=True, restart_window_s=86_400.0)  # fmt: skip
        history: collections.deque[float] = collections.deque()
        delays = [p.decide(history, float(i)).delay_s for i in range(1100)]
        assert delays[-1] == (1.0 if initial else 0.0) and len(history) == 1100


def test_a_streak_of_restarts_spends_the_budget_and_grows_the_backoff_past_the_window():
    # Restarts 15 s apart (a start-up hang): never more than four in a 60 s window.
    p = policy(max_restarts=5, restart_window_s=60.0, restart_backoff_jitter=0.0)
    history: collections.deque[float] = collections.deque()
    decisions = [p.decide(history, 15.0 * i, streak=i) for i in range(6)]
    assert [d.delay_s for d in decisions[:5]] == [0.1, 0.2, 0.4, 0.8, 1.0]
    last = decisions[5]
    assert last.give_up and (last.recent, last.streak) == (4, 5)
    assert last.spent(60.0) == "5 restarts in a row, none up 60 s"
