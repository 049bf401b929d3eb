"""Tick feeds behind the gateway: a seeded simulated live feed and a file replay.

A feed hands out `TickBatch`es that are due now; the gateway publishes them.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from workbench.config import ReplayFeedConfig, SimulatedFeedConfig, WorkbenchConfig
from workbench.domain.model import TickBatch

if TYPE_CHECKING:
    from workbench.marketdata.table import TickTable

_log = structlog.get_logger(__name__)
PLAN_TICKS = 256
"""Simulated ticks whose prices are drawn together, ahead of their time (see `SimulatedFeed`)."""
MAX_POLL_TICKS = 10_000
"""Simulated ticks one poll hands out at most: a feed far behind (a stopped process) catches
up over several polls, not in one list of millions."""


class Feed(Protocol):
    """Where ticks come from."""

    def poll(self, max_ticks: int) -> list[TickBatch]:
        """Batches due now (possibly none), at most ``max_ticks`` ticks in all."""
        ...

    def seconds_to_next(self) -> float:
        """Seconds until the next tick is due (0 = now)."""
        ...

    @property
    def exhausted(self) -> bool:
        """True once every tick was handed out."""
        ...

    @property
    def total(self) -> int:
        """Ticks handed out so far."""
        ...


class SimulatedFeed:
    """A seeded random walk per symbol at a fixed rate, timestamped by the wall clock.

    Symbols take turns; tick ``k`` is due ``k / (rate_per_s * len(symbols))``
    seconds after the first poll.
    """

    def __init__(self, cfg: SimulatedFeedConfig) -> None:
        self._cfg = cfg
        self._rng = random.Random(cfg.seed)
        self._prices = {s: cfg.start_price for s in cfg.symbols}
        self._interval_s = 1.0 / (cfg.rate_per_s * len(cfg.symbols))
        self._k = 0
        self._t0: float | None = None
        self._last_ts = 0
        self._walk: list[tuple[str, float]] = []  # planned (symbol, price), see `_plan`
        self._next = 0  # the next tick's index in ``_walk``
        self._planned = 0  # ticks planned so far

    @property
    def exhausted(self) -> bool:
        return bool(self._cfg.max_ticks) and self._k >= self._cfg.max_ticks

    @property
    def total(self) -> int:
        return self._k

    def seconds_to_next(self) -> float:
        if self._t0 is None:
            return 0.0
        return max(0.0, self._t0 + self._k * self._interval_s - time.monotonic())

    def _plan(self) -> list[tuple[str, float]]:
        """The walk's next `PLAN_TICKS` (symbol, price): worked out together, not per tick.

        Prices do not depend on when ticks go out, so they are drawn ahead in
        one tight loop, which costs a fraction of drawing each as it is due
        (in a live run, after a sleep, with cold caches). Only the time stamp
        is taken as a tick goes out. The walk is the same for a seed.
        """
        cfg = self._cfg
        syms, n, tick, vol = cfg.symbols, len(cfg.symbols), cfg.tick_size, cfg.volatility_ticks
        gauss, prices, k = self._rng.gauss, self._prices, self._planned
        plan = []
        for _ in range(PLAN_TICKS):
            sym = syms[k % n]
            price = round(max(tick, prices[sym] + round(gauss(0.0, vol)) * tick), 10)
            prices[sym] = price
            plan.append((sym, price))
            k += 1
        self._planned = k
        return plan

    def poll(self, max_ticks: int) -> list[TickBatch]:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = int((now - self._t0) / self._interval_s) + 1 - self._k
        if self._cfg.max_ticks:
            due = min(due, self._cfg.max_ticks - self._k)
        due = min(due, max_ticks, MAX_POLL_TICKS)
        batches: list[TickBatch] = []
        for _ in range(max(0, due)):
            if self._next >= len(self._walk):
                self._walk, self._next = self._plan(), 0
            sym, price = self._walk[self._next]
            self._next += 1
            ts = max(time.time_ns(), self._last_ts)
            self._last_ts = ts
            self._k += 1
            if batches and batches[-1].symbol == sym:
                b = batches[-1]
                b.ts_ns.append(ts)
                b.price.append(price)
                b.size.append(1.0)
            else:
                batches.append(TickBatch(sym, self._k, [ts], [price], [1.0]))
        return batches


class ReplayFeed:
    """A tick file, as fast as allowed (speed 0) or at ``speed`` x real time.

    The file is validated completely before the first tick goes out, so a bad
    row fails the run before anything is published. At speed 0 a Parquet file
    with integer timestamps is streamed in chunks (`workbench.marketdata.stream`)
    and never held whole; at other speeds it is loaded whole through the same
    reader (numpy only, no pyarrow). A recorded dataset folder is loaded whole
    with the numpy-only dataset reader (`workbench.marketdata.dataset`). Any
    other file, or one that needs the row checks' exact error or a repair, is
    loaded whole with `load_ticks`.
    """

    def __init__(self, cfg: ReplayFeedConfig, path: str) -> None:
        self._cfg = cfg
        self._i = 0
        self._t0: float | None = None
        self._batches: Iterator[TickBatch] | None = None
        self._run_ends: list[int] = []
        from workbench.marketdata.stream import open_stream

        stream = open_stream(path, symbol=cfg.symbol, price=cfg.price, fmt=cfg.format)
        self.streamed = stream is not None and cfg.speed == 0
        if stream is not None and cfg.speed == 0:
            self._table = None
            self._n = stream.rows
            self._batches = stream.batches(cfg.batch_size, first_seq=1)
            return
        if stream is not None:  # the same reader: no pyarrow in the gateway
            self._table = stream.table()
        else:
            self._table = _load_whole(cfg, path, lite=True)
        self._n = len(self._table)
        if cfg.speed == 0:
            self._batches = iter(self._table.batches(cfg.batch_size, first_seq=1))
        else:
            self._run_ends = [stop for _, _, stop in self._table.symbol_runs()]

    @classmethod
    def from_config(cls, cfg: WorkbenchConfig) -> ReplayFeed:
        """Build from the whole config (to resolve the file path).

        Raises:
            ConfigurationError: the file cannot be read as ticks (a restart
                would not help: the supervisor does not retry it).
        """
        from workbench.exceptions import ConfigurationError, DataError

        path = str(cfg.resolve(cfg.gateway.replay.path))
        _log.info("replay_loading", path=path)  # a big file takes a while: say what
        started = time.monotonic()
        try:
            feed = cls(cfg.gateway.replay, path)
        except DataError as e:
            raise ConfigurationError(f"{cfg.source}: gateway.replay.path: {e}") from e
        seconds = round(time.monotonic() - started, 3)
        _log.info("replay_loaded", path=path, ticks=feed.size, streamed=feed.streamed,
                  seconds=seconds)  # fmt: skip
        return feed

    @property
    def exhausted(self) -> bool:
        return self._i >= self._n

    @property
    def total(self) -> int:
        return self._i

    @property
    def size(self) -> int:
        """Ticks in the file."""
        return self._n

    @property
    def _ticks(self) -> TickTable:
        """The loaded table; a streamed replay (speed 0) has none and never asks."""
        if self._table is None:
            raise RuntimeError("a streamed replay has no tick table")
        return self._table

    def seconds_to_next(self) -> float:
        if self._cfg.speed == 0 or self._t0 is None or self.exhausted:
            return 0.0
        ts_ns = self._ticks.ts_ns
        due = self._t0 + (int(ts_ns[self._i]) - int(ts_ns[0])) / 1e9 / self._cfg.speed
        return max(0.0, due - time.monotonic())

    def poll(self, max_ticks: int) -> list[TickBatch]:
        if self.exhausted:
            return []
        if self._batches is not None:
            batch = next(self._batches)
            self._i += len(batch)
            return [batch]
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t = self._ticks
        limit_ts = int(t.ts_ns[0]) + int((now - self._t0) * self._cfg.speed * 1e9)
        run_end = self._run_ends[bisect.bisect_right(self._run_ends, self._i)]
        hi = min(run_end, self._i + min(max_ticks, self._cfg.batch_size))
        j = self._i + int(t.ts_ns[self._i : hi].searchsorted(limit_ts, side="right"))
        if j == self._i:
            return []
        i, self._i = self._i, j
        return list(t.rows(i, j).batches(j - i, first_seq=i + 1))  # one run: one batch


def load_replay_ticks(cfg: WorkbenchConfig, *, lite: bool = False) -> TickTable:
    """The replay file of ``cfg`` as one table: the ticks the gateway replays, with bid/ask.

    Here, not with the replay sessions, so that a replay's executor loads its
    simulator's tape without the reporting stack (pandas) those import.

    Args:
        lite: Read a Parquet file or a recorded dataset folder with the
            numpy-only readers when they can, as a runner must (pyarrow is
            ~50 MB of RSS, pyarrow.dataset ~90 MB); pyarrow reads a big file
            about twice as fast.
    """
    r = cfg.gateway.replay
    path = cfg.resolve(r.path)
    if lite:
        from workbench.marketdata.stream import open_stream

        stream = open_stream(path, symbol=r.symbol, price=r.price, fmt=r.format)
        if stream is not None:
            return stream.table()
    return _load_whole(r, path, lite=lite)


def _load_whole(r: ReplayFeedConfig, path: str | Path, *, lite: bool) -> TickTable:
    """``load_ticks`` of the replay's file; a dataset folder without pyarrow if ``lite``."""
    if lite and Path(path).is_dir():
        from workbench.marketdata.dataset import load_dataset

        return load_dataset(path, symbol=r.symbol, lite=True, repair=r.repair)
    from workbench.marketdata.loaders import load_ticks

    return load_ticks(path, symbol=r.symbol, price=r.price, repair=r.repair, fmt=r.format)
