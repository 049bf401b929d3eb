"""An exit's room: what the entry it names (`Signal.closes`) still holds.

The executor sends an exit no larger than its entry holds: what the entry's
order filled (net of a fee the venue took out of the asset) less what the
entry's earlier exits took (filled, or the whole order while it works). So
an exit never opens a position of its own: an entry that the risk limits,
the collar, the breaker or the venue refused holds nothing and its exit is
refused too; a partly filled entry's exit is cut to the fill; an entry from
before a flatten of its symbol (the kill switch) holds nothing. While the
entry's order still works (live, before the venue reports), what it may still
fill counts: its exit may take up to the entry's qty, and if the entry then
ends with nothing filled, the executor cancels such exits still open.

Pure: the journals give an `EntryBook` (`Journal.entry_book`), the batch plan
asks `room`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.domain.model import OrderStatus, Side, Signal

DRIFT = 1e-9
"""Relative to the entry's qty: less than this left is nothing, a cut by less is none."""


@dataclass(frozen=True, slots=True)
class EntryBook:
    """An entry's order as journaled, and what its exits have taken."""

    symbol: str
    side: Side
    asked: float
    """The entry order's qty."""
    filled: float
    """What it filled, as its symbol's position took it (net of a fee in the asset)."""
    status: OrderStatus
    claimed: float
    """By its journaled exits: what each filled, or its whole qty while it works."""
    at: int = -1
    """Where the entry's signal is in the journal (signals are numbered as journaled);
    -1 for one not journaled yet."""
    order_id: str = ""

    @classmethod
    def of(
        cls,
        symbol: str,
        side: str,
        asked: float,
        filled: float,
        fee_qty: float,
        status: str,
        at: int,
        order_id: str,
    ) -> EntryBook:
        """A book from an entry's journal row (its fills' ``fee_qty`` summed); nothing claimed."""
        s = Side(side)
        net = filled - s.sign * fee_qty
        return cls(symbol, s, asked, net, OrderStatus(status), 0.0, at, order_id)


def claim(qty: float, filled_qty: float, status: str) -> float:
    """What an exit's order takes from its entry: all of it while working, else its fill."""
    return filled_qty if OrderStatus(status).terminal else qty


def room(
    exit_: Signal, book: EntryBook | None, claimed_here: float = 0.0, flattened: int = -1
) -> tuple[float, str]:
    """The qty ``exit_`` may be sent with (<= its own), or 0 and why none.

    Args:
        book: Its entry's, None if the journal has no order for that signal.
        claimed_here: What earlier exits of the same entry in this batch take.
        flattened: Where in the journal the last flatten order of the symbol that
            filled is: the kill switch closed every entry before it.
    """
    entry = exit_.closes
    if book is None:
        return 0.0, f"closes {entry}: no order of that signal in the journal"
    if book.symbol != exit_.symbol or book.side is exit_.side:
        return 0.0, (
            f"closes {entry}, a {book.side} of {book.symbol}: a {exit_.side} of "
            f"{exit_.symbol} does not close it"
        )
    if 0 <= book.at < flattened:
        return 0.0, f"closes {entry}, which the kill switch's flatten closed since"
    can = book.filled if book.status.terminal else book.asked
    left = can - book.claimed - claimed_here
    eps = DRIFT * book.asked
    if left <= eps:
        filled = f"{book.status} with {book.filled:g} filled"
        return 0.0, f"closes {entry}, which holds nothing ({filled}, {book.claimed:g} exited)"
    if exit_.qty <= left + eps:
        return exit_.qty, ""
    return left, ""


def exits_on_working(
    open_orders: list[dict], closes: dict[str, str], book_of: Callable[[str], EntryBook | None]
) -> tuple[dict[str, tuple[str, set[str]]], set[str]]:
    """Open exits whose entry may still end unfilled, or did, as a restarted executor finds them.

    An exit open while its entry works was sent while the entry worked: it is
    cancelled if the entry ends with nothing filled, as before the restart. An
    exit open after its entry ended with nothing filled is one whose cancel
    was lost with the last process (it died first, or before a failed cancel
    was asked again): none is sent so (`room`).

    Args:
        open_orders: The journal's open orders (``order_id``, ``signal_id``,
            ``client_order_id``).
        closes: Signal id -> the entry it closes, for the open orders' signals.
        book_of: The journal's `EntryBook` of an entry signal id.

    Returns:
        Entry order id -> (its signal id, client order ids of its open exits),
        for entries still working; and the client order ids of open exits
        whose entry ended with nothing filled.
    """
    by_signal = {o["signal_id"]: o for o in open_orders}
    found: dict[str, tuple[str, set[str]]] = {}
    orphans: set[str] = set()
    for o in open_orders:
        entry_id = closes.get(o["signal_id"], "")
        entry = by_signal.get(entry_id) if entry_id else None
        if entry is not None:
            watch = found.setdefault(entry["order_id"], (entry["signal_id"], set()))
            watch[1].add(o["client_order_id"])
        elif entry_id and (book := book_of(entry_id)) and book.status.terminal and book.filled <= 0:
            orphans.add(o["client_order_id"])  # (part filled: the excess was alerted, not undone)
    return found, orphans
