"""Runner output: every line kept in the run's folder, the recent ones in memory."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

import structlog

from workbench.exceptions import (
    ConfigurationError,
    StrategyError,
    TemporaryError,
    WorkbenchError,
)

log = structlog.get_logger()

ERROR_EVENTS = frozenset(
    c.log_event for c in (WorkbenchError, ConfigurationError, TemporaryError, StrategyError)
)
"""What a runner logs as it exits on an error (`runners._main`), with ``error``."""

BACKLOG_BYTES = 1 << 20
"""Per runner, how much of the output a failing disk did not take is kept to write later."""
RETRY_S = 1.0
"""While a runner's file cannot be written, it is tried again at most this often."""


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _LogFile:
    """One runner's log file, and the lines a failing disk has not taken yet.

    The backlog keeps the newest `BACKLOG_BYTES`; older lines are dropped and
    counted, and a ``log_lines_dropped`` line marks the gap in the file.
    """

    def __init__(self, runner: str, path: Path) -> None:
        self.runner = runner
        self.path = path
        self.f: IO[bytes] | None = None
        self.backlog: collections.deque[bytes] = collections.deque()
        self.backlog_bytes = 0
        self.dropped = 0  # since the last marker written
        self.dropped_total = 0
        self.error: OSError | None = None  # the last failure, while writes fail
        self.retry_at = 0.0
        self.rotate_retry_at = 0.0
        self.torn = False  # a failed write left part of a line that could not be cut off

    def keep(self, data: bytes) -> None:
        self.backlog.append(data)
        self.backlog_bytes += len(data)
        while self.backlog_bytes > BACKLOG_BYTES and len(self.backlog) > 1:
            self.backlog_bytes -= len(self.backlog.popleft())
            self.dropped += 1
            self.dropped_total += 1

    def flush(self) -> None:
        """Write the backlog; raises OSError, keeping what was not written."""
        if self.dropped:
            marker = {"event": "log_lines_dropped", "lines": self.dropped, "runner": self.runner,
                      "level": "warning", "timestamp": _timestamp()}  # fmt: skip
            self._put((json.dumps(marker) + "\n").encode())
            self.dropped = 0
        while self.backlog:
            self._put(self.backlog[0])
            self.backlog_bytes -= len(self.backlog.popleft())

    def _put(self, data: bytes) -> None:
        if self.f is None:
            self.f = self.path.open("ab", buffering=0)
        if self.torn:
            data = b"\n" + data  # the piece left behind stays a line of its own
        done = 0
        try:
            while done < len(data):
                n = self.f.write(data[done:])
                if not n:
                    raise OSError(f"nothing written to {self.path}")
                done += n
        except OSError:
            if done:  # cut the piece written off, so the line is whole when written again
                try:
                    os.ftruncate(self.f.fileno(), self.f.tell() - done)
                except OSError:
                    self.torn = True
            raise
        self.torn = False

    def close(self) -> None:
        f, self.f = self.f, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


class LogBook:
    """Per-runner log capture.

    Each runner's lines go to ``<folder>/<runner>.jsonl``; a line that is not
    JSON (a traceback, a stray print) is wrapped as
    ``{"event": "raw_output", "line": ...}`` so nothing is lost, and the last
    ``keep`` lines per runner stay in memory for the dashboard.

    With ``max_bytes`` a file that reaches that size is rotated like
    logrotate does: ``<runner>.jsonl`` becomes ``<runner>.jsonl.1``, older ones
    shift up, and only ``backups`` rotated files are kept.

    A disk that fails (full, read-only, gone) never loses the in-memory lines:
    what it does not take waits in a backlog (the newest `BACKLOG_BYTES` per
    runner), tried again at most every `RETRY_S` (by a thread of its own while
    any waits, so a quiet runner's lines go too, and a hung disk never holds
    the supervisor's loop) and at `close`. Each run of
    failures is logged once (``log_write_failed``, then ``log_write_recovered``).
    """

    def __init__(
        self,
        folder: Path,
        keep: int = 500,
        *,
        max_bytes: int = 0,
        backups: int = 5,
        copy_of: tuple[str, str] = ("", ""),
    ) -> None:
        self.folder = Path(folder)
        # (the run folder's config.toml, the user's file): errors name the file the user edits
        self._copy, self._source = copy_of
        self._max_bytes = max_bytes
        self._backups = backups
        self.folder.mkdir(parents=True, exist_ok=True)
        self._keep = keep
        self._recent: dict[str, collections.deque[dict[str, Any]]] = {}
        self._files: dict[str, _LogFile] = {}
        self._lock = threading.Lock()
        self._retrier: threading.Thread | None = None  # alive while a backlog waits
        self._closed = threading.Event()

    def path(self, runner: str) -> Path:
        """The log file of ``runner``."""
        return self.folder / f"{runner}.jsonl"

    def add(self, runner: str, raw: str) -> dict[str, Any]:
        """Record one output line of ``runner``; returns it as a dict.

        Raises:
            OSError: The line could not be written to its file now. It is kept
                in memory all the same, and in the backlog for a later write.
        """
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
                "timestamp": _timestamp(),
            }
            line = json.dumps(entry)
        with self._lock:
            recent = self._recent.get(runner)
            if recent is None:
                recent = self._recent[runner] = collections.deque(maxlen=self._keep)
            recent.append(entry)
            lf = self._files.get(runner)
            if lf is None:
                lf = self._files[runner] = _LogFile(runner, self.path(runner))
            lf.keep((line + "\n").encode("utf-8", "backslashreplace"))
            self._write(lf)
        return entry

    def retry_due(self) -> bool:
        """Write each backlog whose retry is due, a quiet runner's too; never raises.

        Returns:
            Whether a backlog still waits.
        """
        with self._lock:
            waiting = False
            for lf in self._files.values():
                if lf.error is not None and lf.backlog and time.monotonic() >= lf.retry_at:
                    with contextlib.suppress(OSError):  # logged once; kept for the next retry
                        self._write(lf)
                waiting = waiting or (lf.error is not None and bool(lf.backlog))
            if not waiting:
                self._retrier = None  # under the lock: a new failure starts another
            return waiting

    def _retry_until_written(self) -> None:
        while not self._closed.wait(max(RETRY_S, 0.05)) and self.retry_due():
            pass

    def _write(self, lf: _LogFile) -> None:
        now = time.monotonic()
        if lf.error is not None and now < lf.retry_at:
            e = lf.error
            raise OSError(e.errno, e.strerror or str(e), e.filename)  # a new one: no traceback pile
        try:
            lf.flush()
        except OSError as e:
            lf.close()  # opened again next time: the folder or the file may be another by then
            if lf.error is None:
                log.warning("log_write_failed", runner=lf.runner, path=str(lf.path), error=str(e),
                            retry_s=RETRY_S, backlog_bytes=BACKLOG_BYTES)  # fmt: skip
            lf.error, lf.retry_at = e, now + RETRY_S
            if self._retrier is None and not self._closed.is_set():
                self._retrier = threading.Thread(
                    target=self._retry_until_written, name="log-retry", daemon=True
                )
                self._retrier.start()
            raise
        if lf.error is not None:
            lf.error = None
            log.info("log_write_recovered", runner=lf.runner, path=str(lf.path),
                     dropped_lines=lf.dropped_total)  # fmt: skip
        if self._max_bytes and lf.f is not None and now >= lf.rotate_retry_at:
            try:
                if lf.f.tell() >= self._max_bytes:
                    self._rotate(lf)
                lf.rotate_retry_at = 0.0
            except OSError as e:
                if not lf.rotate_retry_at:
                    log.warning("log_rotate_failed", runner=lf.runner, error=str(e))
                lf.rotate_retry_at = now + RETRY_S

    def _rotate(self, lf: _LogFile) -> None:
        lf.close()
        base = lf.path
        if self._backups == 0:
            base.unlink(missing_ok=True)
            return
        base.with_name(f"{base.name}.{self._backups}").unlink(missing_ok=True)
        for i in range(self._backups - 1, 0, -1):
            older = base.with_name(f"{base.name}.{i}")
            if older.exists():
                older.replace(base.with_name(f"{base.name}.{i + 1}"))
        base.replace(base.with_name(f"{base.name}.1"))

    def backlog(self, runner: str) -> tuple[int, int]:
        """Lines of ``runner`` waiting for its file, and lines dropped so far (disk failures)."""
        with self._lock:
            lf = self._files.get(runner)
            return (len(lf.backlog), lf.dropped_total) if lf else (0, 0)

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
                said = str(e["error"])
                if self._copy and self._source and self._source != self._copy:
                    said = said.replace(self._copy, f"{self._source} (as run: {self._copy})")
                return said
        return ""

    def forget(self, runner: str) -> None:
        """A runner removed for good (`apply` dropped a strategy): its file is closed (after
        what waits in its backlog, once more) and its recent lines dropped; never raises.

        On a thread of its own: the lock may be held by a write to a hung disk, which
        must never hold the supervisor's loop (the caller).
        """
        forget = threading.Thread(target=self._forget, args=(runner,), name="log-forget")
        forget.daemon = True
        forget.start()

    def _forget(self, runner: str) -> None:
        with self._lock:
            lf = self._files.pop(runner, None)
            self._recent.pop(runner, None)
            if lf is not None:
                try:
                    lf.flush()
                except OSError as e:
                    log.warning("log_lines_lost", runner=runner, path=str(lf.path), error=str(e))
                lf.close()

    def close(self) -> None:
        """Write what waits in the backlogs, once more, and close the files; never raises."""
        self._closed.set()
        with self._lock:
            for lf in self._files.values():
                try:
                    lf.flush()
                except OSError as e:
                    lost = len(lf.backlog) + lf.dropped_total
                    log.warning("log_lines_lost", runner=lf.runner, path=str(lf.path),
                                lines=lost, error=str(e))  # fmt: skip
                lf.close()
            self._files.clear()
