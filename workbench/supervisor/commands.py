"""The supervisor's command queue: other threads hand work to its loop thread."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

COMMAND_TIMEOUT_S = 10.0


class CommandQueue:
    """Runs callables on the owner thread; callers block for the result.

    Before the owner thread runs (or on it), `call` runs the callable at once.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = (
            queue.Queue()
        )
        self.owner: threading.Thread | None = None  # the loop's thread, once it runs
        self._closed = ""  # why commands are refused, once `close` was called
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], Any], timeout: float = COMMAND_TIMEOUT_S) -> Any:
        """``fn()`` on the owner thread; its result, or what it raised.

        Raises:
            TimeoutError: the owner thread did not run it within ``timeout``.
            RuntimeError: the queue is closed (the owner is stopping).
        """
        with self._lock:
            if self._closed:  # first: a dead owner's thread ident may be another's now
                raise RuntimeError(self._closed)
            if self.owner is None or threading.current_thread() is self.owner:
                run_now = True
            else:
                run_now = False
                fut: concurrent.futures.Future = concurrent.futures.Future()
                self._queue.put((fn, fut))
        return fn() if run_now else fut.result(timeout)

    def close(self, reason: str) -> None:
        """Refuse every queued command and every later one with ``reason``.

        A command run after the owner stopped its work (a runner started while
        the supervisor stops the others) would leave a process nothing watches.
        """
        with self._lock:
            self._closed = reason
        while True:
            try:
                _, fut = self._queue.get_nowait()
            except queue.Empty:
                return
            fut.set_exception(RuntimeError(reason))

    def run_pending(self) -> None:
        """Run every queued command (the owner thread calls this)."""
        while True:
            try:
                fn, fut = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as e:
                fut.set_exception(e)
