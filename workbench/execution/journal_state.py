"""The journal's run state: trading states, stream ends, risk days, marks, signal gaps.

A mixin of `Journal` (same SQLite connection, ``self._db``): small tables
the executor reads when it starts, written outside the order transactions.
"""

from __future__ import annotations

import sqlite3
import time


class RunStateRecords:
    """Trading states, ends of stream, the risk day's start, market marks, signal gaps."""

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

        A replay executor's market is exactly this (`RiskEngine.on_price` ignores
        a price that is not positive).
        """
        rows = self._db.execute(
            "SELECT symbol, price, ts_ns FROM (SELECT symbol, price, ts_ns, ROW_NUMBER() OVER "
            "(PARTITION BY symbol ORDER BY ts_ns DESC, rowid DESC) AS n FROM signals "
            "WHERE price > 0) WHERE n = 1"
        )
        return {r[0]: (r[1], r[2]) for r in rows}

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
            db.execute("ROLLBACK")
            raise

    def signal_seqs_between(self, strategy_id: str, first: int, last: int) -> set[int]:
        """The seqs of ``strategy_id``'s journaled signals from ``first`` to ``last``."""
        rows = self._db.execute(
            "SELECT seq FROM signals WHERE strategy_id=? AND seq BETWEEN ? AND ?",
            (strategy_id, first, last),
        )
        return {r[0] for r in rows}

    def signal_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Strategy id -> the seq ranges given up on and not yet come, in order."""
        out: dict[str, list[tuple[int, int]]] = {}
        for sid, a, b in self._db.execute("SELECT * FROM signal_gaps ORDER BY 1, 2"):
            out.setdefault(sid, []).append((a, b))
        return out
