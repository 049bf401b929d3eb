"""Classes declared as data: ``"package.module:ClassName"`` (strategies, brokers)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from workbench.exceptions import ConfigurationError


def import_class(class_path: str, what: str, field: str) -> type:
    """The class at ``class_path``.

    Args:
        class_path: ``"package.module:ClassName"``.
        what: What it is, for errors ("strategy", "broker").
        field: The config field that named it, for errors.

    Raises:
        ConfigurationError: the path is malformed or does not import.
    """
    module_name, sep, attr = class_path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"{field} {class_path!r} must look like 'package.module:ClassName'"
        )
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigurationError(f"No {what} named {class_path!r}: {e}") from e


def deferred(path: str) -> Callable[..., Any]:
    """A callable that imports ``"package.module:name.attr"`` on each call and calls it.

    For wiring that names code by path, so that a process imports only what it
    calls: a strategy runner never loads the executor's modules (sqlite, the
    breaker, the order lifecycle), nor a gateway the strategy host.
    """
    module_name, _, attrs = path.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        target: Any = importlib.import_module(module_name)
        for name in attrs.split("."):
            target = getattr(target, name)
        return target(*args, **kwargs)

    call.__qualname__ = call.__name__ = attrs
    return call
