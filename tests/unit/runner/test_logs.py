"""Logging follows the current sys.stderr, so a swapped-out stream never breaks a thread."""

from __future__ import annotations

import io
import sys

import structlog

from workbench.runner.logs import configure_logging


def test_logging_writes_to_the_stream_current_at_write_time(monkeypatch):
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", json=False)
    first.close()  # e.g. a test runner's capture of an earlier test
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger().info("still_logging", n=1)
    assert "still_logging" in second.getvalue()
    structlog.reset_defaults()
