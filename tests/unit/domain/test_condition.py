"""Rules of the support/resistance condition, each for BUY and for SELL.

SELL scenarios are the BUY ones mirrored around 100: a BUY price ``x`` is the
SELL price ``200 - x`` (all values are exact binary fractions), so one test
body checks both sides.
"""

from __future__ import annotations

import math
import re

import pytest

from workbench.domain.condition import (
    Condition,
    ConditionEvent,
    ConditionEventKind,
    ConditionSpec,
    ConditionState,
)
from workbench.domain.model import Side

Kind = ConditionEventKind
State = ConditionState
SIDES = pytest.mark.parametrize("side", [Side.BUY, Side.SELL])


def px(side: Side, buy_price: float) -> float:
    """The price playing the role of BUY price ``buy_price`` for ``side``."""
    return buy_price if side is Side.BUY else 200.0 - buy_price


def make(side: Side, **overrides: object) -> Condition:
    """Trigger 100, turning point 1, take profit 2, stop loss 1 (BUY prices)."""
    params: dict[str, object] = {
        "id": "c1",
        "symbol": "ES",
        "side": side,
        "trigger_price": 100.0,
        "turning_point": 1.0,
        "take_profit": 2.0,
        "stop_loss": 1.0,
    }
    params.update(overrides)
    return Condition(ConditionSpec(**params))  # type: ignore[arg-type]


def feed(cond: Condition, side: Side, *buy_prices: float) -> list[ConditionEvent | None]:
    return [cond.on_price(px(side, p), 1000 + i, i) for i, p in enumerate(buy_prices)]


def levels(cond: Condition) -> tuple[float, float, float, float]:
    return cond.trigger, cond.entry_level, cond.tp_level, cond.sl_level


def side_levels(side: Side, *buy_levels: float) -> tuple[float, ...]:
    return tuple(px(side, x) for x in buy_levels)


def entered(side: Side, **overrides: object) -> Condition:
    """A condition entered at BUY price 101 (tp 103, sl 100)."""
    cond = make(side, **overrides)
    feed(cond, side, 100.0, 101.0)
    assert cond.state is State.ENTERED
    return cond


# --- initial levels -------------------------------------------------------------------------


@SIDES
def test_initial_levels_derive_from_spec(side: Side) -> None:
    cond = make(side)
    assert cond.state is State.WAITING
    assert cond.entry_price is None
    assert levels(cond) == side_levels(side, 100.0, 101.0, 103.0, 100.0)


# --- WAITING --------------------------------------------------------------------------------


@SIDES
def test_triggers_when_price_reaches_trigger_inclusive(side: Side) -> None:
    cond = make(side)
    [event] = feed(cond, side, 100.0)
    assert event is not None and event.kind is Kind.TRIGGERED
    assert cond.state is State.TRIGGERED


@SIDES
def test_does_not_trigger_short_of_trigger(side: Side) -> None:
    cond = make(side)
    assert feed(cond, side, 100.25, 150.0) == [None, None]
    assert cond.state is State.WAITING


@SIDES
def test_triggering_beyond_trigger_leaves_levels_unchanged(side: Side) -> None:
    cond = make(side, following=True)
    [event] = feed(cond, side, 97.0)
    assert event is not None and event.kind is Kind.TRIGGERED
    assert levels(cond) == side_levels(side, 100.0, 101.0, 103.0, 100.0)


@SIDES
def test_no_trigger_and_enter_on_the_same_tick(side: Side) -> None:
    cond = make(side, turning_point=0.0)
    first, second = feed(cond, side, 100.0, 100.0)
    assert first is not None and first.kind is Kind.TRIGGERED
    assert cond.state is State.ENTERED
    assert second is not None and second.kind is Kind.ENTERED


# --- TRIGGERED ------------------------------------------------------------------------------


@SIDES
def test_enters_at_entry_level_inclusive(side: Side) -> None:
    cond = make(side)
    _, event = feed(cond, side, 100.0, 101.0)
    assert event is not None and event.kind is Kind.ENTERED
    assert event.state_after is State.ENTERED
    assert cond.entry_price == px(side, 101.0)


@SIDES
def test_does_not_enter_short_of_entry_level(side: Side) -> None:
    cond = make(side)
    assert feed(cond, side, 100.0, 100.75)[1] is None
    assert cond.state is State.TRIGGERED


@SIDES
def test_exit_levels_measured_from_entry_price(side: Side) -> None:
    cond = make(side)
    feed(cond, side, 100.0, 101.5)
    assert cond.entry_price == px(side, 101.5)
    assert (cond.tp_level, cond.sl_level) == side_levels(side, 103.5, 100.5)


@SIDES
def test_following_trails_all_four_levels_to_new_extreme(side: Side) -> None:
    cond = make(side, following=True)
    _, event = feed(cond, side, 100.0, 98.5)
    assert event is not None and event.kind is Kind.TRAILED
    assert event.state_after is State.TRIGGERED
    assert levels(cond) == side_levels(side, 98.5, 99.5, 101.5, 98.5)


@SIDES
def test_trailed_condition_enters_from_trailed_entry_level(side: Side) -> None:
    cond = make(side, following=True)
    _, _, event = feed(cond, side, 100.0, 98.5, 99.5)
    assert event is not None and event.kind is Kind.ENTERED
    assert cond.entry_price == px(side, 99.5)


@SIDES
def test_trailing_is_strict(side: Side) -> None:
    cond = make(side, following=True)
    assert feed(cond, side, 99.0, 100.0)[1] is None
    assert levels(cond) == side_levels(side, 100.0, 101.0, 103.0, 100.0)


@SIDES
def test_no_trailing_without_following(side: Side) -> None:
    cond = make(side, following=False)
    assert feed(cond, side, 100.0, 90.0)[1] is None
    assert cond.state is State.TRIGGERED
    assert levels(cond) == side_levels(side, 100.0, 101.0, 103.0, 100.0)


# --- ENTERED --------------------------------------------------------------------------------


@SIDES
def test_take_profit_exit_inclusive(side: Side) -> None:
    cond = entered(side)
    [event] = feed(cond, side, 103.0)
    assert event is not None and event.kind is Kind.EXITED
    assert event.reason == "take_profit"
    assert cond.state is State.DONE


@SIDES
def test_stop_loss_exit_inclusive(side: Side) -> None:
    cond = entered(side)
    [event] = feed(cond, side, 100.0)
    assert event is not None and event.kind is Kind.EXITED
    assert event.reason == "stop_loss"
    assert cond.state is State.DONE


@SIDES
def test_no_exit_between_stop_loss_and_take_profit(side: Side) -> None:
    cond = entered(side)
    assert feed(cond, side, 100.25, 102.75, 101.0) == [None, None, None]
    assert cond.state is State.ENTERED


@SIDES
def test_entered_condition_does_not_trail(side: Side) -> None:
    cond = entered(side, following=True, stop_loss=5.0)
    assert feed(cond, side, 97.0) == [None]
    assert cond.trigger == px(side, 100.0)


# --- DONE and rearm -------------------------------------------------------------------------


@SIDES
def test_done_stays_done(side: Side) -> None:
    cond = entered(side)
    feed(cond, side, 103.0)
    assert feed(cond, side, 50.0, 100.0, 101.0, 150.0, 100.0) == [None] * 5
    assert cond.state is State.DONE
    assert cond.band() is None


@SIDES
def test_rearm_resets_all_levels_and_waits_again(side: Side) -> None:
    cond = make(side, following=True, rearm=True)
    events = feed(cond, side, 100.0, 98.0, 99.0, 101.0)
    assert [e.kind for e in events if e] == [
        Kind.TRIGGERED,
        Kind.TRAILED,
        Kind.ENTERED,
        Kind.EXITED,
    ]
    exit_event = events[-1]
    assert exit_event is not None and exit_event.state_after is State.WAITING
    assert cond.state is State.WAITING
    assert cond.entry_price is None
    assert levels(cond) == side_levels(side, 100.0, 101.0, 103.0, 100.0)
    [again] = feed(cond, side, 100.0)
    assert again is not None and again.kind is Kind.TRIGGERED


# --- events ---------------------------------------------------------------------------------


@SIDES
def test_event_carries_causing_tick_and_levels_after(side: Side) -> None:
    cond = make(side, following=True)
    cond.on_price(px(side, 100.0), 5, 1)
    event = cond.on_price(px(side, 99.0), 123_456, 42)
    assert event == ConditionEvent(
        condition_id="c1",
        kind=Kind.TRAILED,
        state_after=State.TRIGGERED,
        ts_ns=123_456,
        price=px(side, 99.0),
        seq=42,
        trigger=px(side, 99.0),
        entry_level=px(side, 100.0),
        tp_level=px(side, 102.0),
        sl_level=px(side, 99.0),
        reason="",
    )


@SIDES
def test_exit_event_reports_levels_after_rearm(side: Side) -> None:
    cond = entered(side, rearm=True)
    [event] = feed(cond, side, 100.0)
    assert event is not None and event.reason == "stop_loss"
    assert (event.trigger, event.entry_level, event.tp_level, event.sl_level) == levels(cond)


# --- band -----------------------------------------------------------------------------------


@SIDES
def test_band_turns_strict_trailing_into_inclusive_bound(side: Side) -> None:
    cond = make(side, following=True)
    feed(cond, side, 100.0)
    lo, hi = cond.band()  # type: ignore[misc]
    if side is Side.BUY:
        assert (lo, hi) == (math.nextafter(100.0, -math.inf), 101.0)
    else:
        assert (lo, hi) == (99.0, math.nextafter(100.0, math.inf))


@SIDES
def test_prices_inside_band_change_nothing(side: Side) -> None:
    cond = entered(side)
    lo, hi = cond.band()  # type: ignore[misc]
    assert cond.on_price(math.nextafter(lo, math.inf)) is None
    assert cond.on_price(math.nextafter(hi, -math.inf)) is None
    assert cond.state is State.ENTERED


def test_nan_price_changes_nothing() -> None:
    cond = make(Side.BUY)
    assert cond.on_price(math.nan) is None
    assert cond.state is State.WAITING


# --- snapshot / restore ---------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    "buy_prices", [(), (100.0,), (100.0, 98.0), (100.0, 101.0), (99, 101, 103)]
)
def test_snapshot_restore_round_trip(side: Side, buy_prices: tuple[float, ...]) -> None:
    cond = make(side, following=True)
    feed(cond, side, *buy_prices)
    copy = make(side, following=True)
    copy.restore(cond.snapshot())
    assert copy.snapshot() == cond.snapshot()
    assert copy.state is cond.state
    assert copy.band() == cond.band()


def test_restore_applies_changed_exit_distances_to_open_position() -> None:
    cond = entered(Side.BUY)
    changed = make(Side.BUY, take_profit=4.0)
    changed.restore(cond.snapshot())
    assert changed.state is State.ENTERED
    assert (changed.tp_level, changed.sl_level) == (105.0, 100.0)


def test_restore_rejects_entered_snapshot_without_entry_price() -> None:
    snap = entered(Side.BUY).snapshot() | {"entry_price": None}
    with pytest.raises(ValueError, match="entry_price"):
        make(Side.BUY).restore(snap)


def test_restore_rejects_unknown_state() -> None:
    snap = make(Side.BUY).snapshot() | {"state": "SLEEPING"}
    with pytest.raises(ValueError, match="c1"):
        make(Side.BUY).restore(snap)


def test_restore_rejects_other_side() -> None:
    with pytest.raises(ValueError, match="side"):
        make(Side.BUY).restore(make(Side.SELL).snapshot())


# --- ConditionSpec --------------------------------------------------------------------------

BASE = {
    "id": "c1",
    "symbol": "ES",
    "side": "BUY",
    "trigger_price": 100.0,
    "turning_point": 1.0,
    "take_profit": 2.0,
    "stop_loss": 1.0,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trigger_price", 0.0),
        ("trigger_price", -1.0),
        ("turning_point", -0.5),
        ("take_profit", 0.0),
        ("stop_loss", 0.0),
        ("stop_loss", math.inf),
        ("qty", 0.0),
        ("qty", math.nan),
        ("id", ""),
        ("symbol", ""),
        ("side", "HOLD"),
        ("following", "yes"),
        ("rearm", 1),
        ("take_profit", True),
    ],
)
def test_spec_validation_error_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ConditionSpec.from_dict(BASE | {field: value})


def test_spec_accepts_zero_turning_point() -> None:
    assert ConditionSpec.from_dict(BASE | {"turning_point": 0}).turning_point == 0.0


@pytest.mark.parametrize("raw", ["buy", "Buy", "BUY", Side.BUY])
def test_spec_side_is_case_insensitive(raw: object) -> None:
    assert ConditionSpec.from_dict(BASE | {"side": raw}).side is Side.BUY


def test_spec_normalises_ints_to_floats() -> None:
    spec = ConditionSpec.from_dict(BASE | {"trigger_price": 100, "qty": 2})
    assert isinstance(spec.trigger_price, float) and isinstance(spec.qty, float)


def test_spec_takes_numpy_numbers_and_bools_as_python_ones() -> None:
    # A DataFrame's cells (np.int64 qty, np.bool_ following) were refused with
    # "qty: must be a finite number > 0, got np.int64(2)".
    np = pytest.importorskip("numpy")
    spec = ConditionSpec.from_dict(
        BASE | {"qty": np.int64(2), "take_profit": np.float32(0.5), "following": np.bool_(True)}
    )
    assert (spec.qty, spec.take_profit, spec.following) == (2.0, 0.5, True)
    assert type(spec.qty) is float and type(spec.following) is bool


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("qty", "bool", "must be a finite number > 0 (not a bool), got np.True_"),
        ("qty", "nan", "must be a finite number > 0, got np.float64(nan)"),
        ("rearm", "int", "must be a bool, got np.int64(1)"),
    ],
)
def test_spec_still_refuses_numpy_bools_as_numbers_and_numbers_as_bools(field, value, says):
    np = pytest.importorskip("numpy")
    raw = {"bool": np.bool_(True), "nan": np.float64("nan"), "int": np.int64(1)}[value]
    with pytest.raises(ValueError, match=rf"^{field}: {re.escape(says)}$"):
        ConditionSpec.from_dict(BASE | {field: raw})


def test_from_dict_rejects_unknown_key_by_name() -> None:
    with pytest.raises(ValueError, match=r"^take_proft:"):
        ConditionSpec.from_dict(BASE | {"take_proft": 1.0})


def test_from_dict_rejects_missing_key_by_name() -> None:
    d = dict(BASE)
    del d["stop_loss"]
    with pytest.raises(ValueError, match=r"^stop_loss:"):
        ConditionSpec.from_dict(d)


def test_spec_to_dict_round_trips() -> None:
    spec = ConditionSpec.from_dict(BASE | {"qty": 3.0, "following": True, "rearm": True})
    assert spec.to_dict()["side"] == "BUY"
    assert ConditionSpec.from_dict(spec.to_dict()) == spec


def test_spec_is_frozen() -> None:
    spec = ConditionSpec.from_dict(BASE)
    with pytest.raises(AttributeError):
        spec.qty = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("side", "trigger", "following", "prices", "kinds"),
    [
        # 99.01 + 0.2 is 99.21000000000001 as floats: the tick on the level did nothing.
        (Side.BUY, 99.01, False, [99.01, 99.21], ["triggered", "entered"]),
        (Side.SELL, 99.07, False, [99.07, 98.87], ["triggered", "entered"]),  # 98.869999...
        (Side.BUY, 98.81, False, [98.81, 99.01, 99.21], ["triggered", "entered", "exited"]),
        (Side.BUY, 100.0, True, [100.0, 99.01, 99.21], ["triggered", "trailed", "entered"]),
    ],
)
def test_a_tick_exactly_on_a_level_summed_from_decimals_reaches_it(
    side, trigger, following, prices, kinds
):
    c = Condition(ConditionSpec("c", "ABC", side, trigger, 0.2, 0.2, 0.2, following=following))
    events = [c.on_price(p) for p in prices]
    assert [e.kind.value.lower() if e else None for e in events] == kinds
    again = Condition(c.spec)  # the scan over a run agrees
    assert [e.kind.value.lower() for _, e in again.run(prices, [0] * len(prices), 1)] == kinds


def test_levels_keep_every_digit_a_price_has():
    # Rounded to 12 digits, 65432.12355674 became 65432.1235567: a tick below it entered.
    c = Condition(ConditionSpec("c", "BTC", Side.BUY, 65432.12345678, 0.00009996, 1.0, 1.0))
    c.on_price(65432.12345678)
    assert c.entry_level == 65432.12355674
    assert c.on_price(65432.12355671) is None
    assert c.on_price(65432.12355674) is not None
