"""Properties of conditions and of SupportResistance over random price paths."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.condition import (
    Condition,
    ConditionEvent,
    ConditionEventKind,
    ConditionSpec,
    ConditionState,
)
from workbench.domain.model import Side, Signal, Tick, TickBatch
from workbench.strategies.support_resistance import SupportResistance

Kind = ConditionEventKind

# Quarter steps keep every sum exact, so boundaries are hit exactly and often.
STEPS = [-1.5, -1.0, -0.5, -0.25, 0.0, 0.0, 0.25, 0.5, 1.0, 1.5]
DISTANCES = [0.25 * k for k in range(1, 13)]


@st.composite
def grid_paths(draw: st.DrawFn, max_size: int = 300) -> list[float]:
    steps = draw(st.lists(st.sampled_from(STEPS), max_size=max_size))
    return list(itertools.accumulate(steps, initial=100.0))


float_paths = st.lists(
    st.floats(min_value=90.0, max_value=110.0, allow_nan=False), min_size=1, max_size=300
)
paths = st.one_of(grid_paths(), float_paths)


@st.composite
def specs(draw: st.DrawFn, cid: str = "c", symbol: str = "ES") -> ConditionSpec:
    return ConditionSpec(
        id=cid,
        symbol=symbol,
        side=draw(st.sampled_from(Side)),
        trigger_price=draw(st.sampled_from([95.0 + 0.25 * k for k in range(41)])),
        turning_point=draw(st.sampled_from([0.0, *DISTANCES])),
        take_profit=draw(st.sampled_from(DISTANCES)),
        stop_loss=draw(st.sampled_from(DISTANCES)),
        qty=draw(st.sampled_from([1.0, 2.0])),
        following=draw(st.booleans()),
        rearm=draw(st.booleans()),
    )


@st.composite
def spec_lists(draw: st.DrawFn) -> list[ConditionSpec]:
    n = draw(st.integers(1, 6))
    # Some conditions on another symbol: ticks never reach them.
    return [draw(specs(f"c{i}", draw(st.sampled_from(["ES", "ES", "NQ"])))) for i in range(n)]


def ticks(prices: list[float]) -> list[Tick]:
    return [Tick("ES", 10_000 + 3 * i, p, 1.0, 500 + i) for i, p in enumerate(prices)]


def batches(prices: list[float], sizes: list[int]) -> list[TickBatch]:
    out, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= len(prices):
            return out
        chunk = prices[start : start + size]
        n = len(chunk)
        ts = [10_000 + 3 * (start + i) for i in range(n)]
        out.append(TickBatch("ES", 500 + start, ts, chunk, [1.0] * n))
        start += n
    return out


def per_tick(strategy: SupportResistance, prices: list[float]) -> list[Signal]:
    return [s for t in ticks(prices) for s in strategy.on_tick(t)]


# --- a literal reference model of the rules -------------------------------------------------


@dataclass
class Reference:
    """The rules transcribed literally, trailing as a shift of all four levels."""

    spec: ConditionSpec
    state: str = "WAITING"

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        s = self.spec
        self.trigger = s.trigger_price
        if s.side is Side.BUY:
            self.entry = self.trigger + s.turning_point
            self.tp, self.sl = self.entry + s.take_profit, self.entry - s.stop_loss
        else:
            self.entry = self.trigger - s.turning_point
            self.tp, self.sl = self.entry - s.take_profit, self.entry + s.stop_loss

    def step(self, p: float) -> tuple[str, str] | None:
        s, buy = self.spec, self.spec.side is Side.BUY
        if self.state == "WAITING":
            if (buy and p <= self.trigger) or (not buy and p >= self.trigger):
                self.state = "TRIGGERED"
                return ("TRIGGERED", "")
        elif self.state == "TRIGGERED":
            if s.following and ((buy and p < self.trigger) or (not buy and p > self.trigger)):
                d = p - self.trigger
                self.trigger, self.entry, self.tp, self.sl = (
                    self.trigger + d,
                    self.entry + d,
                    self.tp + d,
                    self.sl + d,
                )
                return ("TRAILED", "")
            if (buy and p >= self.entry) or (not buy and p <= self.entry):
                self.state = "ENTERED"
                if buy:
                    self.tp, self.sl = p + s.take_profit, p - s.stop_loss
                else:
                    self.tp, self.sl = p - s.take_profit, p + s.stop_loss
                return ("ENTERED", "")
        elif self.state == "ENTERED":
            if (buy and p >= self.tp) or (not buy and p <= self.tp):
                reason = "take_profit"
            elif (buy and p <= self.sl) or (not buy and p >= self.sl):
                reason = "stop_loss"
            else:
                return None
            self.state = "WAITING" if s.rearm else "DONE"
            if s.rearm:
                self.reset()
            return ("EXITED", reason)
        return None


@settings(max_examples=300)
@given(specs(), grid_paths())
def test_condition_follows_the_reference_rules(spec: ConditionSpec, prices: list[float]) -> None:
    cond, ref = Condition(spec), Reference(spec)
    for i, p in enumerate(prices):
        event = cond.on_price(p, i, i)
        expected = ref.step(p)
        got = None if event is None else (event.kind.value, event.reason)
        assert got == expected, f"tick {i} price {p}"
        assert cond.state.value == ref.state
        assert (cond.trigger, cond.entry_level, cond.tp_level, cond.sl_level) == (
            ref.trigger,
            ref.entry,
            ref.tp,
            ref.sl,
        )


# --- invariants of one condition ------------------------------------------------------------


def events_of(spec: ConditionSpec, prices: list[float]) -> list[ConditionEvent]:
    cond = Condition(spec)
    return [e for i, p in enumerate(prices) if (e := cond.on_price(p, i, i)) is not None]


@given(specs(), paths)
def test_entries_and_exits_alternate_starting_with_an_entry(
    spec: ConditionSpec, prices: list[float]
) -> None:
    trades = [e.kind for e in events_of(spec, prices) if e.kind in (Kind.ENTERED, Kind.EXITED)]
    assert trades[0::2] == [Kind.ENTERED] * len(trades[0::2])
    assert trades[1::2] == [Kind.EXITED] * len(trades[1::2])


@given(specs(), paths)
def test_entry_price_never_beyond_current_trigger(spec: ConditionSpec, prices: list[float]) -> None:
    for e in events_of(spec, prices):
        if e.kind is Kind.ENTERED:
            assert e.price >= e.trigger if spec.side is Side.BUY else e.price <= e.trigger


@given(specs(), paths)
def test_at_most_one_event_per_tick(spec: ConditionSpec, prices: list[float]) -> None:
    seqs = [e.seq for e in events_of(spec, prices)]
    assert len(seqs) == len(set(seqs))


@given(specs(), paths)
def test_events_follow_the_state_machine(spec: ConditionSpec, prices: list[float]) -> None:
    allowed = {
        ConditionState.WAITING: {Kind.TRIGGERED},
        ConditionState.TRIGGERED: {Kind.ENTERED} | ({Kind.TRAILED} if spec.following else set()),
        ConditionState.ENTERED: {Kind.EXITED},
        ConditionState.DONE: set(),
    }
    state = ConditionState.WAITING
    for e in events_of(spec, prices):
        assert e.kind in allowed[state]
        state = e.state_after


# --- SupportResistance: fast path and restarts ----------------------------------------------


def sizes() -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, 150), min_size=1, max_size=5)


@settings(max_examples=300)
@given(spec_lists(), paths, sizes(), st.integers(0, 2**62))
def test_on_batch_equals_on_tick(
    conds: list[ConditionSpec], prices: list[float], split: list[int], origin: int
) -> None:
    fast, slow = SupportResistance("s", conds), SupportResistance("s", conds)
    got = [s for b in batches(prices, split) for s in fast.on_batch(b, origin)]
    want = per_tick(slow, prices)
    assert got == want  # origin_ns is not compared, so check it on its own
    assert all(s.origin_ns == origin for s in got)
    assert fast.snapshot() == slow.snapshot()
    assert fast.pop_events() == slow.pop_events()


@given(spec_lists(), paths, st.data())
def test_restore_mid_stream_continues_like_uninterrupted(
    conds: list[ConditionSpec], prices: list[float], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(prices)))
    whole = SupportResistance("s", conds)
    want = per_tick(whole, prices)

    first = SupportResistance("s", conds)
    got = per_tick(first, prices[:cut])
    second = SupportResistance("s", [c.to_dict() for c in conds])
    second.restore(_plain(first.snapshot()))
    got += [s for t in ticks(prices)[cut:] for s in second.on_tick(t)]

    assert got == want
    assert second.snapshot() == whole.snapshot()


@given(spec_lists(), grid_paths(), st.data())
def test_signal_seq_is_contiguous_across_restores(
    conds: list[ConditionSpec], prices: list[float], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(prices)), max_size=4)))
    strategy, signals, start = SupportResistance("s", conds), [], 0
    for cut in [*cuts, len(prices)]:
        signals += [s for t in ticks(prices)[start:cut] for s in strategy.on_tick(t)]
        restarted = SupportResistance("s", conds)
        restarted.restore(strategy.snapshot())
        strategy, start = restarted, cut
    assert [s.seq for s in signals] == list(range(1, len(signals) + 1))
    assert [s.id for s in signals] == [f"s:{s.seq}" for s in signals]


def _plain(x: Any) -> Any:
    """A deep copy as a wire round trip would give it (tuples become lists)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x
