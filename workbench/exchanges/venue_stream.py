"""The venue's execution reports: the order stream, and REST polls as its fallback.

`CcxtVenue` takes this half as a base: ``watch_orders`` notes every order it
hears of in the `ReportBook`; the orders in flight are polled, often while the
stream is down or has just lost a frame it could not read, now and then when
it is up; `reports` drains the book.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import structlog

from workbench.exceptions import ConfigurationError
from workbench.exchanges.config import ExchangeConfig
from workbench.exchanges.connect import ccxt, clock_refused, map_error
from workbench.exchanges.venue_orders import ExecutionReport, ReportBook, VenueOrder
from workbench.telemetry import BurstLog

log = structlog.get_logger(__name__)
_bad_frames = BurstLog("venue_bad_frames", 5.0)  # logged at most every 5 s
RATE_LIMIT_PAUSE_MAX_S = 300.0  # a Retry-After believed up to this
LOST_FRAME_FAST_POLL_S = 10.0
"""How long after a report frame that could not be read the orders in flight are polled fast."""


class ReportStream:
    """The report half of `CcxtVenue` (which sets these attributes up)."""

    cfg: ExchangeConfig
    name: str
    stats: Counter[str]
    ws_up: bool
    _ex: Any
    _book: ReportBook
    _fatal: BaseException | None
    _frame_lost_at = -1e9  # when a report frame last failed to read (monotonic)
    _limited_until = 0.0  # no request before (monotonic): the exchange's rate limit

    async def _resync_clock(self, resync: bool = True) -> None:
        raise NotImplementedError  # `CcxtVenue._resync_clock`

    def reports(self, timeout_s: float = 0.0) -> list[ExecutionReport]:
        """Execution reports since the last call (waits up to ``timeout_s`` for the first).

        Raises:
            ConfigurationError: the watcher stopped on a refused key.
        """
        if self._fatal is not None:
            raise self._fatal
        return self._book.drain(timeout_s)

    async def _watch_reports(self) -> None:
        delay = self.cfg.reconnect_initial_s
        while True:
            try:
                orders = await self._ex.watch_orders()
            except asyncio.CancelledError:
                raise
            except ccxt.BaseError as e:
                err = map_error(e, self.name, "watch_orders")
                if clock_refused(e):
                    await self._resync_clock()
                if isinstance(err, ConfigurationError):
                    self._fatal = err
                    log.error("venue_stream_refused", exchange=self.name, error=str(err))
                    return
                if self.ws_up:
                    log.warning("venue_stream_lost", exchange=self.name, error=str(err))
                self.ws_up = False
                self.stats["ws_errors"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            except Exception as e:  # a bug or an odd answer must not end the reports unseen
                self.stats["ws_errors"] += 1
                log.error("venue_stream_error", exchange=self.name, error=repr(e)[:300])
                await asyncio.sleep(self.cfg.reconnect_max_s)
                continue
            if not self.ws_up:
                self.ws_up = True
                log.info("venue_stream_connected", exchange=self.name)
            delay = self.cfg.reconnect_initial_s
            for o in orders:
                self._book.note(VenueOrder.from_ccxt(o), "ws")

    def _bad_frame(self, e: Exception) -> None:
        """A report frame ccxt could not read: counted, and what it said is polled for."""
        self.stats["bad_frames"] += 1
        self._frame_lost_at = time.monotonic()
        _bad_frames(exchange=self.name, count=self.stats["bad_frames"], error=repr(e)[:200])

    async def _poll_loop(self) -> None:
        """Poll the orders in flight: often while the stream is down or lost a frame (for
        ``LOST_FRAME_FAST_POLL_S``), now and then when it is up."""
        while True:
            interval = self.cfg.poll_interval_s
            lost = time.monotonic() - self._frame_lost_at < LOST_FRAME_FAST_POLL_S
            await asyncio.sleep(interval if self.ws_up and not lost else min(interval, 0.5))
            await self._poll_in_flight()

    async def _retry_after(self, coro: Any) -> Any:
        """``await coro``; a rate-limit error carries its own answer's ``Retry-After`` (read
        at once, on the loop: another request's answer would overwrite the headers)."""
        try:
            return await coro
        except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as e:
            e.retry_after = (self._ex.last_response_headers or {}).get("Retry-After")
            raise

    def _rate_limited(self, fallback_s: float, retry_after: Any = None) -> None:
        """Pause every request (but cancels) for what the exchange asked (``retry_after``, its
        answer's ``Retry-After`` in seconds; else ``fallback_s``)."""
        try:
            pause = float(retry_after if retry_after is not None else fallback_s)
        except (TypeError, ValueError):
            pause = fallback_s
        pause = min(max(pause, fallback_s), RATE_LIMIT_PAUSE_MAX_S)
        self._limited_until = max(self._limited_until, time.monotonic() + pause)
        self.stats["rate_limited"] += 1

    async def _poll_in_flight(self) -> None:
        """REST fallback: fetch every order in flight once (not during a rate-limit pause)."""
        if time.monotonic() < self._limited_until:
            return
        for cid, symbol in self._book.poll_due():
            self.stats["polls"] += 1
            try:
                o = await self._retry_after(
                    self._ex.fetch_order(None, symbol, {"clientOrderId": cid})
                )
            except ccxt.OrderNotFound:  # archived or lost: polled less and less often
                self._book.not_found(cid, self.name)
                continue
            except Exception as e:  # not only ccxt's: the poller must outlive an odd answer
                log.warning("venue_poll_failed", client_order_id=cid, error=type(e).__name__)
                if isinstance(e, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
                    self._rate_limited(
                        self.cfg.reconnect_initial_s, getattr(e, "retry_after", None)
                    )
                    return
                if clock_refused(e):
                    await self._resync_clock()
                    return  # the next round, on the clock measured again
                continue
            self._book.note(VenueOrder.from_ccxt(o), "poll")
