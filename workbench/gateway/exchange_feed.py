"""A live feed from a real exchange through ccxt.pro's WebSocket API.

``gateway.feed = "exchange"`` with ``[gateway.exchange]``: every trade
(``watch_trades``) and/or the mid of every best bid/ask change
(``watch_bids_asks``) of the configured symbols becomes a tick. A tick's
``ts_ns`` is the exchange's time, never earlier than the symbol's previous
tick; a quote the exchange sends without a time (Binance's book ticker) is
stamped with the receive time less the smallest recent trade lag, so it
stays on the exchange's clock beside the trades; a time more than
`MAX_AHEAD_S` ahead of the receive time is not believed (the receive time,
counted in ``ts_ahead``). The local receive time of every tick is kept beside
it (`last_recv_ns`, which the recorder writes) and the exchange's lag is in
`health`.

What the exchange sends is checked: a frame ccxt cannot read is dropped and
counted (``bad_frames``) and the stream goes on; a trade or quote without a
finite price above 0 (a size below 0, a bid above its ask) is never
published (``bad_ticks``). Each stream runs on a private event loop thread
and pings every ``stale_after_s`` (at most 180 s), so a connection that stops
answering is dropped within about twice that. A dropped connection is
retried with exponential backoff (``reconnect_initial_s`` ..
``reconnect_max_s``), failures logged; ccxt resubscribes; trade ids skipped
across a reconnect are counted (``missed_trades``), ids seen again are
dropped (``duplicate_trades``), and ids started over after a reconnect (a
testnet reset) are followed from there. A symbol without a tick for
``stale_after_s`` makes the feed stale in `health`, naming it (the gateway's
heartbeat carries it, the supervisor marks the gateway unhealthy and raises
an alert). A refused symbol or key, or a stream the exchange does not offer,
ends the feed with a `ConfigurationError`; watchers that end otherwise end
it with a `WorkbenchError` (the gateway is restarted).
"""

from __future__ import annotations

import asyncio
import math
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
MAX_AHEAD_S = 5.0
"""An exchange time further ahead of the receive time than this is not believed."""
LOG_EVERY_S = 5.0
"""Repeated warnings (bad frames, bad ticks, failed connects) at most this often."""
KEEPALIVE_MAX_MS = 180_000
RESTART_GAP = 1000
"""After a reconnect, trade ids this far (or half) below the last seen started over."""


class ExchangeFeed:
    """Ticks from ccxt.pro watchers; implements the gateway's `Feed`."""

    def __init__(self, cfg: ExchangeConfig) -> None:
        # Here, not at module level: only an exchange gateway pays for ccxt (and
        # connect raises a ConfigurationError naming the extra when it is missing).
        from workbench.exchanges.connect import ccxt, guard_clients, make_exchange, map_error

        if not (cfg.trades or cfg.bids_asks):
            raise ConfigurationError(
                "gateway.exchange: trades and bids_asks are both false: the feed would publish "
                "nothing"
            )
        self._ccxt = ccxt
        self._map_error = map_error
        self.cfg = cfg
        self._ex = make_exchange(cfg)
        ws = dict(self._ex.options.get("ws") or {})
        ws.setdefault("keepAlive", int(min(KEEPALIVE_MAX_MS, max(1000, cfg.stale_after_s * 1000))))
        self._ex.options["ws"] = ws
        guard_clients(self._ex, self._bad_frame)  # a bad frame is counted, not the end
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, int, float, float, int]] = deque()
        self._k = 0
        self._last_ts: dict[str, int] = {}
        self._last_trade_id: dict[str, int] = {}
        self.first_trade_id: dict[str, int] = {}
        self._fatal: WorkbenchError | None = None
        self._started = time.monotonic()
        self._last_tick_by: dict[str, float] = {}
        self._stale: list[str] = []
        self._lag_ns = 0
        self._lags: deque[int] = deque(maxlen=64)  # recent trades' receive - exchange time
        self._after_gap: set[str] = set()  # symbols whose watcher failed since their last trade
        self._far_ahead: dict[str, int] = {}  # a trade id far ahead, until one follows it
        self._logged: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.last_recv_ns: list[list[int]] = []  # per batch of the last poll
        self._loop = LoopThread(f"feed-{cfg.exchange}")
        self._tasks = [self._loop.spawn(self._run())]
        self._tasks[0].add_done_callback(self._watchers_ended)

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
        last = min(self._last_tick_by.get(sym, self._started) for sym in self.cfg.symbols)
        age = time.monotonic() - last  # the longest a symbol has been silent
        return {
            "feed_stale": bool(self._stale),
            "feed_stale_symbols": list(self._stale),
            "feed_age_s": round(age, 3),
            "feed_reconnects": self.stats["reconnects"],
            "feed_missed_trades": self.stats["missed_trades"],
            "feed_duplicate_trades": self.stats["duplicate_trades"],
            "feed_bad_frames": self.stats["bad_frames"],
            "feed_bad_ticks": self.stats["bad_ticks"],
            "feed_ts_ahead": self.stats["ts_ahead"],
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
        now = time.monotonic()
        limit = self.cfg.stale_after_s
        stale = [
            sym
            for sym in self.cfg.symbols
            if now - self._last_tick_by.get(sym, self._started) > limit
        ]
        if stale and stale != self._stale:
            self.stats["stale"] += 1
            age = now - min(self._last_tick_by.get(sym, self._started) for sym in stale)
            log.warning("feed_went_stale", exchange=self.cfg.exchange, symbols=stale,
                        silent_s=round(age, 2))  # fmt: skip
        elif self._stale and not stale:
            log.info("feed_recovered", exchange=self.cfg.exchange)
        self._stale = stale

    def _warn(self, event: str, **kw: Any) -> None:
        """Log ``event`` at most every `LOG_EVERY_S` (the stats count every one)."""
        now = time.monotonic()
        if now - self._logged.get(event, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[event] = now
            log.warning(event, exchange=self.cfg.exchange, **kw)

    def _watchers_ended(self, fut: Any) -> None:
        if fut.cancelled() or self._fatal is not None:
            return
        err = fut.exception()
        if err is not None:
            log.error("feed_watchers_failed", error=repr(err))
        self._fatal = WorkbenchError(f"exchange feed: its watchers ended ({err!r})")

    def _bad_frame(self, e: Exception) -> None:
        self.stats["bad_frames"] += 1
        self._warn("feed_bad_frames", count=self.stats["bad_frames"], error=repr(e)[:200])

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
        if self.cfg.bids_asks:  # one watcher each: one for all returns one symbol per wake-up
            jobs += [self._watch("bids_asks", s) for s in self.cfg.symbols]  # and drops the rest
        await asyncio.gather(*jobs)

    async def _watch(self, kind: str, symbol: str | None) -> None:
        delay = self.cfg.reconnect_initial_s
        connected = False
        failures = 0
        while True:
            try:
                if kind == "trades":
                    got = await self._ex.watch_trades(symbol)
                    self._on_trades(symbol or "", got)
                else:
                    got = await self._ex.watch_bids_asks([symbol])
                    self._on_quotes(got)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # not only ccxt's: a watcher never dies silently
                err = self._failure(e, kind)
                if isinstance(err, ConfigurationError):
                    self._fatal = err
                    log.error("feed_refused", error=str(err))
                    return
                failures += 1
                text = str(err) if err is not e else repr(e)
                if connected:
                    self.stats["reconnects"] += 1
                    log.warning("feed_disconnected", kind=kind, symbol=symbol, error=text)
                else:
                    self._warn("feed_connect_failed", kind=kind, symbol=symbol, error=text,
                               attempts=failures)  # fmt: skip
                if kind == "trades" and symbol:
                    self._after_gap.add(symbol)
                connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            if not connected:
                log.info("feed_connected", kind=kind, symbol=symbol, exchange=self.cfg.exchange)
                connected, failures = True, 0
            delay = self.cfg.reconnect_initial_s

    def _failure(self, e: Exception, kind: str) -> Exception:
        """A watcher's failure as the feed sees it: a `ConfigurationError` ends it for good (a
        refused symbol or key, a stream not offered); ccxt's others mapped; ``e`` otherwise."""
        if isinstance(e, self._ccxt.NotSupported):
            return ConfigurationError(
                f"gateway.exchange.{kind}: {self.cfg.exchange} does not offer watch_{kind} "
                f"({e}); turn it off"
            )
        if isinstance(e, self._ccxt.BaseError):
            return self._map_error(e, self.cfg.exchange, f"watch_{kind}")
        return e

    def _push(self, symbol: str, ts_ms: int | None, price: float, size: float) -> None:
        recv = time.time_ns()
        if ts_ms:
            ts = int(ts_ms) * 1_000_000
            if ts > recv + MAX_AHEAD_S * 1e9:  # one bad stamp would hold the symbol's clock
                self.stats["ts_ahead"] += 1
                self._warn("feed_time_ahead", symbol=symbol, ahead_s=round((ts - recv) / 1e9, 3))
                ts = recv  # and not a lag: the quotes' stamps come from the lags
            else:
                self._lag_ns = recv - ts
                self._lags.append(recv - ts)
        else:  # on the exchange's clock as its trades show it (the receive time without any)
            ts = recv - (min(self._lags) if self._lags else 0)
        ts = max(ts, self._last_ts.get(symbol, 0))
        self._last_ts[symbol] = ts
        with self._lock:
            self._pending.append((symbol, ts, price, size, recv))
        self._last_tick_by[symbol] = time.monotonic()

    def _bad_tick(self, symbol: str, what: str) -> None:
        self.stats["bad_ticks"] += 1
        self._warn("feed_bad_ticks", symbol=symbol, count=self.stats["bad_ticks"], last=what)

    def _on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        after_gap = symbol in self._after_gap
        self._after_gap.discard(symbol)
        for t in trades:
            tid = _int_or_none(t.get("id"))
            last = self._last_trade_id.get(symbol)
            if tid is not None and last is not None and tid <= last:
                if after_gap and (tid < last - RESTART_GAP or tid <= last // 2):
                    log.warning("feed_trade_ids_restarted", symbol=symbol, last=last, next=tid)
                    last = None  # the exchange started its ids over (a testnet reset)
                else:
                    self.stats["duplicate_trades"] += 1
                    continue  # already published (a resubscription's replay)
            resumed, after_gap = after_gap, False
            if tid is not None and last is not None and tid > last + RESTART_GAP and not resumed:
                # On a live stream ids are consecutive: one far ahead is taken once the next
                # trade follows it, or one bogus id would drop every real trade as seen.
                ahead, self._far_ahead[symbol] = self._far_ahead.get(symbol), tid
                if ahead is None or not ahead < tid <= ahead + RESTART_GAP:
                    self._bad_tick(symbol, f"trade {tid}: {tid - last} ids after {last}")
                    continue
            self._far_ahead.pop(symbol, None)
            if tid is not None:
                if last is not None and tid > last + 1:
                    self.stats["missed_trades"] += tid - last - 1
                    log.warning("feed_trades_missed", symbol=symbol, after=last, next=tid)
                self._last_trade_id[symbol] = tid
                self.first_trade_id.setdefault(symbol, tid)
            try:
                price, size = float(t["price"]), float(t.get("amount") or 0.0)
            except (KeyError, TypeError, ValueError):
                self._bad_tick(symbol, f"trade {tid}: price {t.get('price')!r}")
                continue
            if not (math.isfinite(price) and price > 0 and math.isfinite(size) and size >= 0):
                self._bad_tick(symbol, f"trade {tid}: price {price!r}, size {size!r}")
                continue
            self._push(symbol, t.get("timestamp"), price, size)

    def _on_quotes(self, tickers: dict[str, dict[str, Any]]) -> None:
        for symbol, q in tickers.items():
            try:
                bid, ask = float(q.get("bid") or 0.0), float(q.get("ask") or 0.0)
            except (TypeError, ValueError):
                self._bad_tick(symbol, f"quote {q.get('bid')!r} / {q.get('ask')!r}")
                continue
            if not (bid and ask):
                continue  # a side empty: no mid
            if not (math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask):
                self._bad_tick(symbol, f"quote bid {bid!r}, ask {ask!r}")
                continue
            self._push(symbol, q.get("timestamp"), (bid + ask) / 2, 1.0)


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
