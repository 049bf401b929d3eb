"""Runner output: every line kept in the run's folder, the recent ones in memory."""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import IO, Any


class LogBook:
    """Per-runner log capture.

    Each runner's lines go to ``<folder>/<runner>.jsonl``; a line that is not
    JSON (a traceback, a stray print) is wrapped as
    ``{"event": "raw_output", "line": ...}`` so nothing is lost, and the last
    ``keep`` lines per runner stay in memory for the dashboard.
    """

    def __init__(self, folder: Path, keep: int = 500) -> None:
        self.folder = Path(folder)
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
            recent = self._recent.get(runner)
            if recent is None:
                recent = self._recent[runner] = collections.deque(maxlen=self._keep)
            recent.append(entry)
        return entry

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

    def close(self) -> None:
        """Close the files."""
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
