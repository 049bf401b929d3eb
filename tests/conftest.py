"""Shared fixtures: runner processes that always die, the real data files.

Shared helpers (configs, ports, waiting) are plain functions in `helpers`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from helpers import ROOT, SHARED_DATA


class RunnerProcs:
    """Starts runner processes and guarantees they are gone at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, role: str, config: Path, *extra: str) -> subprocess.Popen:
        """``python -m runners.<role> --config FILE``; stdout to ``<name>.log``."""
        log = (self.folder / f"{name}.log").open("wb")
        p = subprocess.Popen(
            [sys.executable, "-m", f"runners.{role}", "--config", str(config), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.procs[name] = p
        return p

    def wait(self, name: str, timeout: float = 30) -> int:
        """Exit code of ``name`` once it has exited."""
        return self.procs[name].wait(timeout)

    def logs(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of ``name`` (non-JSON lines skipped)."""
        out = []
        for line in (self.folder / f"{name}.log").read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def text(self, name: str) -> str:
        """Raw output of ``name``."""
        return (self.folder / f"{name}.log").read_text()

    def stop_all(self) -> None:
        """SIGTERM every live runner, then SIGKILL what is left."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


@pytest.fixture
def runner_procs(tmp_path: Path) -> Iterator[RunnerProcs]:
    """Runner processes that are always stopped, even when the test fails."""
    procs = RunnerProcs(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def shared_data() -> Path:
    """The real tick files of ../shared/data, or skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present (a user's clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """Each test starts from the same logging: `configure_logging` is process-wide.

    A fast replay or a notebook facade run in-process sets WARNING, which would
    hide a later test's captured INFO lines, depending on the order tests run in.
    """
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
