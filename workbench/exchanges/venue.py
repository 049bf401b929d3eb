"""A ccxt venue client: orders by client order id, execution reports, reconciliation.

The surface follows the broker lifecycle port: `submit` answers accepted (with
the venue's order id) or rejected; `reports` drains the execution reports
(``watch_orders``; REST polling of the orders in flight, `follow`-ed ones too,
as the fallback); `cancel`; `query` by client order id; `open_orders`;
`fills_since`; `order_fills` (every page); `balances` and `positions`.

Every call has a timeout and ccxt's rate limiter is on. Submitting is
idempotent on the client order id. When the answer is lost (a timeout, a
5xx) the order is looked up by its client order id; not found, it is still
in doubt for ``unanswered_order_s`` after the send (a late request is carried
out, and Binance takes a filled order's client id again: a re-send may be a
second order), so it is left to reconciliation, never created again. A failed
look-up leaves it in doubt too. A "duplicate order" answer means an open order
has the id: looked up, and in doubt if not found. An order found by the
client order id is taken as this one only if its symbol, side and quantity
match (else it is someone else's: refused, never adopted). Errors are mapped
by `connect.map_error`: a bad key is a `ConfigurationError` at once, a refused
order `OrderRejected`, anything transient a `TemporaryError`. A request the
exchange refused before carrying it out (`NotCarriedOut`: Binance -1021, this
machine's clock is off, measured again then) is created again, never looked up;
so is one refused for the rate limit (a 429 or 418) after the pause the
exchange asks for (``Retry-After``), if that is within a second. A longer pause
rejects it unsent, and every order until it is over: asking again during it
is what turns a 429 into an IP ban.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from functools import partial
from typing import Any

import structlog

from workbench.exceptions import ConfigurationError, OrderRejected, TemporaryError
from workbench.exchanges.config import ExchangeConfig
from workbench.exchanges.connect import (
    NotCarriedOut,
    RateLimited,
    ccxt,
    clock_refused,
    guard_clients,
    lot_amount,
    make_exchange,
    map_error,
)
from workbench.exchanges.loop import LoopThread
from workbench.exchanges.venue_orders import (
    TERMINAL,
    TRADES_PAGE,
    ExecutionReport,
    ReportBook,
    SubmitResult,
    VenueFill,
    VenueOrder,
    mismatch,
    trade_pages,
    venue_fill,
)
from workbench.exchanges.venue_stream import ReportStream

__all__ = ["CcxtVenue", "ExecutionReport", "SubmitResult", "VenueFill", "VenueOrder"]

log = structlog.get_logger(__name__)
_CLIENT_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,36}$")
RATE_LIMIT_WAIT_MAX_S = 1.0  # a submit waits out a rate-limit pause this long at most


class CcxtVenue(ReportStream):
    """One exchange account through ccxt; sync methods over a private event loop."""

    def __init__(self, cfg: ExchangeConfig, *, submit_attempts: int = 3) -> None:
        self.cfg = cfg
        self.name = cfg.exchange
        self._submit_attempts = submit_attempts
        self._timeout_s = cfg.timeout_ms / 1000
        self._loop = LoopThread(f"venue-{cfg.exchange}")
        self._ex = make_exchange(cfg, private=True)
        guard_clients(self._ex, self._bad_frame)  # one bad frame must not end the reports
        self._book = ReportBook()
        self._fatal: BaseException | None = None
        self._watcher: Any = None
        self._poller: Any = None
        self.stats: Counter[str] = Counter()
        self.ws_up = False

    # -- plumbing -----------------------------------------------------------------------

    def _call(self, coro: Any, action: str, order_id: str = "", *, in_pause: bool = False) -> Any:
        """Run ``coro`` on the loop; ccxt's errors mapped (`map_error`).

        During a rate-limit pause nothing is sent (`RateLimited`, not carried
        out) but with ``in_pause`` (a cancel: it only lowers exposure), and a
        429 or 418 starts one, with the ``Retry-After`` of its own answer.
        """
        if not in_pause and (left := self._limited_until - time.monotonic()) > 0:
            coro.close()
            raise RateLimited(
                f"{self.name} {action}: rate-limit pause, {left:.1f} s left: not sent"
            )
        self.stats["requests"] += 1
        try:
            return self._loop.call(
                self._retry_after(coro), self._timeout_s * 3 + 1, f"{self.name} {action}"
            )
        except ccxt.BaseError as e:
            err = map_error(e, self.name, action, order_id)
            if clock_refused(e):  # refused before it was carried out: measure, then retry
                self._measure_clock(resync=True)
            if isinstance(err, RateLimited):
                self._rate_limited(self.cfg.reconnect_initial_s, getattr(e, "retry_after", None))
            # not "from e": its traceback holds the loop's objects (the text is kept)
            raise err from None

    def _measure_clock(self, resync: bool = False) -> None:
        try:
            self._loop.call(self._resync_clock(resync), self._timeout_s * 3 + 1, "fetch_time")
        except Exception as e:  # best effort: the next refusal measures again
            log.warning("exchange_clock_unmeasured", exchange=self.name, error=str(e))

    async def _resync_clock(self, resync: bool = True) -> None:
        """Measure the exchange's clock; an unanswered or odd ``serverTime`` keeps the last.

        Signed requests carry this machine's time, and Binance refuses one more
        than 1 s ahead of its clock or older than ``recvWindow`` (-1021).
        """
        if resync:
            self.stats["clock_resyncs"] += 1
        try:
            offset = await self._ex.load_time_difference()
        except Exception as e:  # not only ccxt's: a proxy's page makes ccxt raise TypeError
            log.warning("exchange_clock_unmeasured", exchange=self.name, error=repr(e)[:200])
            return
        if resync:
            log.warning("exchange_clock_resynced", exchange=self.name, local_ahead_ms=offset)

    @property
    def clock_offset_ms(self) -> int:
        """How far this machine's clock is ahead of the exchange's (ms), as last measured."""
        return int(self._ex.options.get("timeDifference") or 0)

    def open(self) -> CcxtVenue:
        """Load the markets, check the key (one private call), start the report watcher.

        Raises:
            ConfigurationError: a bad key, or a configured symbol the exchange lacks.
            TemporaryError: the exchange cannot be reached.
        """
        self._call(self._ex.load_markets(), "load_markets")
        self._measure_clock()
        missing = [s for s in self.cfg.symbols if s not in self._ex.markets]
        if missing:
            raise ConfigurationError(
                f"gateway.exchange.symbols: {self.name} has no market {', '.join(missing)}"
            )
        self.balances()  # a bad key fails here, once, before any order
        self._watcher = self._loop.spawn(self._watch_reports())
        self._poller = self._loop.spawn(self._poll_loop())
        log.info(
            "venue_opened",
            exchange=self.name,
            symbols=self.cfg.symbols,
            local_ahead_ms=self.clock_offset_ms,
        )
        return self

    def close(self) -> None:
        """Stop the watcher and release the exchange's connections."""
        try:
            self._loop.call(self._ex.close(), 5, f"{self.name} close")
        except Exception as e:  # closing is best effort
            log.warning("venue_close_failed", exchange=self.name, error=repr(e))
        self._loop.stop()

    # -- orders -------------------------------------------------------------------------

    def submit(
        self,
        client_id: str,
        symbol: str,
        side: str,
        qty: float,
        price: float | None = None,
        order_type: str = "market",
        extra: dict[str, Any] | None = None,
    ) -> SubmitResult:
        """Place an order under ``client_id``; safe to call again with the same id.

        Raises:
            ConfigurationError: the key was refused.
            TemporaryError: no attempt got an answer and the order was not
                found by its client order id, the look-up got no answer
                either, or a "duplicate order" answer's look-up found nothing:
                it is in doubt; `query` it later, never re-send it.
        """
        if not _CLIENT_ID_OK.match(client_id):
            raise OrderRejected(client_id, "client order id must be 1-36 of [A-Za-z0-9._:-]")
        if not self._pause_waited():  # asking again during it turns a 429 into a ban
            left = self._limited_until - time.monotonic()
            return SubmitResult(False, None, f"{self.name} rate limit: not sent, {left:.1f} s left")
        params = {**(extra or {}), "clientOrderId": client_id}
        delay = self.cfg.reconnect_initial_s
        last: Exception | None = None
        unanswered: Exception | None = None  # an attempt that may have been carried out
        for attempt in range(1, self._submit_attempts + 1):
            sent_at = time.monotonic()
            try:
                o = self._call(
                    self._ex.create_order(symbol, order_type, side, qty, price, params),
                    "create_order",
                    client_id,
                )
                return self._accepted(VenueOrder.from_ccxt(o), symbol)
            except NotCarriedOut as e:  # `_call` measured the clock again; or a rate limit
                last = e
                log.warning("order_submit_refused", client_order_id=client_id, error=str(e))
                if isinstance(e, RateLimited) and not self._pause_waited():
                    pause = self._limited_until - time.monotonic()
                    return SubmitResult(False, None, f"{e}; paused {pause:.1f} s: not sent")
                continue
            except OrderRejected as e:
                if "Duplicate order" not in e.reason:
                    log.warning(
                        "order_rejected_by_venue", client_order_id=client_id, reason=e.reason
                    )
                    return SubmitResult(False, None, e.reason)
                last = e
            except TemporaryError as e:
                last = unanswered = e
                self.stats["submit_retries"] += 1
                log.warning(
                    "order_submit_went_unanswered",
                    client_order_id=client_id,
                    attempt=attempt,
                    error=str(e),
                )
            try:
                found = self.query(client_id, symbol)
            except TemporaryError as e:
                # Only "no such order" allows another create: the exchange may have
                # taken (and filled) the first, and then takes its client id again.
                raise self._in_doubt(client_id, f"after {last}; the look-up failed too: {e}") from e
            if found is not None:
                return self._adopt(found, symbol, side, qty)
            if last is unanswered and time.monotonic() - sent_at < self.cfg.unanswered_order_s:
                # Not found yet proves nothing: a late request is still carried out.
                wait = self.cfg.unanswered_order_s
                raise self._in_doubt(client_id, f"after {last}: not found yet, for {wait:g} s")
            if isinstance(last, OrderRejected):
                # "Duplicate order" said an open order has the id; a look-up that
                # cannot find it lags behind the exchange, and if that order closed
                # meanwhile, another create would be taken as a second order.
                raise self._in_doubt(client_id, "'Duplicate order', but no such order is found")
            time.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max_s)
        if not unanswered:  # every attempt refused for the clock: none was carried out
            return SubmitResult(False, None, str(last))
        raise TemporaryError(f"{self.name} create_order {client_id}: in doubt after {last}")

    def _pause_waited(self) -> bool:
        """Wait out a rate-limit pause within `RATE_LIMIT_WAIT_MAX_S`; False if it is longer."""
        left = self._limited_until - time.monotonic()
        if left > RATE_LIMIT_WAIT_MAX_S:
            return False
        if left > 0:
            time.sleep(left)
        return True

    def _in_doubt(self, client_id: str, why: str) -> TemporaryError:
        """Counted and logged: the error that leaves ``client_id`` to reconciliation."""
        self.stats["submit_in_doubt"] += 1
        log.error("order_in_doubt", client_order_id=client_id, error=why)
        return TemporaryError(f"{self.name} create_order {client_id}: in doubt {why}")

    def _adopt(self, found: VenueOrder, symbol: str, side: str, qty: float) -> SubmitResult:
        """``found`` by this submit's client order id: its order, if it is the same order."""
        diff = mismatch(found, symbol, side, lot_amount(self._ex, symbol, qty))
        if diff:
            # Not ours (another journal's, or placed by hand): adopting it would
            # journal its fills as this order's. Fail closed.
            self.stats["submit_foreign_order"] += 1
            cid = found.client_order_id
            log.error(
                "order_client_id_taken",
                client_order_id=cid,
                venue_order_id=found.venue_order_id,
                mismatch=diff,
            )
            reason = f"{self.name}: client order id {cid} belongs to another order ({diff})"
            return SubmitResult(False, None, reason)
        self.stats["submit_found_after_error"] += 1
        return self._accepted(found, symbol)

    @property
    def markets(self) -> Any:
        """The ccxt exchange with its loaded markets: lot steps and ticks (`connect`), no I/O."""
        return self._ex

    def _accepted(self, order: VenueOrder, symbol: str) -> SubmitResult:
        self._book.track(order, symbol)
        return SubmitResult(True, order)

    def follow(self, order: VenueOrder) -> None:
        """Report and poll an open order found by `query` as if this client had placed it.

        For orders placed before a restart: the stream alone misses their fills
        while it is down or silent.
        """
        if order.status not in TERMINAL:
            self._accepted(order, order.symbol)

    def query(self, client_id: str, symbol: str) -> VenueOrder | None:
        """The order with this client order id, or None when the exchange has none."""
        try:
            o = self._call(
                self._ex.fetch_order(None, symbol, {"clientOrderId": client_id}), "fetch_order"
            )
        except OrderRejected:  # OrderNotFound
            return None
        return VenueOrder.from_ccxt(o)

    def cancel(self, client_id: str, symbol: str) -> VenueOrder | None:
        """Cancel by client order id; None when the exchange has no open order by it."""
        try:
            o = self._call(
                self._ex.cancel_order(None, symbol, {"clientOrderId": client_id}),
                "cancel_order",
                in_pause=True,  # a halt's cancels go whatever the pause
            )
        except OrderRejected:
            return None
        order = VenueOrder.from_ccxt(o)
        self._book.note(order, "rest")
        return order

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Every open order (of ``symbol``, or of every configured symbol)."""
        symbols = [symbol] if symbol else self.cfg.symbols
        out: list[VenueOrder] = []
        for s in symbols:
            rows = self._call(self._ex.fetch_open_orders(s), "fetch_open_orders")
            out += [VenueOrder.from_ccxt(o) for o in rows]
        return out

    def fills_since(self, symbol: str, since_ms: int = 0) -> list[VenueFill]:
        """The account's trades in ``symbol`` from ``since_ms`` (exchange time), every page.

        Binance lists at most a page from a start time (and, with neither a start
        nor a ``fromId``, the newest page): the rest is asked for by trade id.
        """
        call = partial(self._call, action="fetch_my_trades")
        fetch = partial(self._ex.fetch_my_trades, symbol, None, TRADES_PAGE)
        if not since_ms:
            return trade_pages(lambda p: call(fetch(p)), {})
        first = [
            venue_fill(t) for t in call(self._ex.fetch_my_trades(symbol, since_ms, TRADES_PAGE))
        ]
        if len(first) < TRADES_PAGE or not all(f.trade_id.isdigit() for f in first):
            return first
        seen = {f.trade_id for f in first}
        more = trade_pages(lambda p: call(fetch(p)), {}, max(int(f.trade_id) for f in first) + 1)
        return first + [f for f in more if f.trade_id not in seen]

    def order_fills(self, venue_order_id: str, symbol: str, from_id: int = 0) -> list[VenueFill]:
        """The trades of one order (by the exchange's order id) from trade id ``from_id`` on."""
        fetch = partial(self._ex.fetch_my_trades, symbol, None, TRADES_PAGE)
        call = partial(self._call, action="fetch_my_trades")
        rows = trade_pages(lambda p: call(fetch(p)), {"orderId": venue_order_id}, from_id)
        return [f for f in rows if f.venue_order_id == venue_order_id]

    def balances(self) -> dict[str, float]:
        """Total balance per asset (non-zero ones)."""
        b = self._call(self._ex.fetch_balance(), "fetch_balance")
        return {a: float(v) for a, v in (b.get("total") or {}).items() if v}

    def positions(self) -> dict[str, float]:
        """Spot positions: the base asset's balance per configured symbol."""
        totals = self.balances()
        return {s: totals.get(s.split("/")[0], 0.0) for s in self.cfg.symbols}
