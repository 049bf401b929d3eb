"""The executor's SQLite journal: every signal, order and fill, written ahead.

A signal and its order are committed (order ``PENDING``) before the order goes
to the broker, so a restarted executor knows every signal it has ever acted
on and never sends a second order for one. WAL mode with ``synchronous=NORMAL``:
a commit survives a crash of the process (power loss may lose the last few).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    signal_id TEXT PRIMARY KEY, strategy_id TEXT NOT NULL, seq INTEGER NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    ts_ns INTEGER NOT NULL, reason TEXT, condition_id TEXT, received_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, signal_id TEXT NOT NULL UNIQUE REFERENCES signals(signal_id),
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    ts_ns INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(order_id),
    signal_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL,
    price REAL NOT NULL, ts_ns INTEGER NOT NULL, recorded_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trading_states (
    ts_ns INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_ends (
    strategy_id TEXT PRIMARY KEY, ticks INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    received_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_days (day TEXT PRIMARY KEY, start_pnl REAL NOT NULL);
"""


class Journal:
    """Durable record of the executor's work."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def begin_orders(self, items: list[tuple[Signal, Order, OrderStatus, str]]) -> list[bool]:
        """Record signals and the orders they become, all in one transaction.

        Returns:
            Per item, False (recording nothing for it) if its signal id was
            already journaled, even earlier in the same list.
        """
        now = time.time_ns()
        db = self._db
        fresh: list[bool] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for signal, order, status, reason in items:
                cur = db.execute(
                    "INSERT OR IGNORE INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        signal.id,
                        signal.strategy_id,
                        signal.seq,
                        signal.symbol,
                        signal.side.value,
                        signal.qty,
                        signal.price,
                        signal.ts_ns,
                        signal.reason,
                        signal.condition_id,
                        now,
                    ),
                )
                if cur.rowcount == 0:
                    fresh.append(False)
                    continue
                db.execute(
                    "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        order.id,
                        order.signal_id,
                        order.symbol,
                        order.side.value,
                        order.qty,
                        order.price,
                        order.ts_ns,
                        status.value,
                        reason,
                        now,
                    ),
                )
                fresh.append(True)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return fresh

    def begin_order(
        self, signal: Signal, order: Order, status: OrderStatus, reason: str = ""
    ) -> bool:
        """`begin_orders` for one signal."""
        return self.begin_orders([(signal, order, status, reason)])[0]

    def finish_orders(self, items: list[tuple[str, OrderStatus, list[Fill], str]]) -> None:
        """Record the broker's answers (order id, status, fills, reason) in one transaction."""
        now = time.time_ns()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for order_id, status, fills, reason in items:
                db.execute(
                    "UPDATE orders SET status=?, reason=?, updated_ns=? WHERE order_id=?",
                    (status.value, reason, now, order_id),
                )
                db.executemany(
                    "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            f.id,
                            f.order_id,
                            f.signal_id,
                            f.symbol,
                            f.side.value,
                            f.qty,
                            f.price,
                            f.ts_ns,
                            now,
                        )
                        for f in fills
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def finish_order(
        self, order_id: str, status: OrderStatus, fills: list[Fill], reason: str = ""
    ) -> None:
        """`finish_orders` for one order."""
        self.finish_orders([(order_id, status, fills, reason)])

    def known_signals(self, ids: list[str]) -> dict[str, tuple]:
        """Journaled signals among ``ids``: id -> (symbol, side, qty, price, ts_ns)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            "SELECT signal_id, symbol, side, qty, price, ts_ns FROM signals "
            f"WHERE signal_id IN ({marks})",
            ids,
        )
        return {r[0]: tuple(r[1:]) for r in rows}

    def fills(self) -> list[Fill]:
        """Every fill, in the order recorded."""
        rows = self._db.execute(
            "SELECT fill_id, order_id, signal_id, symbol, side, qty, price, ts_ns "
            "FROM fills ORDER BY rowid"
        ).fetchall()
        return [Fill(r[0], r[1], r[2], r[3], Side(r[4]), r[5], r[6], r[7]) for r in rows]

    def orders(self) -> list[dict]:
        """Every order with its status, in the order recorded."""
        cur = self._db.execute("SELECT * FROM orders ORDER BY rowid")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def orders_in(self, status: OrderStatus) -> list[str]:
        """Ids of orders currently in ``status``."""
        rows = self._db.execute(
            "SELECT order_id FROM orders WHERE status=? ORDER BY rowid", (status.value,)
        )
        return [r[0] for r in rows]

    def count(self, table: str) -> int:
        """Rows in ``signals``, ``orders`` or ``fills``."""
        if table not in ("signals", "orders", "fills"):
            raise ValueError(f"no journal table {table!r}")
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def last_signal_seq(self, strategy_id: str) -> int:
        """Highest signal seq journaled for a strategy (0 if none)."""
        row = self._db.execute(
            "SELECT MAX(seq) FROM signals WHERE strategy_id=?", (strategy_id,)
        ).fetchone()
        return row[0] or 0

    # -- trading state, stream ends, risk days -----------------------------------------

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

    def close(self) -> None:
        """Close the database."""
        self._db.close()
