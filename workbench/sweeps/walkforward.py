"""Walk-forward windows: rolling train/test splits of the data, by time or by row share.

``train=5d,test=1d`` rolls a 5-day train window and the 1-day test window
right after it forward by the test length until the data ends (units ``s``,
``m``, ``h``, ``d``, ``w``). ``train=0.5,test=0.1`` does the same in shares of
the rows. The last test window may be shorter than the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from workbench.exceptions import ConfigurationError

_UNITS_NS = {
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3_600 * 10**9,
    "d": 86_400 * 10**9,
    "w": 7 * 86_400 * 10**9,
}
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
MAX_WINDOWS = 10_000
"""Most windows a walk-forward may have (a 1 s test length over weeks is a mistake)."""
MAX_TRAIN_RUNS = 1_000_000
"""Most train replays (windows x combinations) a walk-forward may ask for."""


@dataclass(frozen=True, slots=True)
class WalkForwardSpec:
    """Train and test lengths: whole nanoseconds (``unit="time"``) or row shares (``"rows"``)."""

    train: float
    test: float
    unit: str
    text: str


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward step: train rows ``train`` then test rows ``test`` (half-open)."""

    index: int
    train: tuple[int, int]
    test: tuple[int, int]


def parse_walk_forward(text: str) -> WalkForwardSpec:
    """``train=LEN,test=LEN`` with both lengths durations or both shares in (0, 1).

    Raises:
        ConfigurationError: naming the part of ``text`` that is wrong.
    """
    where = f"walk-forward {text!r}"
    parts: dict[str, tuple[float, str]] = {}
    raws: dict[str, str] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in ("train", "test"):
            raise ConfigurationError(f"{where}: expected train=LEN,test=LEN, got {item.strip()!r}")
        m = _LENGTH.match(raw)
        if not m:
            raise ConfigurationError(
                f"{where}: {key}={raw.strip()!r} is neither a duration (5d, 12h, 30m) "
                "nor a share of the rows (0.2)"
            )
        if key in parts:
            raise ConfigurationError(f"{where}: {key}= given twice")
        parts[key] = (float(m.group(1)), m.group(2))
        raws[key] = raw.strip()
    if set(parts) != {"train", "test"}:
        raise ConfigurationError(f"{where}: give both train= and test=")
    (train, tu), (test, su) = parts["train"], parts["test"]
    if bool(tu) != bool(su):
        raise ConfigurationError(f"{where}: train and test must both be durations or both shares")
    if train <= 0 or test <= 0:
        raise ConfigurationError(f"{where}: lengths must be > 0")
    if not tu:
        if train + test > 1:
            raise ConfigurationError(f"{where}: shares train + test must be <= 1")
        return WalkForwardSpec(train, test, "rows", text)
    # Whole nanoseconds: a float near 1.7e18 ns is off by up to 256 ns, and a
    # boundary off by that puts the ticks beside it in the wrong window.
    train_ns, test_ns = round(train * _UNITS_NS[tu]), round(test * _UNITS_NS[su])
    for key, ns in (("train", train_ns), ("test", test_ns)):
        if ns < 1:
            raise ConfigurationError(
                f"{where}: {key}={raws[key]} rounds to 0 ns; a length is at least 1 ns"
            )
    return WalkForwardSpec(train_ns, test_ns, "time", text)


def windows(spec: WalkForwardSpec, ts_ns: np.ndarray) -> list[Window]:
    """The rolling windows of ``spec`` over ticks stamped ``ts_ns`` (in time order).

    Raises:
        ConfigurationError: the ticks are not in time order, or no window fits.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts)
    if n and bool(np.any(ts[1:] < ts[:-1])):
        row = int(np.flatnonzero(ts[1:] < ts[:-1])[0]) + 1
        raise ConfigurationError(f"walk-forward needs ticks in time order; row {row} goes back")
    out: list[Window] = []
    if spec.unit == "rows":
        train_n, test_n = max(1, round(spec.train * n)), max(1, round(spec.test * n))
        _check_count(spec, -(-(n - train_n) // test_n) if n > train_n else 0, n)
        start = 0
        while start + train_n < n:
            lo, mid = start, start + train_n
            out.append(Window(len(out), (lo, mid), (mid, min(mid + test_n, n))))
            start += test_n
    elif n:
        t0, t_end = int(ts[0]), int(ts[-1])
        train_ns, test_ns = int(spec.train), int(spec.test)  # ints: exact boundaries
        span = t_end - t0
        steps = (span - train_ns) // test_ns + 1 if span >= train_ns else 0
        _check_count(spec, steps, n)
        k = 0
        while True:
            train_lo = t0 + k * test_ns
            train_hi = train_lo + train_ns
            if train_hi > t_end:
                break
            test_hi = train_hi + test_ns
            lo, mid, hi = np.searchsorted(ts, [train_lo, train_hi, test_hi], side="left")
            if mid > lo and hi > mid:
                out.append(Window(len(out), (int(lo), int(mid)), (int(mid), int(hi))))
            k += 1
    if not out:
        raise ConfigurationError(
            f"walk-forward {spec.text!r}: no train window followed by test data fits "
            f"in the {n} ticks given"
        )
    return out


def _check_count(spec: WalkForwardSpec, steps: int, n: int) -> None:
    """Refuse more than `MAX_WINDOWS` steps before any is made (a tiny test length).

    Raises:
        ConfigurationError: naming the count and the spec.
    """
    if steps > MAX_WINDOWS:
        raise ConfigurationError(
            f"walk-forward {spec.text!r}: {steps:,} windows over the {n:,} ticks given; "
            f"at most {MAX_WINDOWS:,}: use a longer test length"
        )
