"""Live sessions with the ccxt broker against the local Binance server, started as a notebook does.

The exchange feed drives the strategy, the executor's `CcxtBroker` places its
orders on the server. The journal must equal the server's own trade history;
faults (dropped WebSockets, 5xx, 429, timeouts, an acknowledgement lost and
the executor killed) must neither lose nor duplicate an order; a refused key
stops the executor with a configuration error.
"""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SYMBOL, broker_params
from fixtures.binance_server.server import API_KEY, API_SECRET, BinanceServer
from helpers import make_config, wait_until
from test_ccxt_broker import CLASS_PATH
from test_live_session import CONDITIONS

from workbench import Workbench
from workbench.domain.model import OrderStatus
from workbench.execution.journal import Journal

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", API_KEY)
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", API_SECRET)


def live_config(tmp_path: Path, server: BinanceServer, feed: str = "exchange") -> Any:
    return make_config(
        tmp_path,
        run_id="live-orders",
        gateway={
            "feed": feed,
            "exchange": {
                "exchange": "binance", "symbols": [SYMBOL], "stale_after_s": 5.0,
                "rest_url": server.rest_url, "ws_url": server.ws_url,
                "ws_api_url": server.ws_api_url, "reconnect_initial_s": 0.05,
                "reconnect_max_s": 0.5,
            },
        },
        strategies=[{"id": "sr-1", "params": {"conditions": CONDITIONS}}],
        executor={
            "exit_on_eos": False,
            "risk": {"max_order_qty": 100, "max_position_qty": 1e6},
            "broker": {
                # The server carries a request out at once or never: 3 s of doubt will do.
                "class_path": CLASS_PATH, "params": broker_params(server, unanswered_order_s=3.0),
                "call_timeout_s": 8.0, "reconcile_interval_s": 0.5,
            },
        },
    )  # fmt: skip


def _query(cfg: Any, sql: str) -> list[tuple]:
    path = cfg.run_path() / "journal.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


def _journal_fills(cfg: Any) -> set[tuple[str, float, float]]:
    return {(i, q, p) for i, q, p in _query(cfg, "SELECT fill_id, qty, price FROM fills")}


def _server_trades(server: BinanceServer) -> set[tuple[str, float, float]]:
    return server.call(
        lambda: {
            (f"binance:USDJPY:{t['id']}", float(t["qty"]), float(t["price"]))
            for t in server.exchange.my_trades
        }
    )


def _server_orders(server: BinanceServer) -> dict[str, Any]:
    def snap() -> dict[str, Any]:
        counts = collections.Counter(o.client_order_id for o in server.exchange.orders.values())
        assert max(counts.values(), default=1) == 1, f"duplicated orders: {counts}"
        return {o.client_order_id: o for o in server.exchange.orders.values()}

    return server.call(snap)


RECONCILIATION_KINDS = {"missed_ack", "missed_fill", "missed_status", "order_not_at_venue"}


def _settled(cfg: Any, server: BinanceServer, quiet_s: float = 1.0) -> Any:
    """A wait condition: no new order on the server for ``quiet_s``, the journal has
    every fill and no order in doubt (a restarted executor may still be working
    through re-sent signals, and waits out an unanswered order's doubt)."""
    last = {"orders": -1, "since": 0.0}

    def check() -> bool:
        n, now = len(_server_orders(server)), time.monotonic()
        if n != last["orders"]:
            last["orders"], last["since"] = n, now
            return False
        in_doubt = _query(cfg, "SELECT 1 FROM orders WHERE status = 'PENDING_NEW'")
        settled = _journal_fills(cfg) == _server_trades(server) and not in_doubt
        return now - last["since"] >= quiet_s and settled

    return check


def _start(wb: Workbench) -> None:
    wb.start()

    def up() -> bool:
        st = wb.status()
        assert st.loc["executor", "state"] != "failed", wb.logs(last=50).to_string()
        return (
            set(st["state"]) <= {"running", "unhealthy"}
            and st.loc["executor", "state"] == "running"
        )

    wait_until(up, 60, "runners running")


def _check_journal_equals_server(cfg: Any, server: BinanceServer) -> Journal:
    trades = _server_trades(server)
    assert trades and _journal_fills(cfg) == trades
    j = Journal(cfg.run_path() / "journal.sqlite")
    orders = {o["client_order_id"]: o for o in j.orders()}
    for cid, o in _server_orders(server).items():  # every order on the server is journaled
        row = orders[cid]
        assert row["venue_order_id"] == str(o.order_id)
        assert row["status"] == "FILLED" and row["filled_qty"] == pytest.approx(o.executed)
    return j


def test_a_live_session_places_orders_and_its_journal_equals_the_exchanges_trades(
    tmp_path: Path, server: BinanceServer, keys: None
) -> None:
    cfg = live_config(tmp_path, server)
    server.pause_market()
    wb = Workbench(cfg)
    try:
        _start(wb)
        time.sleep(0.5)
        server.pause_market(False)
        wait_until(lambda: len(_server_trades(server)) >= 6, 25, "orders filled on the server")
        server.pause_market()
        wait_until(_settled(cfg, server), 20, "journal has every fill, no order coming")
    finally:
        wb.stop()
    j = _check_journal_equals_server(cfg, server)
    assert j.reconciliations() == []
    sides = {r[0] for r in _query(cfg, "SELECT side FROM fills")}
    assert sides == {"BUY", "SELL"}


def test_faults_and_a_killed_executor_lose_and_duplicate_nothing(
    tmp_path: Path, server: BinanceServer, keys: None
) -> None:
    cfg = live_config(tmp_path, server)
    server.pause_market()
    # A trade every 60 ms, not 20: the signals the faults hold back are the backlog the
    # restarted executor works through (50 orders, 10 s, at 20 ms) before all settles.
    server.interval_s = 0.06
    wb = Workbench(cfg)
    try:
        _start(wb)
        time.sleep(0.5)
        # REST answering 5xx, 429 and a timeout, and every WebSocket dropped mid-session.
        for fault in ("5xx", "429", "timeout"):
            server.fail_next(fault, method="POST")
        server.pause_market(False)
        wait_until(lambda: len(_server_trades(server)) >= 2, 25, "first fills")
        server.drop_websockets()
        n = len(_server_orders(server))
        wait_until(lambda: len(_server_orders(server)) >= n + 3, 25, "orders after the drop")
        wait_until(lambda: not server._faults, 10, "every fault served")
        assert server.requests["POST order"] >= len(_server_orders(server)) + 3  # retried

        # The exchange takes an order and the executor dies while it waits for
        # the answer (killed by the server as soon as the order is taken, so
        # the executor's own timeout and order query never come first).
        server.pause_market()
        time.sleep(0.5)
        before = set(_server_orders(server))
        pid = int(wb.status().loc["executor", "pid"])
        taken: list[str] = []

        def kill() -> None:  # on the server's loop, the moment the order is carried out
            # The newest order is the faulted request's (one sent just before the pause
            # may have been taken since `before` was read, with a lower id).
            newest = server.exchange.orders[max(server.exchange.orders)].client_order_id
            taken.append(newest)
            os.kill(pid, signal.SIGKILL)

        server.fail_next("lose_response", method="POST", then=kill)
        server.pause_market(False)
        wait_until(lambda: taken, 20, "an order taken")
        server.pause_market()
        # Read when it was taken: on a busy machine the restarted executor may have sent
        # another by the time this thread looks at the exchange.
        lost = taken[0]
        assert lost not in before
        wait_until(
            lambda: (
                wb.status().loc["executor", "state"] == "running"
                and wb.status().loc["executor", "restarts"] >= 1
            ),
            30,
            "executor restarted",
        )
        wait_until(_settled(cfg, server), 25, "journal has every fill, no order coming")
    finally:
        wb.stop()
    j = _check_journal_equals_server(cfg, server)
    kinds = {(r["kind"], r["order_id"]) for r in j.reconciliations()}
    assert {k for k, _ in kinds} <= RECONCILIATION_KINDS
    (order_id,) = [o["order_id"] for o in j.orders() if o["client_order_id"] == lost]
    # The restarted executor found the lost order by its client order id: its
    # acknowledgement and its fill were missed, and are journaled as such.
    assert {k for k, o in kinds if o == order_id} == {"missed_ack", "missed_fill"}
    reports = [(r["status"], r["source"]) for r in j.reports(order_id)]
    assert reports == [("ACCEPTED", "reconcile"), ("FILLED", "reconcile")]
    # Orders journaled with it but never sent (in doubt at the restart) are
    # closed, each with its reconciliation row; none is left in doubt.
    never_sent = {o["order_id"] for o in j.orders() if o["reason"].startswith("not at the venue")}
    assert {o for k, o in kinds if k == "order_not_at_venue"} == never_sent
    assert j.orders_in(OrderStatus.PENDING_NEW) == []


def test_a_refused_key_stops_the_executor_with_a_configuration_error(
    tmp_path: Path, server: BinanceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "PLANTEDwrongkey123")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "PLANTEDwrongsecret456")
    cfg = live_config(tmp_path, server, feed="simulated")
    wb = Workbench(cfg)
    try:
        wb.start()
        wait_until(lambda: wb.status().loc["executor", "state"] == "failed", 30, "executor failed")
        row = wb.status().loc["executor"]
        assert row["exit_code"] == 2 and row["restarts"] == 0
        time.sleep(1.0)  # not restarted: one refused request, no storm
        assert server.requests["account"] == 1 and server.requests["POST order"] == 0
        logs = wb.logs(last=2000).to_string()
    finally:
        wb.stop()
    assert "gateway.exchange.api_key" in logs and "binance" in logs
    assert "PLANTEDwrong" not in logs
