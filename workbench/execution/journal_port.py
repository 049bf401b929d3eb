"""The journal port the executor writes to: `Journal` (SQLite) and `MemoryJournal` implement it.

`Journal` is what every runner uses; `MemoryJournal` is a fast replay's.
Both pass the same contract tests (``tests/unit/execution/test_journal.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from workbench.domain.model import Fill, Order, OrderStatus, Signal
from workbench.execution.closing import EntryBook
from workbench.execution.journal import OrderUpdate


class JournalPort(Protocol):
    """What the executor and its runner read and write."""

    path: str
    client_id_salt: str
    """Mixed into client order ids (`Order.from_signal`): made once per journal, kept."""

    def begin_orders(self, items: list[tuple[Signal, Order, OrderStatus, str]]) -> list[bool]:
        """Record signals and their orders at once; False for an already journaled signal id."""
        ...

    def record(
        self,
        updates: list[OrderUpdate],
        differences: Sequence[dict[str, Any]] = (),
        fills: Sequence[Fill] | None = None,
    ) -> None:
        """Record orders' new states, their fills (in ``fills``' order) and reports at once."""
        ...

    def known_signals(self, ids: list[str]) -> dict[str, tuple]:
        """Journaled signals among ``ids``: id -> (symbol, side, qty, price, ts_ns)."""
        ...

    def entry_book(self, entry_id: str) -> EntryBook | None:
        """The order of signal ``entry_id`` and what the exits closing it took; None if none."""
        ...

    def flattened(self, strategy_id: str) -> dict[str, int]:
        """Per symbol, where the last filled flatten signal (of ``strategy_id``) is journaled."""
        ...

    def fills(self) -> list[Fill]:
        """Every fill, in the order recorded."""
        ...

    def orders(self) -> list[dict]:
        """Every order with its status, in the order recorded."""
        ...

    def open_orders(self) -> list[dict]:
        """Orders that can still change."""
        ...

    def open_signals(self) -> list[tuple[str, str, str]]:
        """(signal id, strategy id, the entry it closes) of every order that can still change."""
        ...

    def orders_in(self, status: OrderStatus) -> list[str]:
        """Ids of orders currently in ``status``."""
        ...

    def add_reconciliation(
        self, kind: str, detail: dict[str, Any], order_id: str = "", symbol: str = ""
    ) -> None:
        """Record a difference reconciliation found."""
        ...

    def last_signal_seq(self, strategy_id: str) -> int:
        """Highest signal seq journaled for a strategy (0 if none)."""
        ...

    def set_trading_state(self, state: str, reason: str, source: str) -> None:
        """Record a change of trading state."""
        ...

    def trading_state(self) -> tuple[str, str] | None:
        """The last recorded (state, reason), or None if never set."""
        ...

    def risk_day(self, day: str) -> float | None:
        """The PnL recorded at the start of ``day``, if any."""
        ...

    def set_risk_day(self, day: str, start_pnl: float) -> None:
        """Record the PnL at the start of ``day`` (first call of the day wins)."""
        ...

    def save_marks(self, marks: dict[str, tuple[float, int]]) -> None:
        """Record symbols' last market prices: symbol -> (price, ts_ns)."""
        ...

    def marks(self) -> dict[str, tuple[float, int]]:
        """Each symbol's last recorded market price: symbol -> (price, ts_ns)."""
        ...

    def last_signal_prices(self) -> dict[str, tuple[float, int]]:
        """Each symbol's latest priced signal (by ts_ns, then journal order): (price, ts_ns)."""
        ...

    def signal_seqs_in(self, strategy_id: str, ranges: list[tuple[int, int]]) -> set[int]:
        """The seqs of ``strategy_id``'s journaled signals within ``ranges``."""
        ...

    def set_signal_gaps(self, strategy_id: str, ranges: list[tuple[int, int]]) -> None:
        """Record the seq ranges of ``strategy_id`` given up on and not yet come (all of them)."""
        ...

    def signal_gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Strategy id -> the seq ranges given up on and not yet come, in order."""
        ...

    def end_stream(self, strategy_id: str, ticks: int, last_seq: int) -> None:
        """Record a strategy's end-of-stream (idempotent)."""
        ...

    def stream_ends(self) -> dict[str, tuple[int, int]]:
        """Each strategy's end-of-stream: ``(ticks, last_seq)``."""
        ...

    def count(self, table: str) -> int:
        """Rows in ``signals``, ``orders`` or ``fills``."""
        ...

    def close(self) -> None:
        """Release the journal."""
        ...
