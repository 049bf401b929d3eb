"""A live feed from a real exchange through ccxt.pro's WebSocket API.

``gateway.feed = "exchange"`` with ``[gateway.exchange]``: every trade
(``watch_trades``) and/or the mid of every best bid/ask change
(``watch_bids_asks``) of the configured symbols becomes a tick. A tick's
``ts_ns`` is the exchange's time (the receive time when the exchange sends
none, as Binance's book ticker), never earlier than the symbol's previous
tick; the local receive time of every tick is kept beside it (`last_recv_ns`,
which the recorder writes) and the gap between the two is in `health`.

Each stream runs on a private event loop thread. A dropped connection is
retried with exponential backoff (``reconnect_initial_s`` .. ``reconnect_max_s``)
and ccxt resubscribes; trade ids skipped across a reconnect are counted
(``missed_trades``). A feed without a tick for ``stale_after_s`` reports
itself stale in `health` (the gateway's heartbeat carries it, the supervisor
marks the gateway unhealthy and raises an alert). A refused symbol or key
ends the feed with a `ConfigurationError`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from typing import Any

import structlog

from workbench.config import WorkbenchConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import ConfigurationError, WorkbenchError
from workbench.exchanges.config import ExchangeConfig
from workbench.exchanges.loop import LoopThread

log = structlog.get_logger(__name__)
IDLE_WAIT_S = 0.005


class ExchangeFeed:
    """Ticks from ccxt.pro watchers; implements the gateway's `Feed`."""

    def __init__(self, cfg: ExchangeConfig) -> None:
        # Here, not at module level: only an exchange gateway pays for ccxt (and
        # connect raises a ConfigurationError naming the extra when it is missing).
        from workbench.exchanges.connect import ccxt, make_exchange, map_error

        self._ccxt = ccxt
        self._map_error = map_error
        self.cfg = cfg
        self._ex = make_exchange(cfg)
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, int, float, float, int]] = deque()
        self._k = 0
        self._last_ts: dict[str, int] = {}
        self._last_trade_id: dict[str, int] = {}
        self.first_trade_id: dict[str, int] = {}
        self._fatal: WorkbenchError | None = None
        self._started = time.monotonic()
        self._last_tick = 0.0
        self._stale = False
        self._lag_ns = 0
        self.stats: Counter[str] = Counter()
        self.last_recv_ns: list[list[int]] = []  # per batch of the last poll
        self._loop = LoopThread(f"feed-{cfg.exchange}")
        self._tasks = [self._loop.spawn(self._run())]

    @classmethod
    def from_config(cls, cfg: WorkbenchConfig) -> ExchangeFeed:
        """Build from the whole config."""
        return cls(cfg.gateway.exchange)

    # -- Feed ----------------------------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        return False  # a live feed never ends by itself

    @property
    def total(self) -> int:
        return self._k

    def seconds_to_next(self) -> float:
        return 0.0 if self._pending else IDLE_WAIT_S

    def poll(self, max_ticks: int) -> list[TickBatch]:
        """The ticks received since the last poll, as batches of consecutive same-symbol ticks.

        Raises:
            ConfigurationError: the exchange refused a symbol or the key.
        """
        if self._fatal is not None:
            raise self._fatal
        self._check_stale()
        with self._lock:
            n = min(max_ticks, len(self._pending))
            rows = [self._pending.popleft() for _ in range(n)]
        batches: list[TickBatch] = []
        recv: list[list[int]] = []
        for sym, ts, price, size, recv_ns in rows:
            self._k += 1
            if batches and batches[-1].symbol == sym:
                b = batches[-1]
                b.ts_ns.append(ts)
                b.price.append(price)
                b.size.append(size)
                recv[-1].append(recv_ns)
            else:
                batches.append(TickBatch(sym, self._k, [ts], [price], [size]))
                recv.append([recv_ns])
        self.last_recv_ns = recv
        return batches

    @property
    def last_trade_id(self) -> dict[str, int]:
        """The newest trade id seen per symbol."""
        return dict(self._last_trade_id)

    def health(self) -> dict[str, Any]:
        """What the gateway's heartbeat carries about the feed."""
        self._check_stale()
        age = time.monotonic() - (self._last_tick or self._started)
        return {
            "feed_stale": self._stale,
            "feed_age_s": round(age, 3),
            "feed_reconnects": self.stats["reconnects"],
            "feed_missed_trades": self.stats["missed_trades"],
            "feed_lag_ms": round(self._lag_ns / 1e6, 3),
        }

    def close(self) -> None:
        """Stop the watchers and close the exchange's connections."""
        try:
            self._loop.call(self._ex.close(), 5, "close exchange")
        except Exception as e:  # best effort on the way out
            log.warning("feed_close_failed", error=repr(e))
        self._loop.stop()

    # -- staleness -----------------------------------------------------------------------

    def _check_stale(self) -> None:
        age = time.monotonic() - (self._last_tick or self._started)
        stale = age > self.cfg.stale_after_s
        if stale and not self._stale:
            self.stats["stale"] += 1
            log.warning("feed_went_stale", exchange=self.cfg.exchange, silent_s=round(age, 2))
        elif self._stale and not stale:
            log.info("feed_recovered", exchange=self.cfg.exchange)
        self._stale = stale

    # -- the watchers (on the loop thread) ------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._ex.load_markets()
        except self._ccxt.BaseError as e:
            err = self._map_error(e, self.cfg.exchange, "load_markets")
            if isinstance(err, ConfigurationError):
                self._fatal = err
                return
            log.warning("feed_markets_not_loaded", error=str(err))
        jobs = []
        if self.cfg.trades:
            jobs += [self._watch("trades", s) for s in self.cfg.symbols]
        if self.cfg.bids_asks:
            jobs.append(self._watch("bids_asks", None))
        await asyncio.gather(*jobs)

    async def _watch(self, kind: str, symbol: str | None) -> None:
        delay = self.cfg.reconnect_initial_s
        connected = False
        while True:
            try:
                if kind == "trades":
                    got = await self._ex.watch_trades(symbol)
                    self._on_trades(symbol or "", got)
                else:
                    got = await self._ex.watch_bids_asks(self.cfg.symbols)
                    self._on_quotes(got)
            except asyncio.CancelledError:
                raise
            except self._ccxt.BaseError as e:
                err = self._map_error(e, self.cfg.exchange, f"watch_{kind}")
                if isinstance(err, ConfigurationError):
                    self._fatal = err
                    log.error("feed_refused", error=str(err))
                    return
                if connected:
                    self.stats["reconnects"] += 1
                    log.warning("feed_disconnected", kind=kind, symbol=symbol, error=str(err))
                connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            if not connected:
                log.info("feed_connected", kind=kind, symbol=symbol, exchange=self.cfg.exchange)
                connected = True
            delay = self.cfg.reconnect_initial_s

    def _push(self, symbol: str, ts_ms: int | None, price: float, size: float) -> None:
        recv = time.time_ns()
        ts = int(ts_ms) * 1_000_000 if ts_ms else recv
        ts = max(ts, self._last_ts.get(symbol, 0))
        self._last_ts[symbol] = ts
        self._lag_ns = recv - ts
        with self._lock:
            self._pending.append((symbol, ts, price, size, recv))
        self._last_tick = time.monotonic()

    def _on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        for t in trades:
            tid = _int_or_none(t.get("id"))
            last = self._last_trade_id.get(symbol)
            if tid is not None:
                if last is not None and tid <= last:
                    continue  # already published (a resubscription's replay)
                if last is not None and tid > last + 1:
                    self.stats["missed_trades"] += tid - last - 1
                    log.warning("feed_trades_missed", symbol=symbol, after=last, next=tid)
                self._last_trade_id[symbol] = tid
                self.first_trade_id.setdefault(symbol, tid)
            self._push(symbol, t.get("timestamp"), float(t["price"]), float(t["amount"] or 0.0))

    def _on_quotes(self, tickers: dict[str, dict[str, Any]]) -> None:
        for symbol, q in tickers.items():
            bid, ask = q.get("bid"), q.get("ask")
            if bid and ask:
                self._push(symbol, q.get("timestamp"), (float(bid) + float(ask)) / 2, 1.0)


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
