"""A batch's signals checked in order: each one's order and the risk check's verdict.

The executor journals a batch's orders in one commit before any goes out, so
it checks them all first. Position rules (``max_position_qty``, REDUCING)
then take the batch's earlier accepted orders as if they filled. That is
safe for an earlier order on the same side (it only adds exposure), but an
earlier order on the *other* side would free room that is only there if it
fills, and a venue may refuse it or leave it resting. So an order whose room
comes only from such an order is not checked with the batch: the batch is cut
before it, the part before goes out (journaled, sent, settled) and the rest
is checked afterwards against the fills then known and the orders then open,
as one signal per call would be. So when every order fills as sent (market
orders on the simulator), fast and wire replay decide alike whatever their
batch sizes. An earlier same-side order that is refused or expires (an IOC
limit) still counted as filled: then a batch may refuse what single calls
would have taken, never the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from workbench.domain.model import Order, OrderStatus, Side, Signal
from workbench.exceptions import OrderRejected
from workbench.execution.closing import EntryBook, room

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger(__name__)

Item = tuple[Signal, Order, OrderStatus, str]
"""A signal, its order, PENDING_NEW or REJECTED, and the rejection's reason."""


def plan(ex: Executor, signals: list[Signal], known: set[str]) -> tuple[list[Item], list[Signal]]:
    """Check ``signals`` in order; returns the items to journal now and the signals cut off.

    Args:
        known: Ids already journaled (re-deliveries: no check, nothing sent);
            the batch's ids are added as they are checked.
    """
    engine, flatten, salt = ex.engine, ex._flattening, ex.journal.client_id_salt
    projected: dict[str, float] = {}  # per symbol: the batch's accepted orders as filled
    added: dict[tuple[str, Side], float] = {}  # per symbol and side: the batch's accepted qty
    items: list[Item] = []
    here: dict[str, Item] = {}  # the batch's items by signal id: entries its exits close
    exiting: dict[str, float] = {}  # entry signal id -> what the batch's exits of it take
    # `LotSized.lot_qty` and `TickSized.tick_price`, if the broker has them (getattr: an
    # isinstance of a protocol costs ~10 us)
    lots: Callable[[str, float], float] | None = getattr(ex.broker, "lot_qty", None)
    ticks: Callable[[str, Side, float], float] | None = getattr(ex.broker, "tick_price", None)
    whole: Callable[[Order], bool] | None = getattr(ex.broker, "fills_whole", None)

    def refuse(s: Signal, order: Order, reason: str) -> None:  # before any risk check
        known.add(s.id)
        items.append((s, order, OrderStatus.REJECTED, reason))
        here[s.id] = items[-1]

    for i, s in enumerate(signals):
        order = Order.from_signal(s, salt)
        sym, side = s.symbol, order.side
        pos = projected.get(sym, ex.portfolio.position(sym))
        rounded = cut = exit_cut = False
        fresh = s.id not in known  # else a redelivery: the journal has it, nothing is sent
        if s.closes and fresh and not flatten:
            entry = here.get(s.closes)
            pending = entry[1] if entry and entry[2] is OrderStatus.PENDING_NEW else None
            if pending is not None and (whole is None or not whole(pending)):
                return items, signals[i:]  # what the entry holds is known once it settles
            asked = order.qty
            order, reason = _closing(ex, order, s, entry, exiting.get(s.closes, 0.0))
            exit_cut = order.qty != asked  # counted once its item is kept (not if cut below)
            if reason:
                refuse(s, order, reason)
                continue
        if pos * side.sign < 0 and s.id not in known and not flatten:
            order, cut = _held(ex, order, pos, ex.open.working(sym, side))
        if (lots is not None or ticks is not None) and s.id not in known:
            asked, reason = order.qty, ""
            if lots is not None:
                order, reason = _lot_sized(lots, order)
                rounded = order.qty != asked  # counted once its item is kept (not if cut below)
            if ticks is not None and order.order_price and not reason:
                order, reason = _on_tick(ticks, order)
            if reason:  # the venue could not take it: refused before anything is sent (as asked)
                refuse(s, order, reason)
                continue
        if s.id in known:
            reason = ""  # a redelivery: recorded as nothing
        else:
            working = 0.0 if flatten else ex.open.working(sym, side)
            other = Side.SELL if side is Side.BUY else Side.BUY
            if (sym, other) in added and not engine.position_refuses(order, pos, working):
                worst = working + added.get((sym, side), 0.0)
                if engine.position_refuses(order, ex.portfolio.position(sym), worst):
                    return items, signals[i:]  # room only if the other side fills
            if ex.replay:
                engine.on_price(sym, s.price, s.ts_ns)
            reason = engine.check(
                order, s.strategy_id, pos, ex._now_ns(s), working=working, flatten=flatten
            )
            if not reason:
                projected[sym] = pos + side.sign * order.qty
                added[(sym, side)] = added.get((sym, side), 0.0) + order.qty
        known.add(s.id)
        status = OrderStatus.REJECTED if reason else OrderStatus.PENDING_NEW
        items.append((s, order, status, reason))
        if fresh:
            here[s.id] = items[-1]
            if s.closes and not reason:
                exiting[s.closes] = exiting.get(s.closes, 0.0) + order.qty
        if rounded:
            ex.telemetry.inc("order_qty_rounded")
        if cut:
            ex.telemetry.inc("order_qty_cut_to_held")
        if exit_cut:
            ex.telemetry.inc("exit_qty_cut_to_entry")
            log.info("exit_cut_to_entry", signal_id=s.id, closes=s.closes, qty=order.qty)
    return items, []


def _closing(
    ex: Executor, order: Order, s: Signal, entry: Item | None, taken: float
) -> tuple[Order, str]:
    """An exit's ``order`` cut to what its entry holds (`closing`), or why none goes.

    ``entry``: its item if this batch refused it or sends it to fill whole (else the
    journal's book counts);
    ``taken``: what the batch's earlier exits of the same entry take.
    """
    if entry is not None:  # of this batch: refused, or one that fills whole (`fills_whole`)
        e, refused = entry[1], entry[2] is OrderStatus.REJECTED
        filled = 0.0 if refused else e.qty
        status = entry[2] if refused else OrderStatus.FILLED
        book: EntryBook | None = EntryBook(e.symbol, e.side, e.qty, filled, status, 0.0)
    else:
        book = ex.journal.entry_book(s.closes)
    qty, reason = room(s, book, taken, ex.flattened.get(s.symbol, -1))
    if not reason and book is not None and not book.status.terminal and book.order_id:
        # it may take what the entry may still fill: cancelled if the entry ends unfilled
        watch = ex.exits_on_working.setdefault(book.order_id, (s.closes, set()))
        watch[1].add(order.client_order_id)
    if reason or qty == order.qty:
        return order, reason
    return dataclasses.replace(order, qty=qty), ""


def _held(ex: Executor, order: Order, pos: float, working: float) -> tuple[Order, bool]:
    """A closing ``order`` cut to what is held when it asks no more than fees took out of it.

    A venue that takes a buy's fee out of the asset bought leaves 0.999 of 1: a
    strategy selling the 1 it bought would be refused (the account lacks it, or
    REDUCING: it would flip the position). What is held is the position (with
    the batch's earlier orders as filled) less what the symbol's open orders on
    this side still hold back. Only while the position is the one the fees
    were taken from (not one the batch's earlier orders closed or flipped).
    """
    held = abs(pos) - working
    excess = order.qty - held
    fees = ex.portfolio.asset_fees(order.symbol)
    if (
        held <= 0
        or excess <= 0
        or excess > fees * (1 + 1e-9)
        or pos * ex.portfolio.position(order.symbol) <= 0
    ):
        return order, False
    return dataclasses.replace(order, qty=held), True


def _lot_sized(lot_qty: Callable[[str, float], float], order: Order) -> tuple[Order, str]:
    """``order`` with the qty the venue takes (down to its lot step), or why it cannot."""
    try:
        qty = lot_qty(order.symbol, order.qty)
    except OrderRejected as e:
        return order, e.reason
    except Exception as e:  # a broken market must not stop the batch, or the kill switch
        log.error("lot_size_unknown", order_id=order.id, error=repr(e))
        return order, ""  # sent as asked: the venue decides
    return (order if qty == order.qty else dataclasses.replace(order, qty=qty)), ""


def _on_tick(tick_price: Callable[[str, Side, float], float], order: Order) -> tuple[Order, str]:
    """``order`` with its limit or stop price on the venue's tick (`TickSized.tick_price`)."""
    try:
        price = tick_price(order.symbol, order.side, order.order_price)
    except OrderRejected as e:
        return order, e.reason
    except Exception as e:  # as for lots: sent as asked, ccxt rounds it
        log.error("price_tick_unknown", order_id=order.id, error=repr(e))
        return order, ""
    if price == order.order_price:
        return order, ""
    return dataclasses.replace(order, order_price=price), ""
