"""Synthetic ticks: a deterministic, mean-reverting random walk on a tick grid.

The walk is built to exercise support/resistance conditions placed a few tick
sizes around ``start_price``: it is pulled back towards the start price, so it
keeps revisiting those levels (falling to a support, rebounding, running to a
take-profit or a stop) instead of wandering off as a plain random walk does
over a long series.

Only ``random.Random(seed).random()`` draws are used: its output is fixed for
a seed across platforms and Python versions, so a seed always gives the same
table, and `write_ticks` then gives the same bytes.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path

from workbench.marketdata.columns import check_symbols
from workbench.marketdata.table import TickTable
from workbench.marketdata.writers import write_ticks

DEFAULT_START_TS_NS = 1_704_153_600_000_000_000
"""2024-01-02T00:00:00Z in nanoseconds."""

SAMPLE_SYMBOL = "ABC"
SAMPLE_TICKS = 5_000
SAMPLE_SEED = 42

MAX_GRID_TICKS = 2**53
"""The most tick sizes ``start_price`` may be: beyond, a float price cannot step one tick."""

# Trade sizes drawn uniformly from this list: mostly small lots, a few big ones.
_SIZES = (1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 10.0, 25.0)


def synth_ticks(
    symbol: str,
    n: int,
    seed: int,
    *,
    start_price: float = 100.0,
    tick_size: float = 0.01,
    volatility: float = 0.5,
    band_ticks: int = 300,
    start_ts_ns: int = DEFAULT_START_TS_NS,
    interval_ns: int = 100_000_000,
) -> TickTable:
    """``n`` ticks of ``symbol`` from a seeded, mean-reverting random walk.

    Prices sit on the ``tick_size`` grid, stay within about ``band_ticks``
    ticks of ``start_price`` (pulled back harder the further they stray; the
    typical distance is ``sqrt(band_ticks / 2)`` ticks) and are always > 0.
    Tick ``i`` is stamped ``start_ts_ns + i * interval_ns`` plus a jitter
    below ``interval_ns / 2``, so timestamps strictly increase.

    Args:
        symbol: The symbol of every tick.
        n: How many ticks.
        seed: Seed of the random generator; the same seed gives the same table.
        start_price: The first price and the level the walk reverts to.
        tick_size: The price grid.
        volatility: Standard deviation of one tick-to-tick price change, in
            tick sizes. At the default 0.5 three ticks in four keep the price.
        band_ticks: Reach of the pull towards ``start_price``, in ticks.
        start_ts_ns: Timestamp of the first tick, ns since the epoch (UTC).
        interval_ns: Mean time between ticks.

    Raises:
        ValueError: an argument is out of range; the message names it.
    """
    if not symbol:
        raise ValueError("symbol: must be a non-empty string")
    if check_symbols([symbol]):  # a file its own loader would refuse
        raise ValueError(f"symbol: {symbol!r} has spaces around it")
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    for name, value in (("tick_size", tick_size), ("volatility", volatility)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    if interval_ns < 1:
        raise ValueError(f"interval_ns: must be >= 1, got {interval_ns}")
    if not (math.isfinite(start_price) and 0 < start_price / tick_size < MAX_GRID_TICKS):
        # 1e307 / 0.01 is inf: round() raised an OverflowError.
        raise ValueError(
            f"start_price: must be a finite price > 0 and below {MAX_GRID_TICKS * tick_size:.6g} "
            f"(2**53 tick sizes of {tick_size:g}), got {start_price!r}"
        )
    step = max(1, math.ceil(volatility))  # ticks per price move
    move = (volatility / step) ** 2  # probability that the price moves at all
    anchor = round(start_price / tick_size)
    band = min(band_ticks, anchor - step - 1)  # keeps every price >= 1 tick
    if band < 1:
        raise ValueError(
            f"start_price: must be more than {step + 1} tick sizes above 0, got {start_price!r}"
        )
    # Every reachable price, rounded once to the tick grid's decimals.
    decimals = max(0, -Decimal(repr(tick_size)).as_tuple().exponent)  # type: ignore[operator]
    reach = band + step
    grid = [round((anchor + x) * tick_size, decimals) for x in range(-reach, reach + 1)]

    draw = random.Random(seed).random
    half = move / 2
    pull = half / band
    jitter = interval_ns // 2
    sizes = _SIZES
    n_sizes = len(sizes)
    ts_ns: list[int] = []
    price: list[float] = []
    size: list[float] = []
    x = 0  # ticks away from the anchor
    t = start_ts_ns
    for _ in range(n):
        ts_ns.append(t + int(draw() * jitter))
        price.append(grid[x + reach])
        size.append(sizes[int(draw() * n_sizes)])
        t += interval_ns
        # Up with probability half * (1 - x / band), down with half * (1 + x / band).
        u = draw()
        if u < move:
            x += step if u < half - pull * x else -step
    return TickTable([symbol] * n, ts_ns, price, size)


def generate_samples(out_dir: str | Path) -> list[Path]:
    """Write the project's sample tick files into ``out_dir``; return their paths.

    These are ``synth-ABC-5000.csv`` and its Parquet twin, the same as
    ``workbench data synth --symbol ABC --ticks 5000 --seed 42 --out FILE``.
    """
    table = synth_ticks(SAMPLE_SYMBOL, SAMPLE_TICKS, SAMPLE_SEED)
    stem = f"synth-{SAMPLE_SYMBOL}-{SAMPLE_TICKS}"
    out = Path(out_dir)
    return [write_ticks(table, out / f"{stem}{suffix}") for suffix in (".csv", ".parquet")]
