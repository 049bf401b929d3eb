"""The executor with the ccxt broker in-process, on the local Binance server: journals and restarts.

Two journals (two runs) on one account must never share a client order id, and
a restarted executor must follow the orders its journal left resting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SYMBOL, stop
from fixtures.binance_server.server import BinanceServer

from workbench.domain.model import OrderType, Side, Signal
from workbench.exchanges import broker as broker_module
from workbench.execution.broker import LotSized
from workbench.execution.executor import Executor

pytestmark = pytest.mark.integration


def signal(seq: int, side: Side, qty: float, **kw: object) -> Signal:
    return Signal(Signal.make_id("sr-1", seq), "sr-1", seq, SYMBOL, side, qty, 86.7, 1, **kw)  # type: ignore[arg-type]


def poll_until(ex: Executor, status: str, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ex.poll()
        (order,) = ex.journal.orders()
        if order["status"] == status:
            return order
        time.sleep(0.05)
    raise AssertionError(f"not {status} within {timeout_s} s: {ex.journal.orders()}")


def venue_orders(server: BinanceServer) -> dict[str, tuple[str, float, str]]:
    """Client order id -> (side, qty, status) of every order at the server."""
    return server.call(
        lambda: {
            o.client_order_id: (o.side, o.qty, o.status) for o in server.exchange.orders.values()
        }
    )


def test_a_new_journal_on_the_same_account_places_its_own_orders(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    while not server.call(lambda: server.exchange.last_price):  # market orders need a price
        time.sleep(0.05)
    first = executors(tmp_path / "run-1" / "journal.sqlite")
    first.on_signals([signal(1, Side.BUY, 1.0, order_type=OrderType.LIMIT, order_price=1.0)])
    resting = poll_until(first, "ACCEPTED")
    # A new run (new journal), same strategy and signal id, while that order rests.
    second = executors(tmp_path / "run-2" / "journal.sqlite")
    second.on_signals([signal(1, Side.SELL, 3.0)])
    placed = poll_until(second, "FILLED")
    assert placed["client_order_id"] != resting["client_order_id"]
    assert [(f.side, f.qty) for f in second.journal.fills()] == [(Side.SELL, 3.0)]
    assert venue_orders(server) == {
        resting["client_order_id"]: ("BUY", 1.0, "NEW"),
        placed["client_order_id"]: ("SELL", 3.0, "FILLED"),
    }


def test_a_resting_order_restored_after_a_restart_is_polled_while_the_stream_is_silent(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    path = tmp_path / "journal.sqlite"
    server.pause_market()
    ex = executors(path)
    ex.on_signals([signal(1, Side.BUY, 1.0, order_type=OrderType.LIMIT, order_price=1000.0)])
    stop(ex)  # the executor stops with its order resting (it crosses at the next trade)
    ex = executors(path)  # reconciles at start: still open
    assert poll_until(ex, "ACCEPTED")["filled_qty"] == 0.0
    server.mute_user_stream()  # connected but silent: only REST polling can tell
    server.pause_market(False)
    order = poll_until(ex, "FILLED")
    trades = server.call(
        lambda: [(str(t["id"]), float(t["qty"])) for t in server.exchange.my_trades]
    )
    assert [(f.id.rpartition(":")[2], f.qty) for f in ex.journal.fills()] == trades
    assert order["filled_qty"] == 1.0 and ex.portfolio.position(SYMBOL) == 1.0


def test_orders_go_out_in_the_markets_lot_steps_and_one_below_the_least_is_refused(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """The market trades in steps of 0.001 (LOT_SIZE): ccxt sends 1.0015 as 1.001.

    The journal must hold the order the venue took, or its fills (1.001) never
    complete the order asked for (1.0015) and it stays open for ever.
    """
    while not server.call(lambda: server.exchange.last_price):  # market orders need a price
        time.sleep(0.05)
    ex = executors(tmp_path / "journal.sqlite")
    assert isinstance(ex.broker, LotSized)
    ex.on_signals([signal(1, Side.BUY, 1.0015)])
    order = poll_until(ex, "FILLED")
    assert (order["qty"], order["filled_qty"]) == (1.001, 1.001)
    assert not len(ex.open) and ex.portfolio.position(SYMBOL) == 1.001
    assert ex.telemetry.get("order_qty_rounded") == 1
    ex.on_signals([signal(2, Side.BUY, 0.0004)])  # less than one step: nothing to send
    refused = {o["signal_id"]: o for o in ex.journal.orders()}["sr-1:2"]
    assert refused["status"] == "REJECTED"
    assert refused["reason"] == (
        "binance: qty 0.0004 is below USD/JPY's smallest order (minimum 0.001, lot step 0.001)"
    )
    assert venue_orders(server) == {order["client_order_id"]: ("BUY", 1.001, "FILLED")}


def test_a_position_a_float_drift_below_a_lot_step_is_flattened_whole(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """0.7 - 0.4 is 0.29999999999999993: sent as 0.299 it would leave a lot no flatten closes."""
    while not server.call(lambda: server.exchange.last_price):
        time.sleep(0.05)
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals([signal(1, Side.BUY, 0.7)])
    poll_until(ex, "FILLED")
    ex.on_signals([signal(2, Side.SELL, 0.4)])
    deadline = time.monotonic() + 5
    while len(ex.open) and time.monotonic() < deadline:
        ex.poll()
        time.sleep(0.05)
    assert ex.portfolio.position(SYMBOL) == 0.7 - 0.4 == 0.29999999999999993
    ex.on_tick(SYMBOL, 86.7, time.time_ns())
    ex.flatten()
    assert ex.not_flattened == {} and abs(ex.portfolio.position(SYMBOL)) < 1e-12
    closing = [o for o in ex.journal.orders() if not o["signal_id"].startswith("sr-1:")]
    assert [(o["side"], o["qty"], o["status"]) for o in closing] == [("SELL", 0.3, "FILLED")]


def filled_short(path: Path, server: BinanceServer, executors: Callable[..., Executor]) -> Executor:
    """An executor whose order of 1.0015 the venue took, and filled, as 1.001.

    As with a journal from before the executor rounded to lot steps: the
    broker here does not round, so ccxt does, on the way out.
    """
    while not server.call(lambda: server.exchange.last_price):
        time.sleep(0.05)
    ex = executors(path)
    ex.broker.lot_qty = None  # type: ignore[attr-defined]
    ex.on_signals([signal(1, Side.BUY, 1.0015)])
    order = poll_until(ex, "PARTIALLY_FILLED")
    assert (order["qty"], order["filled_qty"]) == (1.0015, 1.001)
    assert venue_orders(server) == {order["client_order_id"]: ("BUY", 1.001, "FILLED")}
    return ex


def assert_closed_short(ex: Executor) -> None:
    (order,) = ex.journal.orders()
    assert order["status"] == "CANCELLED"
    assert order["reason"] == "the venue closed it with 1.001 of 1.0015 filled"
    assert not len(ex.open) and not ex.in_doubt and ex.portfolio.position(SYMBOL) == 1.001
    (diff,) = ex.journal.reconciliations()
    assert diff["kind"] == "closed_short" and diff["order_id"] == order["order_id"]
    assert (diff["detail"]["filled_qty"], diff["detail"]["qty"]) == (1.001, 1.0015)


def test_an_order_the_venue_filled_short_is_in_doubt_until_reconciliation_closes_it(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """The venue's "closed" with fills short of the journal's qty: nothing more will fill.

    Left open, the order would count as working for ever (limits, flatten).
    """
    ex = filled_short(tmp_path / "journal.sqlite", server, executors)
    (order,) = ex.journal.orders()
    assert ex.in_doubt == [order["order_id"]]  # the runner reconciles orders in doubt
    ex.reconcile()
    assert_closed_short(ex)


def test_an_order_a_journal_left_filled_short_is_closed_when_the_executor_starts(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    path = tmp_path / "journal.sqlite"
    stop(filled_short(path, server, executors))
    assert_closed_short(executors(path))


def test_an_order_the_venue_closed_part_filled_expires_with_what_filled(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """ "closed" with less filled than its own amount: the venue ended it, the rest never fills.

    Left PARTIALLY_FILLED, the order would count as working for ever (limits, flatten).
    """
    while not server.call(lambda: server.exchange.last_price):
        time.sleep(0.05)
    server.call(lambda: setattr(server.exchange, "market_fill_share", 0.4))
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals([signal(1, Side.BUY, 1.0)])
    order = poll_until(ex, "EXPIRED")
    assert venue_orders(server) == {order["client_order_id"]: ("BUY", 1.0, "FILLED")}
    assert (order["qty"], order["filled_qty"]) == (1.0, 0.4)
    assert order["reason"] == "closed by the venue with 0.4 of 1 filled"
    assert not len(ex.open) and not ex.in_doubt and ex.portfolio.position(SYMBOL) == 0.4
    assert [r["status"] for r in ex.journal.reports(order["order_id"])][-2:] == [
        "PARTIALLY_FILLED",
        "EXPIRED",
    ]


def test_an_order_a_journal_left_part_filled_and_closed_expires_at_start(
    tmp_path: Path,
    server: BinanceServer,
    executors: Callable[..., Executor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A journal an earlier version left PARTIALLY_FILLED: reconciliation ends the order."""
    path = tmp_path / "journal.sqlite"
    while not server.call(lambda: server.exchange.last_price):
        time.sleep(0.05)
    server.call(lambda: setattr(server.exchange, "market_fill_share", 0.4))
    with monkeypatch.context() as m:  # the earlier version: "closed" was FILLED, whatever filled
        m.setattr(broker_module, "_closed_part_filled", lambda o, listed: False)
        first = executors(path)
        first.on_signals([signal(1, Side.BUY, 1.0)])
        assert poll_until(first, "PARTIALLY_FILLED")["filled_qty"] == 0.4
        stop(first)
    ex = executors(path)
    ex.reconcile()
    (order,) = ex.journal.orders()
    assert (order["status"], order["filled_qty"]) == ("EXPIRED", 0.4)
    assert order["reason"] == "closed by the venue with 0.4 of 1 filled"
    assert not len(ex.open) and not ex.in_doubt and ex.portfolio.position(SYMBOL) == 0.4
    assert [d["kind"] for d in ex.journal.reconciliations()] == ["missed_status"]


def test_a_cancelled_part_filled_order_whose_trades_are_not_listed_yet_keeps_them(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """Closed at reconciliation before its trades were listed, its fill would be lost for good."""
    path = tmp_path / "journal.sqlite"
    server.pause_market()
    ex = executors(path)
    ex.on_signals([signal(1, Side.BUY, 2.0, order_type=OrderType.LIMIT, order_price=80.0)])
    assert poll_until(ex, "ACCEPTED")["filled_qty"] == 0.0
    stop(ex)  # the executor stops; meanwhile half fills and the rest is cancelled

    def part_fill_then_cancel() -> None:
        (o,) = server.exchange.orders.values()
        server.exchange.fill(o, 80.0, share=0.5)
        server.exchange.cancel(o)

    server.call(part_fill_then_cancel)
    server.hide_trades()  # the venue's trade listing lags behind the order
    ex = executors(path)
    ex.reconcile()  # as at start: "canceled", 1 of 2 filled, no trade listed
    (order,) = ex.journal.orders()
    assert order["status"] == "ACCEPTED" and ex.in_doubt == [order["order_id"]]
    assert [d["kind"] for d in ex.journal.reconciliations()] == ["closed_fills_unlisted"]
    ex.reconcile()  # asked again, still unlisted: not named twice
    assert len(ex.journal.reconciliations()) == 1
    server.hide_trades(False)
    ex.reconcile()
    (order,) = ex.journal.orders()
    assert (order["status"], order["filled_qty"]) == ("CANCELLED", 1.0)
    assert ex.portfolio.position(SYMBOL) == 1.0 and not ex.in_doubt and not len(ex.open)
    assert [f.qty for f in ex.journal.fills()] == [1.0]


def test_fills_a_timed_out_reports_call_took_are_recovered_by_reconciliation(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """A reports() call that outlasts the executor's call timeout still runs, taking trades:
    what it returns late is lost, so every open order goes in doubt and is asked for."""
    while not server.call(lambda: server.exchange.last_price):
        time.sleep(0.05)
    ex = executors(tmp_path / "journal.sqlite", call_timeout_s=1.0, timeout_ms=4000)
    try:
        server.trades_delay_s = 2.0  # within the REST timeout, beyond the executor's
        ex.on_signals([signal(1, Side.BUY, 1.0)])
        (order,) = ex.journal.orders()
        assert ex.in_doubt == [order["order_id"]] and ex.journal.fills() == []
        server.trades_delay_s = 0.0
        time.sleep(2.5)  # the timed-out call ends meanwhile, its reports thrown away
        ex.poll()
        ex.reconcile()  # as the runner does for orders in doubt
        (order,) = ex.journal.orders()
        assert (order["status"], order["filled_qty"]) == ("FILLED", 1.0)
        assert [f.qty for f in ex.journal.fills()] == [1.0] and ex.portfolio.position(SYMBOL) == 1.0
        assert not ex.in_doubt and not len(ex.open)
    finally:
        server.trades_delay_s = 0.0


def test_an_order_with_more_trades_than_a_page_holds_is_filled_with_every_one(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """Binance lists at most 1000 trades a call (500 unless asked): the rest are paged."""
    path = tmp_path / "journal.sqlite"
    server.pause_market()
    ex = executors(path)
    ex.on_signals([signal(1, Side.BUY, 1.2, order_type=OrderType.LIMIT, order_price=80.0)])
    poll_until(ex, "ACCEPTED")
    stop(ex)

    def in_1200_trades() -> None:
        (o,) = server.exchange.orders.values()
        for i in range(1200):
            server.exchange.fill(o, 80.0, share=1 / (1200 - i))

    server.call(in_1200_trades)
    ex = executors(path)
    ex.reconcile()
    (order,) = ex.journal.orders()
    assert (order["status"], order["filled_qty"]) == ("FILLED", pytest.approx(1.2))
    assert len({f.id for f in ex.journal.fills()}) == 1200 and not ex.in_doubt
    assert ex.portfolio.position(SYMBOL) == pytest.approx(1.2)


def test_limit_prices_go_out_on_the_tick_a_buys_down_a_sells_up(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """ccxt would round to the nearest tick (0.0001 here): a sell could ask less than asked."""
    server.pause_market()  # nothing fills: the orders rest at their prices
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals(
        [
            signal(1, Side.BUY, 1.0, order_type=OrderType.LIMIT, order_price=80.00007),
            signal(2, Side.SELL, 1.0, order_type=OrderType.LIMIT, order_price=90.00003),
            signal(3, Side.BUY, 1.0, order_type=OrderType.LIMIT, order_price=80.1 + 0.2),
            signal(4, Side.BUY, 1.0, order_type=OrderType.LIMIT, order_price=0.00004),
        ]
    )
    journaled = {o["signal_id"]: o for o in ex.journal.orders()}
    assert [journaled[f"sr-1:{i}"]["order_price"] for i in (1, 2, 3)] == [80.0, 90.0001, 80.3]
    assert journaled["sr-1:4"]["status"] == "REJECTED"
    assert journaled["sr-1:4"]["reason"] == "binance: price 4e-05 is below USD/JPY's tick 0.0001"
    at_venue = server.call(
        lambda: {o.client_order_id: o.price for o in server.exchange.orders.values()}
    )
    assert at_venue == {journaled[f"sr-1:{i}"]["client_order_id"]: p
                        for i, p in ((1, 80.0), (2, 90.0001), (3, 80.3))}  # fmt: skip


def test_an_orders_new_trades_are_read_after_those_known_not_from_its_first(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """A busy order's every update would read its whole trade list again, page after page."""
    server.pause_market()
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals([signal(1, Side.BUY, 5.0, order_type=OrderType.LIMIT, order_price=80.0)])
    poll_until(ex, "ACCEPTED")
    calls = []
    for n, total in ((1100, 1100), (100, 1200)):

        def more(n: int = n) -> None:
            (o,) = server.exchange.orders.values()
            for _ in range(n):
                server.exchange.fill(o, 80.0, share=0.0001)
            o.status = "PARTIALLY_FILLED"  # still working: REST polling follows it

        before = server.call(lambda: server.requests["myTrades"])
        server.call(more)
        deadline = time.monotonic() + 10
        while len(ex.journal.fills()) < total and time.monotonic() < deadline:
            ex.poll()
            time.sleep(0.05)
        assert len({f.id for f in ex.journal.fills()}) == total
        calls.append(server.call(lambda: server.requests["myTrades"]) - before)
    assert calls == [2, 1]  # 1000 + 100, then the 100 after them (not 1000 + 200 again)
