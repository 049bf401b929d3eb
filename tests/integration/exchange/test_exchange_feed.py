"""The live exchange feed against the local Binance server: ticks, reconnects, staleness."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import SYMBOL, exchange_config
from fixtures.binance_server.server import BinanceServer

from workbench.domain.model import TickBatch
from workbench.exceptions import ConfigurationError
from workbench.gateway.exchange_feed import ExchangeFeed

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(server: BinanceServer) -> Iterator[ExchangeFeed]:
    f = ExchangeFeed(exchange_config(server, api_key=None, api_secret=None))
    try:
        yield f
    finally:
        f.close()


def _collect(feed: ExchangeFeed, n: int, timeout_s: float = 10.0) -> list[TickBatch]:
    got: list[TickBatch] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(b) for b in got) < n and time.monotonic() < deadline:
        got += feed.poll(1 << 20)
        time.sleep(feed.seconds_to_next())
    assert sum(len(b) for b in got) >= n, f"only {sum(len(b) for b in got)} ticks"
    return got


def test_trades_become_ticks_stamped_with_the_exchange_time(
    server: BinanceServer, feed: ExchangeFeed
) -> None:
    batches = _collect(feed, 20)
    ticks = [t for b in batches for t in b.ticks()]
    assert {t.symbol for t in ticks} == {SYMBOL}
    assert [t.seq for t in ticks] == list(range(1, len(ticks) + 1))
    streamed = server.call(lambda: {int(t["t"]): t for t in server.streamed})
    first = feed.first_trade_id[SYMBOL]
    for k, t in enumerate(ticks):  # trade ids are consecutive: tick k is trade first + k
        sent = streamed[first + k]
        assert t.ts_ns == sent["T"] * 1_000_000
        assert t.price == pytest.approx(float(sent["p"]))
        assert t.size == pytest.approx(float(sent["q"]))
    assert feed.health()["feed_stale"] is False
    assert feed.stats["missed_trades"] == 0


def test_a_dropped_websocket_reconnects_resubscribes_and_counts_missed_trades(
    server: BinanceServer, feed: ExchangeFeed
) -> None:
    got = _collect(feed, 5)
    server.drop_websockets()
    got += _collect(feed, 10)
    deadline = time.monotonic() + 5
    while feed.stats["reconnects"] < 1 and time.monotonic() < deadline:
        got += feed.poll(1 << 20)
        time.sleep(0.01)
    got += _collect(feed, 5)
    n = sum(len(b) for b in got)
    span = feed.last_trade_id[SYMBOL] - feed.first_trade_id[SYMBOL] + 1
    assert feed.stats["reconnects"] == 1
    assert feed.stats["missed_trades"] > 0  # the server kept streaming while it reconnected
    assert server.requests["ws SUBSCRIBE"] == 2  # subscribed again after the drop
    assert n + feed.stats["missed_trades"] == span
    assert feed.health()["feed_reconnects"] == 1


def test_a_silent_feed_is_stale_until_ticks_come_back(
    server: BinanceServer, feed: ExchangeFeed
) -> None:
    _collect(feed, 3)
    server.pause_market()
    time.sleep(1.3)  # stale_after_s = 1.0
    feed.poll(1 << 20)
    assert feed.health()["feed_stale"] is True
    server.pause_market(False)
    _collect(feed, 3)
    assert feed.health()["feed_stale"] is False
    assert feed.stats["stale"] == 1


def test_best_bid_ask_becomes_mid_ticks(server: BinanceServer) -> None:
    f = ExchangeFeed(exchange_config(server, trades=False, bids_asks=True))
    try:
        ticks = [t for b in _collect(f, 5) for t in b.ticks()]
    finally:
        f.close()
    mids = {round((r.bid + r.ask) / 2, 6) for r in server.trades}
    assert ticks and all(t.symbol == SYMBOL for t in ticks)
    assert all(round(t.price, 6) in mids for t in ticks)  # mids of the recorded quotes


def test_each_symbols_newest_quote_is_published_when_quotes_come_in_bursts(
    server: BinanceServer,
) -> None:
    # One watch_bids_asks over every symbol returned one symbol per wake-up: another's
    # quote read in the same pass was dropped for good (20 of 20 bursts in a review).
    server.call(lambda: server.exchange.quiet_markets.append(("EUR", "JPY")))
    cfg = exchange_config(server, trades=False, bids_asks=True, symbols=[SYMBOL, "EUR/JPY"])
    f = ExchangeFeed(cfg)

    def book(sym: str, u: int, mid: float) -> tuple[str, dict]:
        frame = {"u": u, "s": sym, "b": f"{mid - 0.1:.8f}", "B": "1.0",
                 "a": f"{mid + 0.1:.8f}", "A": "1.0"}  # fmt: skip
        return f"{sym.lower()}@bookTicker", frame

    try:
        _collect(f, 3)  # connected: the recorded quotes flow
        server.pause_market()
        sent, got = [200.0 + i for i in range(10)], []
        for i, mid in enumerate(sent):
            usd = [book("USDJPY", 100 * i + k, 150.0 + k) for k in range(3)]
            server.send_burst([*usd, book("EURJPY", i, mid), *usd])
            deadline = time.monotonic() + 5
            while mid not in got and time.monotonic() < deadline:
                got += [round(t.price, 6) for b in f.poll(1 << 20) for t in b.ticks()
                        if t.symbol == "EUR/JPY"]  # fmt: skip
                time.sleep(0.01)
    finally:
        f.close()
    assert got == sent


def test_an_unknown_symbol_ends_the_feed_with_a_configuration_error(
    server: BinanceServer,
) -> None:
    f = ExchangeFeed(exchange_config(server, symbols=["NOPE/USDT"]))
    try:
        deadline = time.monotonic() + 5
        with pytest.raises(ConfigurationError, match=r"gateway\.exchange\.symbols"):
            while time.monotonic() < deadline:
                f.poll(10)
                time.sleep(0.02)
    finally:
        f.close()


def test_the_public_feed_streams_when_the_exchanges_time_is_unanswered(
    server: BinanceServer,
) -> None:
    # A key-less feed signs nothing: it must not depend on GET /time at all.
    server.time_answer = "503"
    f = ExchangeFeed(exchange_config(server, api_key=None, api_secret=None))
    try:
        n = 0
        deadline = time.monotonic() + 10
        while n < 20 and time.monotonic() < deadline:
            n += sum(len(b) for b in f.poll(1 << 20))
            time.sleep(0.05)
        assert n >= 20, f.health()
    finally:
        f.close()
