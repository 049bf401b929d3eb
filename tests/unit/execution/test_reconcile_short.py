"""An order a venue calls filled short of the journal's qty: closed only on the venue's proof.

The venue is scripted at the broker port (what it reports, what it says when
asked); the executor, its lifecycle, reconciliation and the SQLite journal are
real.
"""

from __future__ import annotations

import time
from dataclasses import replace

from workbench.config import RiskConfig
from workbench.domain.model import Fill, Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.domain.orders import ExecutionReport, OrderAck, OrderSnapshot
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.killswitch import CancelRetries
from workbench.telemetry import Telemetry


class Venue:
    """Acks every order; reports and answers what the test puts in ``reports`` and ``says``."""

    def __init__(self) -> None:
        self.reports_due: list[ExecutionReport] = []
        self.says: dict[str, OrderSnapshot] = {}
        self.placed: list[str] = []
        self.asked: list[str] = []  # the symbols `order` was asked in
        self.cancelled: list[str] = []

    def submit(self, order: Order) -> OrderAck:
        self.placed.append(order.client_order_id)
        return OrderAck(order.client_order_id, True, "V1")

    def reports(self) -> list[ExecutionReport]:
        out, self.reports_due = self.reports_due, []
        return out

    def cancel(self, client_order_id: str) -> None:
        self.cancelled.append(client_order_id)
        snap = self.says.get(client_order_id)
        if snap is not None:  # cancelled at the venue: its report follows
            self.says[client_order_id] = replace(snap, status=OrderStatus.CANCELLED)
            self.reports_due.append(
                ExecutionReport(client_order_id, OrderStatus.CANCELLED, 2_000, "V1", None)
            )

    def order(self, client_order_id: str, symbol: str = "") -> OrderSnapshot | None:
        self.asked.append(symbol)
        return self.says.get(client_order_id)

    def open_orders(self) -> list[OrderSnapshot]:
        return []

    def fills_since(self, ts_ns: int) -> list[Fill]:
        return []

    def positions(self) -> dict[str, float] | None:
        return None


def trade(i: int, qty: float) -> Fill:
    return Fill(f"T{i}", "", "", "ABC", Side.BUY, qty, 100.0, 1_000 + i)


def placed(tmp_path) -> tuple[Venue, Executor, str]:
    """An executor with one accepted BUY of 1.0 at the scripted venue."""
    venue = Venue()
    ex = Executor(
        venue, Journal(tmp_path / "journal.sqlite"), RiskConfig(), make_breaker(3, 60),
        Telemetry(), allowed_strategies={"sr"},
    )  # fmt: skip
    ex.on_signals([Signal("sr:1", "sr", 1, "ABC", Side.BUY, 1.0, 100.0, 1_001, "r", "c")])
    return venue, ex, venue.placed[0]


def order_row(ex: Executor) -> tuple[str, float]:
    (o,) = ex.journal.orders()
    return o["status"], o["filled_qty"]


def kinds(ex: Executor) -> list[str]:
    return [d["kind"] for d in ex.journal.reconciliations()]


def test_a_venue_holding_a_smaller_amount_filled_whole_closes_the_rest(tmp_path):
    venue, ex, cid = placed(tmp_path)
    venue.reports_due.append(ExecutionReport(cid, OrderStatus.FILLED, 2_000, "V1", trade(1, 0.5)))
    ex.poll()
    assert order_row(ex) == ("PARTIALLY_FILLED", 0.5) and ex.in_doubt == ["O-sr:1"]
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.FILLED, 0.5, [trade(1, 0.5)], qty=0.5)
    ex.reconcile()
    assert order_row(ex) == ("CANCELLED", 0.5) and not len(ex.open) and not ex.in_doubt
    assert kinds(ex) == ["closed_short"] and ex.portfolio.position("ABC") == 0.5


def test_a_filled_with_no_count_and_no_trades_proves_nothing_and_a_late_trade_still_counts(
    tmp_path,
):
    """ccxt's ``filled`` None reads 0.0; the trades may be listed a moment later."""
    venue, ex, cid = placed(tmp_path)
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.FILLED, 0.0, [])
    ex.reconcile()
    assert order_row(ex) == ("ACCEPTED", 0.0) and len(ex.open) == 1
    assert kinds(ex) == ["filled_short_unconfirmed"]
    venue.reports_due.append(ExecutionReport(cid, OrderStatus.FILLED, 2_000, "V1", trade(1, 1.0)))
    ex.poll()
    assert order_row(ex) == ("FILLED", 1.0) and ex.portfolio.position("ABC") == 1.0


def test_trades_listed_short_of_the_venues_filled_qty_leave_the_order_open(tmp_path):
    venue, ex, cid = placed(tmp_path)
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.FILLED, 1.0, [trade(1, 0.5)], qty=1.0)
    ex.reconcile()
    assert order_row(ex) == ("PARTIALLY_FILLED", 0.5) and len(ex.open) == 1
    assert kinds(ex) == ["missed_fill", "filled_short_unconfirmed"]


def test_an_order_closed_in_the_same_drain_as_its_short_fill_is_not_left_in_doubt(tmp_path):
    venue, ex, cid = placed(tmp_path)
    venue.reports_due += [
        ExecutionReport(cid, OrderStatus.FILLED, 2_000, "V1", trade(1, 0.5)),
        ExecutionReport(cid, OrderStatus.CANCELLED, 2_001, "V1", None, "rest cut by the venue"),
    ]
    ex.poll()
    assert order_row(ex) == ("CANCELLED", 0.5) and not ex.in_doubt


def test_an_unconfirmed_filled_is_reported_once_and_asked_for_until_the_venue_settles_it(tmp_path):
    venue, ex, cid = placed(tmp_path)
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.FILLED, 1.0, [], qty=1.0)
    for _ in range(3):  # the runner reconciles while orders are in doubt
        ex.reconcile()
        assert ex.in_doubt == ["O-sr:1"] and order_row(ex) == ("ACCEPTED", 0.0)
    assert kinds(ex) == ["filled_short_unconfirmed"]  # once, not every round
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.FILLED, 1.0, [trade(1, 1.0)], qty=1.0)
    ex.reconcile()  # the trade is listed now
    assert order_row(ex) == ("FILLED", 1.0) and not ex.in_doubt
    assert kinds(ex) == ["filled_short_unconfirmed", "missed_fill"]


def test_a_closing_order_filled_short_is_named_so_in_the_flatten_answer(tmp_path):
    """Not "the venue did not answer": it did, with less than the order's qty."""
    venue, ex, cid = placed(tmp_path)
    venue.reports_due.append(ExecutionReport(cid, OrderStatus.FILLED, 2_000, "V1", trade(1, 1.0)))
    ex.poll()
    ex.on_tick("ABC", 100.0, time.time_ns())

    def fill_short(order: Order) -> OrderAck:
        ack = submit(order)
        fill = Fill("T9", "", "", "ABC", Side.SELL, 0.6, 100.0, 3_000)
        venue.reports_due.append(
            ExecutionReport(order.client_order_id, OrderStatus.FILLED, 3_000, "V2", fill)
        )
        return ack

    submit, venue.submit = venue.submit, fill_short  # type: ignore[method-assign]
    ex.flatten(wait_s=0.1)
    assert ex.portfolio.position("ABC") == 1.0 - 0.6
    assert ex.not_flattened == {
        "ABC": "closing order filled 0.6 of 1, then called filled by the venue: "
        "in doubt until reconciliation settles the rest"
    }


class LateVenue(Venue):
    """Its creates go unanswered; a late one may still be carried out for 15 s."""

    unanswered_order_s = 15.0

    def submit(self, order: Order) -> OrderAck:
        from workbench.exceptions import TemporaryError

        self.placed.append(order.client_order_id)
        raise TemporaryError("create_order: in doubt after a timeout: not found yet")


def in_doubt(tmp_path, tick_age_s: float, sent_s_ago: float = 0.0) -> tuple[LateVenue, Executor]:
    """An executor whose one LIMIT buy went unanswered ``sent_s_ago``, for a tick that old."""
    venue = LateVenue()
    ex = Executor(
        venue, Journal(tmp_path / "journal.sqlite"), RiskConfig(), make_breaker(3, 60),
        Telemetry(),
    )  # fmt: skip
    ts = time.time_ns() - int(tick_age_s * 1e9)
    ex.on_signal(Signal("s:1", "s", 1, "ABC", Side.BUY, 1.0, 100.0, ts, "r", "c", 0,
                        OrderType.LIMIT, 99.0, TimeInForce.GTC))  # fmt: skip
    assert ex.in_doubt == ["O-s:1"]
    for t in ex.open.by_client_id.values():
        t.sent_ns -= int(sent_s_ago * 1e9)
    return venue, ex


def test_an_unanswered_order_not_found_yet_stays_in_doubt_while_it_may_still_arrive(tmp_path):
    # Closed as not at the venue, the late request could still fill, unseen.
    _, ex = in_doubt(tmp_path, tick_age_s=1.0)
    assert ex.reconcile() == []
    assert ex.in_doubt == ["O-s:1"]
    (row,) = ex.journal.orders()
    assert row["status"] == OrderStatus.PENDING_NEW


def test_the_doubt_runs_from_the_create_not_from_the_signals_tick(tmp_path):
    # A late signal (an old tick, a re-send after a restart) was closed at once.
    _, ex = in_doubt(tmp_path, tick_age_s=20.0)
    assert ex.reconcile() == [] and ex.in_doubt == ["O-s:1"]


def test_an_unanswered_order_past_the_window_and_not_found_is_closed(tmp_path):
    venue, ex = in_doubt(tmp_path, tick_age_s=20.0, sent_s_ago=20.0)
    assert [d["kind"] for d in ex.reconcile()] == ["order_not_at_venue"]
    assert venue.asked == ["ABC"]  # in the journal's symbol: it may have left the config
    assert ex.in_doubt == [] and ex.journal.orders()[0]["status"] == OrderStatus.REJECTED


def test_an_order_in_doubt_that_lands_after_a_halt_is_cancelled(tmp_path, monkeypatch):
    # The halt's cancel found no such order and counted as taken; the late create then
    # landed, was adopted while HALTED and rested, free to fill.
    monkeypatch.setattr(CancelRetries, "FIRST_S", 0.0)
    venue, ex = in_doubt(tmp_path, tick_age_s=0.0)
    assert ex.halt("stop") == 1 and len(ex.cancel_retries) == 1  # asked again until closed
    (cid,) = venue.placed
    venue.says[cid] = OrderSnapshot(cid, "V1", OrderStatus.ACCEPTED, 0.0, qty=1.0)  # it lands
    ex.reconcile()
    assert venue.cancelled == [cid, cid]  # at the halt, and again once it was there
    assert ex.journal.orders()[0]["status"] == OrderStatus.CANCELLED
