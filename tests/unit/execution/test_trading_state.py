"""Executor trading states: refusal, halt/resume, restart, flatten, daily loss, duplicates."""

from __future__ import annotations

import datetime as dt
import math
import time

import pytest

from workbench.config import RiskConfig
from workbench.domain.model import Order, OrderStatus, OrderType, Side, Signal, TimeInForce
from workbench.exceptions import RiskRefused
from workbench.execution import killswitch
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.risk import NS, TradingState, utc_day
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Event
from workbench.telemetry import Telemetry

DAY = int(dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC).timestamp()) * NS


def sig(
    seq: int,
    side: Side = Side.BUY,
    price: float = 100.0,
    qty: float = 1.0,
    *,
    strategy: str = "s",
    symbol: str = "ABC",
    ts_ns: int | None = None,
) -> Signal:
    ts = DAY + seq * NS if ts_ns is None else ts_ns
    return Signal(
        Signal.make_id(strategy, seq), strategy, seq, symbol, side, qty, price, ts, "r", "c"
    )


class Harness:
    def __init__(self, journal: Journal, **kw) -> None:
        self.events: list[Event] = []
        self.journal = journal
        risk = kw.pop("risk", None) or RiskConfig()
        self.ex = Executor(
            SimulatedBroker(),
            journal,
            risk,
            make_breaker(3, 60),
            Telemetry(),
            lambda e: self.events.append(e) if isinstance(e, Event) else None,
            **kw,
        )

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def alerts(self, reason: str) -> list[Event]:
        return [e for e in self.named("alert") if e.data.get("reason") == reason]


@pytest.fixture
def journal_path(tmp_path):
    return tmp_path / "journal.sqlite"


def make(journal_path, **kw) -> Harness:
    return Harness(Journal(journal_path), **kw)


# -- allowed strategies ------------------------------------------------------------


def test_signals_from_strategies_not_allowed_are_refused_not_journaled():
    h = Harness(Journal(":memory:"), allowed_strategies={"s"})
    assert h.ex.on_signal(sig(1, strategy="rogue")) == []
    assert h.ex.telemetry.get("signals_refused") == 1
    assert h.ex.telemetry.get("signals_in") == 0
    assert h.journal.count("signals") == 0 and h.journal.count("orders") == 0
    assert h.alerts("signal_refused") == [
        Event("alert", {"reason": "signal_refused", "strategy_id": "rogue"})
    ]


def test_a_burst_of_refused_signals_raises_one_alert_but_counts_every_one():
    h = Harness(Journal(":memory:"), allowed_strategies={"s"})
    for i in range(1, 6):
        h.ex.on_signal(sig(i, strategy="rogue"))
    h.ex.on_signals([sig(10, strategy="other"), sig(11, strategy="rogue")])
    assert h.ex.telemetry.get("signals_refused") == 7
    assert len(h.alerts("signal_refused")) == 1


def test_allowed_signals_in_a_mixed_batch_still_trade():
    h = Harness(Journal(":memory:"), allowed_strategies={"s"})
    fills = h.ex.on_signals([sig(1, strategy="rogue"), sig(1), sig(2, strategy="rogue")])
    assert [f.signal_id for f in fills] == ["s:1"]
    assert h.ex.telemetry.get("signals_refused") == 2
    assert h.ex.telemetry.get("signals_in") == 1
    assert h.journal.count("signals") == 1


def test_no_allowed_set_accepts_any_strategy():
    h = Harness(Journal(":memory:"))
    assert h.ex.on_signal(sig(1, strategy="anyone"))
    assert h.ex.telemetry.get("signals_refused") == 0


def test_a_signal_carrying_another_senders_id_is_refused_and_cannot_block_a_flatten():
    # "ex:1" is the id of the executor's first flatten order: taken as a journaled
    # signal, the flatten would be dropped as its re-delivery and the position stay open.
    h = Harness(Journal(":memory:"), executor_id="ex", allowed_strategies={"s"})
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.on_signal(sig(1, qty=5.0))
    forged = Signal("ex:1", "s", 2, "ABC", Side.BUY, 5.0, 100.0, DAY + 2 * NS, "r", "c")
    assert h.ex.on_signal(forged) == []
    assert h.ex.telemetry.get("signals_invalid") == 1
    assert h.journal.count("signals") == 1
    assert h.alerts("signal_invalid")
    h.ex.flatten()
    assert h.ex.portfolio.position("ABC") == 0.0


# -- halt, resume, restart ---------------------------------------------------------


def test_halted_signals_are_journaled_rejected_and_still_counted_in():
    h = Harness(Journal(":memory:"))
    h.ex.on_signal(sig(1))
    h.ex.set_trading_state(TradingState.HALTED, "operator says stop", "operator")
    assert h.ex.trading_state is TradingState.HALTED
    assert h.ex.on_signal(sig(2, Side.SELL)) == []
    assert h.ex.on_signal(sig(3)) == []
    orders = h.journal.orders()
    assert [o["status"] for o in orders] == [
        OrderStatus.FILLED,
        OrderStatus.REJECTED,
        OrderStatus.REJECTED,
    ]
    assert [o["reason"] for o in orders[1:]] == ["trading halted"] * 2
    assert h.ex.telemetry.get("signals_in") == 3
    assert h.ex.telemetry.get("orders_out") == 1
    assert h.ex.portfolio.position("ABC") == 1.0


def test_halting_publishes_the_state_and_an_alert_and_journals_it():
    h = Harness(Journal(":memory:"))
    h.ex.set_trading_state(TradingState.HALTED, "why", "operator")
    data = {"state": "HALTED", "reason": "why", "source": "operator"}
    assert h.named("trading_state") == [Event("trading_state", data)]
    alerts = h.named("alert")
    assert len(alerts) == 1
    assert (alerts[0].data["state"], alerts[0].data["source"]) == ("HALTED", "operator")
    rows = h.journal.trading_states()
    assert [(r["state"], r["reason"], r["source"]) for r in rows] == [("HALTED", "why", "operator")]


@pytest.mark.parametrize("state", [TradingState.HALTED, TradingState.REDUCING])
def test_leaving_active_raises_an_alert_named_after_the_state(state):
    h = Harness(Journal(":memory:"))
    h.ex.set_trading_state(state, "why", "operator")
    assert [e.data["reason"] for e in h.named("alert")] == [f"trading_{state.value.lower()}"]


def test_setting_the_same_state_and_reason_again_changes_nothing():
    h = Harness(Journal(":memory:"))
    h.ex.set_trading_state(TradingState.HALTED, "why", "operator")
    h.ex.set_trading_state(TradingState.HALTED, "why", "operator")
    assert len(h.journal.trading_states()) == 1
    assert len(h.named("trading_state")) == 1


def test_a_new_executor_on_the_same_journal_restores_halted(journal_path):
    h = make(journal_path)
    h.ex.set_trading_state(TradingState.HALTED, "kill", "operator")
    h.journal.close()
    h2 = make(journal_path)
    assert h2.ex.trading_state is TradingState.HALTED
    assert h2.ex.state_reason == "kill"
    h2.ex.on_signal(sig(1))
    assert h2.journal.orders()[0]["status"] == OrderStatus.REJECTED
    assert h2.journal.orders()[0]["reason"] == "trading halted"


def test_a_new_executor_on_a_fresh_journal_is_active(journal_path):
    h = make(journal_path)
    assert h.ex.trading_state is TradingState.ACTIVE
    assert h.ex.state_reason == ""


def test_resume_makes_the_executor_trade_again(journal_path):
    h = make(journal_path)
    h.ex.set_trading_state(TradingState.HALTED, "kill", "operator")
    h.ex.on_signal(sig(1))
    alerts = len(h.named("alert"))
    h.ex.set_trading_state(TradingState.ACTIVE, "resume", "operator")
    assert len(h.named("alert")) == alerts  # resuming is no alert
    assert h.named("trading_state")[-1].data["state"] == "ACTIVE"
    assert h.ex.on_signal(sig(2))
    assert [o["status"] for o in h.journal.orders()] == ["REJECTED", "FILLED"]
    h.journal.close()
    assert make(journal_path).ex.trading_state is TradingState.ACTIVE


def test_reducing_lets_only_closing_signals_trade():
    h = Harness(Journal(":memory:"))
    h.ex.on_signal(sig(1, qty=2))
    h.ex.set_trading_state(TradingState.REDUCING, "reduce", "operator")
    h.ex.on_signal(sig(2))  # grows: rejected
    h.ex.on_signal(sig(3, Side.SELL, qty=3))  # flips: rejected
    h.ex.on_signal(sig(4, Side.SELL, qty=1))  # shrinks: goes
    assert [o["status"] for o in h.journal.orders()] == [
        "FILLED",
        "REJECTED",
        "REJECTED",
        "FILLED",
    ]
    assert h.ex.portfolio.position("ABC") == 1.0


# -- flatten -----------------------------------------------------------------------


def test_flatten_closes_every_position_at_the_last_market_price_then_halts():
    h = Harness(Journal(":memory:"), executor_id="ex", allowed_strategies={"s"})
    h.ex.on_signal(sig(1, qty=3))
    h.ex.on_signal(sig(2, Side.SELL, price=50.0, qty=2, symbol="XYZ"))
    h.ex.on_tick("ABC", 101.0, DAY + 10 * NS)
    h.ex.on_tick("XYZ", 49.0, DAY + 10 * NS)
    fills = h.ex.flatten()
    assert [(f.symbol, f.side, f.qty, f.price) for f in fills] == [
        ("ABC", Side.SELL, 3.0, 101.0),
        ("XYZ", Side.BUY, 2.0, 49.0),
    ]
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.portfolio.position("XYZ") == 0.0
    assert h.ex.portfolio.realized_pnl == pytest.approx(3 * 1.0 + 2 * 1.0)
    assert h.ex.trading_state is TradingState.HALTED
    assert h.ex.allowed == {"s"}  # restored after the flatten


def test_flatten_orders_are_journaled_as_the_executors_own_signals():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1, qty=2))
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.flatten()
    assert h.journal.last_signal_seq("ex") == 1
    assert h.journal.last_signal_seq("s") == 1
    flat = h.journal.orders()[-1]
    assert flat["signal_id"] == "ex:1"
    assert (flat["side"], flat["qty"], flat["status"]) == ("SELL", 2.0, "FILLED")
    assert h.journal.trading_state() == ("HALTED", "flatten requested")


def test_flatten_bypasses_the_limits():
    h = Harness(
        Journal(":memory:"),
        executor_id="ex",
        risk=RiskConfig(max_order_qty=1, max_position_qty=3, max_orders_per_s=100),
    )
    h.ex.on_signals([sig(1), sig(2), sig(3)])
    assert h.ex.portfolio.position("ABC") == 3.0
    h.ex.on_tick("ABC", 100.0, DAY)
    fills = h.ex.flatten()
    assert [(f.side, f.qty) for f in fills] == [(Side.SELL, 3.0)]
    assert h.ex.portfolio.position("ABC") == 0.0


def test_flatten_in_replay_uses_the_last_signal_price_as_the_market():
    h = Harness(Journal(":memory:"), executor_id="ex", replay=True)
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, price=104.0))
    fills = h.ex.flatten()
    assert [(f.side, f.qty, f.price) for f in fills] == [(Side.SELL, 2.0, 104.0)]
    assert h.ex.portfolio.realized_pnl == pytest.approx(4.0)  # 2 @ avg 102 sold at 104


def test_flatten_twice_sends_nothing_the_second_time():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1))
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.flatten()
    assert h.ex.flatten() == []
    assert h.journal.count("orders") == 2
    assert h.ex.trading_state is TradingState.HALTED


def test_later_flattens_number_their_signals_on_from_the_journal(journal_path):
    h = make(journal_path, executor_id="ex")
    h.ex.on_signal(sig(1))
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.flatten()
    h.ex.set_trading_state(TradingState.ACTIVE, "resume", "operator")
    h.journal.close()
    h2 = make(journal_path, executor_id="ex")
    h2.ex.on_signal(sig(2))
    h2.ex.on_tick("ABC", 100.0, DAY)
    assert [f.signal_id for f in h2.ex.flatten()] == ["ex:2"]


def test_flatten_without_a_market_price_leaves_the_position_open_and_alerts():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1, qty=2))
    h.ex.on_signal(sig(2, symbol="XYZ"))
    h.ex.on_tick("XYZ", 10.0, DAY)
    fills = h.ex.flatten()
    assert [f.symbol for f in fills] == ["XYZ"]
    assert h.ex.portfolio.position("ABC") == 2.0
    assert h.ex.portfolio.position("XYZ") == 0.0
    assert h.alerts("flatten_without_price") == [
        Event("alert", {"reason": "flatten_without_price", "symbol": "ABC"})
    ]
    assert h.ex.trading_state is TradingState.HALTED


def test_flatten_with_no_price_at_all_sends_nothing_but_halts():
    h = Harness(Journal(":memory:"), executor_id="ex")
    h.ex.on_signal(sig(1))
    assert h.ex.flatten() == []
    assert h.journal.count("orders") == 1
    assert h.ex.trading_state is TradingState.HALTED
    assert len(h.alerts("flatten_without_price")) == 1


# -- daily loss --------------------------------------------------------------------


def test_a_losing_round_trip_past_max_daily_loss_halts_with_source_risk():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    h.ex.on_signal(sig(1, price=100.0))
    assert h.ex.trading_state is TradingState.ACTIVE
    assert h.journal.risk_day("2024-03-01") == 0.0
    h.ex.on_signal(sig(2, Side.SELL, price=90.0))
    assert h.ex.trading_state is TradingState.HALTED
    last = h.journal.trading_states()[-1]
    assert (last["state"], last["source"]) == ("HALTED", "risk")
    assert "max_daily_loss" in last["reason"]
    assert [e.data["source"] for e in h.named("alert")] == ["risk"]
    h.ex.on_signal(sig(3, price=90.0))
    assert h.journal.orders()[-1]["reason"] == "trading halted"


def test_a_loss_within_max_daily_loss_keeps_trading():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=10))
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=90.0))  # exactly -10: not below
    assert h.ex.trading_state is TradingState.ACTIVE
    assert h.journal.trading_states() == []


def test_fees_count_against_max_daily_loss_and_are_still_counted_after_a_restart(journal_path):
    # Round trips at one price realize nothing; 5 per order in fees is the whole loss.
    def executor() -> Executor:
        return Executor(
            SimulatedBroker(fee_per_order=5.0),
            Journal(journal_path),
            RiskConfig(max_daily_loss=100),
            make_breaker(3, 60),
            Telemetry(),
            lambda e: None,
            replay=True,
        )

    ex = executor()
    for i in range(1, 11):  # 10 orders: 50 paid
        ex.on_signal(sig(i, Side.BUY if i % 2 else Side.SELL))
    assert ex.portfolio.realized_pnl == 0.0 and ex.portfolio.fees == 50.0
    assert ex.trading_state is TradingState.ACTIVE
    ex.journal.close()
    ex = executor()  # the fees come back with the fills
    assert ex.portfolio.fees == 50.0
    for i in range(11, 23):  # 21st order: 105 paid, past the limit
        ex.on_signal(sig(i, Side.BUY if i % 2 else Side.SELL))
    assert ex.trading_state is TradingState.HALTED
    assert ex.portfolio.fees == 105.0
    assert ex.journal.orders()[-1]["reason"] == "trading halted"


def test_a_day_started_before_fees_counted_is_not_halted_by_the_fees_paid_before_it(
    journal_path,
):
    # A version 3 journal's day start was valued before fees; counting every fee
    # ever paid against it halted an executor upgraded mid-day at once.
    import sqlite3

    def executor(limit: float) -> Executor:
        return Executor(
            SimulatedBroker(fee_per_order=5.0), Journal(journal_path),
            RiskConfig(max_daily_loss=limit), make_breaker(3, 60), Telemetry(), lambda e: None,
            replay=True,
        )  # fmt: skip

    ex = executor(1_000)
    for i in range(1, 41):  # 200 paid the day before
        ex.on_signal(sig(i, Side.BUY if i % 2 else Side.SELL, ts_ns=DAY - 10 * 3600 * NS + i))
    ex.on_signal(sig(41, Side.BUY, ts_ns=DAY + NS))  # today's first: 5 more paid
    ex.journal.close()
    with sqlite3.connect(journal_path) as db:  # what version 3 journaled: no fees in it
        db.execute("UPDATE risk_days SET start_pnl = 0.0 WHERE day = '2024-03-01'")
        db.execute("DROP TABLE meta")
        db.execute("PRAGMA user_version = 3")
    ex = executor(100)
    assert ex.journal.risk_day("2024-03-01") == -200.0
    ex.on_signal(sig(42, Side.SELL, ts_ns=DAY + 2 * NS))
    assert ex.trading_state is TradingState.ACTIVE  # today: -10 of 100


def test_zero_max_daily_loss_never_halts():
    h = Harness(Journal(":memory:"), replay=True)
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=1.0))
    assert h.ex.trading_state is TradingState.ACTIVE


def test_the_day_start_survives_a_restart(journal_path):
    risk = RiskConfig(max_daily_loss=5)
    h = make(journal_path, replay=True, risk=risk)
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=97.0))  # -3 today
    assert h.ex.trading_state is TradingState.ACTIVE
    h.journal.close()
    h2 = make(journal_path, replay=True, risk=risk)
    h2.ex.on_signal(sig(3, price=100.0))
    h2.ex.on_signal(sig(4, Side.SELL, price=97.0))  # -6 today, counted from the journaled start
    assert h2.ex.trading_state is TradingState.HALTED


def test_a_new_day_starts_the_loss_count_again():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=96.0))  # -4 on day one
    next_day = DAY + 24 * 3600 * NS
    h.ex.on_signal(sig(3, price=100.0, ts_ns=next_day))
    h.ex.on_signal(sig(4, Side.SELL, price=96.0, ts_ns=next_day + NS))  # -4 on day two
    assert h.ex.trading_state is TradingState.ACTIVE
    assert h.journal.risk_day("2024-03-02") == pytest.approx(-4.0)


# -- duplicates --------------------------------------------------------------------


def test_a_redelivered_signal_id_is_counted_duplicate_and_makes_no_second_order():
    h = Harness(Journal(":memory:"))
    h.ex.on_signal(sig(1))
    assert h.ex.on_signal(sig(1)) == []
    assert h.ex.on_signals([sig(1), sig(2, Side.SELL)])
    assert h.ex.telemetry.get("signals_duplicate") == 2
    assert h.ex.telemetry.get("signals_in") == 2
    assert h.ex.telemetry.get("orders_out") == 2
    assert h.journal.count("orders") == 2
    assert h.ex.portfolio.position("ABC") == 0.0


def test_a_redelivered_signal_after_a_restart_is_a_duplicate(journal_path):
    h = make(journal_path)
    h.ex.on_signal(sig(1))
    h.journal.close()
    h2 = make(journal_path)
    assert h2.ex.on_signal(sig(1)) == []
    assert h2.ex.telemetry.get("signals_duplicate") == 1
    assert h2.journal.count("orders") == 1
    assert h2.ex.portfolio.position("ABC") == 1.0


def test_a_signal_rejected_while_halted_stays_rejected_when_redelivered_after_resume():
    h = Harness(Journal(":memory:"))
    h.ex.set_trading_state(TradingState.HALTED, "kill", "operator")
    h.ex.on_signal(sig(1))
    h.ex.set_trading_state(TradingState.ACTIVE, "resume", "operator")
    assert h.ex.on_signal(sig(1)) == []
    assert h.ex.telemetry.get("signals_duplicate") == 1
    assert [o["status"] for o in h.journal.orders()] == ["REJECTED"]


def test_a_loss_made_by_the_first_trade_of_a_day_counts_for_that_day():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    h.ex.on_signal(sig(1, price=100.0))  # day one ends flat at the market (PnL 0)
    next_day = DAY + 24 * 3600 * NS
    h.ex.on_signal(sig(2, Side.SELL, price=80.0, ts_ns=next_day))  # day two: -20
    assert h.ex.portfolio.realized_pnl == pytest.approx(-20.0)
    assert h.ex.trading_state is TradingState.HALTED


# -- getting out after a daily loss halt ---------------------------------------------


def lost_past_the_limit(**kw) -> Harness:
    """Live: long 1 at 100, marked at 90 against max_daily_loss 5: HALTED by the risk check."""
    h = Harness(Journal(":memory:"), executor_id="ex", risk=RiskConfig(max_daily_loss=5), **kw)
    now = time.time_ns()
    h.ex.on_tick("ABC", 100.0, now)
    h.ex.on_signal(sig(1, ts_ns=now))  # the day's start: PnL 0
    h.ex.on_tick("ABC", 90.0, now + 1)
    h.ex.check_daily_loss()  # as the runner does after market data
    assert h.ex.trading_state is TradingState.HALTED
    return h


def test_flatten_after_a_daily_loss_halt_closes_the_position():
    h = lost_past_the_limit()
    fills = h.ex.flatten()
    assert [(f.signal_id, f.side, f.qty, f.price) for f in fills] == [
        ("ex:1", Side.SELL, 1.0, 90.0)
    ]
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.trading_state is TradingState.HALTED


def test_reduce_after_a_daily_loss_halt_lets_a_closing_order_out_and_nothing_else():
    h = lost_past_the_limit()
    h.ex.reduce()
    h.ex.on_signal(sig(2, qty=1))  # grows: still refused
    h.ex.on_signal(sig(3, Side.SELL, price=90.0))
    assert [o["status"] for o in h.journal.orders()] == ["FILLED", "REJECTED", "FILLED"]
    assert h.ex.portfolio.position("ABC") == 0.0
    assert h.ex.trading_state is TradingState.REDUCING


def test_a_loss_past_the_limit_halts_a_reducing_executor_the_operator_did_not_unwind_with():
    """REDUCING chosen before the loss (for any reason): the limit still halts it."""
    h = Harness(Journal(":memory:"), executor_id="ex", risk=RiskConfig(max_daily_loss=5))
    now = time.time_ns()
    h.ex.on_tick("ABC", 100.0, now)
    h.ex.on_signal(sig(1, ts_ns=now))  # long 1 at 100: the day's start, PnL 0
    h.ex.reduce()
    assert h.ex.trading_state is TradingState.REDUCING
    h.ex.on_tick("ABC", 90.0, now + 1)
    h.ex.check_daily_loss()
    assert h.ex.trading_state is TradingState.HALTED
    h.ex.reduce()  # now past the limit: the operator's way to unwind, not halted again
    h.ex.on_tick("ABC", 80.0, now + 2)
    h.ex.check_daily_loss()
    assert h.ex.trading_state is TradingState.REDUCING


def test_resume_is_refused_while_the_daily_loss_is_still_breached():
    h = lost_past_the_limit()
    with pytest.raises(RiskRefused, match=r"still below -5.0 \(max_daily_loss\)"):
        h.ex.resume()
    assert h.ex.trading_state is TradingState.HALTED
    h.ex.on_tick("ABC", 99.0, time.time_ns())  # back within the limit
    h.ex.resume()
    assert h.ex.trading_state is TradingState.ACTIVE


def test_in_a_replay_resume_checks_the_daily_loss_on_the_markets_clock():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=90.0))  # -10 on the replayed day
    assert h.ex.trading_state is TradingState.HALTED
    with pytest.raises(RiskRefused, match="still below"):  # not a fresh wall-clock day
        h.ex.resume()
    assert h.ex.engine.day == "2024-03-01" and h.journal.risk_day(utc_day(time.time_ns())) is None


def test_the_daily_loss_is_checked_between_the_signals_of_one_batch():
    losing = [
        sig(i, Side.BUY if i % 2 else Side.SELL, 100.0 if i % 2 else 95.0) for i in range(1, 7)
    ]
    batch = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    batch.ex.on_signals(losing)
    single = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    for s in losing:
        single.ex.on_signal(s)
    statuses = [o["status"] for o in batch.journal.orders()]
    assert statuses == ["FILLED", "FILLED", "FILLED", "FILLED", "REJECTED", "REJECTED"]
    assert statuses == [o["status"] for o in single.journal.orders()]
    assert batch.ex.portfolio.realized_pnl == pytest.approx(-10.0)


def test_a_held_symbol_that_never_gets_a_price_does_not_switch_the_limit_off(journal_path):
    risk = RiskConfig(max_daily_loss=5)
    h = make(journal_path, risk=risk)
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.on_tick("XYZ", 100.0, DAY)
    h.ex.on_signals([sig(1, ts_ns=DAY), sig(2, symbol="XYZ", ts_ns=DAY)])
    h.journal.close()
    next_day = DAY + 24 * 3600 * NS
    h2 = make(journal_path, risk=risk)
    h2.ex.on_tick("ABC", 100.0, next_day)
    h2.ex.check_daily_loss(next_day)
    h2.ex.on_tick("ABC", 90.0, next_day + NS)  # XYZ stays silent
    h2.ex.check_daily_loss(next_day + NS)
    assert h2.ex.trading_state is TradingState.HALTED


def test_a_gain_held_over_a_restart_is_in_the_next_days_start_so_a_loss_from_it_halts(
    journal_path,
):
    """Long 1 at 100, marked 120 when the executor stops; the next day opens before a price.

    Without journaled marks the restarted executor valued the position at its
    cost, so the day started at 0 and a fall from 120 to 110 (a loss of 10
    against a limit of 5) looked like a gain of 10.
    """
    risk = RiskConfig(max_daily_loss=5)
    h = make(journal_path, risk=risk)
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.on_signal(sig(1, ts_ns=DAY))
    h.ex.on_tick("ABC", 120.0, DAY + NS)
    h.ex.save_marks()  # as the runner does every second and when it stops
    h.journal.close()
    next_day = DAY + 24 * 3600 * NS
    h2 = make(journal_path, risk=risk)
    assert h2.ex.engine.restored["ABC"].price == 120.0  # the market as last journaled
    h2.ex.check_daily_loss(next_day)  # the day's start, before the first price of the day
    assert h2.ex.engine.day_start_pnl == 20.0
    h2.ex.on_tick("ABC", 110.0, next_day + NS)
    h2.ex.check_daily_loss(next_day + NS)
    assert h2.ex.trading_state is TradingState.HALTED


def test_a_restart_mid_day_values_positions_at_the_journaled_marks(journal_path):
    risk = RiskConfig(max_daily_loss=5)
    h = make(journal_path, risk=risk)
    now = time.time_ns()
    h.ex.on_tick("ABC", 100.0, now)
    h.ex.on_signal(sig(1, ts_ns=now))  # the day starts at 0
    h.ex.on_tick("ABC", 97.0, now + 1)
    h.ex.check_daily_loss()
    h.ex.save_marks()
    h.journal.close()
    h2 = make(journal_path, risk=risk)
    assert killswitch.total_pnl(h2.ex) == -3.0  # not 0: the position is not back at cost
    h2.ex.check_daily_loss()
    assert h2.ex.trading_state is TradingState.ACTIVE
    h2.ex.on_tick("ABC", 94.0, now + 2)
    h2.ex.check_daily_loss()
    assert h2.ex.trading_state is TradingState.HALTED


def restarted_long_at_an_old_mark(journal_path, **risk) -> Harness:
    """Long 1 at 100, marked 100 three days ago; the executor restarts with no fresh price."""
    old = time.time_ns() - 3 * 24 * 3600 * NS
    h = make(journal_path, executor_id="ex", risk=RiskConfig(**risk))
    h.ex.on_tick("ABC", 100.0, old)
    h.ex.on_signal(sig(1, ts_ns=old))
    h.ex.save_marks()
    h.journal.close()
    return make(journal_path, executor_id="ex", risk=RiskConfig(**risk))


def test_a_restored_mark_is_no_price_for_the_collar(journal_path):
    h = restarted_long_at_an_old_mark(journal_path, price_collar_pct=5)
    h.ex.on_signal(sig(2, price=104.0))
    [order] = [o for o in h.journal.orders() if o["signal_id"] == "s:2"]
    assert order["status"] == "REJECTED" and "no market price" in order["reason"]


def test_flatten_after_a_restart_sends_nothing_blind_at_a_restored_mark(journal_path):
    h = restarted_long_at_an_old_mark(journal_path)
    assert h.ex.flatten() == []
    assert h.alerts("flatten_without_price") and h.ex.portfolio.position("ABC") == 1.0
    h.ex.on_tick("ABC", 98.0, time.time_ns())  # a fresh price: now it can
    assert [f.price for f in h.ex.flatten()] == [98.0]


def test_a_restarted_replay_executor_values_positions_at_each_symbols_last_signal(
    journal_path,
):
    h = make(journal_path, replay=True)
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signal(sig(2, Side.SELL, price=50.0, symbol="XYZ"))
    h.ex.on_signal(sig(3, Side.SELL, price=97.0))  # ABC back to flat; XYZ short 1 at 50
    h.ex.on_signal(sig(4, price=96.0))  # long ABC again at 96
    total = killswitch.total_pnl(h.ex)
    h.journal.close()  # no marks saved: a replay needs none
    h2 = make(journal_path, replay=True)
    assert {s: q.price for s, q in h2.ex.engine.market.items()} == {"ABC": 96.0, "XYZ": 50.0}
    assert killswitch.total_pnl(h2.ex) == total == -3.0


def test_a_replay_restart_takes_no_journaled_price_the_market_never_took(journal_path):
    h = make(journal_path, replay=True)
    h.ex.on_signal(sig(1, price=100.0))
    for n, bad in ((2, math.inf), (3, 0.0)):  # journaled by older code, rejected
        s = sig(n, price=bad)
        h.journal.begin_orders([(s, Order.from_signal(s), OrderStatus.REJECTED, "bad price")])
    h.journal.close()
    assert make(journal_path, replay=True).ex.engine.market["ABC"].price == 100.0


def test_a_late_older_signal_after_a_replay_restart_moves_the_market_as_without_one(
    journal_path, tmp_path
):
    """Its tick is older than the market's: it moves nothing, restart or not."""
    risk = {"replay": True, "risk": RiskConfig(price_collar_pct=5)}
    signals = [sig(2, price=100.0), sig(3, Side.SELL, price=110.0, qty=2)]
    late = sig(1, price=90.0)  # made before the others, delivered after them
    straight = make(tmp_path / "straight.sqlite", **risk)
    straight.ex.on_signals(signals)
    straight.ex.on_signal(late)
    h = make(journal_path, **risk)
    h.ex.on_signals(signals)
    h.journal.close()
    h2 = make(journal_path, **risk)
    h2.ex.on_signal(late)
    assert h2.ex.engine.market["ABC"].price == straight.ex.engine.market["ABC"].price == 110.0
    assert killswitch.total_pnl(h2.ex) == killswitch.total_pnl(straight.ex)
    statuses = [{o["signal_id"]: o["status"] for o in x.journal.orders()} for x in (h2, straight)]
    assert statuses[0] == statuses[1] and statuses[0]["s:1"] == "REJECTED"  # collared at 110


def test_saving_marks_writes_only_the_prices_that_changed(journal_path):
    h = make(journal_path)
    h.ex.on_tick("ABC", 100.0, DAY)
    h.ex.on_tick("XYZ", 5.0, DAY)
    h.ex.save_marks()
    h.ex.on_tick("ABC", 101.0, DAY + 1)
    saved = []
    h.ex.journal.save_marks = saved.append  # type: ignore[method-assign]
    h.ex.save_marks()
    h.ex.save_marks()
    assert saved == [{"ABC": (101.0, DAY + 1)}]


def test_a_strategy_named_like_the_executor_gets_no_kill_switch_pass():
    h = Harness(
        Journal(":memory:"),
        executor_id="ex",
        risk=RiskConfig(max_order_qty=10, max_position_qty=10),
    )
    h.ex.on_signal(sig(1, qty=1000, strategy="ex"))
    assert h.journal.orders()[0]["reason"] == "qty 1000 exceeds max_order_qty 10.0"


def test_in_a_replay_fills_the_venue_reports_later_are_loss_checked_on_the_markets_clock():
    h = Harness(Journal(":memory:"), replay=True, risk=RiskConfig(max_daily_loss=5))
    limit = Signal("s:2", "s", 2, "ABC", Side.SELL, 1.0, 97.0, DAY + 2 * NS, "r", "c",
                   0, OrderType.LIMIT, 98.0, TimeInForce.GTC)  # fmt: skip
    h.ex.on_signal(sig(1, price=100.0))
    h.ex.on_signals([limit])  # rests above the market
    h.ex.on_tick("ABC", 98.5, DAY + 3 * NS)
    assert [f.price for f in h.ex.poll()] == [98.0]  # -2 on the day: within the limit
    assert h.ex.engine.day == "2024-03-01" and h.ex.trading_state is TradingState.ACTIVE


def test_a_signal_whose_numbers_are_not_finite_is_refused_not_journaled_and_the_batch_goes_on():
    h = Harness(Journal(":memory:"), allowed_strategies={"s"})
    bad = sig(1, qty=float("nan"))
    assert h.ex.on_signals([bad, sig(2)]) and h.journal.count("signals") == 1
    assert h.ex.telemetry.get("signals_invalid") == 1
    assert h.alerts("signal_invalid") == [
        Event("alert", {"reason": "signal_invalid", "strategy_id": "s"})
    ]


def test_a_refused_and_an_invalid_signal_together_raise_both_alerts():
    h = Harness(Journal(":memory:"), allowed_strategies={"s"})
    h.ex.on_signals([sig(1, strategy="rogue"), sig(2, qty=float("nan"))])
    assert [e.data["reason"] for e in h.named("alert")] == ["signal_refused", "signal_invalid"]
