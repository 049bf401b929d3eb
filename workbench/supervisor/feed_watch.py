"""What a gateway's heartbeats say about its live feed going stale, for its `RunnerWatcher`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workbench.messaging.heartbeat_extras import FeedHealth
from workbench.supervisor.status import RunnerState


@dataclass(frozen=True)
class StaleReport:
    """One heartbeat of a stale feed, as the watcher acts on it.

    Attributes:
        age_s: How long the feed (its most silent symbol) has been silent.
        symbols: The symbols silent now (none from an older gateway).
        alert: Something is newly silent: the first beat of an episode, or a
            symbol not silent at the last alert.
        new_symbols: The symbols newly silent (what the alert names).
        action: ``set``: the runner goes (or stays) unhealthy with `detail`, a
            state change; ``age``: unhealthy for its feed already, only the
            detail's age is new; ``keep``: unhealthy for another reason, kept.
    """

    age_s: float
    symbols: tuple[str, ...]
    alert: bool
    new_symbols: tuple[str, ...]
    action: Literal["set", "age", "keep"] = "set"

    @property
    def detail(self) -> str:
        """The runner's state detail: ``feed silent 3.2 s: BTC/USDT, ETH/USDT``."""
        named = f": {', '.join(self.symbols)}" if self.symbols else ""
        return f"feed silent {self.age_s} s{named}"


class StaleFeed:
    """One stale episode at a time: what was alerted, until the feed ticks again.

    A pure object: the watcher passes each gateway heartbeat's `FeedHealth`.
    """

    def __init__(self) -> None:
        self._alerted: set[str] | None = None  # None: not stale
        self._last: tuple[str, ...] = ()

    def on_beat(
        self, feed: FeedHealth | None, state: RunnerState, detail: str
    ) -> StaleReport | None:
        """The report of a stale feed; None when it is not (the episode is over) or starting.

        Args:
            state: The runner's state; a runner ``starting`` runs first.
            detail: Its state's detail: an unhealthy one for another reason
                than its feed or its heartbeats keeps it.
        """
        if state not in (RunnerState.RUNNING, RunnerState.UNHEALTHY):
            return None
        if feed is None or not feed.feed_stale:
            self._alerted, self._last = None, ()
            return None
        symbols = tuple(feed.feed_stale_symbols)
        first = self._alerted is None
        alerted = self._alerted = self._alerted if self._alerted is not None else set()
        new = tuple(s for s in symbols if s not in alerted)
        alerted.update(new)
        changed = first or symbols != self._last  # the age alone does not count
        self._last = symbols
        ours = detail.startswith("feed")
        action: Literal["set", "age", "keep"] = "set"
        if state is RunnerState.UNHEALTHY:
            if ours and not changed:
                action = "age"
            elif not ours and not detail.startswith("heartbeat"):
                action = "keep"  # unhealthy for another reason: that stays
        return StaleReport(feed.feed_age_s, symbols, first or bool(new), new, action)
