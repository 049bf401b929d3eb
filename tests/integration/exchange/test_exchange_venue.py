"""The ccxt venue client against the local Binance server: orders, reports, faults, bad keys."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from conftest import SYMBOL, exchange_config
from fixtures.binance_server.server import BinanceServer
from structlog.testing import capture_logs

from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.exchanges.venue import CcxtVenue, ExecutionReport

pytestmark = pytest.mark.integration


@pytest.fixture
def venue(server: BinanceServer) -> Iterator[CcxtVenue]:
    v = CcxtVenue(exchange_config(server)).open()
    try:
        yield v
    finally:
        v.close()


def _reports_until(venue: CcxtVenue, pred, timeout_s: float = 5.0) -> list[ExecutionReport]:
    got: list[ExecutionReport] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got += venue.reports(timeout_s=0.05)
        if pred(got):
            return got
    raise AssertionError(f"no matching report within {timeout_s} s; got {got}")


def _wait_ws(venue: CcxtVenue) -> None:
    """Wait until the order stream is up: its first message (a far-away order's) sets ws_up."""
    for i in range(40):
        if venue.ws_up:
            break
        venue.submit(f"warmup-{i}", SYMBOL, "buy", 0.01, 1.0, "limit")
        time.sleep(0.25)
    assert venue.ws_up
    for o in venue.open_orders():
        venue.cancel(o.client_order_id, SYMBOL)
    time.sleep(0.2)
    venue.reports()


def _a_report_over_the_stream(venue: CcxtVenue, prefix: str) -> None:
    """Place far-away orders until one is reported over the WebSocket (not only polled)."""
    for i in range(40):
        venue.submit(f"{prefix}-{i}", SYMBOL, "buy", 0.01, 1.0, "limit")
        got = venue.reports(timeout_s=0.25)
        if any(r.source == "ws" and r.order.client_order_id.startswith(prefix) for r in got):
            return
    raise AssertionError(f"no report of a {prefix} order came over the WebSocket")


def _server_orders(server: BinanceServer, cid: str) -> list:
    return server.call(
        lambda: [o for o in server.exchange.orders.values() if o.client_order_id == cid]
    )


def test_market_order_fills_and_the_fills_match_the_exchange_history(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    res = venue.submit("sr-1:1", SYMBOL, "buy", 2.0)
    assert res.accepted and res.order is not None
    assert res.order.status == "closed" and res.order.filled == 2.0
    assert res.order.venue_order_id == str(_server_orders(server, "sr-1:1")[0].order_id)
    assert venue.query("sr-1:1", SYMBOL) == res.order
    fills = venue.fills_since(SYMBOL)
    theirs = server.call(lambda: list(server.exchange.my_trades))
    assert [(f.trade_id, f.qty, f.price) for f in fills] == [
        (str(t["id"]), float(t["qty"]), float(t["price"])) for t in theirs
    ]
    assert venue.balances()["USD"] == pytest.approx(1_002.0)
    assert venue.positions() == {SYMBOL: pytest.approx(1_002.0)}


@pytest.mark.parametrize("since", ["start", "a time"])
def test_fills_since_lists_every_trade_of_a_busy_account(
    server: BinanceServer, venue: CcxtVenue, since: str
) -> None:
    # myTrades lists 500 by default (1,000 at most) from a start time, the newest
    # page with none: one call lost the rest.
    server.pause_market()
    now = int(time.time() * 1000)

    def trade(i: int) -> dict:
        return {
            "symbol": "USDJPY", "id": 9000 + i, "orderId": 77, "orderListId": -1,
            "price": "86.7", "qty": "1.0", "quoteQty": "86.7", "commission": "0.01",
            "commissionAsset": "JPY", "time": now - 60_000 + i, "isBuyer": True,
            "isMaker": False, "isBestMatch": True,
        }  # fmt: skip

    server.call(lambda: server.exchange.my_trades.extend(trade(i) for i in range(2_300)))
    fills = venue.fills_since(SYMBOL, now - 120_000 if since == "a time" else 0)
    assert [f.trade_id for f in fills] == [str(9000 + i) for i in range(2_300)]


def test_limit_order_is_reported_over_the_websocket_then_cancelled(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    _wait_ws(venue)
    res = venue.submit("sr-1:2", SYMBOL, "sell", 1.0, 500.0, "limit")
    assert res.accepted and res.order.status == "open"
    assert [o.client_order_id for o in venue.open_orders()] == ["sr-1:2"]
    cancelled = venue.cancel("sr-1:2", SYMBOL)
    assert cancelled is not None and cancelled.status == "canceled"
    reports = _reports_until(
        venue,
        lambda r: any(
            x.order.client_order_id == "sr-1:2" and x.order.status == "canceled" for x in r
        ),
    )
    mine = [r.order.status for r in reports if r.order.client_order_id == "sr-1:2"]
    assert mine[-1] == "canceled" and "closed" not in mine
    assert venue.open_orders() == []
    assert venue.cancel("sr-1:2", SYMBOL) is None  # nothing open by that id any more


def test_a_resting_order_filled_by_the_stream_is_reported(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    _wait_ws(venue)
    res = venue.submit("sr-1:3", SYMBOL, "buy", 1.0, 1000.0, "limit")  # crosses at once
    assert res.accepted
    reports = _reports_until(
        venue,
        lambda r: any(
            x.order.client_order_id == "sr-1:3" and x.order.status == "closed" for x in r
        ),
    )
    filled = [r for r in reports if r.last_qty and r.order.client_order_id == "sr-1:3"]
    assert filled and filled[-1].order.filled == 1.0 and filled[-1].source in ("ws", "rest")


def test_a_rate_limited_create_was_not_carried_out_and_is_sent_again(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    server.fail_next("429", method="POST")
    with capture_logs() as logs:
        res = venue.submit("sr-1:4", SYMBOL, "buy", 1.0)
    assert res.accepted and res.order.status == "closed"
    assert len(_server_orders(server, "sr-1:4")) == 1
    assert server.requests["POST order"] == 2 and server.requests.get("GET order", 0) == 0
    assert [e["event"] for e in logs if e["event"] == "order_submit_refused"]


def test_rate_limited_creates_wait_the_pause_the_exchange_asks_for(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    """Three 429s asking for 1 s each were three POSTs within 0.4 s (a 429 asked again
    early is how Binance comes to ban the IP), then a rejection."""
    server.fail_next("429", method="POST", times=3)
    t0 = time.monotonic()
    res = venue.submit("sr-1:5", SYMBOL, "buy", 1.0)
    assert not res.accepted and server.requests["POST order"] == 3
    assert time.monotonic() - t0 >= 1.9  # two pauses of Retry-After: 1


def test_a_long_rate_limit_pause_rejects_orders_unsent_until_it_is_over(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    server.retry_after = "30"
    server.fail_next("429", method="POST")
    first = venue.submit("sr-1:6", SYMBOL, "buy", 1.0)
    second = venue.submit("sr-1:7", SYMBOL, "buy", 1.0)
    assert not first.accepted and re.search(r"paused \d+\.\d s: not sent", first.reason)
    assert not second.accepted and "rate limit: not sent" in second.reason
    assert server.requests["POST order"] == 1  # the second was never asked


def test_a_rate_limit_on_any_call_pauses_every_request_but_cancels(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    """Only a create's or a poll's 429 paused, and only creates and polls heeded it: look-ups,
    listings and trade fetches went on asking through a 30 s pause."""
    resting = venue.submit("sr-1:8", SYMBOL, "buy", 0.01, 1.0, "limit")
    assert resting.accepted
    server.retry_after = "30"
    server.fail_next("429", method="GET")
    with pytest.raises(TemporaryError, match=r"429|DDoS|RateLimit"):
        venue.query("sr-1:9", SYMBOL)
    listed = server.requests["openOrders"]
    with pytest.raises(TemporaryError, match="rate-limit pause"):
        venue.open_orders()
    assert server.requests["openOrders"] == listed  # not asked
    assert not venue.submit("sr-1:10", SYMBOL, "buy", 1.0).accepted
    cancelled = venue.cancel("sr-1:8", SYMBOL)  # a halt's cancel goes all the same
    assert cancelled is not None and cancelled.status == "canceled"


def test_a_short_pause_another_call_started_is_waited_out_by_a_create(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    """A poll's 429 asking for 1 s made the next exit order a rejection: nothing sends an
    exit twice, so its position was left unmanaged."""
    server.fail_next("429", method="GET")  # Retry-After: 1
    with pytest.raises(TemporaryError):
        venue.query("sr-1:11", SYMBOL)
    res = venue.submit("sr-1:12", SYMBOL, "buy", 1.0)
    assert res.accepted and server.requests["POST order"] == 1


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_an_unanswered_create_not_found_is_in_doubt_not_sent_again(
    server: BinanceServer, venue: CcxtVenue, fault: str
) -> None:
    # Binance: a 5xx or a timeout leaves the outcome unknown, and a late request is
    # still carried out within recvWindow: a second create could fill twice.
    server.fail_next(fault, method="POST")
    with pytest.raises(TemporaryError, match=r"in doubt .*not found yet, for 15 s"):
        venue.submit("sr-1:4", SYMBOL, "buy", 1.0)
    assert server.requests["POST order"] == 1
    assert _server_orders(server, "sr-1:4") == []
    assert venue.stats["submit_in_doubt"] == 1


def test_a_create_carried_out_after_its_timeout_is_not_sent_again(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    # The request reached the matching engine late: the look-up does not find it yet.
    server.fail_next("lose_response", method="POST")
    server.fail_next("not_found", method="GET")
    with pytest.raises(TemporaryError, match="not found yet"):
        venue.submit("sr-1:7", SYMBOL, "buy", 1.0)
    assert server.requests["POST order"] == 1
    assert len(_server_orders(server, "sr-1:7")) == 1  # reconciliation finds it
    assert venue.query("sr-1:7", SYMBOL).filled == 1.0


def test_an_acknowledgement_lost_after_the_exchange_took_the_order_is_found_by_client_id(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    server.fail_next("lose_response")
    res = venue.submit("sr-1:5", SYMBOL, "buy", 1.0)
    assert res.accepted and res.order.client_order_id == "sr-1:5"
    assert venue.stats["submit_found_after_error"] == 1
    assert len(_server_orders(server, "sr-1:5")) == 1


def test_a_client_id_is_refused_only_while_its_order_is_open_as_on_binance(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    res = venue.submit("sr-1:9", SYMBOL, "buy", 1.0, 1.0, "limit")  # rests
    again = venue.submit("sr-1:9", SYMBOL, "buy", 1.0, 1.0, "limit")  # "Duplicate order"
    assert again.accepted and again.order.venue_order_id == res.order.venue_order_id
    assert len(_server_orders(server, "sr-1:9")) == 1
    venue.cancel("sr-1:9", SYMBOL)
    # Closed, its id is free again: a new order (only the journal stops a re-send).
    anew = venue.submit("sr-1:9", SYMBOL, "buy", 1.0, 1.0, "limit")
    assert anew.accepted and anew.order.venue_order_id != res.order.venue_order_id
    assert len(_server_orders(server, "sr-1:9")) == 2
    assert venue.query("sr-1:9", SYMBOL).venue_order_id == anew.order.venue_order_id


def test_a_duplicate_whose_look_up_finds_nothing_is_in_doubt_and_never_sent_again(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    first = venue.submit("sr-1:12", SYMBOL, "buy", 1.0, 1.0, "limit")  # rests
    assert first.accepted and first.order.status == "open"

    def close_it() -> None:  # it fills (here: is cancelled) while the look-up lags
        server.exchange.cancel(server.exchange.by_client_id("sr-1:12"))

    server.fail_next("not_found", method="GET", then=close_it)
    with pytest.raises(TemporaryError, match="in doubt"):
        venue.submit("sr-1:12", SYMBOL, "buy", 1.0, 1.0, "limit")  # "Duplicate order"
    # The id was open a moment ago: a create now would be a second order.
    assert len(_server_orders(server, "sr-1:12")) == 1
    assert server.requests["POST order"] == 2
    assert venue.stats["submit_in_doubt"] == 1


def test_an_exchange_that_stays_down_leaves_the_order_in_doubt(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    server.fail_next("5xx", times=3, method="POST")  # lookups by client id answer
    with pytest.raises(TemporaryError, match="in doubt"):
        venue.submit("sr-1:6", SYMBOL, "buy", 1.0)
    assert _server_orders(server, "sr-1:6") == []


def test_an_unanswered_create_whose_look_up_fails_is_in_doubt_and_never_sent_again(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    server.fail_next("lose_response", method="POST")  # taken and filled; the answer lost
    server.fail_next("5xx", method="GET")  # and the look-up by client id answers 503
    with pytest.raises(TemporaryError, match="in doubt"):
        venue.submit("sr-1:8", SYMBOL, "buy", 1.0)
    # A second create would be a second order: Binance takes a filled order's id again.
    assert server.requests["POST order"] == 1
    (taken,) = _server_orders(server, "sr-1:8")
    assert taken.status == "FILLED"
    assert venue.query("sr-1:8", SYMBOL).filled == 1.0  # what reconciliation finds later


def test_an_order_found_by_client_id_with_another_side_or_qty_is_refused_not_adopted(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    # Another session's orders hold the ids: one rests (a create answers "Duplicate
    # order"), one filled (a create answers 503, then the look-up finds it).
    venue.submit("sr-1:10", SYMBOL, "buy", 1.0, 1.0, "limit")
    venue.submit("sr-1:11", SYMBOL, "buy", 1.0)
    with capture_logs() as logs:
        dup = venue.submit("sr-1:10", SYMBOL, "sell", 3.0, 1.0, "limit")
        server.fail_next("5xx", method="POST")
        lost = venue.submit("sr-1:11", SYMBOL, "sell", 3.0)
    for res, cid in ((dup, "sr-1:10"), (lost, "sr-1:11")):
        assert not res.accepted and res.order is None
        assert f"{cid} belongs to another order (side buy != sell, qty 1 != 3)" in res.reason
        assert len(_server_orders(server, cid)) == 1
    errors = [e["event"] for e in logs if e["log_level"] == "error"]
    assert errors == ["order_client_id_taken"] * 2
    assert venue.stats["submit_found_after_error"] == 0


def test_reports_fall_back_to_polling_while_the_websocket_is_down(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    _wait_ws(venue)
    server.pause_market()
    res = venue.submit("sr-1:7", SYMBOL, "buy", 1.0, 1000.0, "limit")
    assert res.accepted and res.order.status == "open"
    server.drop_websockets()
    server.pause_market(False)  # the next trade fills it while the stream reconnects
    reports = _reports_until(
        venue,
        lambda r: any(
            x.order.client_order_id == "sr-1:7" and x.order.status == "closed" for x in r
        ),
    )
    assert [r.order.filled for r in reports if r.order.client_order_id == "sr-1:7"][-1] == 1.0
    assert venue.stats["ws_errors"] + venue.stats["polls"] >= 1


def test_the_order_stream_reconnects_after_a_drop(server: BinanceServer, venue: CcxtVenue) -> None:
    _wait_ws(venue)
    server.pause_market()
    errors = venue.stats["ws_errors"]
    server.drop_websockets()
    deadline = time.monotonic() + 10
    while venue.stats["ws_errors"] == errors:  # the stream noticed the drop
        assert time.monotonic() < deadline, "the dropped order stream went unnoticed"
        time.sleep(0.02)
    # Orders placed after the drop are reported by the stream again, not only by polling.
    _a_report_over_the_stream(venue, "after-drop")
    assert venue.ws_up


def test_a_frame_ccxt_cannot_read_is_counted_and_the_order_stream_goes_on(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    """One truncated frame ended ccxt's receive loop with the socket open: no error, ws_up
    still True, every later fill only from the slow poll, for minutes."""
    _wait_ws(venue)
    server.send_raw_user('{"e": "executionReport", "s": ')  # truncated JSON
    _a_report_over_the_stream(venue, "after-bad")
    assert venue.stats["bad_frames"] == 1 and venue.ws_up


def test_a_refused_key_is_a_configuration_error_naming_exchange_and_field_without_retries(
    server: BinanceServer,
) -> None:
    bad = exchange_config(server, api_key="not-the-key", api_secret="nope")
    v = CcxtVenue(bad)
    try:
        with pytest.raises(ConfigurationError) as e:
            v.open()
    finally:
        v.close()
    msg = str(e.value)
    assert "gateway.exchange.api_key" in msg and "binance" in msg
    assert "not-the-key" not in msg and "nope" not in msg
    assert server.requests["account"] == 1  # one refused call, no retry storm
    assert server.requests["POST order"] == 0


def test_no_credentials_is_a_configuration_error_before_any_request(server: BinanceServer) -> None:
    with pytest.raises(ConfigurationError, match=r"gateway\.exchange\.api_key: binance"):
        CcxtVenue(exchange_config(server, api_key=None, api_secret=None))
    assert sum(server.requests.values()) == 0


@pytest.mark.parametrize("exchange_ahead_ms", [30_000, -30_000])
def test_a_clock_off_the_exchanges_is_measured_at_open_and_orders_go_through(
    exchange_ahead_ms: int,
) -> None:
    # Binance refuses a signed request stamped more than 1 s ahead of its clock, or
    # older than recvWindow (-1021): every private call failed, from the first.
    with BinanceServer(clock_offset_ms=exchange_ahead_ms) as server:
        v = CcxtVenue(exchange_config(server)).open()
        try:
            assert v.clock_offset_ms == pytest.approx(-exchange_ahead_ms, abs=1_000)
            res = v.submit("sr-1:1", SYMBOL, "buy", 1.0)
            assert res.accepted and res.order is not None and res.order.status == "closed"
            assert len(_server_orders(server, "sr-1:1")) == 1
        finally:
            v.close()


def test_a_clock_step_after_open_is_measured_again_and_the_order_is_placed_once(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    # The exchange's clock steps 30 s ahead of ours (or ours back: NTP, a VM resumed).
    server.set_clock_offset(30_000)
    with capture_logs() as logs:
        res = venue.submit("sr-1:1", SYMBOL, "buy", 1.0)
    assert res.accepted and res.order is not None and res.order.status == "closed"
    assert len(_server_orders(server, "sr-1:1")) == 1  # refused first, so created once
    assert server.requests["GET order"] == 0  # a refusal needs no look-up
    assert venue.stats["clock_resyncs"] >= 1  # the order stream's subscription may meet it too
    assert venue.clock_offset_ms == pytest.approx(-30_000, abs=1_000)
    warned = [e for e in logs if e["event"] == "order_submit_refused"]
    assert "clock is off" in warned[0]["error"], warned
    assert "exchange_clock_resynced" in [e["event"] for e in logs]
    assert venue.balances()["USD"] == pytest.approx(1_001.0)  # later private calls work


def test_a_refused_order_whose_clock_cannot_be_measured_is_rejected_never_in_doubt(
    server: BinanceServer, venue: CcxtVenue
) -> None:
    # -1021 means the exchange did not carry the request out: no look-up is needed,
    # and when every attempt is refused so the order is rejected, not left in doubt.
    server.set_clock_offset(30_000)
    server.time_answer = "503"
    res = venue.submit("sr-1:1", SYMBOL, "buy", 1.0)
    assert not res.accepted and "clock is off" in res.reason
    assert _server_orders(server, "sr-1:1") == []
    assert server.requests["GET order"] == 0  # never looked up
    assert venue.stats["submit_in_doubt"] == 0


@pytest.mark.parametrize("answer", ["503", "html"])  # html: ccxt raises TypeError
def test_an_unanswered_or_odd_server_time_neither_stops_opening_nor_the_reports(
    server: BinanceServer, answer: str
) -> None:
    server.time_answer = answer  # the clock cannot be measured: the last offset (0) stays
    v = CcxtVenue(exchange_config(server)).open()
    try:
        res = v.submit("sr-1:1", SYMBOL, "sell", 1.0, 500.0, "limit")  # rests: in flight
        assert res.accepted
        server.set_clock_offset(30_000)  # signed calls are refused; measuring fails oddly
        server.drop_websockets()  # the stream resubscribes (signed), the poller polls
        time.sleep(1.0)
        assert not v._watcher.done() and not v._poller.done()  # both still at work
        server.set_clock_offset(0)
        resting = _server_orders(server, "sr-1:1")[0]
        server.call(lambda: server.exchange.cancel(resting))  # silently: the poller finds it
        got = _reports_until(v, lambda rs: any(r.order.status == "canceled" for r in rs), 10)
        assert got[-1].order.client_order_id == "sr-1:1"
    finally:
        v.close()


def test_an_order_the_exchange_no_longer_finds_is_polled_less_and_less_often(
    server: BinanceServer,
) -> None:
    """Binance archives old orders; a lost one must not cost a request and a warning per round."""
    venue = CcxtVenue(exchange_config(server, poll_interval_s=0.05)).open()
    try:
        server.pause_market()
        assert venue.submit("sr-1:20", SYMBOL, "buy", 1.0, 1000.0, "limit").accepted
        server.fail_next("not_found", "order", times=10_000, method="GET")
        before = server.call(lambda: server.requests["GET order"])
        first = venue._book.rounds
        with capture_logs() as logs:
            deadline = time.monotonic() + 30
            while venue._book.rounds < first + 40 and time.monotonic() < deadline:
                time.sleep(0.05)
        rounds = venue._book.rounds - first
        polls = server.call(lambda: server.requests["GET order"]) - before
        warned = [e for e in logs if e["event"] == "venue_poll_order_not_found"]
        # Polled at rounds 1, 2, 4, 8, 16, 32 (64) of its misses, not once a round.
        assert rounds >= 40 and 5 <= polls <= 8, (rounds, polls)
        assert [e["misses_in_a_row"] for e in warned] == [1, 2, 4][: len(warned)]
        assert len(warned) == 3 and not [e for e in logs if e["event"] == "venue_poll_failed"]
        server.call(server._faults.clear)  # found again (unchanged): polled every round again
        seen = server.call(lambda: server.requests["GET order"])
        deadline = time.monotonic() + 30
        while server.call(lambda: server.requests["GET order"]) == seen:
            assert time.monotonic() < deadline, "never polled again"
            time.sleep(0.02)
        first, seen = venue._book.rounds, server.call(lambda: server.requests["GET order"])
        while venue._book.rounds < first + 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        polls = server.call(lambda: server.requests["GET order"]) - seen
        assert polls >= venue._book.rounds - first - 2, (polls, venue._book.rounds - first)
        server.drop_websockets()  # only the poller can tell now, and it fills
        server.pause_market(False)
        _reports_until(
            venue,
            lambda r: any(x.order.client_order_id == "sr-1:20" and x.order.filled for x in r),
            timeout_s=10.0,
        )
    finally:
        venue.close()
