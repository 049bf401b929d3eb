"""An exit is sent no larger than the entry it names holds (`Signal.closes`, `closing`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_trading_state import DAY, NS

from workbench.config import RiskConfig
from workbench.domain.model import OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.exceptions import OrderRejected
from workbench.execution.closing import EntryBook, room
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.journal_memory import MemoryJournal
from workbench.execution.simulator import SimulatedBroker
from workbench.execution.tape import MarketTape, SymbolTape
from workbench.messaging import codec
from workbench.runner.state import signal_from_state, signal_to_state
from workbench.telemetry import Telemetry


class Venue(SimulatedBroker):
    """The simulator, filling at most ``share`` of an entry on arrival, buys' fee in the asset.

    The rest of a market entry waits for the market; an IOC limit's expires.
    ``refuse``: signal ids whose orders it refuses (insufficient balance, say).
    """

    def __init__(self, share: float = 1.0, fee_qty: float = 0.0, refuse=()) -> None:
        super().__init__(partial_fills=share < 1.0)
        self.share, self.fee_qty, self.refuse = share, fee_qty, set(refuse)

    def fills_whole(self, order):  # type: ignore[no-untyped-def]
        whole = super().fills_whole(order)
        return whole and not self.refuse and not self.fee_qty and order.signal_id != "s:1"

    def submit(self, order):  # type: ignore[no-untyped-def]
        if order.signal_id in self.refuse:
            raise OrderRejected(order.id, "insufficient balance")
        return super().submit(order)

    def _arrive(self, vo, ts_ns, price, size, quote=None):  # type: ignore[no-untyped-def]
        share = self.share if vo.order.signal_id == "s:1" else 1.0
        super()._arrive(vo, ts_ns, price, min(size, vo.order.qty * share), quote)

    def reports(self):  # type: ignore[no-untyped-def]
        out = super().reports()
        return [
            dataclasses.replace(r, fill=dataclasses.replace(r.fill, fee_qty=self.fee_qty))
            if r.fill is not None and r.fill.side is Side.BUY
            else r
            for r in out
        ]


WIRE = ("s", 1, 1, 1)  # sender, epoch, seq, sent_ns
JOURNALS = {"sqlite": lambda: Journal(":memory:"), "memory": MemoryJournal}


@pytest.fixture(params=sorted(JOURNALS))
def journal(request):
    return JOURNALS[request.param]


def make(journal, venue: SimulatedBroker | None = None, **risk) -> Executor:
    ex = Executor(
        venue or Venue(), journal(), RiskConfig(**risk), make_breaker(3, 60), Telemetry(),
        lambda e: None,
    )  # fmt: skip
    ex.on_tick("ABC", 100.0, DAY)
    return ex


def sig(seq: int, side: Side, qty: float = 1.0, closes: int = 0, **kw) -> Signal:
    return Signal(
        Signal.make_id("s", seq), "s", seq, kw.pop("symbol", "ABC"), side, qty, 100.0,
        DAY + seq * NS, "exit" if closes else "entry", "c", closes=f"s:{closes}" if closes else "",
        **kw,
    )  # fmt: skip


def orders(ex: Executor) -> list[tuple[str, float, str]]:
    return [(o["status"], o["qty"], o["reason"]) for o in ex.journal.orders()]


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one batch"])
def test_the_exit_of_an_entry_the_risk_limits_refused_is_refused_and_opens_nothing(
    journal, together
):
    ex = make(journal, max_order_qty=5)
    entry, exit_ = sig(1, Side.BUY, 10), sig(2, Side.SELL, 10, closes=1)
    for batch in ([entry, exit_],) if together else ([entry], [exit_]):
        ex.on_signals(batch)
    (s1, _, r1), (s2, _, r2) = orders(ex)
    assert (s1, s2) == ("REJECTED", "REJECTED") and "max_order_qty" in r1
    assert r2 == "closes s:1, which holds nothing (REJECTED with 0 filled, 0 exited)"
    assert ex.portfolio.position("ABC") == 0.0  # was -10: the exit opened a short


def test_the_exit_of_an_entry_the_venue_refused_is_refused(journal):
    ex = make(journal, Venue(refuse={"s:1"}))
    ex.on_signals([sig(1, Side.BUY, 1), sig(2, Side.SELL, 1, closes=1)])
    assert orders(ex) == [
        ("REJECTED", 1.0, "insufficient balance"),
        ("REJECTED", 1.0, "closes s:1, which holds nothing (REJECTED with 0 filled, 0 exited)"),
    ]
    assert ex.portfolio.position("ABC") == 0.0


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one batch"])
def test_the_exit_of_a_partly_filled_ioc_entry_is_cut_to_the_fill(journal, together):
    ex = make(journal, Venue(share=0.4))
    ioc = {"order_type": OrderType.LIMIT, "order_price": 101.0, "tif": TimeInForce.IOC}
    entry, exit_ = sig(1, Side.BUY, 10, **ioc), sig(2, Side.SELL, 10, closes=1)
    for batch in ([entry, exit_],) if together else ([entry], [exit_]):
        ex.on_signals(batch)
    assert orders(ex) == [("EXPIRED", 10.0, "IOC: not filled on arrival"), ("FILLED", 4.0, "")]
    assert ex.portfolio.position("ABC") == 0.0 and ex.telemetry.get("exit_qty_cut_to_entry") == 1


def test_the_exit_of_a_buy_whose_fee_the_venue_took_in_the_asset_sells_what_is_held(journal):
    # Entry and exit in one batch: the exit waits for the entry's fill (the batch is cut).
    ex = make(journal, Venue(fee_qty=0.001))
    ex.on_signals([sig(1, Side.BUY, 1), sig(2, Side.SELL, 1, closes=1)])
    assert [o[1] for o in orders(ex)] == [1.0, pytest.approx(0.999)]
    assert ex.portfolio.position("ABC") == pytest.approx(0.0, abs=1e-12)


def test_an_entry_still_working_lets_its_exit_take_what_it_may_still_fill(journal):
    # Live: a market entry half filled, the rest waiting for the market, its exit comes.
    ex = make(journal, Venue(share=0.5))
    ex.on_signals([sig(1, Side.BUY, 2)])
    assert orders(ex)[0][0] == "PARTIALLY_FILLED"
    ex.on_signals([sig(2, Side.SELL, 2, closes=1)])
    assert orders(ex)[1][:2] == ("FILLED", 2.0)
    ex.on_signals([sig(3, Side.SELL, 1, closes=1)])  # the first exit claimed all of it
    assert orders(ex)[2][0] == "REJECTED" and "holds nothing" in orders(ex)[2][2]
    ex.on_tick("ABC", 100.0, DAY + 10 * NS)  # the entry's rest fills: the exit closed it
    ex.poll()
    assert orders(ex)[0][0] == "FILLED" and ex.portfolio.position("ABC") == 0.0


def test_exits_of_one_entry_take_no_more_than_it_holds_in_all(journal):
    ex = make(journal)
    ex.on_signals([sig(1, Side.SELL, 3)])
    ex.on_signals([sig(2, Side.BUY, 2, closes=1), sig(3, Side.BUY, 2, closes=1)])
    ex.on_signals([sig(4, Side.BUY, 1, closes=1)])
    assert [(s, q) for s, q, _ in orders(ex)] == [
        ("FILLED", 3.0), ("FILLED", 2.0), ("FILLED", 1.0), ("REJECTED", 1.0),
    ]  # fmt: skip
    assert ex.portfolio.position("ABC") == 0.0


def test_a_restarted_executor_still_knows_what_an_entry_holds(tmp_path):
    path = tmp_path / "journal.sqlite"
    ex = make(lambda: Journal(path), max_order_qty=5)
    ex.on_signals([sig(1, Side.BUY, 10), sig(3, Side.BUY, 2)])
    ex.journal.close()
    again = make(lambda: Journal(path), max_order_qty=5)
    again.on_signals([sig(2, Side.SELL, 10, closes=1), sig(4, Side.SELL, 2, closes=3)])
    assert [o[0] for o in orders(again)] == ["REJECTED", "FILLED", "REJECTED", "FILLED"]
    assert again.portfolio.position("ABC") == 0.0


def test_an_exit_naming_no_journaled_entry_or_one_of_another_side_or_symbol_is_refused(journal):
    ex = make(journal)
    ex.on_tick("XYZ", 10.0, DAY)
    ex.on_signals([sig(1, Side.BUY, 1), sig(2, Side.BUY, 1, symbol="XYZ")])
    ex.on_signals(
        [
            sig(3, Side.BUY, 1, closes=1),  # the entry's own side
            sig(4, Side.SELL, 1, closes=2),  # another symbol's entry
            sig(5, Side.SELL, 1, closes=4),  # names no order... but one of this batch's
        ]
    )
    reasons = [r for _, _, r in orders(ex)[2:]]
    assert reasons[0] == "closes s:1, a BUY of ABC: a BUY of ABC does not close it"
    assert reasons[1] == "closes s:2, a BUY of XYZ: a SELL of ABC does not close it"
    assert reasons[2] == "closes s:4, a SELL of ABC: a SELL of ABC does not close it"
    ex.on_signals([sig(7, Side.SELL, 1, closes=6)])  # s:6 never came
    assert orders(ex)[-1][2] == "closes s:6: no order of that signal in the journal"
    assert ex.portfolio.position("ABC") == 1.0 and ex.portfolio.position("XYZ") == 1.0


def test_a_redelivered_exit_is_nothing_new(journal):
    ex = make(journal)
    batch = [sig(1, Side.BUY, 1), sig(2, Side.SELL, 1, closes=1)]
    ex.on_signals(batch)
    ex.on_signals(batch)
    assert [o[0] for o in orders(ex)] == ["FILLED", "FILLED"]
    assert ex.telemetry.get("signals_duplicate") == 2


def test_room_takes_float_drift_for_none():
    book = EntryBook("ABC", Side.BUY, 0.3, 0.1 + 0.2, OrderStatus.FILLED, 0.0)
    # 0.3 is not cut to 0.30000000000000004, nor is 4e-17 left anything
    assert room(sig(2, Side.SELL, 0.3, closes=1), book) == (0.3, "")
    spent = dataclasses.replace(book, claimed=0.3)
    assert room(sig(2, Side.SELL, 0.3, closes=1), spent)[0] == 0.0


@pytest.mark.parametrize(
    ("closes", "problem"),
    [
        ("s:1", ""),
        ("s:2", "no earlier signal"),  # itself
        ("s:3", "no earlier signal"),  # a later one
        ("t:1", "no earlier signal"),  # another strategy's
        ("s:01", "no earlier signal"),  # not an id the strategy made
        ("s:x", "no earlier signal"),
    ],
)
def test_a_signal_may_close_only_an_earlier_signal_of_its_own_strategy(closes, problem):
    s = dataclasses.replace(sig(2, Side.SELL, 1), closes=closes)
    assert (problem in s.problem()) if problem else s.problem() == ""
    frames = codec.encode(s, *WIRE)
    if problem:
        with pytest.raises(codec.CodecError, match="no earlier signal"):
            codec.decode(frames)
    else:
        assert codec.decode(frames).payload == s


def test_the_entry_an_exit_closes_crosses_the_wire_and_the_state_file():
    s = sig(2, Side.SELL, 1, closes=1)
    assert codec.decode(codec.encode(s, *WIRE)).payload == s
    assert signal_from_state(signal_to_state(s)) == s
    limit = dataclasses.replace(s, order_type=OrderType.LIMIT, order_price=99.0)
    assert codec.decode(codec.encode(limit, *WIRE)).payload == limit
    assert signal_from_state(signal_to_state(limit)) == limit
    entry = sig(1, Side.BUY, 1)  # an entry's frame and state row are what they were
    assert len(signal_to_state(entry)) == 11
    assert codec.decode(codec.encode(entry, *WIRE)).payload == entry


steps = st.lists(
    st.one_of(st.tuples(st.sampled_from(Side), st.integers(1, 4)), st.integers(0, 7)),
    max_size=16,
)


@pytest.mark.parametrize("venue_refuses", [False, True])
@settings(max_examples=100, deadline=None)
@given(plan=steps)
def test_entries_and_exits_decide_alike_in_one_batch_and_one_by_one(venue_refuses, plan):
    """What fast and wire replay rely on. A step opens an entry (side, qty: the position
    limit refuses some) or exits the n-th entry still open, in any interleaving. With a
    venue that refuses some orders each exit of an entry in the batch waits for it."""
    batch, open_ = [], []
    for step in plan:
        seq = len(batch) + 1
        if isinstance(step, tuple):
            batch.append(sig(seq, step[0], step[1]))
            open_.append(batch[-1])
        elif open_:
            entry = open_.pop(step % len(open_))
            batch.append(sig(seq, entry.side.opposite, entry.qty, entry.seq))
    refused = {s.id for s in batch if s.seq % 3 == 0} if venue_refuses else set()
    together, apart = (
        make(MemoryJournal, Venue(refuse=refused), max_position_qty=5) for _ in range(2)
    )
    together.on_signals(batch)
    for s in batch:
        apart.on_signals([s])
    if not venue_refuses:  # else a batch may refuse more (batch_plan's docstring)
        assert orders(together) == orders(apart)
    for ex in (together, apart):
        filled = {o["signal_id"]: o["filled_qty"] for o in ex.journal.orders()}
        exited: dict[str, float] = {}
        for s in batch:
            if s.closes:
                exited[s.closes] = exited.get(s.closes, 0.0) + filled[s.id]
        assert all(q <= filled[entry] for entry, q in exited.items())  # none opened anything


def test_after_a_flatten_the_exit_of_an_entry_from_before_it_opens_nothing(tmp_path):
    path = tmp_path / "journal.sqlite"
    ex = make(lambda: Journal(path))
    ex.on_signals([sig(1, Side.BUY, 2), sig(2, Side.SELL, 1)])  # a long of 2, a short of 1
    ex.flatten(wait_s=0.0)
    assert ex.portfolio.position("ABC") == 0.0
    ex.resume()
    ex.on_signals([sig(3, Side.BUY, 1), sig(4, Side.SELL, 2, closes=1)])
    ex.journal.close()
    again = make(lambda: Journal(path))  # a restart keeps the flatten in mind
    again.on_signals([sig(5, Side.BUY, 1, closes=2), sig(6, Side.SELL, 1, closes=3)])
    status = {o["signal_id"]: (o["status"], o["reason"]) for o in again.journal.orders()}
    assert status["s:4"] == ("REJECTED", "closes s:1, which the kill switch's flatten closed since")
    assert status["s:5"][1] == "closes s:2, which the kill switch's flatten closed since"
    assert status["s:6"] == ("FILLED", "")  # an entry after the flatten closes as usual
    assert again.portfolio.position("ABC") == 0.0


def test_a_flatten_the_venue_refused_closed_no_entry(journal):
    ex = make(journal, Venue(refuse={"executor:1"}))
    ex.on_signals([sig(1, Side.BUY, 2)])
    ex.flatten(wait_s=0.0)
    assert ex.portfolio.position("ABC") == 2.0 and ex.not_flattened
    ex.resume()
    ex.on_signals([sig(2, Side.SELL, 2, closes=1)])
    assert orders(ex)[-1][:2] == ("FILLED", 2.0) and ex.portfolio.position("ABC") == 0.0


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one batch"])
def test_an_exit_whose_entry_a_reduce_refused_mid_batch_is_refused_too(journal, together):
    # The batch planned the exit as if its entry filled whole; `reduce` came between them.
    ex = make(journal, SimulatedBroker())
    ex.on_signals([sig(1, Side.BUY, 1)])  # a long of 1, another entry's
    waiting = [True]
    ex.command_waiting = lambda: bool(waiting)
    ex.serve_commands = lambda: waiting and (waiting.pop(), ex.reduce())
    batch = [sig(2, Side.BUY, 1), sig(3, Side.SELL, 1, closes=2)]
    for part in [batch] if together else [[s] for s in batch]:
        ex.on_signals(part)
    ex.command_waiting = None
    ex.resume()
    ex.on_signals([sig(4, Side.SELL, 1, closes=1)])
    assert [o[0] for o in orders(ex)] == ["FILLED", "REJECTED", "REJECTED", "FILLED"]
    assert ex.portfolio.position("ABC") == 0.0  # was -1: the exit sold the other entry's


def test_a_flatten_order_filled_after_the_flatten_answered_still_closes_the_entries(tmp_path):
    ex = make(lambda: Journal(tmp_path / "j.sqlite"), SimulatedBroker(latency_ms=1))
    ex.on_signals([sig(1, Side.BUY, 1)])
    ex.on_tick("ABC", 100.0, DAY + 2 * NS)
    ex.poll()
    ex.flatten(wait_s=0.0)
    assert ex.not_flattened  # its order still works at the venue
    ex.on_tick("ABC", 100.0, DAY + 3 * NS)
    ex.poll()  # now it fills
    ex.resume()
    ex.on_signals([sig(4, Side.SELL, 1, closes=1)])
    assert orders(ex)[-1][2] == "closes s:1, which the kill switch's flatten closed since"
    assert ex.portfolio.position("ABC") == 0.0


def test_a_market_ioc_entry_that_may_arrive_after_the_last_tick_is_waited_for():
    ts, prices, sizes = np.array([DAY + NS, DAY + 2 * NS]), np.full(2, 100.0), np.ones(2)
    tape = MarketTape({"ABC": SymbolTape(ts, prices, sizes)})

    def run(batches: list[list[Signal]]) -> list[tuple[str, float, str]]:
        venue = SimulatedBroker(latency_ms=1)
        venue.use_tape(lambda: tape)
        ex = Executor(venue, MemoryJournal(), RiskConfig(), make_breaker(3, 60), Telemetry(),
                      lambda e: None, replay=True)  # fmt: skip
        for batch in batches:
            ex.on_signals(batch)
        return orders(ex)

    at_end = {"ts_ns": DAY + 2 * NS, "tif": TimeInForce.IOC}
    entry = dataclasses.replace(sig(1, Side.BUY, 1), **at_end)
    exit_ = dataclasses.replace(sig(2, Side.SELL, 1, closes=1), ts_ns=DAY + 2 * NS)
    assert run([[entry, exit_]]) == run([[entry], [exit_]])
    assert run([[entry, exit_]])[1][0] == "REJECTED"  # the entry expired unfilled


def test_an_exit_cut_to_its_entry_is_counted_once_when_the_batch_is_cut_before_it(journal):
    ex = make(journal, SimulatedBroker(), max_position_qty=5)
    ex.on_signals([sig(1, Side.BUY, 2)])
    ex.on_signals([sig(2, Side.SELL, 7)])  # short 5, at the limit
    ex.on_signals([sig(3, Side.BUY, 3), sig(4, Side.SELL, 3, closes=1)])
    assert orders(ex)[-1][:2] == ("FILLED", 2.0)
    assert ex.telemetry.get("exit_qty_cut_to_entry") == 1


def test_an_exit_sent_while_its_entry_worked_is_cancelled_when_the_entry_ends_unfilled(journal):
    events: list = []
    ex = make(journal, SimulatedBroker(latency_ms=1))
    ex._publish = events.append
    ex.on_signals([sig(1, Side.BUY, 1)])  # another entry's long of 1
    ex.on_tick("ABC", 100.0, DAY + 2 * NS)
    ex.poll()
    ex.on_signals([sig(3, Side.BUY, 1)])
    ex.on_signals([sig(4, Side.SELL, 1, closes=3)])  # its entry still works: it may take 1
    assert ex.journal.open_signals() == [("s:3", "s", ""), ("s:4", "s", "s:3")]  # for a restart
    ex.reduce()  # cancels the entry (it would grow the long), not the exit (it shrinks it)
    status = {o["signal_id"]: o["status"] for o in ex.journal.orders()}
    assert (status["s:3"], status["s:4"]) == ("CANCELLED", "CANCELLED")
    ex.on_tick("ABC", 100.0, DAY + 5 * NS)
    ex.poll()
    ex.resume()
    ex.on_signals([sig(6, Side.SELL, 1, closes=1)])
    ex.on_tick("ABC", 100.0, DAY + 7 * NS)
    ex.poll()
    assert ex.portfolio.position("ABC") == 0.0  # was -1: the first long's exit opened a short


def test_a_restarted_executor_still_cancels_the_exits_of_an_entry_that_ends_unfilled(tmp_path):
    path, venue = tmp_path / "journal.sqlite", SimulatedBroker(latency_ms=1)  # it outlives both
    ex = make(lambda: Journal(path), venue)
    ex.on_signals([sig(1, Side.BUY, 1)])  # another entry's long of 1
    ex.on_tick("ABC", 100.0, DAY + 2 * NS)
    ex.poll()
    ex.on_signals([sig(3, Side.BUY, 1)])
    ex.on_signals([sig(4, Side.SELL, 1, closes=3)])  # its entry still works: it may take 1
    ex.journal.close()
    again = make(lambda: Journal(path), venue)
    exit_id = next(o["client_order_id"] for o in again.journal.orders() if o["signal_id"] == "s:4")
    assert again.exits_on_working == {"O-s:3": ("s:3", {exit_id})}
    again.reduce()  # cancels the entry; its exit, sent before the restart, goes with it
    status = {o["signal_id"]: o["status"] for o in again.journal.orders()}
    assert (status["s:3"], status["s:4"]) == ("CANCELLED", "CANCELLED")
    again.on_tick("ABC", 100.0, DAY + 5 * NS)
    again.poll()
    assert again.portfolio.position("ABC") == 1.0  # the first long is still held


class FlakyCancel(SimulatedBroker):
    """Times out cancelling the orders in ``fail``."""

    fail: set[str] = set()

    def cancel(self, client_order_id):  # type: ignore[no-untyped-def]
        if client_order_id in self.fail:
            raise TimeoutError("the venue did not answer the cancel")
        return super().cancel(client_order_id)


def test_an_exit_whose_cancel_was_lost_with_the_last_process_is_cancelled_at_restart(tmp_path):
    # A review helper's case: the entry ended unfilled, the exit's cancel timed out and
    # its retry lived in the dead process's memory; the exit then sold the other long.
    path, venue = tmp_path / "journal.sqlite", FlakyCancel(latency_ms=1)
    ex = make(lambda: Journal(path), venue)
    ex.on_signals([sig(1, Side.BUY, 1)])  # another entry's long of 1
    ex.on_tick("ABC", 100.0, DAY + 2 * NS)
    ex.poll()
    ex.on_signals([sig(3, Side.BUY, 1)])
    ex.on_signals([sig(4, Side.SELL, 1, closes=3)])
    exit_id = next(o["client_order_id"] for o in ex.journal.orders() if o["signal_id"] == "s:4")
    venue.fail = {exit_id}
    ex.reduce()  # cancels the entry unfilled; the exit's cancel fails, to be asked again
    assert len(ex.cancel_retries) == 1
    ex.journal.close()  # ... by a process that dies first
    venue.fail = set()
    again = make(lambda: Journal(path), venue)  # reconciles, as a runner before any signal
    assert again.orphaned_exits == set()  # asked for once
    again.resume()
    for t in range(5, 10):
        again.on_tick("ABC", 100.0, DAY + t * NS)
        again.poll()
    status = {o["signal_id"]: o["status"] for o in again.journal.orders()}
    assert (status["s:3"], status["s:4"]) == ("CANCELLED", "CANCELLED")
    assert again.portfolio.position("ABC") == 1.0  # was 0: the exit sold the first long


def test_an_entry_that_filled_less_than_its_exits_took_is_alerted(journal):
    events: list = []
    ex = make(journal, Venue(share=0.5))  # the entry fills half, the rest waits
    ex._publish = events.append
    ex.on_signals([sig(1, Side.BUY, 2), sig(2, Side.SELL, 2, closes=1)])  # the exit takes 2
    ex.halt()  # cancels the entry's rest: it holds 1
    alerts = [e.data for e in events if getattr(e, "name", "") == "alert"]
    assert {"reason": "exits_beyond_entry", "signal_id": "s:1"} in alerts
