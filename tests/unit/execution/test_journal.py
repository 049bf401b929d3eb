"""Journal: what `begin_orders` records, the same on a file and in memory (fast replay)."""

from __future__ import annotations

import pytest

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal
from workbench.execution.journal import Journal


def sig(seq: int, side: Side = Side.BUY) -> Signal:
    return Signal(f"s:{seq}", "s", seq, "ABC", side, 1.0, 100.0, 1_000 + seq, "entry", "c")


@pytest.fixture(params=["file", "memory"])
def journal(request, tmp_path):
    j = Journal(tmp_path / "j.sqlite" if request.param == "file" else ":memory:")
    yield j
    j.close()


def test_begin_orders_records_each_signal_once_even_within_one_list(journal):
    items = [
        (sig(1), Order.from_signal(sig(1)), OrderStatus.PENDING_NEW, ""),
        (sig(2, Side.SELL), Order.from_signal(sig(2, Side.SELL)), OrderStatus.REJECTED, "limit"),
        (sig(1), Order.from_signal(sig(1)), OrderStatus.PENDING_NEW, ""),  # same id again
    ]
    assert journal.begin_orders(items) == [True, True, False]
    assert journal.begin_orders(
        [*items[:1], (sig(3), Order.from_signal(sig(3)), OrderStatus.PENDING_NEW, "")]
    ) == [False, True]
    rows = journal.orders()
    assert [(r["order_id"], r["side"], r["status"], r["reason"]) for r in rows] == [
        ("O-s:1", "BUY", "PENDING_NEW", ""),
        ("O-s:2", "SELL", "REJECTED", "limit"),
        ("O-s:3", "BUY", "PENDING_NEW", ""),
    ]
    assert rows[0]["client_order_id"] == Order.from_signal(sig(1)).client_order_id
    assert journal.count("signals") == 3
    assert [(r["order_id"], r["status"], r["source"]) for r in journal.reports()] == [
        ("O-s:2", "REJECTED", "risk")
    ]
    assert journal.known_signals(["s:2", "s:9"]) == {"s:2": ("ABC", "SELL", 1.0, 100.0, 1002)}


def test_fills_come_back_with_their_side(journal):
    journal.begin_order(sig(1), Order.from_signal(sig(1)), OrderStatus.PENDING_NEW)
    fill = Fill("F1", "O-s:1", "s:1", "ABC", Side.SELL, 1.0, 99.5, 1_001, 0.25)
    journal.finish_order("O-s:1", OrderStatus.FILLED, [fill])
    assert journal.fills() == [fill]
    assert journal.fills()[0].side is Side.SELL


def test_a_failed_begin_orders_records_nothing(journal):
    bad = Order.from_signal(sig(2))
    items = [
        (sig(1), Order.from_signal(sig(1)), OrderStatus.PENDING_NEW, ""),
        (sig(2), bad, OrderStatus.PENDING_NEW, ""),
        (sig(3), bad, OrderStatus.PENDING_NEW, ""),  # the same order id twice: refused
    ]
    with pytest.raises(Exception, match="UNIQUE"):
        journal.begin_orders(items)
    assert journal.count("signals") == 0
    assert journal.count("orders") == 0
