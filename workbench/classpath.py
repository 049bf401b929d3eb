"""Classes declared as data: ``"package.module:ClassName"`` (strategies, brokers)."""

from __future__ import annotations

import importlib

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
