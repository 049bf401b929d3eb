"""The ccxt broker on the lifecycle port, against the local Binance server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import SYMBOL, broker_params
from fixtures.binance_server.server import API_KEY, API_SECRET, BinanceServer

from workbench.domain.model import Order, OrderStatus, OrderType, Side, Signal
from workbench.domain.orders import ExecutionReport
from workbench.exceptions import ConfigurationError
from workbench.exchanges.broker import CcxtBroker
from workbench.execution.broker import Broker, load_broker

pytestmark = pytest.mark.integration
CLASS_PATH = "workbench.exchanges.broker:CcxtBroker"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", API_KEY)
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", API_SECRET)


@pytest.fixture
def broker(server: BinanceServer, keys: None) -> Iterator[CcxtBroker]:
    b = load_broker(CLASS_PATH, broker_params(server))
    assert isinstance(b, CcxtBroker) and isinstance(b, Broker)
    try:
        yield b.open()
    finally:
        b.close()


def _order(seq: int, side: Side = Side.BUY, qty: float = 1.0, **kw: object) -> Order:
    sig = Signal(Signal.make_id("sr-1", seq), "sr-1", seq, SYMBOL, side, qty, 86.7, 1, **kw)  # type: ignore[arg-type]
    return Order.from_signal(sig)


def _reports_until(b: CcxtBroker, pred, timeout_s: float = 5.0) -> list[ExecutionReport]:
    got: list[ExecutionReport] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got += b.reports()
        if pred(got):
            return got
        time.sleep(0.05)
    raise AssertionError(f"no matching report within {timeout_s} s; got {got}")


def _server_orders(server: BinanceServer, cid: str) -> list:
    return server.call(
        lambda: [o for o in server.exchange.orders.values() if o.client_order_id == cid]
    )


def _trades(server: BinanceServer) -> list[tuple[str, float, float]]:
    return server.call(
        lambda: [
            (f"binance:USDJPY:{t['id']}", float(t["qty"]), float(t["price"]))
            for t in server.exchange.my_trades
        ]
    )


def test_market_order_is_acknowledged_and_filled_with_the_exchanges_trade(
    server: BinanceServer, broker: CcxtBroker
) -> None:
    o = _order(1, qty=2.0)
    ack = broker.submit(o)
    (venue_order,) = _server_orders(server, o.client_order_id)
    assert ack.accepted and ack.venue_order_id == str(venue_order.order_id)
    reports = _reports_until(broker, lambda r: any(x.status is OrderStatus.FILLED for x in r))
    fills = [r.fill for r in reports if r.fill is not None]
    assert [(f.id, f.qty, f.price) for f in fills] == _trades(server)
    assert fills[0].order_id == o.id and fills[0].signal_id == o.signal_id
    assert fills[0].fee > 0 and fills[0].side is Side.BUY
    snap = broker.order(o.client_order_id)
    assert snap is not None and snap.status is OrderStatus.FILLED
    assert [f.id for f in snap.fills] == [f.id for f in fills]
    assert broker.order("sr-1-999-deadbeef") is None
    assert [f.id for f in broker.fills_since(0)] == [f.id for f in fills]
    assert broker.positions() is None  # spot balances are not positions unless asked


def test_limit_order_rests_is_listed_and_cancelled(
    server: BinanceServer, broker: CcxtBroker
) -> None:
    o = _order(2, Side.SELL, order_type=OrderType.LIMIT, order_price=500.0)
    ack = broker.submit(o)
    assert ack.accepted
    again = broker.submit(o)  # the same order while it rests: the exchange holds one
    assert again.accepted and again.venue_order_id == ack.venue_order_id
    assert [s.client_order_id for s in broker.open_orders()] == [o.client_order_id]
    broker.cancel(o.client_order_id)
    reports = _reports_until(broker, lambda r: any(x.status is OrderStatus.CANCELLED for x in r))
    assert [r.status for r in reports] == [OrderStatus.CANCELLED]
    # Binance answers a cancel with the cancel's own clientOrderId: a report under it
    # was an unknown order's, alerted on every cancel.
    assert [r.client_order_id for r in reports] == [o.client_order_id]
    assert broker.open_orders() == []
    snap = broker.order(o.client_order_id)
    assert snap is not None and snap.status is OrderStatus.CANCELLED and snap.fills == []


def test_an_order_the_exchange_refuses_is_a_rejected_ack(
    server: BinanceServer, broker: CcxtBroker
) -> None:
    o = _order(3, order_type=OrderType.STOP, order_price=90.0)  # this server has no stops
    ack = broker.submit(o)
    assert not ack.accepted and "binance" in ack.reason
    assert _server_orders(server, o.client_order_id) == []


def test_a_lost_acknowledgement_is_found_by_client_order_id(
    server: BinanceServer, broker: CcxtBroker
) -> None:
    o = _order(4)
    server.fail_next("lose_response", method="POST")
    ack = broker.submit(o)
    assert ack.accepted
    assert len(_server_orders(server, o.client_order_id)) == 1
    reports = _reports_until(broker, lambda r: any(x.status is OrderStatus.FILLED for x in r))
    assert [r.fill.id for r in reports if r.fill] == [t[0] for t in _trades(server)]


def test_a_refused_key_names_the_exchange_and_the_field(
    server: BinanceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "not-the-key")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "nope")
    b = load_broker(CLASS_PATH, broker_params(server))
    assert sum(server.requests.values()) == 0  # building it connects to nothing
    with pytest.raises(ConfigurationError) as e:
        b.open()  # type: ignore[attr-defined]
    msg = str(e.value)
    assert "gateway.exchange.api_key" in msg and "binance" in msg
    assert "not-the-key" not in msg and "nope" not in msg
    assert server.requests["account"] == 1  # refused once, not retried


def test_an_order_in_a_symbol_the_config_no_longer_lists_is_still_found(
    server: BinanceServer, keys: None
) -> None:
    # After a restart with that symbol gone from the config, reconciliation asked only
    # the configured symbols, closed the resting order as "not at the venue", and its
    # later fill was never journaled.
    server.call(lambda: server.exchange.quiet_markets.append(("EUR", "JPY")))
    server.pause_market()
    first = CcxtBroker(**broker_params(server)).open()
    o = _order(7, order_type=OrderType.LIMIT, order_price=1.0)  # rests
    try:
        assert first.submit(o).accepted
    finally:
        first.close()
    moved = CcxtBroker(**broker_params(server, symbols=["EUR/JPY"])).open()
    try:
        assert moved.order(o.client_order_id) is None  # asked in the configured symbols only
        snap = moved.order(o.client_order_id, SYMBOL)  # the journal's symbol, as reconcile asks
        assert snap is not None and snap.status is OrderStatus.ACCEPTED
    finally:
        moved.close()


def test_another_runs_orders_on_the_account_never_hold_our_fills_back(
    server: BinanceServer, broker: CcxtBroker, keys: None
) -> None:
    """Every order on the account's stream had its trades fetched, in client id order: an
    account where another run's ids sort first ("alpha-..." before "sr_1-...") held our
    fills back by ~0.2 s per foreign fill (a REST call each), for ever at ~5 fills/s."""
    other = load_broker(CLASS_PATH, broker_params(server))
    assert isinstance(other, CcxtBroker)
    other.open()
    try:
        time.sleep(0.5)  # both order streams up
        for i in range(1, 13):
            sig = Signal(Signal.make_id("alpha", i), "alpha", i, SYMBOL, Side.BUY, 1.0, 86.7, 1)
            assert other.submit(Order.from_signal(sig)).accepted
        mine = _order(1)
        assert broker.submit(mine).accepted
        time.sleep(1.0)  # every foreign fill has reached our stream too
        first = broker.reports()
        ours = [r for r in first if r.client_order_id == mine.client_order_id]
        assert [r.status for r in ours] == [OrderStatus.FILLED]  # in the first call
    finally:
        other.close()
