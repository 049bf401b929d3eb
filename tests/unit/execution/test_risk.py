"""Pre-trade risk checks, rate limits and trading states (time passed in, in ns)."""

from __future__ import annotations

import datetime as dt

import pytest

from workbench.config import RiskConfig
from workbench.domain.model import Order, OrderType, Side
from workbench.execution.risk import (
    NS,
    Quote,
    RiskEngine,
    TokenBucket,
    TradingState,
    utc_day,
)

T0 = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC


def order(qty: float = 1.0, side: Side = Side.BUY, price: float = 100.0, symbol: str = "ABC"):
    return Order("O-1", "s:1", symbol, side, qty, price, T0)


def engine(**cfg) -> RiskEngine:
    return RiskEngine(RiskConfig(**cfg))


# -- limits on one order ----------------------------------------------------------


def test_no_limits_configured_lets_any_order_go():
    e = engine()
    assert e.check(order(qty=1e9, price=1e9), "s", 1e12, T0) == ""


def test_order_over_max_order_qty_is_rejected_naming_the_limit():
    e = engine(max_order_qty=5)
    assert e.check(order(qty=5), "s", 0, T0) == ""
    reason = e.check(order(qty=5.5), "s", 0, T0)
    assert "max_order_qty" in reason and "5.5" in reason


def test_order_over_max_order_notional_is_rejected_naming_the_limit():
    e = engine(max_order_notional=1000)
    e.on_price("ABC", 99.0, T0)
    assert e.check(order(qty=10, price=100), "s", 0, T0) == ""
    reason = e.check(order(qty=10, price=100.5), "s", 0, T0)
    assert "max_order_notional" in reason and "1005" in reason


def test_a_market_order_s_notional_is_valued_at_the_market_not_the_signal_s_price():
    """A wrong or stale signal price must not carry an order past the limit (live)."""
    e = engine(max_order_notional=10_000)
    e.on_price("ABC", 100.0, T0, seen_ns=T0)
    reason = e.check(order(qty=1000, price=1.0), "s", 0, T0)  # really ~100,000
    assert "max_order_notional" in reason and "100000" in reason
    assert e.check(order(qty=99, price=1.0), "s", 0, T0) == ""


def test_after_a_restart_the_journaled_price_values_a_market_order_until_a_fresh_one_comes():
    e = engine(max_order_notional=10_000)
    e.restored["ABC"] = Quote(100.0, T0 - NS)
    assert "max_order_notional" in e.check(order(qty=1000, price=1.0), "s", 0, T0)
    e.on_price("ABC", 5.0, T0, seen_ns=T0)  # the market now
    assert e.check(order(qty=1000, price=1.0), "s", 0, T0) == ""


def test_in_replay_an_order_is_valued_at_its_own_signal_s_tick_not_a_later_one():
    """Fast replay checks one batch's signals strategy by strategy: order must not matter."""
    e = engine(max_order_notional=1000)
    e.on_price("ABC", 108.0, T0 + 60 * NS)  # another strategy's later signal
    e.on_price("ABC", 100.0, T0)  # this one's own tick (older: kept as the market's newest)
    assert e.check(order(qty=10, price=100.0), "s", 0, T0) == ""


def test_order_that_would_push_the_position_over_max_position_qty_is_rejected():
    e = engine(max_position_qty=10)
    assert e.check(order(qty=4), "s", 6, T0) == ""
    reason = e.check(order(qty=5), "s", 6, T0)
    assert "max_position_qty" in reason and "11" in reason
    assert "max_position_qty" in e.check(order(qty=5, side=Side.SELL), "s", -6, T0)


def test_per_symbol_position_limit_overrides_the_default():
    e = engine(max_position_qty=10, max_position_qty_by_symbol={"XYZ": 2})
    assert e.position_limit("XYZ") == 2 and e.position_limit("ABC") == 10
    assert "max_position_qty" in e.check(order(qty=3, symbol="XYZ"), "s", 0, T0)
    assert e.check(order(qty=3, symbol="ABC"), "s", 0, T0) == ""


def test_per_symbol_override_of_zero_disables_the_limit_for_that_symbol():
    e = engine(max_position_qty=1, max_position_qty_by_symbol={"XYZ": 0})
    assert e.check(order(qty=100, symbol="XYZ"), "s", 0, T0) == ""
    assert e.check(order(qty=100, symbol="ABC"), "s", 0, T0) != ""


def test_an_order_that_shrinks_an_over_limit_position_is_allowed():
    e = engine(max_position_qty=5)
    assert e.check(order(qty=2, side=Side.SELL), "s", 9, T0) == ""  # 9 -> 7, still over
    assert e.check(order(qty=2, side=Side.BUY), "s", -9, T0) == ""
    assert e.check(order(qty=1, side=Side.BUY), "s", 9, T0) != ""  # grows it


# -- price collar and stale data --------------------------------------------------


def test_price_collar_rejects_a_price_too_far_from_the_market():
    e = engine(price_collar_pct=5)
    e.on_price("ABC", 100.0, T0)
    assert e.check(order(price=105.0), "s", 0, T0) == ""
    assert e.check(order(price=95.0), "s", 0, T0) == ""
    reason = e.check(order(price=106.0), "s", 0, T0)
    assert "price_collar_pct" in reason and "100" in reason
    assert "price_collar_pct" in e.check(order(price=94.0), "s", 0, T0)


def test_price_collar_without_a_market_price_rejects():
    e = engine(price_collar_pct=5)
    reason = e.check(order(), "s", 0, T0)
    assert "price_collar_pct" in reason and "ABC" in reason


def test_price_collar_uses_the_symbols_own_market_price():
    e = engine(price_collar_pct=1)
    e.on_price("XYZ", 100.0, T0)
    assert e.check(order(price=100.0, symbol="ABC"), "s", 0, T0) != ""


def test_an_older_price_does_not_replace_a_newer_one():
    e = engine(price_collar_pct=1)
    e.on_price("ABC", 100.0, T0 + 10)
    e.on_price("ABC", 50.0, T0)
    assert e.market["ABC"].price == 100.0
    assert e.check(order(price=100.0), "s", 0, T0 + 10) == ""
    e.on_price("ABC", 50.0, T0 + 10)  # same time: the later call wins
    assert e.market["ABC"].price == 50.0


def test_stale_market_data_rejects_when_the_last_tick_is_too_old():
    e = engine(stale_market_data_s=2)
    e.on_price("ABC", 100.0, T0)
    assert e.check(order(), "s", 0, T0 + 2 * NS) == ""
    reason = e.check(order(), "s", 0, T0 + 2 * NS + 1)
    assert "stale_market_data_s" in reason


def test_stale_market_data_is_judged_by_this_machines_clock_too():
    # The exchange's clock 30 s ahead of ours: by its time alone, a price that
    # has not moved for 10 s looked 20 s in the future, i.e. fresh.
    e = engine(stale_market_data_s=2)
    e.on_price("ABC", 100.0, T0 + 30 * NS, seen_ns=T0)
    assert e.check(order(), "s", 0, T0 + 1 * NS) == ""
    reason = e.check(order(), "s", 0, T0 + 10 * NS)
    assert reason == "market data 10 s old, beyond stale_market_data_s"


def test_a_price_seen_just_now_but_old_by_the_markets_clock_is_refused_and_says_why():
    # Our clock 30 s ahead of the exchange's (or the exchange sent it 30 s late).
    e = engine(stale_market_data_s=2)
    e.on_price("ABC", 100.0, T0 - 30 * NS, seen_ns=T0)
    reason = e.check(order(), "s", 0, T0 + NS // 2)
    assert "30.5 s old by the market's clock" in reason
    assert "received 0.5 s ago" in reason and "clock is ahead" in reason


def test_an_older_price_keeps_the_newer_one_but_says_the_feed_is_alive():
    # Trades and bid/ask arrive out of the exchange's order: the newer price stays,
    # and the later arrival still counts as news from the symbol's market.
    e = engine(stale_market_data_s=2)
    e.on_price("ABC", 100.0, T0 + 5 * NS, seen_ns=T0 + NS)  # the exchange's clock 4 s ahead
    e.on_price("ABC", 99.0, T0 + 4 * NS, seen_ns=T0 + 5 * NS)
    assert e.market["ABC"].price == 100.0
    assert e.check(order(), "s", 0, T0 + 6 * NS) == ""


def test_a_price_stamped_far_in_the_future_does_not_hold_the_real_ones_back():
    """One tick from a broken clock must not freeze the collar, the staleness and the loss."""
    e = engine(stale_market_data_s=2, price_collar_pct=5)
    assert e.on_price("ABC", 100.0, T0 + 3600 * NS, seen_ns=T0) is True  # taken as seen at T0
    assert e.on_price("ABC", 10.0, T0 + NS, seen_ns=T0 + NS) is False
    assert e.market["ABC"].price == 10.0
    assert "price_collar_pct" in e.check(order(price=100.0), "s", 0, T0 + NS)
    assert e.check(order(price=10.0), "s", 0, T0 + NS) == ""


def test_in_replay_a_later_signal_s_tick_does_not_make_an_earlier_one_stale():
    e = engine(stale_market_data_s=2)
    e.on_price("ABC", 100.0, T0 + 60 * NS)  # another strategy's signal, a minute on
    assert e.check(order(), "s", 0, T0) == ""


def test_stale_market_data_without_any_tick_rejects():
    e = engine(stale_market_data_s=2)
    assert "stale_market_data_s" in e.check(order(), "s", 0, T0)


def test_zero_disables_price_collar_and_stale_checks():
    e = engine(price_collar_pct=0, stale_market_data_s=0)
    assert e.check(order(price=1e6), "s", 0, T0) == ""  # no market price at all
    e.on_price("ABC", 1.0, T0)
    assert e.check(order(price=1e6), "s", 0, T0 + 3600 * NS) == ""


# -- rate limits ------------------------------------------------------------------


def test_token_bucket_spends_its_burst_then_refills_at_the_rate():
    b = TokenBucket(rate_per_s=2, burst=3)
    assert [b.take(T0) for _ in range(4)] == [True, True, True, False]
    assert b.take(T0 + NS // 4) is False  # half a token
    assert b.take(T0 + NS // 2) is True  # one token since T0
    assert b.take(T0 + NS // 2) is False


def test_token_bucket_never_saves_more_than_its_burst():
    b = TokenBucket(rate_per_s=10, burst=2)
    assert b.take(T0)
    assert [b.take(T0 + 3600 * NS) for _ in range(3)] == [True, True, False]


def test_token_bucket_ignores_time_going_backwards():
    b = TokenBucket(rate_per_s=1, burst=1)
    assert b.take(T0)
    assert b.take(T0 - 10 * NS) is False
    assert b.take(T0 + NS) is True


def test_max_orders_per_s_limits_each_strategy_on_its_own():
    e = engine(max_orders_per_s=2)  # burst 0 = the rate
    assert e.check(order(), "a", 0, T0) == ""
    assert e.check(order(), "a", 0, T0) == ""
    reason = e.check(order(), "a", 0, T0)
    assert "max_orders_per_s" in reason and "a" in reason
    assert e.check(order(), "b", 0, T0) == ""  # another strategy has its own bucket
    assert e.check(order(), "a", 0, T0 + NS // 2) == ""  # refilled one token


def test_order_burst_sets_how_many_orders_go_at_once():
    e = engine(max_orders_per_s=1, order_burst=4)
    assert [e.check(order(), "a", 0, T0) == "" for _ in range(5)] == [True] * 4 + [False]
    assert e.check(order(), "a", 0, T0 + NS) == ""


def test_a_rate_below_one_still_lets_one_order_through():
    e = engine(max_orders_per_s=0.5)
    assert e.check(order(), "a", 0, T0) == ""
    assert e.check(order(), "a", 0, T0 + NS) != ""
    assert e.check(order(), "a", 0, T0 + 2 * NS) == ""


def test_max_orders_per_s_total_limits_all_strategies_together():
    e = engine(max_orders_per_s_total=2)
    assert e.check(order(), "a", 0, T0) == ""
    assert e.check(order(), "b", 0, T0) == ""
    reason = e.check(order(), "c", 0, T0)
    assert "max_orders_per_s_total" in reason
    assert e.check(order(), "c", 0, T0 + NS) == ""


def test_a_strategy_named_star_has_its_own_bucket_not_the_totals():
    # Its per-strategy bucket was the total's ("*"): created first at its rate (10), the
    # total let 9 orders out in one instant where max_orders_per_s_total is 4.
    e = engine(max_orders_per_s=10, max_orders_per_s_total=4)
    out = [e.check(order(), sid, 0, T0) == "" for sid in ["*"] + [f"s{i}" for i in range(8)]]
    assert out == [True] * 4 + [False] * 5


def test_an_order_rejected_by_another_limit_spends_no_rate_token():
    e = engine(max_orders_per_s=1, max_order_qty=1)
    assert e.check(order(qty=2), "a", 0, T0) != ""
    assert e.check(order(qty=1), "a", 0, T0) == ""


def test_an_order_the_overall_rate_refuses_spends_no_token_of_its_strategy():
    e = engine(max_orders_per_s=1, max_orders_per_s_total=2)
    assert e.check(order(), "b", 0, T0) == "" and e.check(order(), "c", 0, T0) == ""
    assert "max_orders_per_s_total" in e.check(order(), "a", 0, T0)
    assert e.check(order(), "a", 0, T0 + NS // 2) == ""  # a's own token is still there


def test_zero_disables_every_limit():
    e = engine(
        max_order_qty=0,
        max_order_notional=0,
        max_position_qty=0,
        max_orders_per_s=0,
        max_orders_per_s_total=0,
        price_collar_pct=0,
        stale_market_data_s=0,
    )
    assert all(e.check(order(qty=1e6, price=1e6), "a", 1e9, T0) == "" for _ in range(100))


# -- trading states ---------------------------------------------------------------


def test_halted_rejects_every_order_even_a_reducing_one():
    e = engine()
    e.state = TradingState.HALTED
    assert e.check(order(), "s", 0, T0) == "trading halted"
    assert e.check(order(side=Side.SELL), "s", 5, T0) == "trading halted"
    assert e.check(order(side=Side.SELL), "s", 5, T0, flatten=True) == "trading halted"


@pytest.mark.parametrize(
    ("position", "side", "qty", "ok"),
    [
        (5, Side.SELL, 2, True),  # shrinks a long
        (5, Side.SELL, 5, True),  # closes it
        (-5, Side.BUY, 3, True),  # shrinks a short
        (5, Side.SELL, 8, False),  # flips long to short
        (-5, Side.BUY, 6, False),  # flips short to long
        (5, Side.BUY, 1, False),  # grows
        (0, Side.BUY, 1, False),  # opens
        (0, Side.SELL, 1, False),
    ],
)
def test_reducing_lets_only_position_shrinking_orders_go(position, side, qty, ok):
    e = engine()
    e.state = TradingState.REDUCING
    reason = e.check(order(qty=qty, side=side), "s", position, T0)
    assert (reason == "") is ok
    if not ok:
        assert "REDUCING" in reason


def test_reducing_still_applies_the_limits_to_a_reducing_order():
    e = engine(max_order_qty=1)
    e.state = TradingState.REDUCING
    assert "max_order_qty" in e.check(order(qty=2, side=Side.SELL), "s", 5, T0)


def test_flatten_bypasses_every_limit_but_not_the_state_rule():
    e = engine(
        max_order_qty=1,
        max_order_notional=1,
        max_position_qty=1,
        max_orders_per_s=1,
        price_collar_pct=1,
        stale_market_data_s=1,
    )
    big = order(qty=50, side=Side.SELL, price=1e6)
    assert all(e.check(big, "x", 50, T0, flatten=True) == "" for _ in range(3))
    e.state = TradingState.REDUCING
    assert e.check(big, "x", 50, T0, flatten=True) == ""
    assert "REDUCING" in e.check(order(qty=60, side=Side.SELL), "x", 50, T0, flatten=True)


# -- daily loss -------------------------------------------------------------------


def utc_ns(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> int:
    return int(dt.datetime(y, m, d, h, mi, tzinfo=dt.UTC).timestamp()) * NS


def test_daily_loss_records_the_days_start_on_its_first_call():
    e = engine(max_daily_loss=100)
    assert e.daily_loss_breached(50.0, utc_ns(2024, 3, 1, 9)) is False
    assert (e.day, e.day_start_pnl) == ("2024-03-01", 50.0)
    assert e.daily_loss_breached(-50.0, utc_ns(2024, 3, 1, 12)) is False  # exactly -100
    assert e.day_start_pnl == 50.0
    assert e.daily_loss_breached(-50.01, utc_ns(2024, 3, 1, 23, 59)) is True


def test_the_last_nanoseconds_before_midnight_belong_to_their_own_day():
    midnight = utc_ns(2024, 3, 2)
    assert utc_day(midnight - 200) == "2024-03-01" and utc_day(midnight) == "2024-03-02"


def test_a_new_utc_day_resets_the_start():
    e = engine(max_daily_loss=100)
    e.daily_loss_breached(0.0, utc_ns(2024, 3, 1, 9))
    assert e.daily_loss_breached(-150.0, utc_ns(2024, 3, 1, 23, 59)) is True
    assert e.daily_loss_breached(-150.0, utc_ns(2024, 3, 2, 0, 0)) is False
    assert (e.day, e.day_start_pnl) == ("2024-03-02", -150.0)
    assert e.daily_loss_breached(-260.0, utc_ns(2024, 3, 2, 1)) is True


def test_zero_max_daily_loss_never_breaches_but_still_tracks_the_day():
    e = engine(max_daily_loss=0)
    assert e.daily_loss_breached(0.0, utc_ns(2024, 3, 1)) is False
    assert e.daily_loss_breached(-1e12, utc_ns(2024, 3, 1, 5)) is False
    assert e.day == "2024-03-01" and e.day_start_pnl == 0.0


# -- prices the venue sees, resting orders, bad numbers ---------------------------


def typed(otype: OrderType, oprice: float, **kw) -> Order:
    o = order(**kw)
    return Order(o.id, o.signal_id, o.symbol, o.side, o.qty, o.price, o.ts_ns, otype, oprice)


def test_price_collar_checks_a_limit_orders_own_price_not_only_the_signals():
    e = engine(price_collar_pct=5)
    e.on_price("ABC", 100.0, T0)
    reason = e.check(typed(OrderType.LIMIT, 1000.0), "s", 0, T0)
    assert "price 1000.0 is 900% from the market 100.0" in reason
    assert e.check(typed(OrderType.LIMIT, 103.0), "s", 0, T0) == ""


def test_a_stops_trigger_far_from_the_market_passes_the_collar():
    e = engine(price_collar_pct=5)
    e.on_price("ABC", 100.0, T0)
    assert e.check(typed(OrderType.STOP, 80.0, side=Side.SELL), "s", 1, T0) == ""


def test_notional_is_counted_at_the_limit_price_when_it_is_higher():
    e = engine(max_order_notional=500)
    assert e.check(typed(OrderType.LIMIT, 90.0, qty=5), "s", 0, T0) == ""
    assert "notional 2500 exceeds" in e.check(typed(OrderType.LIMIT, 500.0, qty=5), "s", 0, T0)


def test_the_position_limit_counts_resting_orders_on_the_orders_side():
    e = engine(max_position_qty=10)
    assert e.check(order(qty=10), "s", 0, T0, working=0) == ""
    reason = e.check(order(qty=10), "s", 0, T0, working=10)
    assert "position 20 would exceed max_position_qty 10.0" in reason
    assert "counting 10 resting" in reason


def test_a_flip_to_beyond_the_limit_on_the_other_side_is_rejected():
    e = engine(max_position_qty=100)
    assert "exceed max_position_qty" in e.check(order(qty=290, side=Side.SELL), "s", 150, T0)
    assert e.check(order(qty=60, side=Side.SELL), "s", 150, T0) == ""  # shrinks, still over


def test_reducing_counts_resting_orders_that_would_close_first():
    e = engine()
    e.state = TradingState.REDUCING
    assert e.check(order(qty=5, side=Side.SELL), "s", 10, T0, working=5) == ""
    reason = e.check(order(qty=10, side=Side.SELL), "s", 10, T0, working=10)
    assert "would not reduce position 10 with 10 more on its side resting" in reason


@pytest.mark.parametrize(
    ("o", "what"),
    [
        (order(qty=float("nan")), "qty nan"),
        (order(qty=-1), "qty -1"),
        (order(price=float("inf")), "price inf"),
        (order(price=0.0), "price 0.0"),
        (typed(OrderType.LIMIT, 0.0), "LIMIT order_price 0.0"),
        (typed(OrderType.STOP, float("nan")), "STOP order_price nan"),
    ],
)
def test_numbers_that_cannot_be_traded_are_rejected_naming_them(o, what):
    assert engine().check(o, "s", 0, T0) == f"{what} is not a positive finite number"


def test_a_quote_that_is_not_a_positive_finite_price_is_ignored():
    e = engine(price_collar_pct=5)
    e.on_price("ABC", 100.0, T0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        e.on_price("ABC", bad, T0 + NS)
    assert e.market["ABC"].price == 100.0
    assert e.check(order(), "s", 0, T0) == ""


def test_reducing_takes_an_order_that_closes_a_position_but_for_a_floats_drift():
    e = engine()
    e.state = TradingState.REDUCING
    drifted = 0.7 - 0.4  # 0.29999999999999993
    assert e.state_refuses(order(0.3, Side.SELL), drifted) == ""
    assert "would not reduce" in e.state_refuses(order(0.31, Side.SELL), drifted)
    assert "would not reduce" in e.state_refuses(order(0.3, Side.BUY), drifted)


def test_a_tick_from_a_broken_clock_neither_freezes_the_executor_s_market_nor_its_loss_limit():
    """Long 10 at 100, one tick stamped an hour ahead, then the real market falls to 10."""
    import time

    from workbench.domain.model import Signal
    from workbench.execution.executor import Executor, make_breaker
    from workbench.execution.journal import Journal
    from workbench.execution.simulator import SimulatedBroker
    from workbench.telemetry import Telemetry

    risk = RiskConfig(max_daily_loss=100, stale_market_data_s=5, price_collar_pct=5)
    ex = Executor(SimulatedBroker(), Journal(":memory:"), risk, make_breaker(3, 60), Telemetry())
    now = time.time_ns()
    ex.on_tick("ABC", 100.0, now, seen_ns=now)
    ex.on_signal(Signal("s:1", "s", 1, "ABC", Side.BUY, 10, 100.0, now))
    ex.on_tick("ABC", 100.0, now + 3600 * NS, seen_ns=now)
    later = time.time_ns()
    ex.on_tick("ABC", 10.0, later, seen_ns=later)
    ex.check_daily_loss()
    assert ex.engine.market["ABC"].price == 10.0 and ex.trading_state is TradingState.HALTED
    assert ex.telemetry.get("market_quotes_ahead") == 1


def test_max_position_qty_takes_an_order_that_reaches_the_limit_but_for_a_floats_drift():
    """0.1 then 0.2 against a limit of 0.3: 0.1 + 0.2 is 0.30000000000000004 in floats."""
    e = engine(max_position_qty=0.3)
    assert e.position_refuses(order(0.2), 0.1) == ""
    assert e.check(order(0.2), "s", 0.1, T0) == ""
    assert "exceed max_position_qty" in e.position_refuses(order(0.2000001), 0.1)
    assert e.position_refuses(order(0.2, Side.SELL), -0.1) == ""
    assert "exceed max_position_qty" in e.position_refuses(order(0.21, Side.SELL), -0.1)


def test_an_executor_builds_a_position_up_to_its_limit_in_pieces():
    from workbench.domain.model import Signal
    from workbench.execution.executor import Executor, make_breaker
    from workbench.execution.journal_memory import MemoryJournal
    from workbench.execution.simulator import SimulatedBroker
    from workbench.telemetry import Telemetry

    ex = Executor(
        SimulatedBroker(), MemoryJournal(), RiskConfig(max_position_qty=0.3),
        make_breaker(3, 60), Telemetry(), None, replay=True,
    )  # fmt: skip
    for seq, qty in ((1, 0.1), (2, 0.2), (3, 0.1)):
        ex.on_signals([Signal(f"s:{seq}", "s", seq, "BTC", Side.BUY, qty, 100.0, T0 + seq)])
    statuses = [o["status"] for o in ex.journal.orders()]
    assert statuses == ["FILLED", "FILLED", "REJECTED"]
    assert ex.portfolio.position("BTC") == pytest.approx(0.3)


def test_max_order_notional_takes_an_order_at_the_limit_but_for_a_floats_drift():
    e = engine(max_order_notional=0.3)
    assert e.check(order(3.0, price=0.1), "s", 0.0, T0) == ""  # 3 * 0.1 = 0.30000000000000004
    assert "exceeds max_order_notional" in e.check(order(3.0001, price=0.1), "s", 0.0, T0)
