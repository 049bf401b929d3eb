"""SupportResistance: conditions turned into numbered signals."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from workbench.domain.condition import ConditionEventKind, ConditionSpec, ConditionState
from workbench.domain.model import Side, Signal, Tick, TickBatch
from workbench.exceptions import ConfigurationError
from workbench.strategies.base import Strategy, load_strategy, on_batch
from workbench.strategies.support_resistance import SupportResistance


def spec(cid: str = "c1", **overrides: Any) -> dict[str, Any]:
    """A condition as TOML gives it: trigger 100, entry 101, tp +2, sl -1."""
    d: dict[str, Any] = {
        "id": cid,
        "symbol": "ES",
        "side": "buy",
        "trigger_price": 100,
        "turning_point": 1,
        "take_profit": 2,
        "stop_loss": 1,
    }
    d.update(overrides)
    return d


def run(strategy: SupportResistance, prices: list[float], symbol: str = "ES") -> list[Signal]:
    out: list[Signal] = []
    for i, p in enumerate(prices):
        out.extend(strategy.on_tick(Tick(symbol, 1000 + i, p, 1.0, i)))
    return out


def batch(prices: list[float], symbol: str = "ES", first_seq: int = 0) -> TickBatch:
    n = len(prices)
    return TickBatch(symbol, first_seq, [1000 + first_seq + i for i in range(n)], prices, [1.0] * n)


def test_entry_and_exit_signals_carry_tick_and_condition() -> None:
    strategy = SupportResistance("sr", [spec(qty=3)])
    signals = run(strategy, [100.0, 101.0, 103.0])
    assert signals == [
        Signal("sr:1", "sr", 1, "ES", Side.BUY, 3.0, 101.0, 1001, "entry", "c1"),
        Signal(
            "sr:2", "sr", 2, "ES", Side.SELL, 3.0, 103.0, 1002, "take_profit", "c1", closes="sr:1"
        ),
    ]
    assert all(s.origin_ns == 0 for s in signals)


def test_sell_condition_enters_sell_and_exits_buy_on_stop_loss() -> None:
    strategy = SupportResistance("sr", [spec(side="SELL")])
    signals = run(strategy, [100.0, 99.0, 100.0])
    assert [(s.side, s.reason, s.price) for s in signals] == [
        (Side.SELL, "entry", 99.0),
        (Side.BUY, "stop_loss", 100.0),
    ]


def test_ticks_of_other_symbols_are_ignored() -> None:
    strategy = SupportResistance("sr", [spec()])
    assert run(strategy, [100.0, 101.0], symbol="NQ") == []
    assert strategy.conditions[0].state is ConditionState.WAITING
    assert strategy.on_batch(batch([100.0, 101.0], symbol="NQ"), 5) == []
    assert strategy.pop_events() == []


def test_conditions_act_in_configured_order_within_a_tick() -> None:
    strategy = SupportResistance("sr", [spec("b"), spec("a")])
    signals = run(strategy, [100.0, 101.0])
    assert [(s.seq, s.condition_id) for s in signals] == [(1, "b"), (2, "a")]


def test_symbols_are_sorted_and_unique() -> None:
    strategy = SupportResistance(
        "sr", [spec("1", symbol="NQ"), spec("2", symbol="ES"), spec("3", symbol="NQ")]
    )
    assert strategy.symbols() == ["ES", "NQ"]


def test_accepts_condition_spec_objects_and_dicts() -> None:
    as_spec = ConditionSpec.from_dict(spec("x"))
    strategy = SupportResistance("sr", [as_spec, spec("y")])
    assert [c.spec for c in strategy.conditions] == [as_spec, ConditionSpec.from_dict(spec("y"))]


def test_bad_condition_error_names_index_and_field() -> None:
    with pytest.raises(ValueError, match=r"conditions\[1\]\.stop_loss"):
        SupportResistance("sr", [spec("a"), spec("b", stop_loss=-1)])


@pytest.mark.parametrize(
    ("conditions", "says"),
    [
        # "x" was a list of one condition: "conditions[0].x: unknown condition key".
        ("x", "conditions: must be a list of tables (got a string)"),
        ({"id": "a"}, "conditions: must be a list of tables (got a table)"),
        (5, "conditions: must be a list of tables (got an integer)"),  # a TypeError
        (["x"], "conditions[0]: must be a table (got a string)"),
        ([spec("a"), 3], "conditions[1]: must be a table (got an integer)"),
    ],
)
def test_conditions_that_are_not_a_list_of_tables_are_refused_saying_so(
    conditions: Any, says: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        load_strategy(
            "workbench.strategies.support_resistance:SupportResistance",
            "sr",
            {"conditions": conditions},
        )


def test_duplicate_condition_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"conditions\[1\]\.id: duplicate"):
        SupportResistance("sr", [spec("a"), spec("a")])


def test_is_a_strategy_and_loads_from_class_path() -> None:
    strategy = load_strategy(
        "workbench.strategies.support_resistance:SupportResistance",
        "sr",
        {"conditions": [spec()]},
    )
    assert isinstance(strategy, Strategy)
    assert isinstance(strategy, SupportResistance)


def test_pop_events_returns_events_in_order_then_clears() -> None:
    strategy = SupportResistance("sr", [spec()])
    run(strategy, [100.0, 101.0, 100.5, 103.0])
    kinds = [e.kind for e in strategy.pop_events()]
    assert kinds == [
        ConditionEventKind.TRIGGERED,
        ConditionEventKind.ENTERED,
        ConditionEventKind.EXITED,
    ]
    assert strategy.pop_events() == []


def test_unpopped_events_are_capped_to_the_newest() -> None:
    strategy = SupportResistance("sr", [spec(rearm=True)], events_max=5)
    run(strategy, [100.0, 101.0, 103.0] * 4)
    events = strategy.pop_events()
    assert len(events) == 5
    assert events[-1].seq == 11


def test_events_not_recorded_when_disabled() -> None:
    strategy = SupportResistance("sr", [spec()], record_events=False)
    assert len(run(strategy, [100.0, 101.0])) == 1
    assert strategy.pop_events() == []


def test_on_batch_passes_origin_ns_through() -> None:
    strategy = SupportResistance("sr", [spec()])
    signals = strategy.on_batch(batch([100.0, 101.0, 103.0], first_seq=7), 987)
    assert [(s.seq, s.ts_ns, s.origin_ns) for s in signals] == [(1, 1008, 987), (2, 1009, 987)]


def test_base_on_batch_uses_the_fast_path() -> None:
    strategy = SupportResistance("sr", [spec()])
    calls: list[Tick] = []
    strategy.on_tick = calls.append  # type: ignore[method-assign, assignment]
    assert len(on_batch(strategy, batch([100.0, 101.0]), 1)) == 1
    assert calls == []


def test_on_batch_matches_on_tick_across_blocks() -> None:
    prices = [100.5 + (i % 7) * 0.25 for i in range(100)] + [100.0] + [100.5] * 60 + [101.0]
    prices += [102.0] * 50 + [103.0, 100.0, 101.0, 99.0]
    specs = [spec("a", rearm=True), spec("b", side="SELL", trigger_price=102), spec("c")]
    fast, slow = SupportResistance("sr", specs), SupportResistance("sr", specs)
    signals = [
        s
        for k in range(0, len(prices), 70)
        for s in fast.on_batch(batch(prices[k : k + 70], first_seq=k), 0)
    ]
    assert signals == run(slow, prices)
    assert fast.snapshot() == slow.snapshot()
    assert fast.pop_events() == slow.pop_events()


@pytest.mark.parametrize("size", [1, 2, 7])
def test_on_batch_of_a_few_ticks_matches_on_tick_and_carries_origin_ns(size: int) -> None:
    """Batches of one tick (a live feed's) take their own path: same signals, state, events."""
    prices = [100.5 + (i % 7) * 0.25 for i in range(40)] + [100.0, 100.5, 101.0, 102.0]
    prices += [103.0, 100.0, 101.0, 99.0, 98.0, 100.0, 101.5, 104.0, 97.0] * 3
    specs = [spec("a", rearm=True), spec("b", side="SELL", trigger_price=102), spec("c")]
    fast, slow = SupportResistance("sr", specs), SupportResistance("sr", specs)
    signals = [
        s
        for k in range(0, len(prices), size)
        for s in fast.on_batch(batch(prices[k : k + size], first_seq=k), 555 + k)
    ]
    expected = run(slow, prices)
    assert len(expected) > 8 and signals == [
        dataclasses.replace(s, origin_ns=555 + (s.ts_ns - 1000) // size * size) for s in expected
    ]
    assert fast.snapshot() == slow.snapshot()
    assert fast.pop_events() == slow.pop_events()


def test_signal_seq_continues_after_restore_into_new_instance() -> None:
    first = SupportResistance("sr", [spec(rearm=True)])
    assert [s.id for s in run(first, [100.0, 101.0, 103.0])] == ["sr:1", "sr:2"]
    second = SupportResistance("sr", [spec(rearm=True)])
    second.restore(first.snapshot())
    assert [s.id for s in run(second, [100.0, 101.0])] == ["sr:3"]


def test_restore_brings_back_condition_states() -> None:
    first = SupportResistance("sr", [spec("a"), spec("b", trigger_price=90)])
    run(first, [100.0, 101.0])
    second = SupportResistance("sr", [spec("a"), spec("b", trigger_price=90)])
    second.restore(first.snapshot())
    assert [c.state for c in second.conditions] == [ConditionState.ENTERED, ConditionState.WAITING]
    assert run(second, [103.0])[0].reason == "take_profit"


def test_restore_matches_conditions_by_id() -> None:
    first = SupportResistance("sr", [spec("a"), spec("old")])
    run(first, [100.0])
    second = SupportResistance("sr", [spec("new"), spec("a")])
    second.restore(first.snapshot())
    assert [c.state for c in second.conditions] == [
        ConditionState.WAITING,
        ConditionState.TRIGGERED,
    ]


def test_restore_keeps_condition_objects() -> None:
    strategy = SupportResistance("sr", [spec()])
    before = list(strategy.conditions)
    snap = strategy.snapshot()
    run(strategy, [100.0])
    strategy.restore(snap)
    assert strategy.conditions == before
    assert strategy.conditions[0].state is ConditionState.WAITING


def test_restore_rejects_other_version() -> None:
    strategy = SupportResistance("sr", [spec()])
    with pytest.raises(ValueError, match="version"):
        strategy.restore(strategy.snapshot() | {"version": 99})


def test_bad_restore_changes_nothing() -> None:
    strategy = SupportResistance("sr", [spec("a"), spec("b")])
    run(strategy, [100.0])
    before = strategy.snapshot()
    bad = SupportResistance("sr", [spec("a"), spec("b")]).snapshot()
    bad["conditions"][1]["state"] = "BOGUS"
    with pytest.raises(ValueError, match="'b'"):
        strategy.restore(bad | {"next_seq": 50})
    assert strategy.snapshot() == before


def test_snapshot_is_plain_data() -> None:
    strategy = SupportResistance("sr", [spec(following=True)])
    run(strategy, [100.0, 99.0, 100.0])

    def plain(x: object) -> bool:
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v) for k, v in x.items())
        if isinstance(x, list):
            return all(plain(v) for v in x)
        return x is None or type(x) in (str, int, float, bool)

    assert plain(strategy.snapshot())
