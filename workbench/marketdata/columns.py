"""Column converters and row checks shared by every tick file format.

Each function works on one column of one chunk and returns the values plus
the problems it found, as ``(index, reason, detail)`` with a chunk-relative
index. The fast path converts a whole column in C (``map(float, ...)``,
``min``/``sum``); only a column that fails it is walked row by row to say
exactly which rows are bad. A bad value becomes ``None`` in the output.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

Issue = tuple[int, str, str]
"""``(chunk-relative index, reason, detail)``; the reason groups repair notes."""

UNPARSEABLE_TS = "unparseable timestamp"
UNPARSEABLE_NUMBER = "unparseable number"
MISSING_VALUE = "missing value"
INVALID_PRICE = "NaN, infinite or non-positive price"
CROSSED = "crossed quote (bid > ask)"
INVALID_SIZE = "NaN, infinite or negative size"
EMPTY_SYMBOL = "empty symbol"
SYMBOL_NOT_TEXT = "symbol not text"
WRONG_FIELDS = "wrong number of fields"
TS_OUT_OF_RANGE = "timestamp out of range"
_TS_MAX = 2**63 - 1  # nanoseconds in an int64: 2262-04-11


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one data row (1-based, header excluded)."""

    row: int
    column: str | None
    reason: str
    detail: str


@dataclass(slots=True)
class RawChunk:
    """Consecutive data rows of a file as raw columns, keyed by role.

    Roles are ``ts``, ``price``, ``bid``, ``ask``, ``size`` and ``symbol``.
    Row ``i`` of the columns is file row ``rows[i]``, or ``first_row + i``
    when ``rows`` is ``None``. ``problems`` holds rows the reader could not
    split into fields; they are not in the columns.
    """

    first_row: int
    columns: dict[str, list]
    rows: list[int] | None = None
    problems: list[Problem] = field(default_factory=list)

    def row(self, i: int) -> int:
        """The file row of entry ``i``."""
        return self.rows[i] if self.rows is not None else self.first_row + i


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
HISTDATA_TZ = timezone(timedelta(hours=-5), "EST")
"""HistData.com stamps ticks in EST without daylight saving, all year."""

# fromisoformat keeps microseconds and silently truncates further digits.
# Two patterns with a literal first character scan ~8x faster than "[.,]".
_SUB_US = (re.compile(r"\.[0-9]{7}"), re.compile(r",[0-9]{7}"))
_FRACTION = re.compile(r"[.,]([0-9]+)")
_HISTDATA_ONE = re.compile(r"[0-9]{8} (?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]{4}")
# Hours and minutes are checked by datetime() for each distinct minute; the
# possessive "*+" avoids backtracking state and makes the scan ~4x faster.
_HISTDATA_ALL = re.compile(r"(?:[0-9]{8} [0-9]{4}[0-5][0-9]{4}\n)*+")


def format_ns(ts_ns: int) -> str:
    """``ts_ns`` as ISO-8601 UTC with nanoseconds, e.g. ``2024-01-02T00:00:00.000000000Z``."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    stamp = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns:09d}Z"


def parse_iso_ns(text: str) -> int:
    """One ISO-8601 timestamp to UTC nanoseconds, exactly (up to 9 fraction digits).

    A timestamp without an offset is UTC.

    Raises:
        ValueError: not an ISO-8601 timestamp.
    """
    text = text.strip()
    extra_ns = 0
    m = _FRACTION.search(text)  # the date part has no "." or ","
    if m and len(m.group(1)) > 6:
        digits = m.group(1)
        if len(digits) > 9:
            raise ValueError("more than 9 fractional digits")
        extra_ns = int(digits[6:].ljust(3, "0"))
        text = text[: m.start(1) + 6] + text[m.end(1) :]
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _US * 1000 + extra_ns


def iso_to_ns(values: list) -> tuple[list, list[Issue]]:
    """ISO-8601 strings to UTC nanoseconds (naive means UTC)."""
    try:
        joined = "\n".join(values)
        if not any(pattern.search(joined) for pattern in _SUB_US):
            parse = datetime.fromisoformat
            try:
                return [(parse(s) - EPOCH) // _US * 1000 for s in values], []
            except TypeError:  # naive timestamps: they are UTC
                return [(parse(s) - _EPOCH_NAIVE) // _US * 1000 for s in values], []
    except (TypeError, ValueError):
        pass
    return _each(values, parse_iso_ns, UNPARSEABLE_TS, "an ISO-8601 timestamp")


def histdata_ns(text: str) -> int:
    """One HistData.com ``YYYYMMDD HHMMSSmmm`` EST stamp to UTC nanoseconds.

    Raises:
        ValueError: not in that layout, or not a real date and time.
    """
    text = text.strip()
    if not _HISTDATA_ONE.fullmatch(text):
        raise ValueError("wrong layout, or a time of day out of range")
    return _histdata_minute_ns(text[:13]) + int(text[13:]) * 1_000_000


def _histdata_minute_ns(prefix: str) -> int:
    """``YYYYMMDD HHMM`` in EST to UTC nanoseconds."""
    when = datetime(
        int(prefix[:4]),
        int(prefix[4:6]),
        int(prefix[6:8]),
        int(prefix[9:11]),
        int(prefix[11:13]),
        tzinfo=HISTDATA_TZ,
    )
    return (when - EPOCH) // _US * 1000


def histdata_to_ns(values: list) -> tuple[list, list[Issue]]:
    """HistData.com stamps to UTC nanoseconds."""
    try:
        if _HISTDATA_ALL.fullmatch("\n".join(values) + "\n"):
            # Ticks cluster in minutes: convert each minute once, then add ms.
            minute = {p: _histdata_minute_ns(p) for p in {s[:13] for s in values}}
            return [minute[s[:13]] + int(s[13:]) * 1_000_000 for s in values], []
    except (TypeError, ValueError):
        pass
    return _each(values, histdata_ns, UNPARSEABLE_TS, "a 'YYYYMMDD HHMMSSmmm' timestamp")


def to_ints(values: list) -> tuple[list, list[Issue]]:
    """Integers (nanosecond timestamps) from text or numbers."""
    try:
        if values and type(values[0]) is str and "_" in "".join(values):
            raise ValueError("Python's digit separators are no CSV number")
        return list(map(int, values)), []
    except (TypeError, ValueError):
        return _each(values, _strict_int, UNPARSEABLE_TS, "an integer of nanoseconds")


def _strict_int(value: object) -> int:
    if isinstance(value, float) or (isinstance(value, str) and "_" in value):
        raise ValueError("not an integer")
    return int(value)  # type: ignore[call-overload]


def to_floats(values: list) -> tuple[list, list[Issue]]:
    """Floats from text or numbers.

    Prices and sizes repeat a lot: when a sample says so, each distinct text
    is parsed once and its rows share one float object, which is ~3x faster
    and saves 24 bytes per row (the gateway holds whole tables).
    """
    try:
        if values and type(values[0]) is str and len(set(values[:1024])) <= 256:
            distinct = set(values)
            if any("_" in text for text in distinct):
                raise ValueError("Python's digit separators are no CSV number")
            memo = {text: float(text) for text in distinct}
            return list(map(memo.__getitem__, values)), []
        if values and type(values[0]) is str and "_" in "".join(values):
            raise ValueError("Python's digit separators are no CSV number")
        return list(map(float, values)), []
    except (TypeError, ValueError):
        return _each(values, _strict_float, UNPARSEABLE_NUMBER, "a number")


def _strict_float(value: object) -> float:
    if isinstance(value, str) and "_" in value:  # float("1_00.0") is 100.0
        raise ValueError("not a number")
    return float(value)  # type: ignore[arg-type]


def _each(values: list, convert, reason: str, expected: str) -> tuple[list, list[Issue]]:
    """Convert row by row, recording why each bad value is bad."""
    out: list = []
    issues: list[Issue] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            issues.append((i, MISSING_VALUE, "missing value"))
            continue
        try:
            out.append(convert(v))
        except (TypeError, ValueError, OverflowError) as e:
            out.append(None)
            why = f" ({e})" if reason == UNPARSEABLE_TS and repr(v) not in str(e) else ""
            issues.append((i, reason, f"cannot parse {v!r} as {expected}{why}"))
    return out, issues


def check_ts_range(values: list, texts: list) -> list[Issue]:
    """Timestamps must be ns from 1970 that an int64 holds; ``None`` is skipped.

    ``texts`` are the values as the file has them, for the message.
    """
    try:
        if min(values, default=0) >= 0 and max(values, default=0) <= _TS_MAX:
            return []
    except TypeError:
        pass
    return [
        (i, TS_OUT_OF_RANGE, f"{texts[i]!r} is not between 1970 and 2262 (0 to 2**63 - 1 ns)")
        for i, v in enumerate(values)
        if v is not None and not 0 <= v <= _TS_MAX
    ]


def check_positive(values: list, what: str) -> list[Issue]:
    """Prices must be finite and > 0; ``None`` (already reported) is skipped."""
    try:
        if min(values, default=1.0) > 0 and math.isfinite(sum(values)):
            return []
    except TypeError:
        pass
    return [
        (i, INVALID_PRICE, f"{what} must be a finite number > 0, got {v!r}")
        for i, v in enumerate(values)
        if v is not None and not 0 < v < math.inf
    ]


def check_size(values: list) -> list[Issue]:
    """Sizes must be finite and >= 0; ``None`` (already reported) is skipped."""
    try:
        if min(values, default=0.0) >= 0 and math.isfinite(sum(values)):
            return []
    except TypeError:
        pass
    return [
        (i, INVALID_SIZE, f"size must be a finite number >= 0, got {v!r}")
        for i, v in enumerate(values)
        if v is not None and not 0 <= v < math.inf
    ]


def check_not_crossed(bid: list, ask: list) -> list[Issue]:
    """Bid must not exceed ask; rows with a bad bid or ask are skipped."""
    try:
        if all(map(operator.le, bid, ask)):
            return []
    except TypeError:
        pass
    return [
        (i, CROSSED, f"crossed quote: bid {b!r} > ask {a!r}")
        for i, (b, a) in enumerate(zip(bid, ask, strict=True))
        if b is not None and a is not None and b > a
    ]


def check_symbols(values: list) -> list[Issue]:
    """Symbols must be non-empty text, without spaces around it ('ABC ' is not 'ABC')."""
    if all(type(s) is str and s and s == s.strip() for s in set(values)):
        return []
    issues = []
    for i, v in enumerate(values):
        if v is None:
            issues.append((i, MISSING_VALUE, "missing value"))
        elif type(v) is not str:
            issues.append((i, SYMBOL_NOT_TEXT, f"symbol {v!r} is not UTF-8 text"))
        elif not v or v != v.strip():
            detail = "empty symbol" if not v else f"symbol {v!r} has spaces around it"
            issues.append((i, EMPTY_SYMBOL, detail))
    return issues
