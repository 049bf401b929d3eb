"""A condition's parameters (`ConditionSpec`), its states and the events it reports.

Pure: no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from numbers import Real
from typing import Any

from workbench.domain.model import Side

_INF = math.inf


class ConditionState(enum.StrEnum):
    """Where a condition is in its cycle."""

    WAITING = "WAITING"
    TRIGGERED = "TRIGGERED"
    ENTERED = "ENTERED"
    DONE = "DONE"


class ConditionEventKind(enum.StrEnum):
    """What changed on a tick."""

    TRIGGERED = "TRIGGERED"
    TRAILED = "TRAILED"
    ENTERED = "ENTERED"
    EXITED = "EXITED"


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """A condition's parameters; distances are in price units.

    Raises:
        ValueError: a field is out of range; the message names it.
    """

    id: str
    symbol: str
    side: Side
    trigger_price: float
    turning_point: float
    take_profit: float
    stop_loss: float
    qty: float = 1.0
    following: bool = False
    rearm: bool = False

    def __post_init__(self) -> None:
        for name in ("id", "symbol"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}: must be a non-empty string, got {value!r}")
        if not isinstance(self.side, Side):
            raise ValueError(f"side: must be a Side, got {self.side!r}")
        for name, allow_zero in (
            ("trigger_price", False),
            ("turning_point", True),
            ("take_profit", False),
            ("stop_loss", False),
            ("qty", False),
        ):
            value = getattr(self, name)
            # Any real number: numpy's too (a DataFrame's cell), but not a bool.
            number = isinstance(value, Real) and not _is_bool(value)
            try:
                ok = number and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
            except OverflowError:  # an int too large for a float
                ok = False
            if not ok:
                bound = ">= 0" if allow_zero else "> 0"
                which = " (not a bool)" if _is_bool(value) else ""
                raise ValueError(f"{name}: must be a finite number {bound}{which}, got {value!r}")
            # Normalise ints (as TOML gives them) so snapshots compare exactly.
            object.__setattr__(self, name, float(value))
        for name in ("following", "rearm"):
            value = getattr(self, name)
            if not _is_bool(value):
                raise ValueError(f"{name}: must be a bool, got {value!r}")
            object.__setattr__(self, name, bool(value))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConditionSpec:
        """Build from plain data (as TOML gives it); ``side`` may be "buy"/"SELL".

        Raises:
            ValueError: an unknown or missing key, or a bad value; names the key.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown condition key (known: {sorted(known)})")
        required = [n for n, f in known.items() if f.default is MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"{missing[0]}: missing condition key")
        kwargs = dict(d)
        kwargs["side"] = _parse_side(kwargs["side"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that `from_dict` reads back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["side"] = self.side.value
        return out


def _is_bool(value: Any) -> bool:
    """A bool, or numpy's (``np.bool_``), without importing numpy."""
    if isinstance(value, bool):
        return True
    dtype = getattr(value, "dtype", None) if type(value).__module__ == "numpy" else None
    return getattr(dtype, "kind", None) == "b" and getattr(value, "ndim", None) == 0


def plain(value: Any) -> Any:
    """``value`` with every numpy scalar in it (a DataFrame's cell) as Python's own.

    Dicts and lists are copied; configs hold plain data, which TOML can write.
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _parse_side(value: Any) -> Side:
    if isinstance(value, Side):
        return value
    if isinstance(value, str) and value.upper() in Side.__members__:
        return Side[value.upper()]
    raise ValueError(f"side: must be 'BUY' or 'SELL', got {value!r}")


@dataclass(frozen=True, slots=True)
class ConditionEvent:
    """One state change of a condition, with the tick that caused it.

    The level fields are the condition's levels after the change.
    """

    condition_id: str
    kind: ConditionEventKind
    state_after: ConditionState
    ts_ns: int
    price: float
    seq: int
    trigger: float
    entry_level: float
    tp_level: float
    sl_level: float
    reason: str = ""
