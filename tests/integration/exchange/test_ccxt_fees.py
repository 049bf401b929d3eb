"""Fees taken out of the bought asset, or charged in a third one, on the local Binance server.

Binance charges a spot buy's commission in the asset bought unless the account
pays with BNB: buying 1 leaves 0.999. A position kept at the gross 1 would
differ from the account at every reconciliation and a flatten would try to
sell what the account does not hold, which the venue refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SYMBOL, stop
from fixtures.binance_server.matching import COMMISSION, THIRD_ASSET_PRICE
from fixtures.binance_server.server import BinanceServer
from test_ccxt_executor import poll_until, signal

from workbench.domain.model import OrderType, Side
from workbench.execution.executor import Executor
from workbench.execution.risk import TradingState

pytestmark = pytest.mark.integration


def account(server: BinanceServer, commission_asset: str) -> None:
    """An account holding no base asset, charged in ``commission_asset``, refused overdrafts."""

    def setup() -> None:
        server.exchange.balances.update({"USD": 0.0, "JPY": 1e6, "BNB": 10.0})
        server.exchange.commission_asset = commission_asset
        server.exchange.enforce_balances = True

    server.call(setup)
    while not server.call(lambda: server.exchange.last_price):  # market orders need a price
        time.sleep(0.05)


def balance(server: BinanceServer, asset: str) -> float:
    return float(server.call(lambda: server.exchange.balances[asset]))


def test_a_buys_fee_in_the_bought_asset_leaves_the_position_the_account_holds(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    account(server, "received")
    path = tmp_path / "journal.sqlite"
    ex = executors(path, spot_positions=True)
    ex.on_signals([signal(1, Side.BUY, 1.0)])
    poll_until(ex, "FILLED")
    (fill,) = ex.journal.fills()
    held = balance(server, "USD")
    assert held == pytest.approx(1.0 - COMMISSION, abs=1e-9)
    assert ex.portfolio.position(SYMBOL) == pytest.approx(held, abs=1e-12)
    assert fill.qty == 1.0 and fill.fee_qty == pytest.approx(COMMISSION)
    assert fill.fee == pytest.approx(COMMISSION * fill.price) and fill.fee_asset == ""
    assert ex.portfolio.fees == pytest.approx(COMMISSION * fill.price)
    # Worth the fee less, at the fill's price: nothing realized, nothing counted twice.
    pos = ex.portfolio.positions[SYMBOL]
    assert pos.avg_price == fill.price and pos.realized_pnl == pytest.approx(0.0, abs=1e-9)
    stop(ex)

    ex = executors(path, spot_positions=True)  # restarted: rebuilt from the journal
    ex.reconcile()
    assert ex.portfolio.position(SYMBOL) == pytest.approx(held, abs=1e-12)
    assert ex.journal.reconciliations() == []  # no position_mismatch against the account
    ex.on_tick(SYMBOL, fill.price, time.time_ns())
    ex.flatten()
    assert ex.not_flattened == {}
    closing = [o for o in ex.journal.orders() if not o["signal_id"].startswith("sr-1:")]
    assert [(o["side"], o["qty"], o["status"]) for o in closing] == [("SELL", 0.999, "FILLED")]
    assert balance(server, "USD") == pytest.approx(0.0, abs=1e-9)
    assert ex.portfolio.position(SYMBOL) == pytest.approx(0.0, abs=1e-12)


def test_a_fee_in_a_third_asset_is_kept_as_that_asset_not_as_quote_units(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    account(server, "BNB")
    ex = executors(tmp_path / "journal.sqlite", spot_positions=True)
    ex.on_signals([signal(1, Side.BUY, 1.0)])
    poll_until(ex, "FILLED")
    (fill,) = ex.journal.fills()
    paid = 10.0 - balance(server, "BNB")
    assert paid == pytest.approx(fill.price * COMMISSION / THIRD_ASSET_PRICE, abs=1e-8)
    assert ex.portfolio.position(SYMBOL) == 1.0 == balance(server, "USD")
    assert ex.portfolio.fees == 0.0 and ex.portfolio.other_fees == {"BNB": fill.fee}
    assert (fill.fee_asset, fill.fee_qty) == ("BNB", 0.0)
    assert fill.fee == pytest.approx(paid, abs=1e-12)
    (order,) = ex.journal.orders()
    assert order["fees"] == 0.0  # quote units only


def test_a_remainder_below_the_smallest_order_is_named_as_such_by_a_flatten(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """0.7 bought, 0.6993 held: 0.699 is sold in the lot step, 0.0003 no order can close."""
    account(server, "received")
    ex = executors(tmp_path / "journal.sqlite", spot_positions=True)
    ex.on_signals([signal(1, Side.BUY, 0.7)])
    poll_until(ex, "FILLED")
    ex.on_tick(SYMBOL, 86.7, time.time_ns())
    ex.flatten()
    closing = [o for o in ex.journal.orders() if not o["signal_id"].startswith("sr-1:")]
    assert [(o["side"], o["qty"], o["status"]) for o in closing] == [("SELL", 0.699, "FILLED")]
    left = balance(server, "USD")
    assert left == pytest.approx(0.0003, abs=1e-9)
    assert ex.portfolio.position(SYMBOL) == pytest.approx(left, abs=1e-12)
    assert ex.not_flattened == {
        SYMBOL: "0.0003 left, less than the venue takes: binance: qty 0.0003 is below USD/JPY's "
        "smallest order (minimum 0.001, lot step 0.001)"
    }


@pytest.mark.parametrize("state", ["ACTIVE", "REDUCING"])
def test_a_strategy_selling_what_it_bought_sells_what_the_fee_left(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor], state: str
) -> None:
    """Its exit asks for the 1 it bought; 0.999 is held: refused by the venue, or as a flip."""
    account(server, "received")
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals([signal(1, Side.BUY, 1.0)])
    poll_until(ex, "FILLED")
    if state == "REDUCING":
        ex.set_trading_state(TradingState.REDUCING, "test", "operator")
    ex.on_signals([signal(2, Side.SELL, 1.0)])
    deadline = time.monotonic() + 5
    while len(ex.open) and time.monotonic() < deadline:
        ex.poll()
        time.sleep(0.05)
    sold = {o["signal_id"]: o for o in ex.journal.orders()}["sr-1:2"]
    assert (sold["qty"], sold["status"]) == (pytest.approx(1.0 - COMMISSION), "FILLED")
    assert balance(server, "USD") == pytest.approx(0.0, abs=1e-9)
    assert ex.portfolio.position(SYMBOL) == pytest.approx(0.0, abs=1e-12)
    assert ex.telemetry.get("order_qty_cut_to_held") == 1
    ex.on_signals([signal(3, Side.SELL, 0.0005)])  # flat: nothing held is not a fee's doing
    refused = {o["signal_id"]: o for o in ex.journal.orders()}["sr-1:3"]
    assert refused["qty"] == 0.0005 and ex.telemetry.get("order_qty_cut_to_held") == 1


def test_an_exit_in_two_resting_parts_cuts_the_second_to_what_the_first_left(
    tmp_path: Path, server: BinanceServer, executors: Callable[..., Executor]
) -> None:
    """0.999 held: a sell of 0.5 rests; the next 0.5 is cut to 0.499, one call or one batch."""
    account(server, "received")
    server.pause_market()
    ex = executors(tmp_path / "journal.sqlite")
    ex.on_signals([signal(1, Side.BUY, 1.0)])
    poll_until(ex, "FILLED")
    limit = {"order_type": OrderType.LIMIT, "order_price": 90.0}
    ex.on_signals([signal(2, Side.SELL, 0.5, **limit)])
    ex.on_signals([signal(3, Side.SELL, 0.5, **limit)])
    orders = {o["signal_id"]: o for o in ex.journal.orders()}
    assert [(orders[f"sr-1:{i}"]["qty"], orders[f"sr-1:{i}"]["status"]) for i in (2, 3)] == [
        (0.5, "ACCEPTED"),
        (pytest.approx(0.499), "ACCEPTED"),
    ]
    assert ex.telemetry.get("order_qty_cut_to_held") == 1
