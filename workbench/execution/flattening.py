"""``halt --flatten``: halt, then send orders of the executor's own that zero every position.

`Executor.flatten` drives this. The halt comes first and never depends on the
flatten: whatever the flatten then manages, the executor is HALTED. What it
could not close is said per symbol, with the reason, in
`Executor.not_flattened` and in the command's answer (``not_flattened``), so
the operator is never told a position is closed when it is not:

- no market price seen yet (a freshly restarted executor, a quiet symbol):
  nothing is sent blind;
- closing orders still open after the cancels cover the position (or part of
  it): only the rest is sent, so the kill switch never opens the opposite
  position; flattening again once they have closed sends what they held back;
- the closing order was rejected, is in doubt, or rests at the venue unfilled
  (a venue that reports fills after its answer is given `FILL_WAIT_S` first);
- what is left is less than the venue's smallest order (dust: a fee taken
  out of the asset can leave a position off the lot step);
- the flatten failed (an exception): the halt holds all the same;
- an order of a strategy's whose cancel the venue did not confirm is still
  open, whatever the position (flat now, it can fill and reopen it).
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

import structlog

from workbench.domain.model import Fill, OrderStatus, Side, Signal
from workbench.exceptions import OrderRejected
from workbench.execution.killswitch import halt
from workbench.execution.risk import TradingState
from workbench.messaging.codec import Event

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger()

NO_PRICE = "no market price seen yet: no closing order sent (never sent blind)"
IN_DOUBT = "closing order in doubt: the venue did not answer (reconciliation will tell)"
FILLED_SHORT = (
    "closing order filled {filled:g} of {qty:g}, then called filled by the venue: "
    "in doubt until reconciliation settles the rest"
)
ENDED_UNFILLED = "closing order ended unfilled (its journal reports say why)"
FILL_WAIT_S = 1.0
"""How long a flatten waits for closing orders the venue took but had not yet filled."""
POLL_S = 0.02


def flatten(ex: Executor, wait_s: float = FILL_WAIT_S) -> list[Fill]:
    """HALT and cancel open orders (`halt`), then send orders that zero every position.

    Each order comes from a signal of the executor's own (``<executor
    id>:<n>``), journaled like any other, at the last market price seen. The
    daily loss limit and the circuit breaker do not stop them: a kill switch
    must work when those have tripped. Closing orders the venue took but had
    not filled when it answered are followed for up to ``wait_s``. Sets
    ``ex.not_flattened``: each symbol whose position is still open afterwards,
    and why (empty when all are flat).

    Returns:
        The fills of the flatten orders.
    """
    halt(ex, "flatten requested", "operator")
    before = {s: p.qty for s, p in sorted(ex.portfolio.positions.items()) if p.qty}
    why: dict[str, str] = {}
    ex.flatten_refused = {}
    signals: list[Signal] = []
    fills: list[Fill] = []
    try:
        signals = flatten_signals(ex, why)
        if signals:
            fills = _send(ex, signals)
            fills += _await_fills(ex, {sg.id for sg in signals}, wait_s)
    except sqlite3.Error:  # the journal failed: what was done is not on record. Fail
        raise  # closed: the runner ends, and its restart reconciles with the venue
    except Exception as e:  # halted all the same; the answer says what stays open
        log.exception("flatten_failed", error=repr(e))
        for sym in before:
            why[sym] = "; ".join(filter(None, [why.get(sym), f"flatten failed: {e!r}"]))
    ex.not_flattened = left_open(ex, before, why, signals, fills)
    if ex.not_flattened:
        log.error("flatten_incomplete", not_flattened=ex.not_flattened)
        alert = {"reason": "flatten_incomplete", "not_flattened": dict(ex.not_flattened)}
        ex._publish(Event("alert", alert))
    return fills


def _send(ex: Executor, signals: list[Signal]) -> list[Fill]:
    # Flatten orders only shrink positions: they are checked as REDUCING,
    # and no limit but that one may stop a kill switch.
    ex.engine.state = TradingState.REDUCING
    allowed, ex.allowed = ex.allowed, None
    ex._flattening = True
    try:
        return ex.on_signals(signals)
    finally:
        ex._flattening = False
        ex.allowed = allowed
        ex.engine.state = TradingState.HALTED


def _await_fills(ex: Executor, ids: set[str], wait_s: float) -> list[Fill]:
    """The venue's reports until no closing order of ``ids`` is open or ``wait_s``.

    A venue may answer a market order before it reports the fill. Heartbeats
    go on meanwhile. A submit in doubt (never acknowledged) is not waited for;
    an order in doubt because a drain of reports failed is.
    """
    fills: list[Fill] = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(
        t.order.signal_id in ids
        and not (t.order.id in ex.in_doubt and t.state.status is OrderStatus.PENDING_NEW)
        for t in ex.open.by_client_id.values()
    ):
        time.sleep(POLL_S)
        fills += ex.poll()
        if ex.calls.on_wait is not None:
            ex.calls.on_wait()
    return fills


def flatten_signals(ex: Executor, skipped: dict[str, str] | None = None) -> list[Signal]:
    """Signals of the executor's own that bring every position to zero at the last price.

    A symbol without a market price is left open, logged and alerted (not sent
    blind). Closing orders still open after the cancels (their cancel failed,
    or the venue no longer knew them: they may have filled, the report not yet
    in) count as if they fill: only the rest is sent, so the kill switch never
    opens the opposite position. What they hold back is logged and alerted;
    flattening again once they have closed sends it.

    Args:
        skipped: Filled with each symbol left open or only partly closed, and why.
    """
    skipped = {} if skipped is None else skipped
    base = ex.journal.last_signal_seq(ex.executor_id)
    signals: list[Signal] = []
    for sym, pos in sorted(ex.portfolio.positions.items()):
        if not pos.qty:
            continue
        q = ex.engine.market.get(sym)
        if q is None:
            log.error("flatten_without_price", symbol=sym, position=pos.qty)
            ex._publish(Event("alert", {"reason": "flatten_without_price", "symbol": sym}))
            skipped[sym] = NO_PRICE
            continue
        side = Side.SELL if pos.qty > 0 else Side.BUY
        working = ex.open.working(sym, side)
        qty = abs(pos.qty) - working
        if working:
            log.error("flatten_held_back_by_open_orders", symbol=sym, position=pos.qty,
                      still_open=working, sent=max(qty, 0.0))  # fmt: skip
            ex._publish(Event("alert", {"reason": "flatten_open_orders", "symbol": sym}))
            sent = f"{qty:g} sent" if qty > 1e-9 * abs(pos.qty) else "nothing sent"
            skipped[sym] = (
                f"closing orders for {working:g} still open (their cancel failed or is not "
                f"confirmed): {sent}; flatten again once they have closed"
            )
        if qty <= 1e-9 * abs(pos.qty):
            continue
        seq = base + len(signals) + 1
        signals.append(
            Signal(
                Signal.make_id(ex.executor_id, seq), ex.executor_id, seq, sym, side,
                qty, q.price, q.ts_ns, "flatten", "",
            )
        )  # fmt: skip
    return signals


def left_open(
    ex: Executor,
    before: dict[str, float],
    why: dict[str, str],
    sent: list[Signal],
    fills: list[Fill],
) -> dict[str, str]:
    """Each symbol of ``before`` whose position is still open, and why; and each symbol
    with a strategy's order still open (its cancel was not confirmed).

    Args:
        before: The positions before the flatten.
        why: What the flatten already knows (no price, held back, failed).
        sent: The flatten signals sent.
        fills: Their fills.
    """
    ids = {s.id for s in sent}
    unfilled = {s.symbol: s.qty for s in sent}
    for f in fills:
        if f.signal_id in ids:
            unfilled[f.symbol] -= f.qty
    mine = {t.order.symbol: t for t in ex.open.by_client_id.values() if t.order.signal_id in ids}
    left: dict[str, str] = {}
    for sym, qty in before.items():
        if abs(ex.portfolio.position(sym)) <= 1e-9 * abs(qty):
            continue
        reasons = [why[sym]] if sym in why else []
        t = mine.get(sym)
        if t is not None and t.order.id in ex.in_doubt and t.short:
            reasons.append(FILLED_SHORT.format(filled=t.state.filled_qty, qty=t.order.qty))
        elif t is not None and t.order.id in ex.in_doubt:
            reasons.append(IN_DOUBT)
        elif t is not None:
            left_qty = t.order.qty - t.state.filled_qty
            reasons.append(f"closing order for {left_qty:g} open at the venue, not filled yet")
        elif sym in ex.flatten_refused:
            reasons.append(f"closing order rejected: {ex.flatten_refused[sym]}")
        elif unfilled.get(sym, 0.0) > 1e-9 * abs(qty):
            reasons.append(_below_smallest_order(ex, sym) or ENDED_UNFILLED)
        left[sym] = "; ".join(reasons) or "still open: no closing order went out"
    for t in ex.open.by_client_id.values():  # the halt's cancel failed: it may still fill
        o, was = t.order, before.get(t.order.symbol, 0.0)
        closing = (was > 0) == (o.side is Side.SELL) and was != 0  # named above as held back
        if o.signal_id not in ids and not closing:
            rest = o.qty - t.state.filled_qty
            note = f"order {o.id} ({o.side.value} {rest:g}) still open: its cancel not confirmed"
            left[o.symbol] = f"{left[o.symbol]}; {note}" if o.symbol in left else note
    return left


def _below_smallest_order(ex: Executor, symbol: str) -> str:
    """Why what is left cannot be sent, when it is less than the venue's smallest order.

    A closing order goes out in the venue's lot steps: a position a fee in the
    asset left off-step (0.6993 with a step of 0.001) keeps a remainder no order
    can close (dust, which the venue may convert by itself).
    """
    lot_qty = getattr(ex.broker, "lot_qty", None)
    if lot_qty is not None:
        left = abs(ex.portfolio.position(symbol))
        try:
            lot_qty(symbol, left)
        except OrderRejected as e:
            return f"{left:g} left, less than the venue takes: {e.reason}"
        except Exception:  # a broken market: the generic reason says enough
            pass
    return ""


def halted_anyway(ex: Executor, command: str, flatten: bool, e: sqlite3.Error) -> Event:
    """A kill-switch command whose journal write failed (a full disk).

    No answer would be true of what was done, so the error goes on and the
    runner ends (its restart reconciles with the venue); but a plain ``halt``
    holds in this process, which stays up HALTED and says so: ended, its
    restart would trade again if the halt did not reach the journal.

    Raises:
        sqlite3.Error: ``e`` again, unless a plain halt left this process HALTED.
    """
    if command != "halt" or flatten or ex.trading_state is not TradingState.HALTED:
        raise e
    log.critical("halt_not_journaled", error=repr(e))
    error = f"halt: HALTED here, but the journal failed ({e}): a restart may not know it"
    return Event("error", {"error": f"{error}; free the disk, then halt again"})
