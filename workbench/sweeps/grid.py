"""Parameter grids: parsing ``NAME=SPEC`` arguments and expanding combinations.

A spec is a comma-separated list (``turning_point=0.02,0.05,0.1``) or an
inclusive range ``START:STOP:STEP`` (``take_profit=0.1:0.5:0.1`` is 0.1, 0.2,
0.3, 0.4, 0.5). Values are numbers, or ``true``/``false``. A parameter is a
condition field, set on every condition of every strategy, exactly as
``workbench replay --set`` does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

import numpy as np

from workbench.exceptions import ConfigurationError
from workbench.replays.session import CONDITION_FIELDS

Value = float | bool
MAX_COMBINATIONS = 100_000
GRID_DECIMALS = 12
"""A range's values are rounded to this many decimals (0.1:0.5:0.1 holds 0.3)."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One swept parameter: its values, and the range they came from (for Optuna)."""

    name: str
    values: tuple[Value, ...]
    low: float | None = None
    high: float | None = None
    step: float | None = None

    @property
    def is_range(self) -> bool:
        return self.step is not None


FLAGS = ("following", "rearm")
"""The condition fields that are true or false; the others are numbers."""


def _number(raw: str, where: str) -> Value:
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        if "_" in raw:  # float("1_0") is 10
            raise ValueError(raw)
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{where}: {raw.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{where}: {raw.strip()!r} is not a finite number")
    return value


def _check_name(name: str, where: str) -> None:
    if name not in CONDITION_FIELDS:
        raise ConfigurationError(
            f"{where}: cannot sweep {name!r}; choose from {', '.join(CONDITION_FIELDS)}"
        )


def parse_spec(name: str, spec: str | Sequence[Any] | Value, where: str | None = None) -> ParamSpec:
    """One parameter from a spec string, a sequence of values, or one value.

    Raises:
        ConfigurationError: unknown parameter, a value that is not a number
            (or not true/false, for `FLAGS`), an empty list, or a range with a
            non-positive step or stop < start.
    """
    where = where or f"grid {name}"
    return _check_kinds(_parse_spec(name, spec, where), where)


def _check_kinds(param: ParamSpec, where: str) -> ParamSpec:
    """``param`` when its values are all true/false (`FLAGS`) or all numbers (the rest)."""
    flag = param.name in FLAGS
    wrong = [v for v in param.values if isinstance(v, bool) != flag]
    if wrong:
        want = "true or false" if flag else "a number, not true or false"
        raise ConfigurationError(f"{where}: {param.name} takes {want}; got {wrong[0]!r}")
    return param


def _parse_spec(name: str, spec: str | Sequence[Any] | Value, where: str) -> ParamSpec:
    _check_name(name, where)
    if isinstance(spec, Mapping):
        raise ConfigurationError(f"{where}: give a list of values, not a mapping ({spec!r})")
    if not isinstance(spec, str):
        # One value (0.05, True, None) is a list of one, and then checked as any value.
        given = list(spec) if isinstance(spec, Iterable) else [spec]
        values = tuple(_number(str(v), where) for v in given)
        if not values:
            raise ConfigurationError(f"{where}: no values")
        return ParamSpec(name, values)
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ConfigurationError(f"{where}: a range is START:STOP:STEP, got {spec!r}")
        bounds = [_number(p, where) for p in parts]
        if any(isinstance(b, bool) for b in bounds):
            raise ConfigurationError(f"{where}: a range is of numbers, got {spec!r}")
        start, stop, step = (float(b) for b in bounds)
        if step <= 0:
            raise ConfigurationError(f"{where}: the step must be > 0, got {step}")
        if stop < start:
            raise ConfigurationError(f"{where}: STOP {stop} is below START {start}")
        steps = (stop - start) / step
        # The inf of 0:1e300:1e-300 must not reach floor().
        count = math.floor(steps + 1e-9) + 1 if steps < MAX_COMBINATIONS else MAX_COMBINATIONS + 1
        if count > MAX_COMBINATIONS:
            raise ConfigurationError(f"{where}: {steps + 1:.6g} values; at most {MAX_COMBINATIONS}")
        # Rounded so 0.1:0.5:0.1 gives 0.3, not 0.30000000000000004.
        values = tuple(round(start + i * step, GRID_DECIMALS) for i in range(count))
        if len(set(values)) < count:
            raise ConfigurationError(
                f"{where}: the step {step:g} is finer than the 1e-{GRID_DECIMALS} "
                "that values are rounded to"
            )
        return ParamSpec(name, values, low=start, high=values[-1], step=step)
    items = [p for p in spec.split(",") if p.strip()]
    if not items:
        raise ConfigurationError(f"{where}: no values")
    return ParamSpec(name, tuple(_number(p, where) for p in items))


def parse_grid_args(items: Iterable[str]) -> list[ParamSpec]:
    """``--grid NAME=SPEC`` arguments as specs (each name at most once)."""
    specs: list[ParamSpec] = []
    for item in items:
        name, sep, spec = item.partition("=")
        where = f"--grid {item}"
        if not sep or not name.strip():
            raise ConfigurationError(f"{where}: expected NAME=VALUES or NAME=START:STOP:STEP")
        specs.append(parse_spec(name.strip(), spec, where))
    return _unique(specs)


def as_specs(
    grid: Mapping[str, str | Sequence[Any] | Value] | Sequence[ParamSpec],
) -> list[ParamSpec]:
    """A grid given as ``{name: values, one value or spec}`` or as specs, validated."""
    if isinstance(grid, Mapping):
        return _unique([parse_spec(str(k), v) for k, v in grid.items()])
    specs = []
    for p in grid:
        where = f"grid {p.name}"
        _check_name(p.name, where)
        if not p.values:
            raise ConfigurationError(f"{where}: no values")
        for v in p.values:  # as a string or a list would be checked (nan failed at run time)
            number = isinstance(v, Real) and not isinstance(v, bool | np.bool_)
            if not (isinstance(v, bool | np.bool_) or (number and math.isfinite(v))):
                raise ConfigurationError(f"{where}: {v!r} is not a finite number")
        # numpy numbers (np.arange) as the mapping path takes them: plain floats and bools
        plain = tuple(_number(str(v), where) for v in p.values)
        specs.append(_check_kinds(replace(p, values=plain), where))
    return _unique(specs)


def _unique(specs: list[ParamSpec]) -> list[ParamSpec]:
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"grid: parameter given twice: {', '.join(dupes)}")
    if not specs:
        raise ConfigurationError("grid: give at least one parameter")
    return specs


def combinations(specs: Sequence[ParamSpec]) -> list[dict[str, Value]]:
    """Every combination, the last parameter varying fastest.

    Raises:
        ConfigurationError: more than `MAX_COMBINATIONS` combinations.
    """
    total = math.prod(len(s.values) for s in specs)
    if total > MAX_COMBINATIONS:
        raise ConfigurationError(f"grid: {total} combinations; at most {MAX_COMBINATIONS}")
    names = [s.name for s in specs]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(s.values for s in specs))
    ]
