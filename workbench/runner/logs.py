"""structlog set-up: JSON lines in runners, readable output in notebooks and CLI."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO, cast

import structlog


class _CurrentStream:
    """Writes to whatever ``sys.<name>`` is at the time of each write.

    Binding the stream object at configure time breaks when it is swapped
    later (a notebook's output capture, a test runner's): a log write to a
    closed stream would then raise inside whichever thread logged.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, text: str) -> int:
        try:
            return getattr(sys, self._name).write(text)
        except BrokenPipeError:  # the reader (a supervisor) is gone: a log line is not worth
            return len(text)  # a runner's clean stop and its last save

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            getattr(sys, self._name).flush()


def configure_logging(level: str = "INFO", *, json: bool = True, **context: Any) -> None:
    """Configure structlog process-wide and bind ``context`` (runner, run_id, pid...).

    Args:
        level: Minimum level name.
        json: JSON lines (runners) or a console renderer (notebooks, CLI).
        **context: Key/values bound to every event of this process.
    """
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(
            # structlog only calls write() and flush(), which _CurrentStream has.
            file=cast(TextIO, _CurrentStream("stdout" if json else "stderr"))
        ),
        # Runners configure once and log on hot paths: cache. A kernel or a
        # CLI may configure again (or capture logs in tests): do not.
        cache_logger_on_first_use=json,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
