"""Checks of what a notebook passes to `Workbench`: a clear error at the call, not a crash later."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from workbench.exceptions import ConfigurationError


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is a real bool (``"False"`` and ``"no"`` are truthy strings).

    Raises:
        TypeError: ``value`` is not True or False.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _real(value: Any) -> bool:
    """A finite real number: not a bool, not a string, not NaN or infinity."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def check_seconds(value: Any, name: str) -> float:
    """``value`` if it is a finite number of seconds > 0.

    Raises:
        ConfigurationError: it is not (-1, NaN, ``"5"``, True...).
    """
    if not (_real(value) and value > 0):
        raise ConfigurationError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def check_between(value: Any, name: str, low: float, high: float, unit: str) -> float:
    """``value`` if it is a finite number from ``low`` to ``high`` (``unit`` says of what).

    Raises:
        ConfigurationError: it is not.
    """
    if not (_real(value) and low <= value <= high):
        raise ConfigurationError(
            f"{name} must be a number of {unit} from {low:g} to {high:g}, got {value!r}"
        )
    return float(value)


def check_callable(value: Any, name: str) -> Any:
    """``value`` if it can be called (a function taking one argument, say).

    Raises:
        TypeError: it cannot; it would fail on every event instead.
    """
    if not callable(value):
        raise TypeError(f"{name} must be a function (called with each event), got {value!r}")
    return value


def check_config_type(config: Any) -> None:
    """Refuse anything but a `WorkbenchConfig` (a path string, say) for ``Workbench(config)``.

    Raises:
        TypeError: saying what to pass, and how to load a file.
    """
    from workbench.config import WorkbenchConfig

    if not isinstance(config, WorkbenchConfig):
        raise TypeError(
            f"Workbench(config) takes a WorkbenchConfig, got {type(config).__name__} "
            f"{config!r}; to load a TOML file use Workbench.from_config(path)"
        )


def check_path(path: Any, name: str) -> None:
    """Refuse anything but a str or path-like for a file ``name``.

    Raises:
        TypeError: naming ``name`` and what it got.
    """
    import os

    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a path to a TOML file (str or Path), got {path!r}")
