"""The journal's in-memory implementation (`JournalPort`, in journal_port.py).

`Journal` (SQLite, written ahead, durable) is what every runner uses.
`MemoryJournal` keeps the same records in Python lists and dicts for a fast
replay, whose journal lives as long as the replay and is read once at the
end: no SQL per signal. Both pass the same contract tests
(``tests/unit/execution/test_journal.py``); a replay's fills are the same
with either.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal
from workbench.execution.closing import EntryBook, claim
from workbench.execution.journal import JournalShortcuts, OrderUpdate
from workbench.execution.journal_schema import SCHEMA_VERSION, new_client_id_salt

_OPEN = frozenset(("PENDING_NEW", "ACCEPTED", "PARTIALLY_FILLED"))
_SIDES = {s.value: s for s in Side}
_REPORT_COLUMNS = (
    "order_id",
    "status",
    "ts_ns",
    "venue_order_id",
    "fill_id",
    "qty",
    "price",
    "fee",
    "reason",
    "source",
    "recorded_ns",
)
_NO_FILL = ("", 0.0, 0.0, 0.0)


class MemoryJournal(JournalShortcuts):
    """`Journal`'s records and answers, in memory (a fast replay's journal).

    Rows are the dicts and tuples `Journal` returns, with the same columns,
    values and order; what SQLite refuses (a second order, client order id or
    fill id) is refused here too, and a refused call records nothing.
    """

    path = ""

    def __init__(self) -> None:
        self.client_id_salt = new_client_id_salt()
        self._signals: dict[str, tuple] = {}  # id -> (strategy, seq, symbol, side, qty, px, ts)
        self._orders: dict[str, dict[str, Any]] = {}
        self._client_ids: set[str] = set()
        self._order_of: dict[str, tuple[str, int]] = {}  # signal id -> order id, its place
        self._exits: dict[str, list[str]] = {}  # entry signal id -> its exits' order ids
        self._fee_qty: dict[str, float] = {}  # order id -> its fills' fee_qty
        self._fills: list[Fill] = []
        self._fill_ids: set[str] = set()
        self._reports: list[tuple] = []  # rows in _REPORT_COLUMNS order
        self._reconciliations: list[dict[str, Any]] = []
        self._states: list[dict[str, Any]] = []
        self._stream_ends: dict[str, tuple[int, int]] = {}
        self._risk_days: dict[str, float] = {}
        self._marks: dict[str, tuple[float, int]] = {}
        self._gaps: dict[str, list[tuple[int, int]]] = {}

    def begin_orders(self, items: list[tuple[Signal, Order, OrderStatus, str]]) -> list[bool]:
        """See `Journal.begin_orders`."""
        now = time.time_ns()
        fresh: list[bool] = []
        new: list[tuple[Signal, Order, OrderStatus, str]] = []
        journaled, seen = self._signals, set()
        for item in items:
            sid = item[0].id
            if sid in journaled or sid in seen:
                fresh.append(False)
                continue
            seen.add(sid)
            new.append(item)
            fresh.append(True)
        for column, keys, taken in (
            ("order_id", [o.id for _, o, _, _ in new], self._orders.keys()),
            ("client_order_id", [o.client_order_id for _, o, _, _ in new], self._client_ids),
            ("signal_id", [o.signal_id for _, o, _, _ in new], self._order_of.keys()),
        ):
            if len(set(keys)) < len(keys) or not taken.isdisjoint(keys):
                raise sqlite3.IntegrityError(f"UNIQUE constraint failed: orders.{column}")
        for signal, order, status, reason in new:
            self._signals[signal.id] = (
                signal.strategy_id,
                signal.seq,
                signal.symbol,
                signal.side.value,
                float(signal.qty),
                float(signal.price),
                signal.ts_ns,
            )
            self._orders[order.id] = {
                "order_id": order.id,
                "signal_id": order.signal_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "qty": float(order.qty),
                "price": float(order.price),
                "ts_ns": order.ts_ns,
                "status": status.value,
                "reason": reason,
                "updated_ns": now,
                "client_order_id": order.client_order_id,
                "venue_order_id": "",
                "order_type": order.order_type.value,
                "order_price": float(order.order_price),
                "tif": order.tif.value,
                "filled_qty": 0.0,
                "fees": 0.0,
            }
            self._client_ids.add(order.client_order_id)
            self._order_of[order.signal_id] = (order.id, len(self._signals))
            if signal.closes:
                self._exits.setdefault(signal.closes, []).append(order.id)
            if status is OrderStatus.REJECTED:
                self._report(order.id, status.value, order.ts_ns, "", None, reason, "risk", now)
        return fresh

    def record(
        self,
        updates: list[OrderUpdate],
        differences: Sequence[dict[str, Any]] = (),
        fills: Sequence[Fill] | None = None,
    ) -> None:
        """See `Journal.record`."""
        now = time.time_ns()
        ordered = fills if fills is not None else [f for u in updates for f in u.fills]
        ids = [f.id for f in ordered]
        if len(set(ids)) < len(ids) or not self._fill_ids.isdisjoint(ids):
            raise sqlite3.IntegrityError("UNIQUE constraint failed: fills.fill_id")
        for f in ordered:
            self._fills.append(_as_read(f))
            self._fill_ids.add(f.id)
            if f.fee_qty:
                self._fee_qty[f.order_id] = self._fee_qty.get(f.order_id, 0.0) + f.fee_qty
        for u in updates:
            row = self._orders.get(u.order_id)
            if row is not None:
                row["status"], row["reason"] = u.status.value, u.reason
                if u.venue_order_id:
                    row["venue_order_id"] = u.venue_order_id
                row["filled_qty"], row["fees"] = float(u.filled_qty), float(u.fees)
                row["updated_ns"] = now
            for st, ts, venue_id, fill, reason, source in u.reports:
                self._report(u.order_id, st.value, ts, venue_id, fill, reason, source, now)
        for d in differences:
            self.add_reconciliation(d["kind"], d, d.get("order_id", ""), d.get("symbol", ""))

    def _report(
        self,
        order_id: str,
        status: str,
        ts_ns: int,
        venue_order_id: str,
        fill: Fill | None,
        reason: str,
        source: str,
        now: int,
    ) -> None:
        f = fill  # the fee in quote units, as orders.fees
        self._reports.append(
            (order_id, status, ts_ns, venue_order_id)
            + ((f.id, float(f.qty), float(f.price), float(f.quote_fee)) if f else _NO_FILL)
            + (reason, source, now)
        )

    def known_signals(self, ids: list[str]) -> dict[str, tuple]:
        """See `Journal.known_signals`."""
        signals = self._signals
        return {i: signals[i][2:] for i in ids if i in signals}

    def entry_book(self, entry_id: str) -> EntryBook | None:
        """See `Journal.entry_book`."""
        found = self._order_of.get(entry_id)
        if found is None:
            return None
        (oid, at), rows = found, self._orders
        o, fee_qty = rows[oid], self._fee_qty.get(oid, 0.0)
        book = EntryBook.of(
            o["symbol"], o["side"], o["qty"], o["filled_qty"], fee_qty, o["status"], at, oid
        )
        exits = [rows[x] for x in self._exits.get(entry_id, ())]
        taken = sum(claim(e["qty"], e["filled_qty"], e["status"]) for e in exits)
        return dataclasses.replace(book, claimed=taken)

    def fills(self) -> list[Fill]:
        """Every fill, in the order recorded."""
        return list(self._fills)

    def orders(self) -> list[dict]:
        """Every order with its status, in the order recorded."""
        return [dict(r) for r in self._orders.values()]

    def open_orders(self) -> list[dict]:
        """Orders that can still change (PENDING_NEW, ACCEPTED, PARTIALLY_FILLED)."""
        return [dict(r) for r in self._orders.values() if r["status"] in _OPEN]

    def open_signals(self) -> list[tuple[str, str, str]]:
        """(signal id, strategy id, the entry it closes) of every order that can still change."""
        closes = {oid: entry for entry, oids in self._exits.items() for oid in oids}
        return [
            (r["signal_id"], self._signals[r["signal_id"]][0], closes.get(r["order_id"], ""))
            for r in self._orders.values()
            if r["status"] in _OPEN
        ]

    def reports(self, order_id: str | None = None) -> list[dict]:
        """Every execution report (of one order), in the order recorded."""
        return [
            dict(zip(_REPORT_COLUMNS, r, strict=True))
            for r in self._reports
            if not order_id or r[0] == order_id
        ]

    def add_reconciliation(
        self, kind: str, detail: dict[str, Any], order_id: str = "", symbol: str = ""
    ) -> None:
        """See `Journal.add_reconciliation`."""
        self._reconciliations.append(
            {
                "recorded_ns": time.time_ns(),
                "kind": kind,
                "order_id": order_id,
                "symbol": symbol,
                "detail": json.dumps(detail, sort_keys=True),
            }
        )

    def reconciliations(self) -> list[dict]:
        """Every difference reconciliation recorded, oldest first (``detail`` decoded)."""
        return [r | {"detail": json.loads(r["detail"])} for r in self._reconciliations]

    def schema_version(self) -> int:
        """The schema version whose records this journal keeps."""
        return SCHEMA_VERSION

    def orders_in(self, status: OrderStatus) -> list[str]:
        """Ids of orders currently in ``status``."""
        return [r["order_id"] for r in self._orders.values() if r["status"] == status.value]

    def count(self, table: str) -> int:
        """Rows in ``signals``, ``orders`` or ``fills``."""
        sizes = {
            "signals": len(self._signals),
            "orders": len(self._orders),
            "fills": len(self._fills),
        }
        if table not in sizes:
            raise ValueError(f"no journal table {table!r}")
        return sizes[table]

    def last_signal_seq(self, strategy_id: str) -> int:
        """Highest signal seq journaled for a strategy (0 if none)."""
        return max((s[1] for s in self._signals.values() if s[0] == strategy_id), default=0)

    def set_trading_state(self, state: str, reason: str, source: str) -> None:
        """Record a change of trading state (ACTIVE, REDUCING, HALTED)."""
        self._states.append(
            {"ts_ns": time.time_ns(), "state": state, "reason": reason, "source": source}
        )

    def trading_state(self) -> tuple[str, str] | None:
        """The last recorded (state, reason), or None if never set."""
        return (self._states[-1]["state"], self._states[-1]["reason"]) if self._states else None

    def trading_states(self) -> list[dict]:
        """Every trading state change, oldest first."""
        return [dict(r) for r in self._states]

    def end_stream(self, strategy_id: str, ticks: int, last_seq: int) -> None:
        """Record a strategy's end-of-stream (idempotent)."""
        self._stream_ends[strategy_id] = (ticks, last_seq)

    def stream_ends(self) -> dict[str, tuple[int, int]]:
        """Strategy id -> (ticks, last seq) of every end-of-stream received."""
        return dict(self._stream_ends)

    def risk_day(self, day: str) -> float | None:
        """The PnL recorded at the start of ``day``, if any."""
        return self._risk_days.get(day)

    def set_risk_day(self, day: str, start_pnl: float) -> None:
        """Record the PnL at the start of ``day`` (first call of the day wins)."""
        self._risk_days.setdefault(day, float(start_pnl))

    def save_marks(self, marks: dict[str, tuple[float, int]]) -> None:
        """See `Journal.save_marks`."""
        self._marks.update((s, (float(p), int(t))) for s, (p, t) in marks.items())

    def marks(self) -> dict[str, tuple[float, int]]:
        """See `Journal.marks`."""
        return dict(self._marks)

    def last_signal_prices(self) -> dict[str, tuple[float, int]]:
        """See `Journal.last_signal_prices`."""
        out: dict[str, tuple[float, int]] = {}
        for _, _, symbol, _, _, price, ts in self._signals.values():  # in journal order
            if 0 < price < math.inf and (symbol not in out or ts >= out[symbol][1]):
                out[symbol] = (price, ts)
        return out

    def signal_seqs_in(self, strategy_id: str, ranges: list[tuple[int, int]]) -> set[int]:
        """See `Journal.signal_seqs_in`."""
        rows = self._signals.values()
        mine = [seq for sid, seq, *_ in rows if sid == strategy_id]
        return {n for n in mine if any(a <= n <= b for a, b in ranges)}

    def flattened(self, strategy_id: str) -> dict[str, int]:
        """See `Journal.flattened`."""
        out: dict[str, int] = {}
        for sid, (oid, at) in self._order_of.items():
            if self._signals[sid][0] == strategy_id and self._orders[oid]["filled_qty"] > 0:
                out[self._orders[oid]["symbol"]] = at
        return out

    def set_signal_gaps(self, strategy_id: str, ranges: list[tuple[int, int]]) -> None:
        """See `Journal.set_signal_gaps`."""
        self._gaps[strategy_id] = sorted((int(a), int(b)) for a, b in ranges)

    def signal_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """See `Journal.signal_gaps`."""
        return {sid: list(r) for sid, r in sorted(self._gaps.items()) if r}

    def close(self) -> None:
        """Nothing to release."""


def _as_read(f: Fill) -> Fill:
    """``f`` with the value types `Journal.fills` reads back (floats, a `Side`)."""
    floats = type(f.qty) is float and type(f.price) is float and type(f.fee) is float
    if floats and type(f.side) is Side and type(f.ts_ns) is int and type(f.fee_qty) is float:
        return f
    return Fill(
        f.id,
        f.order_id,
        f.signal_id,
        f.symbol,
        _SIDES[f.side],
        float(f.qty),
        float(f.price),
        int(f.ts_ns),
        float(f.fee),
        float(f.fee_qty),
        str(f.fee_asset),
    )
