"""The simulated feed's walk: one price path per seed, whenever and however it is polled."""

from __future__ import annotations

import random

from workbench.config import SimulatedFeedConfig
from workbench.gateway import feeds
from workbench.gateway.feeds import SimulatedFeed


def walk(cfg: SimulatedFeedConfig, n: int) -> list[tuple[str, float]]:
    """The walk as the feed defines it, one tick at a time."""
    rng, prices, out = random.Random(cfg.seed), dict.fromkeys(cfg.symbols, cfg.start_price), []
    for k in range(n):
        sym = cfg.symbols[k % len(cfg.symbols)]
        step = round(rng.gauss(0.0, cfg.volatility_ticks)) * cfg.tick_size
        prices[sym] = round(max(cfg.tick_size, prices[sym] + step), 10)
        out.append((sym, prices[sym]))
    return out


def drain(feed: SimulatedFeed, per_poll: int) -> list[tuple[str, float, int]]:
    out = []
    feed._t0 = -1e9  # everything is due
    while not feed.exhausted:
        for b in feed.poll(per_poll):
            out += [(b.symbol, p, b.first_seq + i) for i, p in enumerate(b.price)]
    return out


def test_the_walk_is_the_seeds_whether_polled_a_tick_or_many_at_a_time():
    n = 3 * feeds.PLAN_TICKS + 17  # across several planned chunks
    cfg = SimulatedFeedConfig(symbols=["A", "B", "C"], seed=11, max_ticks=n, volatility_ticks=3)
    expected = walk(cfg, n)
    for per_poll in (1, 7, feeds.PLAN_TICKS, n):
        got = drain(SimulatedFeed(cfg), per_poll)
        assert [(s, p) for s, p, _ in got] == expected
        assert [seq for *_, seq in got] == list(range(1, n + 1))


def test_time_stamps_are_taken_as_ticks_go_out_and_never_go_back():
    cfg = SimulatedFeedConfig(symbols=["A"], rate_per_s=1e6, max_ticks=500)
    feed = SimulatedFeed(cfg)
    stamps = []
    while not feed.exhausted:
        for b in feed.poll(50):
            stamps += b.ts_ns
    assert len(stamps) == 500 and stamps == sorted(stamps)


def test_a_feed_far_behind_catches_up_a_bounded_number_of_ticks_per_poll():
    feed = SimulatedFeed(SimulatedFeedConfig(rate_per_s=10_000))  # no max_ticks: endless
    feed._t0 = -3600.0  # an hour behind (a stopped process): 36M ticks due
    first = sum(len(b) for b in feed.poll(1 << 30))
    assert first == feeds.MAX_POLL_TICKS and feed.seconds_to_next() == 0.0
    assert sum(len(b) for b in feed.poll(1 << 30)) == feeds.MAX_POLL_TICKS
