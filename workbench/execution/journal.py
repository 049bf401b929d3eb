"""The executor's SQLite journal: every signal, order and fill, written ahead.

A signal and its order are committed (order ``PENDING_NEW``) before the order goes
to the broker, so a restarted executor knows every signal it has ever acted
on and never sends a second order for one. WAL mode: with ``synchronous=NORMAL``
a commit survives a crash of the process (power loss may lose the last few);
the journal of an executor whose broker is a real venue (any but the built-in
simulator) runs ``synchronous=FULL`` (``sync_commits``), so a commit is on
disk before the orders it records go out, and a machine that loses power
knows on reboot every order it sent (the venue does not forget them).
A live executor's journal copies its WAL into the database from a thread of
its own (`Checkpointer`), never inside a commit on the signal path.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal
from workbench.execution.closing import EntryBook, claim
from workbench.execution.journal_schema import (
    JournalFile,
    client_id_salt,
    open_statuses,
    rollback,
)
from workbench.execution.journal_state import RunStateRecords
from workbench.execution.wal_checkpoint import Checkpointer

_SIDES = {s.value: s for s in Side}


@dataclass(slots=True)
class OrderUpdate:
    """What happened to one order since it was journaled: its new state and the reports.

    ``reports`` rows are ``(status, ts_ns, venue_order_id, fill or None, reason, source)``.
    """

    order_id: str
    status: OrderStatus
    venue_order_id: str = ""
    reason: str = ""
    filled_qty: float = 0.0
    fees: float = 0.0
    fills: list[Fill] = field(default_factory=list)
    reports: list[tuple[OrderStatus, int, str, Fill | None, str, str]] = field(default_factory=list)


class JournalShortcuts:
    """`begin_order`, `finish_orders` and `finish_order`, from `begin_orders` and `record`."""

    def begin_orders(self, items: list[tuple[Signal, Order, OrderStatus, str]]) -> list[bool]:
        """Record signals and the orders they become, all at once (see `Journal`)."""
        raise NotImplementedError

    def record(
        self,
        updates: list[OrderUpdate],
        differences: Sequence[dict[str, Any]] = (),
        fills: Sequence[Fill] | None = None,
    ) -> None:
        """Record orders' new states, their fills and reports, all at once (see `Journal`)."""
        raise NotImplementedError

    def begin_order(
        self, signal: Signal, order: Order, status: OrderStatus, reason: str = ""
    ) -> bool:
        """`begin_orders` for one signal."""
        return self.begin_orders([(signal, order, status, reason)])[0]

    def finish_orders(self, items: list[tuple[str, OrderStatus, list[Fill], str]]) -> None:
        """Record final answers (order id, status, fills, reason): `record` in short."""
        self.record(
            [
                OrderUpdate(
                    oid,
                    st,
                    reason=reason,
                    filled_qty=sum(f.qty for f in fills),
                    fees=sum(f.quote_fee for f in fills),
                    fills=list(fills),
                    reports=[(st, f.ts_ns, "", f, "", "broker") for f in fills],
                )
                for oid, st, fills, reason in items
            ]
        )

    def finish_order(
        self, order_id: str, status: OrderStatus, fills: list[Fill], reason: str = ""
    ) -> None:
        """`finish_orders` for one order."""
        self.finish_orders([(order_id, status, fills, reason)])


class Journal(JournalShortcuts, RunStateRecords):
    """Durable record of the executor's work.

    ``client_id_salt`` is this journal's, kept in it: `Order.from_signal`
    mixes it into client order ids (stable across restarts, new per journal).

    Args:
        background_checkpoint: Checkpoint the WAL from a `Checkpointer` thread
            instead of inside commits (a file journal only).
        sync_commits: Each commit waits until it is on disk (an ``fdatasync``
            of the WAL), not only handed to the OS: live orders, whose venue
            does not forget them when this machine loses power. A simulator's
            orders vanish with it; they skip the ``fdatasync`` (milliseconds).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        background_checkpoint: bool = False,
        sync_commits: bool = False,
    ) -> None:
        self.path = str(path)
        self._file = JournalFile(self.path, sync_commits=sync_commits)  # see its errors
        self._db = self._file.db
        self.client_id_salt = client_id_salt(self._db)
        self._checkpointer: Checkpointer | None = None
        if background_checkpoint and self.path != ":memory:":
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(self.path)

    def begin_orders(self, items: list[tuple[Signal, Order, OrderStatus, str]]) -> list[bool]:
        """Record signals and the orders they become, all in one transaction.

        Returns:
            Per item, False (recording nothing for it) if its signal id was
            already journaled, even earlier in the same list.
        """
        now = time.time_ns()
        db = self._db
        fresh: list[bool] = []
        signals: list[tuple] = []
        orders: list[tuple] = []
        rejected: list[tuple] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            # One look-up and one statement per table for the whole list: a
            # replay journals thousands of signals per second.
            seen = set(self.known_signals([s.id for s, _, _, _ in items]))
            for signal, order, status, reason in items:
                if signal.id in seen:
                    fresh.append(False)
                    continue
                seen.add(signal.id)
                signals.append(
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
                        signal.closes,
                    )
                )
                orders.append(
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
                        order.client_order_id,
                        order.order_type.value,
                        order.order_price,
                        order.tif.value,
                    )
                )
                if status is OrderStatus.REJECTED:
                    rejected.append((order.id, status.value, order.ts_ns, reason, "risk", now))
                fresh.append(True)
            db.executemany(
                "INSERT INTO signals (signal_id, strategy_id, seq, symbol, side, qty, price, "
                "ts_ns, reason, condition_id, received_ns, closes) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                signals,
            )
            db.executemany(
                "INSERT INTO orders (order_id, signal_id, symbol, side, qty, price, ts_ns, "
                "status, reason, updated_ns, client_order_id, order_type, order_price, tif) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                orders,
            )
            db.executemany(
                "INSERT INTO order_reports (order_id, status, ts_ns, reason, source, "
                "recorded_ns) VALUES (?,?,?,?,?,?)",
                rejected,
            )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return fresh

    def record(
        self,
        updates: list[OrderUpdate],
        differences: Sequence[dict[str, Any]] = (),
        fills: Sequence[Fill] | None = None,
    ) -> None:
        """Record orders' new states, their fills and reports, in one transaction.

        ``differences`` (reconciliation's or refused reports', each with a
        ``kind`` and optional ``order_id`` and ``symbol``) are journaled in the
        same transaction as `add_reconciliation` would: a crash keeps all or none.
        ``fills``: the updates' fills in the order they happened (as positions
        took them), so a restart replays them alike; default each update's in turn.
        """
        now = time.time_ns()
        db = self._db
        ordered = fills if fills is not None else [f for u in updates for f in u.fills]
        fill_rows = [
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
                f.fee,
                f.fee_qty,
                f.fee_asset,
            )
            for f in ordered
        ]
        reports: list[tuple] = []
        rows: list[tuple] = []
        for u in updates:
            rows.append(
                (u.status.value, u.reason, u.venue_order_id, u.filled_qty, u.fees, now, u.order_id)
            )
            for st, ts, venue_id, f, reason, source in u.reports:
                reports.append(
                    (u.order_id, st.value, ts, venue_id, f.id if f else "")
                    + ((f.qty, f.price, f.quote_fee) if f else (0.0, 0.0, 0.0))  # as orders.fees
                    + (reason, source, now)
                )
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "UPDATE orders SET status=?, reason=?, venue_order_id=CASE WHEN ?3 = '' "
                "THEN venue_order_id ELSE ?3 END, filled_qty=?, fees=?, updated_ns=? "
                "WHERE order_id=?",
                rows,
            )
            db.executemany("INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", fill_rows)
            db.executemany("INSERT INTO order_reports VALUES (?,?,?,?,?,?,?,?,?,?,?)", reports)
            db.executemany(
                "INSERT INTO reconciliations VALUES (?,?,?,?,?)",
                [_difference_row(d, now) for d in differences],
            )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

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

    def entry_book(self, entry_id: str) -> EntryBook | None:
        """The order of signal ``entry_id`` and what the exits closing it took (`closing`)."""
        db = self._db
        row = db.execute(
            "SELECT symbol, side, qty, filled_qty, (SELECT COALESCE(SUM(fee_qty), 0) FROM fills "
            "WHERE fills.order_id = o.order_id), status, (SELECT rowid FROM signals "
            "WHERE signal_id = o.signal_id), order_id FROM orders o WHERE signal_id=?",
            (entry_id,),
        ).fetchone()
        if row is None:
            return None
        exits = db.execute(
            "SELECT o.qty, o.filled_qty, o.status FROM signals s JOIN orders o "
            "ON o.signal_id = s.signal_id WHERE s.closes=? AND s.closes != ''",  # the partial index
            (entry_id,),
        )
        taken = sum(claim(*r) for r in exits)
        return dataclasses.replace(EntryBook.of(*row), claimed=taken)

    def fills(self) -> list[Fill]:
        """Every fill, in the order recorded."""
        rows = self._db.execute(
            "SELECT fill_id, order_id, signal_id, symbol, side, qty, price, ts_ns, fee, fee_qty, "
            "fee_asset FROM fills ORDER BY rowid"
        ).fetchall()
        side = _SIDES
        return [Fill(r[0], r[1], r[2], r[3], side[r[4]], r[5], r[6], r[7], r[8], r[9], r[10])
                for r in rows]  # fmt: skip

    def orders(self) -> list[dict]:
        """Every order with its status, in the order recorded."""
        cur = self._db.execute("SELECT * FROM orders ORDER BY rowid")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def open_orders(self) -> list[dict]:
        """Orders that can still change (PENDING_NEW, ACCEPTED, PARTIALLY_FILLED)."""
        cur = self._db.execute(
            f"SELECT * FROM orders WHERE status IN {open_statuses()} ORDER BY rowid"
        )
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def open_signals(self) -> list[tuple[str, str, str]]:
        """(signal id, strategy id, the entry it closes) of every order that can still change."""
        rows = self._db.execute(
            "SELECT s.signal_id, s.strategy_id, s.closes FROM orders o JOIN signals s "
            f"ON s.signal_id = o.signal_id WHERE o.status IN {open_statuses()}"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def reports(self, order_id: str | None = None) -> list[dict]:
        """Every execution report (of one order), in the order recorded."""
        where, args = ("WHERE order_id=?", (order_id,)) if order_id else ("", ())
        cur = self._db.execute(f"SELECT * FROM order_reports {where} ORDER BY rowid", args)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

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

    def close(self) -> None:
        """Close the database (the checkpoint thread first)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._file.close()


def _difference_row(d: dict[str, Any], now: int) -> tuple[int, str, str, str, str]:
    """A ``reconciliations`` row for a difference dict (see `Journal.record`)."""
    return (
        now,
        d["kind"],
        d.get("order_id", ""),
        d.get("symbol", ""),
        json.dumps(d, sort_keys=True),
    )
