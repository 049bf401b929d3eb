"""An exit closes what its entry holds: heard late, after a restart, with another qty or mode."""

from __future__ import annotations

import math

import pytest

from workbench.domain.model import Signal, Tick
from workbench.domain.orders import OrderEvent
from workbench.strategies.outcomes import deliver
from workbench.strategies.support_resistance import SupportResistance

C = {"id": "a", "symbol": "ABC", "side": "BUY", "trigger_price": 100, "turning_point": 0,
     "take_profit": 1, "stop_loss": 1}  # fmt: skip


def tick(sr: SupportResistance, i: int, price: float) -> list[Signal]:
    return sr.on_tick(Tick("ABC", i, price, 1.0, i))


def outcome(sr: SupportResistance, s: Signal, status: str, qty: float, i: int) -> None:
    deliver(sr, OrderEvent("s", s.id, "O", status, "ABC", "BUY", qty, s.price, 0.0, i, s.qty))


def net(signals: list[Signal]) -> float:
    return sum(s.side.sign * s.qty for s in signals)


def test_an_exit_due_before_the_entry_fill_is_heard_goes_once_it_is():
    # Live (or with latency): the stop-loss tick came first; the exit was dropped, and
    # with rearm the next entry wiped the late fill: a position left open for good.
    sr = SupportResistance("s", [{**C, "rearm": True}], entry_order="limit")
    sent = tick(sr, 1, 100.0)
    e1 = tick(sr, 2, 100.0)
    sent += e1 + tick(sr, 3, 98.9)  # stop-loss: the entry's outcome not heard yet
    assert [s.reason for s in sent] == ["entry"]
    outcome(sr, e1[0], "FILLED", 1.0, 3)
    sr.restore(sr.snapshot())  # what waits survives a restart
    held = tick(sr, 4, 99.5)  # the next tick of the symbol: the exit goes, at its price
    assert [(s.side.value, s.qty, s.reason, s.price) for s in held] == [
        ("SELL", 1.0, "stop_loss", 99.5)
    ]
    sent += held
    e2 = tick(sr, 5, 100.0) + tick(sr, 6, 100.0)
    outcome(sr, e2[-1], "FILLED", 1.0, 6)
    sent += e2 + tick(sr, 7, 101.0)  # take-profit of cycle 2
    assert net(sent) == 0


def test_an_exit_due_before_an_unfilled_entry_is_heard_is_never_sent():
    sr = SupportResistance("s", [C], entry_order="limit")
    e = tick(sr, 1, 100.0) + tick(sr, 2, 100.0)
    assert tick(sr, 3, 98.9) == []
    outcome(sr, e[0], "EXPIRED", 0.0, 3)
    assert tick(sr, 4, 99.0) == []


def test_a_restart_with_another_qty_closes_what_was_entered():
    sr = SupportResistance("s", [C])
    entry = tick(sr, 1, 100.0) + tick(sr, 2, 100.0)
    bigger = SupportResistance("s", [{**C, "qty": 2.0}])
    bigger.restore(sr.snapshot())
    [exit_] = tick(bigger, 3, 98.9)
    assert net([*entry, exit_]) == 0


def test_a_market_entry_restored_into_limit_mode_is_still_closed():
    sr = SupportResistance("s", [C])
    entry = tick(sr, 1, 100.0) + tick(sr, 2, 100.0)
    limit = SupportResistance("s", [C], entry_order="limit")
    limit.restore(sr.snapshot())
    assert net(entry + tick(limit, 3, 98.9)) == 0


def test_a_version_1_limit_snapshot_still_sizes_its_exit():
    v1 = {"version": 1, "strategy_id": "s", "next_seq": 2,
          "conditions": SupportResistance("s", [C]).snapshot()["conditions"],
          "entries": {}, "filled": {"a": 0.5}}  # fmt: skip
    sr = SupportResistance("s", [C], entry_order="limit")
    tick(sr, 1, 100.0)
    tick(sr, 2, 100.0)  # ENTERED
    v1["conditions"] = sr.snapshot()["conditions"]
    again = SupportResistance("s", [C], entry_order="limit")
    again.restore(v1)
    assert [s.qty for s in tick(again, 3, 98.9)] == [0.5]


@pytest.mark.parametrize("offset", [math.inf, True, -1.0])
def test_an_entry_limit_offset_that_is_no_finite_number_is_refused(offset):
    with pytest.raises(ValueError, match="entry_limit_offset"):
        SupportResistance("s", [C], entry_order="limit", entry_limit_offset=offset)


@pytest.mark.parametrize(
    "bad", [{"held": {"s:1": "not a number"}}, {"open": [1]}, {"exit_due": {"s:1": 3}}]
)
def test_a_bad_snapshot_changes_nothing(bad):
    sr = SupportResistance("s", [C], entry_order="limit")
    tick(sr, 1, 100.0)  # triggered
    before = sr.snapshot()
    other = SupportResistance("s", [C], entry_order="limit").snapshot()
    with pytest.raises(ValueError):
        sr.restore(other | {"next_seq": 7} | bad)
    assert sr.snapshot() == before


def test_a_held_exit_goes_even_when_its_condition_left_the_config():
    # Restored, it looked its condition up and crashed on every tick (a restart loop).
    two = [C, {**C, "id": "b", "trigger_price": 90}]
    sr = SupportResistance("s", two, entry_order="limit")
    e = tick(sr, 1, 100.0) + tick(sr, 2, 100.0)
    tick(sr, 3, 98.9)  # a's stop-loss, held for the entry's outcome
    outcome(sr, e[0], "FILLED", 1.0, 3)
    only_b = SupportResistance("s", [two[1]], entry_order="limit")
    only_b.restore(sr.snapshot())
    assert [(s.side.value, s.qty, s.condition_id) for s in tick(only_b, 4, 99.0)] == [
        ("SELL", 1.0, "a")
    ]


def test_a_limit_entry_pending_when_restarted_into_market_mode_is_still_closed():
    sr = SupportResistance("s", [C], entry_order="limit")
    entry = tick(sr, 1, 100.0) + tick(sr, 2, 100.0)  # its outcome never heard
    market = SupportResistance("s", [C])
    market.restore(sr.snapshot())
    assert net(entry + tick(market, 3, 98.9)) == 0  # waited for ever for the outcome
