"""Order lifecycle: the state machine, the journal's migration, reconciliation, timeouts."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import threading
from pathlib import Path

import pybreaker
import pytest

from workbench.config import RiskConfig
from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal, client_order_id
from workbench.domain.orders import ExecutionReport, LifecycleError, OrderAck, OrderState
from workbench.exceptions import ConfigurationError
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.journal_schema import SCHEMA_VERSION
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Event
from workbench.telemetry import Telemetry

FIXTURE = Path(__file__).parents[2] / "fixtures" / "journal_v0.sqlite"


def sig(seq: int, side: Side = Side.BUY, qty: float = 1.0) -> Signal:
    return Signal(f"s:{seq}", "s", seq, "ABC", side, qty, 100.0, 1_000 + seq, "entry", "c")


def fill(cid_order: str, qty: float, fid: str = "F") -> Fill:
    return Fill(fid, cid_order, "s:1", "ABC", Side.BUY, qty, 100.0, 5)


# -- state machine ---------------------------------------------------------------------


def test_state_machine_walks_accept_partial_fill_and_refuses_what_cannot_happen():
    st = OrderState("c", 2.0)
    assert st.on_ack(OrderAck("c", True, "V1")) is OrderStatus.ACCEPTED
    part = ExecutionReport("c", OrderStatus.FILLED, 1, fill=fill("O", 1.0))
    assert st.on_report(part) is OrderStatus.PARTIALLY_FILLED  # counted, not trusted
    with pytest.raises(LifecycleError, match="exceed"):
        st.on_report(ExecutionReport("c", OrderStatus.FILLED, 2, fill=fill("O", 1.5)))
    assert st.on_report(ExecutionReport("c", OrderStatus.FILLED, 2, fill=fill("O", 1.0))) is (
        OrderStatus.FILLED
    )
    with pytest.raises(LifecycleError, match="after FILLED"):
        st.on_report(ExecutionReport("c", OrderStatus.CANCELLED, 3))
    with pytest.raises(LifecycleError, match="acknowledged again"):
        st.on_ack(OrderAck("c", True, "V1"))
    assert st.filled_qty == 2.0 and st.venue_order_id == "V1"


def test_a_fill_on_the_other_side_of_its_order_is_an_anomaly_never_applied():
    from workbench.execution.lifecycle import OpenOrders, Outcome

    orders, out = OpenOrders(), Outcome()
    sell = Order.from_signal(sig(1, Side.SELL, 3.0))
    t = orders.track(sell, "s")
    orders.on_ack(t, OrderAck(sell.client_order_id, True, "V1"), out)
    buy_fill = fill(sell.id, 1.0)  # a BUY trade reported under the SELL's client id
    orders.on_report(
        ExecutionReport(sell.client_order_id, OrderStatus.FILLED, 6, "V1", buy_fill), out
    )
    assert out.fills == [] and t.state.filled_qty == 0.0
    assert out.anomalies[-1]["kind"] == "fill_side_mismatch"
    assert len(orders) == 1  # still open, still followed


def test_a_venue_s_exact_decimal_fills_of_millions_of_units_fill_the_order_exactly():
    """Float sums of 0.1-step fills miss 4.4M by more than 1e-9: the tolerance is relative."""
    for qty, parts in [
        (4379480.6, [389774.2, 2173899.5, 1689778.1, 124301.9, 1726.9]),  # sums over
        (4669178.9, [235278.3, 3501235.9, 573118.0, 311448.1, 48098.6]),  # sums under
    ]:
        st = OrderState("c", qty)
        st.on_ack(OrderAck("c", True, "V1"))
        for i, q in enumerate(parts):
            last = i == len(parts) - 1
            status = OrderStatus.FILLED if last else OrderStatus.PARTIALLY_FILLED
            st.on_report(ExecutionReport("c", status, 10 + i, "V1", fill("O", q, f"F{i}")))
        assert st.status is OrderStatus.FILLED, (qty, st.filled_qty)
    big = OrderState("c", 4379480.6)
    with pytest.raises(LifecycleError, match="exceed"):  # a real overfill is still one
        big.on_report(ExecutionReport("c", OrderStatus.FILLED, 1, "V1", fill("O", 4379480.7)))


def test_a_close_that_carries_a_fill_counts_and_checks_it_as_any_fill():
    st = OrderState("c", 2.0)
    st.on_ack(OrderAck("c", True, "V1"))
    with pytest.raises(LifecycleError, match="exceed"):  # 5 of an order of 2: refused whole
        st.on_report(ExecutionReport("c", OrderStatus.EXPIRED, 2, "V1", fill("O", 5.0)))
    assert st.status is OrderStatus.ACCEPTED and st.filled_qty == 0.0
    last = Fill("F", "O", "s:1", "ABC", Side.BUY, 0.5, 100.0, 5, fee=0.25)
    assert st.on_report(ExecutionReport("c", OrderStatus.EXPIRED, 3, "V1", last)) is (
        OrderStatus.EXPIRED
    )
    assert (st.filled_qty, st.fees) == (0.5, 0.25)


def test_client_order_id_is_exchange_safe_and_stable():
    cid = client_order_id("my strat/é:123456789012")
    assert cid == client_order_id("my strat/é:123456789012")
    assert len(cid) <= 36 and all(c.isascii() and (c.isalnum() or c in "_-") for c in cid)
    assert client_order_id("a_b:1") != client_order_id("a-b:1")  # sanitising does not merge


def test_a_salt_gives_a_signal_another_client_order_id_of_the_same_shape():
    assert client_order_id("sr-1:1") == "sr_1-1-ac5aa267"  # unsalted: the ids of versions 1-3
    salted = client_order_id("my strat/é:123456789012", "0123456789abcdef")
    assert salted == client_order_id("my strat/é:123456789012", "0123456789abcdef")
    assert salted != client_order_id("my strat/é:123456789012")
    assert salted != client_order_id("my strat/é:123456789012", "fedcba9876543210")
    assert len(salted) <= 36 and all(c.isascii() and (c.isalnum() or c in "_-") for c in salted)
    assert salted.rsplit("-", 1)[0] == client_order_id("my strat/é:123456789012").rsplit("-", 1)[0]


# -- journal migration -----------------------------------------------------------------


def test_journal_written_by_the_previous_code_migrates_keeping_every_row(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        before = db.execute("SELECT order_id, status FROM orders ORDER BY rowid").fetchall()
    j = Journal(path)
    assert j.schema_version() == SCHEMA_VERSION
    after = [(o["order_id"], o["status"]) for o in j.orders()]
    assert after == [(oid, "PENDING_NEW" if st == "PENDING" else st) for oid, st in before]
    assert [f.id for f in j.fills()] == ["F-sr-1:1", "F-sr-1:2"] and j.fills()[0].fee == 0.0
    assert all(o["client_order_id"] == client_order_id(o["signal_id"]) for o in j.orders())
    assert [(r["order_id"], r["status"]) for r in j.reports()] == [
        ("O-sr-1:1", "FILLED"),
        ("O-sr-1:2", "FILLED"),
        ("O-sr-1:3", "REJECTED"),
    ]
    assert j.trading_state() == ("ACTIVE", "resume") and j.stream_ends() == {"sr-1": (5000, 4)}
    j.close()
    assert Journal(path).schema_version() == SCHEMA_VERSION  # opening again changes nothing


def test_migrating_a_big_version_0_journal_takes_work_in_proportion_to_its_rows(tmp_path):
    """Each order's filled quantity summed its fills by a full scan (no index yet): 10,000
    orders took 15 s, past the executor's start timeout, so it was killed mid-migration on
    every start. Work is counted in SQLite VM steps (deterministic), not in seconds."""
    from workbench.execution.journal_schema import open_schema

    def steps_to_migrate(n: int) -> int:
        path = tmp_path / f"v0-{n}.sqlite"
        shutil.copy(FIXTURE, path)
        db = sqlite3.connect(path, isolation_level=None)
        rows = [(f"S{k}", f"O{k}", f"F{k}") for k in range(n)]
        db.executemany(
            "INSERT INTO signals VALUES (?, 'sr-1', 0, 'ABC', 'BUY', 1, 100, 0, '', '', 0)",
            [(s,) for s, _, _ in rows],
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, 'ABC', 'BUY', 1, 100, 0, 'FILLED', '', 0)",
            [(o, s) for s, o, _ in rows],
        )
        db.executemany(
            "INSERT INTO fills VALUES (?, ?, ?, 'ABC', 'BUY', 1, 100, 0, 0)",
            [(f, o, s) for s, o, f in rows],
        )
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        db.set_progress_handler(count, 1000)
        open_schema(db, str(path))
        db.set_progress_handler(None, 0)
        assert db.execute("SELECT filled_qty FROM orders WHERE order_id='O7'").fetchone() == (1,)
        db.close()
        return steps[0]

    small, big = steps_to_migrate(500), steps_to_migrate(2000)
    assert big < 6 * small, (small, big)  # 4x the rows: ~4x the work, not 16x


@pytest.mark.parametrize(
    ("version", "dropped"),
    [
        (1, ("marks", "signal_gaps", "meta")),
        (2, ("signal_gaps", "meta")),
        (3, ("meta",)),
        (4, ()),
        (5, ()),
    ],
)
def test_a_version_1_to_5_journal_gains_the_newer_tables_keeping_every_row(
    tmp_path, version, dropped
):
    path = tmp_path / "old.sqlite"
    j = Journal(path)
    j.set_trading_state("HALTED", "stop", "operator")
    j.set_risk_day("2024-01-02", -5.0)
    j.begin_order(sig(1), Order.from_signal(sig(1)), OrderStatus.ACCEPTED)
    after_the_day = 1_704_300_000_000_000_000  # 2024-01-03: its fee is not the day's start
    fill = Fill("F1", "O-s:1", "s:1", "ABC", Side.BUY, 1.0, 100.0, after_the_day, 0.1)
    j.finish_order("O-s:1", OrderStatus.FILLED, [fill])
    j.close()
    with sqlite3.connect(path) as db:  # what that version wrote: the same, without those
        for table in dropped:
            db.execute(f"DROP TABLE {table}")
        if version < 5:
            db.execute("ALTER TABLE fills DROP COLUMN fee_qty")
            db.execute("ALTER TABLE fills DROP COLUMN fee_asset")
        db.execute("DROP INDEX signals_by_entry")  # before version 6
        db.execute("DROP INDEX fills_by_order")
        db.execute("ALTER TABLE signals DROP COLUMN closes")
        db.execute(f"PRAGMA user_version = {version}")
    j = Journal(path)
    assert j.schema_version() == SCHEMA_VERSION == 6
    assert j.trading_state() == ("HALTED", "stop") and j.risk_day("2024-01-02") == -5.0
    assert j.fills() == [fill]  # no fee out of the asset, none in a third one
    j.save_marks({"ABC": (100.0, 1)})
    assert j.marks() == {"ABC": (100.0, 1)}
    j.set_signal_gaps("s", [(2, 3)])
    assert j.signal_gaps() == {"s": [(2, 3)]}
    book = j.entry_book("s:1")  # an old entry: its fill counts, nothing closed it
    assert book is not None and (book.filled, book.claimed) == (1.0, 0.0)
    exit_ = dataclasses.replace(sig(2), side=Side.SELL, closes="s:1")
    j.begin_order(exit_, Order.from_signal(exit_), OrderStatus.ACCEPTED)
    assert j.entry_book("s:1").claimed == 1.0
    query = "EXPLAIN QUERY PLAN SELECT 1 FROM signals WHERE closes='s:1' AND closes != ''"
    plans = {r[3] for r in sqlite3.connect(path).execute(query)}
    assert any("signals_by_entry" in p for p in plans)


def test_a_version_3_journal_gets_a_salt_and_keeps_its_orders_client_ids(tmp_path):
    path = tmp_path / "v3.sqlite"
    j = Journal(path)
    j.begin_order(sig(1), Order.from_signal(sig(1)), OrderStatus.ACCEPTED)  # unsalted, as v3
    j.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE meta")
        db.execute("PRAGMA user_version = 3")
    j = Journal(path)
    assert [o["client_order_id"] for o in j.orders()] == [client_order_id("s:1")]
    salt, other = j.client_id_salt, Journal(tmp_path / "other.sqlite")
    assert len(salt) == 16 and salt != other.client_id_salt
    j.close()
    other.close()
    assert Journal(path).client_id_salt == salt  # made once, kept


def test_a_journal_from_a_newer_workbench_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="schema version"):
        Journal(path)


# -- reconciliation ----------------------------------------------------------------------


class DiesAfterAccepting(SimulatedBroker):
    """Accepts at the venue, then the connection dies before the answer reaches us."""

    def submit(self, order: Order) -> OrderAck:
        super().submit(order)
        raise ConnectionError("connection reset after the venue accepted")

    def reports(self) -> list[ExecutionReport]:
        super().reports()  # sent down the dead connection: lost
        return []


def make(path, broker, events=None) -> Executor:
    sink = events.append if events is not None else None
    return Executor(broker, Journal(path), RiskConfig(), make_breaker(5, 60), Telemetry(), sink)


def test_the_executor_salts_client_order_ids_with_its_journal_stable_across_restarts(tmp_path):
    one = make(tmp_path / "one.sqlite", SimulatedBroker())
    one.on_signal(sig(1))
    cid = one.journal.orders()[0]["client_order_id"]
    assert cid == client_order_id("s:1", one.journal.client_id_salt) != client_order_id("s:1")
    one.on_signal(sig(2))
    one.journal.close()
    again = make(tmp_path / "one.sqlite", SimulatedBroker())  # the same journal, restarted
    again.on_signal(sig(3))
    salt = again.journal.client_id_salt
    assert [o["client_order_id"] for o in again.journal.orders()] == [
        client_order_id(f"s:{n}", salt) for n in (1, 2, 3)
    ]
    other = make(tmp_path / "two.sqlite", SimulatedBroker())  # a new run: a new journal
    other.on_signal(sig(1))
    assert other.journal.orders()[0]["client_order_id"] != cid


def test_broker_dying_between_accepting_and_reporting_is_reconciled_never_resent(tmp_path):
    venue = DiesAfterAccepting()
    ex = make(tmp_path / "j.sqlite", venue)
    assert ex.on_signal(sig(1)) == []  # the venue filled it; we never heard
    assert ex.in_doubt == ["O-s:1"] and ex.journal.orders()[0]["status"] == "PENDING_NEW"
    ex.journal.close()

    # Restart against the same venue (the process died, the venue did not).
    venue.__class__ = SimulatedBroker  # the connection works again
    events: list = []
    ex2 = make(tmp_path / "j.sqlite", venue, events)
    assert len(venue._orders) == 1  # reconciliation asked, never resubmitted
    assert ex2.in_doubt == []
    order = ex2.journal.orders()[0]
    assert order["status"] == "FILLED" and order["venue_order_id"] == "SIM-" + client_order_id(
        "s:1", ex2.journal.client_id_salt
    )
    assert [f.id for f in ex2.journal.fills()] == ["F-s:1"]
    assert ex2.portfolio.position("ABC") == 1.0
    kinds = [r["kind"] for r in ex2.journal.reconciliations()]
    assert kinds == ["missed_ack", "missed_fill"]
    alerts = [
        e for e in events if isinstance(e, Event) and e.data.get("reason") == "reconciliation"
    ]
    assert [a.data["kind"] for a in alerts] == kinds
    assert ex2.on_signal(sig(1)) == [] and len(venue._orders) == 1  # a re-send: nothing


class Killed(BaseException):
    """The process killed (SIGTERM before its handlers, SIGKILL) where this is raised."""


class KilledWhileReconciling(SimulatedBroker):
    """Answers for orders, but the process dies before the venue lists its open orders."""

    def open_orders(self) -> list:
        raise Killed


def test_a_restart_killed_mid_reconciliation_keeps_all_of_it_or_none(tmp_path):
    path = tmp_path / "j.sqlite"
    venue = DiesAfterAccepting()
    make(path, venue).on_signal(sig(1))  # filled at the venue, PENDING_NEW in the journal
    venue.__class__ = KilledWhileReconciling
    with pytest.raises(Killed):  # the restarted executor dies during its reconciliation
        make(path, venue)
    j = Journal(path)
    assert j.orders()[0]["status"] == "PENDING_NEW" and j.reconciliations() == []
    assert j.fills() == []  # nothing of it journaled: the next start asks again

    venue.__class__ = SimulatedBroker
    ex = make(path, venue)
    assert ex.journal.orders()[0]["status"] == "FILLED" and len(venue._orders) == 1
    kinds = [(r["kind"], r["order_id"]) for r in ex.journal.reconciliations()]
    assert kinds == [("missed_ack", "O-s:1"), ("missed_fill", "O-s:1")]
    reports = [(r["status"], r["source"]) for r in ex.journal.reports("O-s:1")]
    assert reports == [("ACCEPTED", "reconcile"), ("FILLED", "reconcile")]


def test_order_the_venue_never_received_is_closed_rejected_and_positions_compared(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    s = sig(1)
    j.begin_order(s, Order.from_signal(s), OrderStatus.PENDING_NEW)
    j.close()
    venue = SimulatedBroker()
    venue.submit(Order.from_signal(sig(7, Side.SELL, 2.0)))  # someone else's trade at the venue
    ex = make(path, venue)
    assert ex.journal.orders()[0]["status"] == "REJECTED"
    assert "not at the venue" in ex.journal.orders()[0]["reason"]
    diffs = {r["kind"]: r["detail"] for r in ex.journal.reconciliations()}
    assert set(diffs) == {"order_not_at_venue", "position_mismatch"}
    assert diffs["position_mismatch"] == {
        "kind": "position_mismatch",
        "symbol": "ABC",
        "journal": 0.0,
        "venue": -2.0,
    }
    assert ex.telemetry.get("reconciliation_differences") == 2


# -- timeouts ------------------------------------------------------------------------------


class Hung:
    """A venue that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def submit(self, order: Order) -> OrderAck:
        self.calls += 1
        self.release.wait(5)
        raise ConnectionError("gone")

    def reports(self):
        return []

    def cancel(self, client_order_id):
        return None

    def order(self, client_order_id, symbol=""):
        return None

    def open_orders(self):
        return []

    def fills_since(self, ts_ns):
        return []

    def positions(self):
        return None


def test_a_hung_venue_times_out_trips_the_breaker_and_leaves_orders_in_doubt(tmp_path):
    venue = Hung()
    breaker = make_breaker(2, 60)
    ex = Executor(
        venue,
        Journal(tmp_path / "j.sqlite"),
        RiskConfig(),
        breaker,
        Telemetry(),
        call_timeout_s=0.05,
    )
    try:
        for i in range(1, 5):
            ex.on_signal(sig(i))
        assert breaker.current_state == pybreaker.STATE_OPEN
        assert venue.calls == 1  # the others were withdrawn unsent or failed fast
        orders = ex.journal.orders()
        # Timed out while at the venue: in doubt, not rejected. Withdrawn before
        # it started, or refused by the open circuit: never sent, rejected.
        assert [o["status"] for o in orders] == ["PENDING_NEW"] + ["REJECTED"] * 3
        assert orders[1]["reason"].startswith("not sent: broker submit took longer")
        assert [o["reason"] for o in orders[2:]] == ["circuit_open"] * 2
        assert ex.in_doubt == ["O-s:1"]
    finally:
        venue.release.set()
        ex.calls.close()


def test_a_restart_rebuilds_the_positions_the_live_executor_had(tmp_path):
    """Fills of several orders in one drain are journaled in the order positions took them."""
    t, ms = 1_709_251_200_000_000_000, 1_000_000

    def make() -> Executor:
        broker = SimulatedBroker(latency_ms=1, partial_fills=True)
        journal = Journal(tmp_path / "j.sqlite")
        return Executor(broker, journal, RiskConfig(), make_breaker(3, 60), Telemetry())

    ex = make()
    ex.on_signals(
        [
            Signal("a:1", "a", 1, "ABC", Side.BUY, 2.0, 100.0, t),
            Signal("b:1", "b", 1, "ABC", Side.SELL, 1.0, 100.0, t),
        ]
    )
    ex.on_tick("ABC", 100.0, t + 2 * ms, 1.0)  # a buys 1 at 100, b sells 1 at 100
    ex.on_tick("ABC", 110.0, t + 3 * ms, 1.0)  # a buys 1 at 110: one drain for both ticks
    live = [(f.order_id, f.price) for f in ex.poll()]
    assert [(f.order_id, f.price) for f in ex.journal.fills()] == live
    before = ex.portfolio.positions["ABC"]
    ex.journal.close()
    after = make().portfolio.positions["ABC"]
    assert (after.qty, after.avg_price, after.realized_pnl) == (
        before.qty,
        before.avg_price,
        before.realized_pnl,
    )
