"""The journal's run state: trading states, stream ends, risk days, marks, signal gaps.

Also the differences reconciliation found.

A mixin of `Journal` (same SQLite connection, ``self._db``): small tables
the executor reads when it starts, written outside the order transactions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from workbench.execution.journal_schema import rollback


class RunStateRecords:
    """Trading states, ends of stream, the risk day's start, marks, signal gaps, differences."""

    _db: sqlite3.Connection

    def set_trading_state(self, state: str, reason: str, source: str) -> None:
        """Record a change of trading state (ACTIVE, REDUCING, HALTED)."""
        self._db.execute(
            "INSERT INTO trading_states VALUES (?,?,?,?)", (time.time_ns(), state, reason, source)
        )

    def trading_state(self) -> tuple[str, str] | None:
        """The last recorded (state, reason), or None if never set."""
        row = self._db.execute(
            "SELECT state, reason FROM trading_states ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
        return (row[0], row[1]) if row else None

    def trading_states(self) -> list[dict]:
        """Every trading state change, oldest first."""
        cur = self._db.execute("SELECT * FROM trading_states ORDER BY rowid")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def end_stream(self, strategy_id: str, ticks: int, last_seq: int) -> None:
        """Record a strategy's end-of-stream (idempotent)."""
        self._db.execute(
            "INSERT OR REPLACE INTO stream_ends VALUES (?,?,?,?)",
            (strategy_id, ticks, last_seq, time.time_ns()),
        )

    def stream_ends(self) -> dict[str, tuple[int, int]]:
        """Strategy id -> (ticks, last seq) of every end-of-stream received."""
        rows = self._db.execute("SELECT strategy_id, ticks, last_seq FROM stream_ends")
        return {r[0]: (r[1], r[2]) for r in rows}

    def risk_day(self, day: str) -> float | None:
        """The PnL recorded at the start of ``day``, if any."""
        row = self._db.execute("SELECT start_pnl FROM risk_days WHERE day=?", (day,)).fetchone()
        return row[0] if row else None

    def set_risk_day(self, day: str, start_pnl: float) -> None:
        """Record the PnL at the start of ``day`` (first call of the day wins)."""
        self._db.execute("INSERT OR IGNORE INTO risk_days VALUES (?,?)", (day, start_pnl))

    def save_marks(self, marks: dict[str, tuple[float, int]]) -> None:
        """Record symbols' last market prices: symbol -> (price, ts_ns)."""
        rows = [(s, p, t) for s, (p, t) in marks.items()]
        self._in_one_transaction("INSERT OR REPLACE INTO marks VALUES (?,?,?)", rows)

    def marks(self) -> dict[str, tuple[float, int]]:
        """Each symbol's last recorded market price: symbol -> (price, ts_ns)."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT * FROM marks")}

    def set_signal_gaps(self, strategy_id: str, ranges: list[tuple[int, int]]) -> None:
        """Record the seq ranges of ``strategy_id`` given up on and not yet come (all of them)."""
        rows = [(strategy_id, a, b) for a, b in ranges]
        self._in_one_transaction(
            "INSERT INTO signal_gaps VALUES (?,?,?)",
            rows,
            ("DELETE FROM signal_gaps WHERE strategy_id=?", (strategy_id,)),
        )

    def last_signal_prices(self) -> dict[str, tuple[float, int]]:
        """Each symbol's latest priced signal (by ts_ns, then journal order): (price, ts_ns).

        A replay executor's market is exactly this (`RiskEngine.on_price` takes
        only positive finite prices). Two scans of ``signals``, no sort.
        """
        priced = "price > 0 AND price < 1.8e308"  # NaN is stored as NULL: out too
        rows = self._db.execute(
            "SELECT s.symbol, s.price, s.ts_ns FROM signals s JOIN (SELECT symbol, "
            f"MAX(ts_ns) AS ts FROM signals WHERE {priced} GROUP BY symbol) t "
            f"ON s.symbol = t.symbol AND s.ts_ns = t.ts WHERE {priced} ORDER BY s.rowid"
        )
        return {r[0]: (r[1], r[2]) for r in rows}  # of equal times, the last journaled

    def _in_one_transaction(
        self, sql: str, rows: list[tuple], first: tuple[str, tuple] | None = None
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if first is not None:
                db.execute(*first)
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

    def signal_seqs_in(self, strategy_id: str, ranges: list[tuple[int, int]]) -> set[int]:
        """The seqs of ``strategy_id``'s journaled signals within ``ranges`` (one scan each 400)."""
        out: set[int] = set()
        for i in range(0, len(ranges), 400):
            chunk = ranges[i : i + 400]
            where = " OR ".join(["seq BETWEEN ? AND ?"] * len(chunk))
            args = [strategy_id, *(n for r in chunk for n in r)]
            rows = self._db.execute(
                f"SELECT seq FROM signals WHERE strategy_id=? AND ({where})", args
            )
            out.update(r[0] for r in rows)
        return out

    def signal_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Strategy id -> the seq ranges given up on and not yet come, in order."""
        out: dict[str, list[tuple[int, int]]] = {}
        for sid, a, b in self._db.execute("SELECT * FROM signal_gaps ORDER BY 1, 2"):
            out.setdefault(sid, []).append((a, b))
        return out

    def add_reconciliation(
        self, kind: str, detail: dict[str, Any], order_id: str = "", symbol: str = ""
    ) -> None:
        """Record a difference reconciliation found between the journal and the venue."""
        row = (time.time_ns(), kind, order_id, symbol, json.dumps(detail, sort_keys=True))
        self._db.execute("INSERT INTO reconciliations VALUES (?,?,?,?,?)", row)

    def reconciliations(self) -> list[dict]:
        """Every difference reconciliation recorded, oldest first (``detail`` decoded)."""
        cur = self._db.execute("SELECT * FROM reconciliations ORDER BY rowid")
        cols = [c[0] for c in cur.description]
        out = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for row in out:
            row["detail"] = json.loads(row["detail"])
        return out

    def flattened(self, strategy_id: str) -> dict[str, int]:
        """Per symbol, the journal place (rowid) of the last signal of ``strategy_id`` (the
        kill switch's flatten) whose order filled anything."""
        rows = self._db.execute(
            "SELECT s.symbol, MAX(s.rowid) FROM signals s JOIN orders o "
            "ON o.signal_id = s.signal_id WHERE s.strategy_id=? AND o.filled_qty > 0 "
            "GROUP BY s.symbol",
            (strategy_id,),
        )
        return {r[0]: r[1] for r in rows}
