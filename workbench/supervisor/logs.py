"""Runner output: every line kept in the run's folder, the recent ones in memory."""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import IO, Any

from workbench.exceptions import (
    ConfigurationError,
    StrategyError,
    TemporaryError,
    WorkbenchError,
)

ERROR_EVENTS = frozenset(
    c.log_event for c in (WorkbenchError, ConfigurationError, TemporaryError, StrategyError)
)
"""What a runner logs as it exits on an error (`runners._main`), with ``error``."""


class LogBook:
    """Per-runner log capture.

    Each runner's lines go to ``<folder>/<runner>.jsonl``; a line that is not
    JSON (a traceback, a stray print) is wrapped as
    ``{"event": "raw_output", "line": ...}`` so nothing is lost, and the last
    ``keep`` lines per runner stay in memory for the dashboard.

    With ``max_bytes`` a file that reaches that size is rotated like
    logrotate does: ``<runner>.jsonl`` becomes ``<runner>.jsonl.1``, older ones
    shift up, and only ``backups`` rotated files are kept.
    """

    def __init__(
        self, folder: Path, keep: int = 500, *, max_bytes: int = 0, backups: int = 5
    ) -> None:
        self.folder = Path(folder)
        self._max_bytes = max_bytes
        self._backups = backups
        self.folder.mkdir(parents=True, exist_ok=True)
        self._keep = keep
        self._recent: dict[str, collections.deque[dict[str, Any]]] = {}
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def path(self, runner: str) -> Path:
        """The log file of ``runner``."""
        return self.folder / f"{runner}.jsonl"

    def add(self, runner: str, raw: str) -> dict[str, Any]:
        """Record one output line of ``runner``; returns it as a dict."""
        line = raw.rstrip("\n")
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            entry = {
                "event": "raw_output",
                "line": line,
                "runner": runner,
                "level": "info",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            line = json.dumps(entry)
        with self._lock:
            f = self._files.get(runner)
            if f is None:
                f = self._files[runner] = self.path(runner).open("a", buffering=1)
            f.write(line + "\n")
            if self._max_bytes and f.tell() >= self._max_bytes:
                self._rotate(runner)
            recent = self._recent.get(runner)
            if recent is None:
                recent = self._recent[runner] = collections.deque(maxlen=self._keep)
            recent.append(entry)
        return entry

    def _rotate(self, runner: str) -> None:
        self._files.pop(runner).close()
        base = self.path(runner)
        if self._backups == 0:
            base.unlink(missing_ok=True)
            return
        base.with_name(f"{base.name}.{self._backups}").unlink(missing_ok=True)
        for i in range(self._backups - 1, 0, -1):
            older = base.with_name(f"{base.name}.{i}")
            if older.exists():
                older.replace(base.with_name(f"{base.name}.{i + 1}"))
        base.replace(base.with_name(f"{base.name}.1"))

    def recent(self, runner: str | None = None, n: int | None = None) -> list[dict[str, Any]]:
        """The last ``n`` lines of one runner (or of all, each tagged with ``runner``)."""
        with self._lock:
            if runner is not None:
                items = list(self._recent.get(runner, ()))
            else:
                items = [
                    {**e, "runner": e.get("runner", name)}
                    for name, dq in self._recent.items()
                    for e in dq
                ]
                items.sort(key=lambda e: str(e.get("timestamp", "")))
        return items[-n:] if n else items

    def last_error(self, runner: str) -> str:
        """What ``runner`` last logged as the error that stopped it ('' if nothing)."""
        for e in reversed(self.recent(runner)[-50:]):
            if e.get("event") in ERROR_EVENTS and e.get("error"):
                return str(e["error"])
        return ""

    def close(self) -> None:
        """Close the files."""
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
