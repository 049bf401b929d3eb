"""The journal contract: SQLite on a file, SQLite in memory and `MemoryJournal` alike."""

from __future__ import annotations

import math

import pytest

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal
from workbench.execution.journal import Journal, OrderUpdate
from workbench.execution.journal_memory import MemoryJournal
from workbench.execution.journal_schema import SCHEMA_VERSION


def sig(seq: int, side: Side = Side.BUY) -> Signal:
    return Signal(f"s:{seq}", "s", seq, "ABC", side, 1.0, 100.0, 1_000 + seq, "entry", "c")


@pytest.fixture(params=["sqlite-file", "sqlite-file-checkpointer", "sqlite-memory", "memory"])
def journal(request, tmp_path):
    if request.param == "memory":
        j = MemoryJournal()
    elif request.param == "sqlite-file-checkpointer":
        j = Journal(tmp_path / "j.sqlite", background_checkpoint=True)
    else:
        j = Journal(tmp_path / "j.sqlite" if request.param == "sqlite-file" else ":memory:")
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


def test_fills_keep_a_fee_taken_out_of_the_asset_or_paid_in_a_third_one(journal):
    for i in (1, 2):
        journal.begin_order(sig(i), Order.from_signal(sig(i)), OrderStatus.PENDING_NEW)
    own = Fill("F1", "O-s:1", "s:1", "ABC", Side.BUY, 1.0, 100.0, 1, 0.1, 0.001)
    third = Fill("F2", "O-s:2", "s:2", "ABC", Side.BUY, 1, 100, 2, 0.0002, fee_asset="BNB")
    journal.finish_order("O-s:1", OrderStatus.FILLED, [own])
    journal.finish_order("O-s:2", OrderStatus.FILLED, [third])
    assert journal.fills() == [own, third]
    assert [(f.fee_qty, f.fee_asset) for f in journal.fills()] == [(0.001, ""), (0.0, "BNB")]
    fees = {o["order_id"]: o["fees"] for o in journal.orders()}
    assert fees == {"O-s:1": 0.1, "O-s:2": 0.0}  # in quote units: a third asset is not
    assert [r["fee"] for r in journal.reports()] == [0.1, 0.0]  # so are the reports'


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


def _begin(journal, *seqs: int) -> None:
    journal.begin_orders(
        [(sig(n), Order.from_signal(sig(n)), OrderStatus.PENDING_NEW, "") for n in seqs]
    )


def test_record_updates_orders_fills_and_reports(journal):
    _begin(journal, 1, 2, 3)
    f1 = Fill("F1", "O-s:1", "s:1", "ABC", Side.BUY, 0.4, 100.5, 1_010, 0.1)
    f2 = Fill("F2", "O-s:1", "s:1", "ABC", Side.BUY, 0.6, 100.25, 1_020, 0.0)
    journal.record(
        [
            OrderUpdate(
                "O-s:1",
                OrderStatus.FILLED,
                "V1",
                filled_qty=1.0,
                fees=0.1,
                fills=[f1, f2],
                reports=[
                    (OrderStatus.ACCEPTED, 1_001, "V1", None, "", "ack"),
                    (OrderStatus.PARTIALLY_FILLED, 1_010, "V1", f1, "", "broker"),
                    (OrderStatus.FILLED, 1_020, "", f2, "", "broker"),
                ],
            ),
            OrderUpdate("O-s:2", OrderStatus.ACCEPTED, "V2"),
            OrderUpdate("O-s:3", OrderStatus.CANCELLED, "", reason="halt"),
        ]
    )
    journal.record([OrderUpdate("O-s:2", OrderStatus.PARTIALLY_FILLED, "", filled_qty=0.5)])
    rows = {r["order_id"]: r for r in journal.orders()}
    assert [rows[o]["status"] for o in rows] == ["FILLED", "PARTIALLY_FILLED", "CANCELLED"]
    assert rows["O-s:1"]["venue_order_id"] == "V1" and rows["O-s:1"]["fees"] == 0.1
    assert rows["O-s:2"]["venue_order_id"] == "V2"  # an empty venue id keeps the known one
    assert rows["O-s:2"]["filled_qty"] == 0.5 and rows["O-s:3"]["reason"] == "halt"
    assert journal.fills() == [f1, f2]
    assert [r["order_id"] for r in journal.open_orders()] == ["O-s:2"]
    assert journal.open_signals() == [("s:2", "s", "")]
    assert journal.orders_in(OrderStatus.FILLED) == ["O-s:1"]
    reports = journal.reports("O-s:1")
    assert [(r["status"], r["fill_id"], r["qty"], r["source"]) for r in reports] == [
        ("ACCEPTED", "", 0.0, "ack"),
        ("PARTIALLY_FILLED", "F1", 0.4, "broker"),
        ("FILLED", "F2", 0.6, "broker"),
    ]
    assert len(journal.reports()) == 3
    assert journal.count("fills") == 2 and journal.count("orders") == 3
    with pytest.raises(Exception, match="UNIQUE"):  # a fill id twice: nothing recorded
        journal.record([OrderUpdate("O-s:2", OrderStatus.FILLED, "", fills=[f1])])
    assert journal.count("fills") == 2
    assert journal.orders()[1]["status"] == "PARTIALLY_FILLED"


def test_record_journals_differences_with_the_updates_or_not_at_all(journal):
    _begin(journal, 1, 2)
    f1 = Fill("F1", "O-s:1", "s:1", "ABC", Side.BUY, 1.0, 100.5, 1_010, 0.1)
    diffs = [
        {"kind": "missed_fill", "order_id": "O-s:1", "symbol": "ABC", "fill_id": "F1"},
        {"kind": "venue_order_not_in_journal", "client_order_id": "x"},
    ]
    update = OrderUpdate("O-s:1", OrderStatus.FILLED, "V1", filled_qty=1.0, fills=[f1])
    journal.record([update], diffs)
    rows = journal.reconciliations()
    assert [(r["kind"], r["order_id"], r["symbol"], r["detail"]) for r in rows] == [
        ("missed_fill", "O-s:1", "ABC", diffs[0]),
        ("venue_order_not_in_journal", "", "", diffs[1]),
    ]
    again = OrderUpdate("O-s:2", OrderStatus.FILLED, "V2", filled_qty=1.0, fills=[f1])
    with pytest.raises(Exception, match="UNIQUE"):  # refused: its differences are not kept
        journal.record([again], [{"kind": "missed_fill", "order_id": "O-s:2"}])
    assert len(journal.reconciliations()) == 2
    journal.record([], [{"kind": "report_for_unknown_order", "client_order_id": "y"}])
    assert journal.reconciliations()[-1]["kind"] == "report_for_unknown_order"


def test_every_order_row_has_the_same_columns_and_values(journal, tmp_path):
    reference = Journal(":memory:")
    try:
        for j in (journal, reference):
            _begin(j, 1)
            fill = Fill("F1", "O-s:1", "s:1", "ABC", Side.BUY, 1, 100, 1_010, 0.0)
            j.finish_order("O-s:1", OrderStatus.FILLED, [fill])
        drop = ("updated_ns", "recorded_ns")
        assert [{k: v for k, v in r.items() if k not in drop} for r in journal.orders()] == [
            {k: v for k, v in r.items() if k not in drop} for r in reference.orders()
        ]
        assert [list(r) for r in journal.orders()] == [list(r) for r in reference.orders()]
        assert [{k: v for k, v in r.items() if k not in drop} for r in journal.reports()] == [
            {k: v for k, v in r.items() if k not in drop} for r in reference.reports()
        ]
        assert [type(v) for v in vars_of(journal.fills()[0])] == [
            type(v) for v in vars_of(reference.fills()[0])
        ]
    finally:
        reference.close()


def vars_of(fill: Fill) -> list:
    return [getattr(fill, f) for f in fill.__dataclass_fields__]


def test_states_days_stream_ends_reconciliations_and_sequences(journal):
    assert journal.trading_state() is None
    journal.set_trading_state("HALTED", "flatten requested", "operator")
    journal.set_trading_state("ACTIVE", "resumed", "operator")
    assert journal.trading_state() == ("ACTIVE", "resumed")
    assert [s["state"] for s in journal.trading_states()] == ["HALTED", "ACTIVE"]
    assert journal.risk_day("2024-01-02") is None
    journal.set_risk_day("2024-01-02", -5.0)
    journal.set_risk_day("2024-01-02", 7.0)  # the first of the day wins
    assert journal.risk_day("2024-01-02") == -5.0
    journal.end_stream("s", 10, 3)
    journal.end_stream("s", 12, 4)
    assert journal.stream_ends() == {"s": (12, 4)}
    journal.add_reconciliation("missing_fill", {"qty": 1.0, "a": [1]}, "O-s:1", "ABC")
    (rec,) = journal.reconciliations()
    assert (rec["kind"], rec["order_id"], rec["symbol"]) == ("missing_fill", "O-s:1", "ABC")
    assert rec["detail"] == {"a": [1], "qty": 1.0}
    assert journal.last_signal_seq("s") == 0
    _begin(journal, 3, 1)
    assert journal.last_signal_seq("s") == 3 and journal.last_signal_seq("x") == 0
    assert journal.marks() == {}
    journal.save_marks({"ABC": (101.5, 7), "XYZ": (9.0, 8)})
    journal.save_marks({"ABC": (102.0, 9)})  # the newest price of a symbol replaces its last
    assert journal.marks() == {"ABC": (102.0, 9), "XYZ": (9.0, 8)}
    assert journal.signal_gaps() == {}
    journal.set_signal_gaps("s", [(3, 4), (9, 9)])
    journal.set_signal_gaps("t", [(1, 1)])
    journal.set_signal_gaps("s", [(9, 9)])  # all of a stream's ranges, replacing the last
    assert journal.signal_gaps() == {"s": [(9, 9)], "t": [(1, 1)]}
    journal.set_signal_gaps("t", [])
    assert journal.signal_gaps() == {"s": [(9, 9)]}
    assert journal.schema_version() == SCHEMA_VERSION == 6
    with pytest.raises(ValueError, match="no journal table"):
        journal.count("nope")


def test_each_journal_has_its_own_salt_for_client_order_ids(journal):
    assert len(journal.client_id_salt) == 16
    assert journal.client_id_salt != MemoryJournal().client_id_salt


def test_each_symbols_latest_signal_price_by_market_time_then_journal_order(journal):
    assert journal.last_signal_prices() == {}
    rows = [("s:1", "ABC", 100.0, 5), ("s:2", "ABC", 101.0, 9), ("s:3", "ABC", 99.0, 7),
            ("s:4", "XYZ", 10.0, 3), ("s:5", "XYZ", 11.0, 3),
            ("s:6", "XYZ", 0.0, 9), ("s:7", "XYZ", math.inf, 9)]  # fmt: skip  # not prices
    for n, (sid, sym, px, ts) in enumerate(rows, 1):
        s = Signal(sid, "s", n, sym, Side.BUY, 1.0, px, ts, "r", "c")
        journal.begin_orders([(s, Order.from_signal(s), OrderStatus.PENDING_NEW, "")])
    assert journal.last_signal_prices() == {"ABC": (101.0, 9), "XYZ": (11.0, 3)}
    assert journal.signal_seqs_in("s", [(2, 2), (4, 5)]) == {2, 4, 5}
    assert journal.signal_seqs_in("s", [(8, 9)]) == set() == journal.signal_seqs_in("x", [(1, 9)])
    assert journal.signal_seqs_in("s", [(n, n) for n in range(1, 900)]) == set(range(1, 8))


def test_a_background_checkpointer_copies_the_wal_outside_commits(tmp_path):
    import sqlite3
    import time

    path = tmp_path / "j.sqlite"
    j = Journal(path, background_checkpoint=True)
    assert j._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never in a commit
    _begin(j, *range(1, 201))
    checkpointer = j._checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpointer.checkpoints >= 1
    busy, wal_frames, copied = j._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and wal_frames == copied  # nothing was left behind
    j.close()
    assert not checkpointer._thread.is_alive()
    assert not (tmp_path / "j.sqlite-wal").exists()  # the last close checkpointed and removed it
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 200


def test_a_full_disk_is_named_as_such_not_hidden_by_the_rollback(tmp_path):
    # SQLite rolls back by itself on a full disk: the executor's second ROLLBACK
    # raised "no transaction is active", and that is all the operator saw.
    import sqlite3

    j = Journal(tmp_path / "j.sqlite")
    j._db.execute("PRAGMA max_page_count = 40")  # a disk that fills up
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for i in range(1, 5000):
            s = Signal(f"sr-1:{i}", "sr-1", i, "ABC", Side.BUY, 1.0, 100.0, i, "x" * 500, "c")
            j.begin_order(s, Order.from_signal(s), OrderStatus.PENDING_NEW)
    assert not j._db.in_transaction
    j.close()
