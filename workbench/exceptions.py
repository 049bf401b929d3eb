"""Every error workbench raises, grouped by what the operator must do.

- `ConfigurationError`: stop and fix the config or the command line.
- `TemporaryError`: retry with backoff (a busy port, a broker blip).
- `OrderRejected`: skip this order, alert, carry on.
- `RiskRefused`: an operator command the risk limits refuse (say why, change nothing).
- `FlattenIncomplete`: ``halt --flatten`` halted, but positions stay open (close them).
- `StrategyError`: a bug in user strategy code.
- `CodecError`: a malformed, truncated or unknown wire frame: count, log, drop.
- `DataError`: a tick file that cannot be read as asked.
- `GatewayStartTimeout`: in replay, the expected strategies never answered.

Each class carries what a runner process does when it ends on one:
``exit_code`` (the supervisor reads it: 2 is not retried, 75 is worth a
restart), ``log_event`` and ``log_traceback`` for its last log line.
"""

from __future__ import annotations

from typing import ClassVar

# Exit codes, by what the operator must do.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_STRATEGY = 3
EXIT_TEMPORARY = 75  # EX_TEMPFAIL (sysexits.h): worth a restart


class WorkbenchError(Exception):
    """Base of every workbench error."""

    exit_code: ClassVar[int] = EXIT_ERROR
    log_event: ClassVar[str] = "runner_crashed"
    log_traceback: ClassVar[bool] = True


class ConfigurationError(WorkbenchError):
    """The configuration or command line is wrong; the operator must fix it."""

    exit_code = EXIT_CONFIG
    log_event = "configuration_error"
    log_traceback = False  # the message names the field; a traceback adds nothing

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class TemporaryError(WorkbenchError):
    """A transient failure worth retrying with backoff."""

    exit_code = EXIT_TEMPORARY
    log_event = "temporary_error"
    log_traceback = False


class OrderRejected(WorkbenchError):
    """The broker or a risk check refused an order."""

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id} rejected: {reason}")
        self.order_id = order_id
        self.reason = reason


class RiskRefused(WorkbenchError):
    """An operator command the risk limits refuse: ``resume`` past the daily loss limit."""


class FlattenIncomplete(WorkbenchError):
    """``halt --flatten`` halted the executor, but some positions are still open.

    The executor is HALTED all the same (halting never depends on flattening);
    each symbol left open is named with the reason (no market price yet,
    closing orders still open, the closing order rejected or unfilled...).

    Attributes:
        not_flattened: Symbol -> why its position is still open.
        reply: The executor's whole answer (``trading_state``, ``positions``...).
    """

    log_event = "flatten_incomplete"
    log_traceback = False

    def __init__(self, not_flattened: dict[str, str], reply: dict | None = None) -> None:
        said = "; ".join(f"{s}: {why}" for s, why in sorted(not_flattened.items()))
        state = (reply or {}).get("trading_state", "HALTED")
        super().__init__(f"trading state {state}, but not flattened: {said}")
        self.not_flattened = dict(not_flattened)
        self.reply = dict(reply or {})


class StrategyError(WorkbenchError):
    """User strategy code raised."""

    exit_code = EXIT_STRATEGY
    log_event = "strategy_error"


class CodecError(WorkbenchError):
    """A wire frame could not be decoded."""


class DataError(WorkbenchError):
    """A tick data file is missing, unreadable or invalid.

    Attributes:
        path: The file.
        row: 1-based data row (excluding any header), when one is to blame.
        column: The column, when one is to blame.
    """

    def __init__(
        self, message: str, path: str = "", row: int | None = None, column: str | None = None
    ) -> None:
        where = path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.row = row
        self.column = column


class GatewayStartTimeout(WorkbenchError):
    """Expected subscribers never showed up."""
