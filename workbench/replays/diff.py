"""Compare the signals and fills of two runs: a live run folder or a replay output folder.

A run folder (``runs/<run_id>``) holds the executor's ``journal.sqlite``; a
replay output folder (``workbench replay --out``) holds ``orders.parquet``
(one order per signal, with the signal's fields) and ``fills.parquet``. Rows
are matched by signal id; a signal or fill present on one side only, or a
field that differs (symbol, side, qty, price, time; a fill's fee too), is a
difference. Numbers agree within 1e-9 of their size (1e-15 near zero). The
differences come in time order, so the first row is where the runs parted.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.exceptions import DataError

FIELDS = ("symbol", "side", "qty", "price", "ts_ns")
FILL_FIELDS = (*FIELDS, "fee")
NUMBERS = ("qty", "price", "fee")
COLUMNS = ["kind", "signal_id", "field", "a", "b", "ts_ns"]


@dataclass(frozen=True)
class RunRecord:
    """What a run did: ``signals`` and ``fills`` frames (signal_id + `FIELDS`)."""

    path: Path
    signals: pd.DataFrame
    fills: pd.DataFrame


def load_run(path: str | Path) -> RunRecord:
    """Signals and fills of a run folder, a journal file, or a replay output folder.

    Raises:
        DataError: the folder holds neither a journal nor a replay's Parquet files,
            or one of them cannot be read.
    """
    p = Path(path)
    journal = p if p.is_file() else p / "journal.sqlite"
    if journal.is_file():
        signals, fills = _read_journal(journal)
        return RunRecord(p, _norm(signals), _norm(fills))
    orders, fills_file = p / "orders.parquet", p / "fills.parquet"
    if orders.is_file() and fills_file.is_file():
        signals, fills = _read_output(orders, FIELDS), _read_output(fills_file, FILL_FIELDS)
        return RunRecord(p, _norm(signals), _norm(fills))
    raise DataError(
        "not a run folder (no journal.sqlite) nor a replay output (no orders.parquet and "
        "fills.parquet)",
        str(p),
    )


def _read_output(path: Path, fields: tuple[str, ...]) -> pd.DataFrame:
    """The signal id and ``fields`` of one replay output file.

    Raises:
        DataError: it is not a readable Parquet file with those columns (truncated, say).
    """
    import pyarrow as pa

    try:
        if "fee" in fields and "fee" not in _parquet_columns(path):  # written before fees
            return pd.read_parquet(path, columns=["signal_id", *FIELDS]).assign(fee=0.0)
        return pd.read_parquet(path, columns=["signal_id", *fields])
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:  # ArrowInvalid: ValueError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__  # pyarrow adds a schema
        raise DataError(f"not a readable replay output: {first}", str(path)) from e


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _read_journal(journal: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Signals and fills of one journal, read-only, from one snapshot (a live one writes on).

    Raises:
        DataError: the file is not a readable journal.
    """
    uri = journal.resolve().as_uri() + "?mode=ro"  # as a URI: ``?``, ``#``, ``%`` escaped
    cols = ", ".join(("signal_id", *FIELDS))
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            db.execute("BEGIN")  # one read transaction: a fill never without its signal
            try:
                signals = pd.read_sql_query(f"SELECT {cols} FROM signals", db)
                has_fee = any(r[1] == "fee" for r in db.execute("PRAGMA table_info(fills)"))
                fee = "fee" if has_fee else "0.0 AS fee"  # a version-0 journal has none
                fills = pd.read_sql_query(f"SELECT {cols}, {fee} FROM fills", db)
            finally:
                db.rollback()
    except (sqlite3.Error, pd.errors.DatabaseError) as e:
        raise DataError(f"not a readable journal: {e}", str(journal)) from e
    return signals, fills


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    # Nullable ints: an outer merge with rows on one side only would turn int64
    # into float64, which holds nanoseconds since 1970 only to ~256 ns.
    df = df.astype({n: "float64" for n in NUMBERS if n in df} | {"ts_ns": "Int64"})
    df["side"] = df["side"].astype(str)
    return df.sort_values(["ts_ns", "signal_id"], kind="stable").reset_index(drop=True)


def diff_runs(a: str | Path, b: str | Path, limit: int = 20) -> pd.DataFrame:
    """The first ``limit`` differences between runs ``a`` and ``b`` (empty when they agree).

    Columns: ``kind`` (signal | fill), ``signal_id``, ``field`` (a field name,
    or ``only in a`` / ``only in b``), ``a`` and ``b`` (the values), ``ts_ns``.
    """
    ra, rb = load_run(a), load_run(b)
    rows = _compare("signal", ra.signals, rb.signals, FIELDS)
    rows += _compare("fill", ra.fills, rb.fills, FILL_FIELDS)
    rows.sort(key=lambda r: (r[5], r[0] != "signal"))
    return pd.DataFrame(rows[:limit], columns=COLUMNS)


def _compare(kind: str, a: pd.DataFrame, b: pd.DataFrame, fields: tuple[str, ...]) -> list[tuple]:
    rows: list[tuple] = []
    # Fills repeat a signal id when an order fills in parts: number them per signal.
    a = a.assign(n=a.groupby("signal_id").cumcount())
    b = b.assign(n=b.groupby("signal_id").cumcount())
    merged = a.merge(
        b, on=["signal_id", "n"], how="outer", suffixes=("_a", "_b"), indicator="present"
    )
    for r in merged.itertuples(index=False):
        rd = r._asdict()
        if rd["present"] == "left_only":
            rows.append(
                (kind, rd["signal_id"], "only in a", _row(rd, "_a", fields), "", int(rd["ts_ns_a"]))
            )
            continue
        if rd["present"] == "right_only":
            rows.append(
                (kind, rd["signal_id"], "only in b", "", _row(rd, "_b", fields), int(rd["ts_ns_b"]))
            )
            continue
        for f in fields:
            va, vb = rd[f + "_a"], rd[f + "_b"]
            # relative: a price of 1e-10 off by half was "the same" under a floor of 1e-9
            same = math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-15) if f in NUMBERS else va == vb
            if not same:
                rows.append((kind, rd["signal_id"], f, str(va), str(vb), int(rd["ts_ns_a"])))
    return rows


def _row(rd: dict, suffix: str, fields: tuple[str, ...]) -> str:
    return " ".join(f"{f}={rd[f + suffix]}" for f in fields)


def format_diff(diff: pd.DataFrame) -> str:
    """Human-readable lines for the CLI."""
    if diff.empty:
        return "no differences"
    lines = [f"{len(diff)} first difference(s):"]
    for r in diff.itertuples(index=False):
        lines.append(f"  {r.kind} {r.signal_id}: {r.field}: a={r.a!s} b={r.b!s}")
    return "\n".join(lines)
