"""Checks of what a notebook passes to `Workbench`: a clear error at the call, not a crash later."""

from __future__ import annotations

from typing import Any


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is a real bool (``"False"`` and ``"no"`` are truthy strings).

    Raises:
        TypeError: ``value`` is not True or False.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value
