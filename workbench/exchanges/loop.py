"""A private asyncio loop on a daemon thread, for sync callers of ccxt's async API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from workbench.exceptions import TemporaryError

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on its own event loop; `call` waits with a timeout."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float, what: str) -> T:
        """The coroutine's result; `TemporaryError` when it takes longer than ``timeout_s``."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except TimeoutError as e:
            fut.cancel()
            raise TemporaryError(f"{what}: no answer within {timeout_s} s") from e

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Start a background task on the loop (a concurrent future)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel what runs, stop the loop and join the thread."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):  # stopping must not raise; a daemon thread
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout_s)
        # The loop is left unclosed on purpose: aiohttp responses still referenced
        # elsewhere (an exception's traceback) close their transports through it
        # when they are collected, and a closed loop makes that raise.
