"""The live exchange feed against what an exchange may send wrong: frames, prices, times."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import SYMBOL, exchange_config
from fixtures.binance_server.server import BinanceServer

from workbench.domain.model import Tick
from workbench.exceptions import ConfigurationError
from workbench.gateway.exchange_feed import ExchangeFeed
from workbench.messaging.heartbeat_extras import FeedHealth

pytestmark = pytest.mark.integration


@pytest.fixture
def feeds(server: BinanceServer) -> Iterator[Callable[..., ExchangeFeed]]:
    made: list[ExchangeFeed] = []

    def make(**over: object) -> ExchangeFeed:
        made.append(ExchangeFeed(exchange_config(server, api_key=None, api_secret=None, **over)))
        return made[-1]

    yield make
    for f in made:
        f.close()


def drain(feed: ExchangeFeed, seconds: float, enough: int = 0) -> list[Tick]:
    """The ticks of ``seconds`` (or fewer: as soon as ``enough`` came, if given)."""
    ticks: list[Tick] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (enough and len(ticks) >= enough):
        ticks += [t for b in feed.poll(1 << 20) for t in b.ticks()]
        time.sleep(0.01)
    return ticks


def trade(server: BinanceServer, trade_id: int, **over: object) -> str:
    """A trade frame on the server's symbol, stamped now, with fields overridden."""
    now = server.call(server.exchange.now_ms)
    msg = {"e": "trade", "E": now, "s": server.exchange.symbol, "t": trade_id, "p": "150.0",
           "q": "1.0", "T": now, "m": False, "M": True} | over  # fmt: skip
    return json.dumps({k: v for k, v in msg.items() if v is not None})


def next_id(feed: ExchangeFeed) -> int:
    return feed.last_trade_id[SYMBOL] + 1


@pytest.mark.parametrize(
    "frame",
    ['{"e": "trade", "p": ', "trade:p=abc", {"p": "abc"}, {"T": "soon"}],
    ids=["truncated-json", "not-json", "unparsable-price", "unparsable-time"],
)
def test_a_frame_the_feed_cannot_read_is_counted_and_the_stream_goes_on(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed], frame: str | dict
) -> None:
    """ccxt reads frames in a callback: one that raised stopped the stream for minutes."""
    feed = feeds()
    assert drain(feed, 5.0, enough=5)
    server.send_raw(frame if isinstance(frame, str) else trade(server, next_id(feed), **frame))
    after = drain(feed, 5.0, enough=31)
    assert len(after) > 30, feed.health()
    assert feed.health()["feed_reconnects"] == 0


@pytest.mark.parametrize(
    ("over", "why"),
    [({"p": "0"}, "price 0"), ({"p": "-5"}, "price -5"), ({"q": "-3"}, "size -3"),
     ({"p": "NaN"}, "price NaN"), ({"p": "Infinity"}, "price inf"), ({"p": None}, "no price")],
)  # fmt: skip
def test_a_trade_without_a_positive_finite_price_or_with_a_negative_size_is_never_a_tick(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed], over: dict, why: str
) -> None:
    feed = feeds()
    drain(feed, 5.0, enough=5)
    server.send_raw(trade(server, next_id(feed) + 5, **over))
    after = drain(feed, 1.0)
    assert after, why
    bad = [(t.price, t.size) for t in after if not (math.isfinite(t.price) and t.price > 0)]
    assert bad == [] and all(t.size >= 0 for t in after), why
    health = feed.health()
    assert health["feed_bad_ticks"] + health["feed_bad_frames"] == 1, (why, health)


@pytest.mark.parametrize("bids_asks", [False, True])
def test_one_trade_stamped_an_hour_ahead_does_not_hold_the_symbols_clock(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed], bids_asks: bool
) -> None:
    """With quotes too, the bad stamp's lag stamped every quote an hour ahead, and the
    symbol's clock (trades and all) stood there until real time caught up."""
    feed = feeds(bids_asks=bids_asks)
    drain(feed, 5.0, enough=5)
    ahead = server.call(server.exchange.now_ms) + 3_600_000
    server.send_raw(trade(server, next_id(feed) + 5, T=ahead, E=ahead))
    after = drain(feed, 1.5)
    assert len({t.ts_ns for t in after}) > 10
    assert max(t.ts_ns for t in after) < time.time_ns() + 6e9
    assert feed.health()["feed_ts_ahead"] == 1


def test_trades_keep_the_exchanges_time_beside_quotes_stamped_on_it(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed]
) -> None:
    """The exchange's clock 2 s behind: quotes stamped with the receive time held every
    trade's tick 2 s later than the trade, and hid the lag."""
    server.set_clock_offset(-2000)
    feed = feeds(bids_asks=True)
    drain(feed, 5.0, enough=5)
    first = next_id(feed)
    after = drain(feed, 1.5)
    last = feed.last_trade_id[SYMBOL]
    streamed = server.call(lambda: {int(t["t"]): t["T"] for t in server.streamed})
    stamps = {t.ts_ns for t in after}
    kept = [i for i in range(first, last + 1) if streamed[i] * 1_000_000 in stamps]
    assert len(kept) >= 0.8 * (last - first + 1), (len(kept), last - first + 1)
    assert feed.health()["feed_lag_ms"] > 1500


def test_a_silent_symbol_makes_the_feed_stale_naming_it_while_another_ticks(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed]
) -> None:
    server.call(lambda: server.exchange.quiet_markets.append(("EUR", "JPY")))
    feed = feeds(symbols=[SYMBOL, "EUR/JPY"], stale_after_s=0.5)
    ticks = drain(feed, 1.2)
    assert {t.symbol for t in ticks} == {SYMBOL}
    health = feed.health()
    assert health["feed_stale"] is True and health["feed_stale_symbols"] == ["EUR/JPY"]
    beat = FeedHealth.from_wire(health)  # as the gateway's heartbeat carries it
    assert beat is not None and beat.feed_stale_symbols == ("EUR/JPY",)


def test_a_feed_that_would_publish_nothing_is_a_configuration_error(
    server: BinanceServer,
) -> None:
    with pytest.raises(ConfigurationError, match="trades and bids_asks are both false"):
        ExchangeFeed(exchange_config(server, trades=False, bids_asks=False))


def test_one_bogus_trade_id_far_ahead_does_not_silence_the_symbols_trades(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed]
) -> None:
    # Taken as the last id, it made every real trade after it a "duplicate" for as long
    # as the connection lived (a review helper's repro: 0 trades in 4 s).
    feed = feeds()
    drain(feed, 5.0, enough=5)
    server.send_raw(trade(server, next_id(feed) + 10**9, p="999.0"))
    after = drain(feed, 5.0, enough=31)
    assert len(after) > 30 and 999.0 not in {t.price for t in after}
    health = feed.health()
    assert health["feed_duplicate_trades"] == 0 and health["feed_bad_ticks"] == 1


def test_a_jump_in_trade_ids_that_the_next_trade_follows_is_taken(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed]
) -> None:
    feed = feeds()
    drain(feed, 5.0, enough=5)
    server.pause_market()
    time.sleep(0.3)
    drain(feed, 0.3)
    jump = next_id(feed) + 5_000
    server.send_raw(trade(server, jump, p="151.0"))
    server.send_raw(trade(server, jump + 1, p="152.0"))
    after = drain(feed, 3.0, enough=1)
    assert [t.price for t in after] == [152.0] and feed.last_trade_id[SYMBOL] == jump + 1


def test_trade_ids_started_over_after_a_reconnect_are_followed_not_dropped(
    server: BinanceServer, feeds: Callable[..., ExchangeFeed]
) -> None:
    """A testnet reset starts ids at 1 again: dropped as seen, nothing was published."""
    feed = feeds()
    drain(feed, 5.0, enough=40)
    server.pause_market()
    server.call(lambda: setattr(server, "next_trade_id", 1))
    server.drop_websockets()
    time.sleep(0.3)
    server.pause_market(False)
    after = drain(feed, 5.0, enough=31)
    assert len(after) > 30 and feed.health()["feed_duplicate_trades"] == 0
