"""`Workbench.logs`: recent runner log lines as a DataFrame, from a minimum level."""

from __future__ import annotations

from numbers import Integral
from typing import Any

from workbench.exceptions import ConfigurationError

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_COLUMNS = ("timestamp", "runner", "level", "event")


def level_rank(level: Any) -> int:
    """Where a line's ``level`` stands in `LOG_LEVELS` (none or an unknown one: info)."""
    try:
        return LOG_LEVELS.index(str(level or "info").lower())
    except ValueError:
        return 1


def log_frame(
    rows: list[dict[str, Any]],
    *,
    level: str | None = None,
    last: int = 200,
    runner: str | None = None,
    known: set[str] | None = None,
) -> Any:
    """The newest ``last`` of ``rows`` at ``level`` or above, `LOG_COLUMNS` first.

    Raises:
        ConfigurationError: ``level`` is not one of `LOG_LEVELS`, ``last`` is
            not a whole number >= 0, or ``runner`` is not one of ``known`` (a
            typo gave an empty frame, as if the runner had said nothing).
    """
    import pandas as pd

    if runner is not None and known is not None and runner not in known:
        have = ", ".join(sorted(known))
        raise ConfigurationError(f"runner: no runner named {runner!r}; have {have}")

    if level is not None and (not isinstance(level, str) or level.lower() not in LOG_LEVELS):
        raise ConfigurationError(
            f"level: must be one of {', '.join(map(repr, LOG_LEVELS))} or None (every line), "
            f"got {level!r}"
        )
    if isinstance(last, bool) or not isinstance(last, Integral) or last < 0:
        raise ConfigurationError(f"last: must be a whole number of lines >= 0, got {last!r}")
    if level is not None:
        floor = LOG_LEVELS.index(level.lower())
        rows = [r for r in rows if level_rank(r.get("level")) >= floor]
    df = pd.DataFrame(rows[max(0, len(rows) - int(last)) :])
    for col in LOG_COLUMNS:
        if col not in df:
            df[col] = None
    return df[[*LOG_COLUMNS, *[c for c in df if c not in LOG_COLUMNS]]]
