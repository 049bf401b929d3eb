"""Reconciliation: the journal's open orders and positions against what the venue says.

Run when the executor starts with open orders in its journal (and again by the
runner while some stay in doubt). Each order the journal has as in flight is
asked for by its client order id:

- the venue does not know an order journaled PENDING_NEW: it never arrived,
  so it is closed as REJECTED (and never sent again);
- the venue does not know an order it had accepted: closed as REJECTED too;
- fills the venue has and the journal lacks are recorded, and a final state
  the journal missed (cancelled, expired, filled) is applied; every report
  reconciliation journals, an acknowledgement it found included, has the
  source ``reconcile``;
- an order the venue holds for a smaller amount than journaled, and has
  filled whole, has its rest closed as CANCELLED; one the venue calls filled
  whose record does not show that is left open, reported once and asked for
  again each round until it does. A live report of such a fill puts the
  order in doubt, so this runs soon (`doubt_short`);
- open orders of the venue the journal has never heard of, and positions
  that differ from the venue's (where it reports positions), are reported.

Every difference is journaled (``reconciliations``) in the transaction that
records what it changed, then logged and alerted. Nothing is ever submitted
here, but for one case that is not a question for a venue (`place_unsent`): in
a replay on the built-in simulator, the venue died with the executor.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from workbench.domain.model import OrderStatus
from workbench.domain.orders import ExecutionReport, OrderAck, OrderSnapshot, qty_eps
from workbench.execution.broker import BrokerTimeout
from workbench.execution.lifecycle import Outcome, Tracked
from workbench.execution.risk import TradingState
from workbench.execution.simulator import SimulatedBroker
from workbench.messaging.codec import Event, Payload

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger()


def reconcile(ex: Executor) -> list[dict[str, Any]]:
    """Reconcile ``ex``'s journal with its broker; returns the differences found.

    Every question goes to the venue first; then what was learned (order
    states, fills) and every difference are journaled in one transaction, so
    a process that dies at any point leaves either all of it or none (the
    next start asks again). A venue that cannot be asked leaves the orders as
    they are (in doubt), logged and alerted; the runner tries again later.
    """
    died = venue_died_with_executor(ex.replay, ex.broker)
    if died:
        place_unsent(ex)
    diffs: list[dict[str, Any]] = []
    out = Outcome()
    known_fills = {f.id for f in ex.journal.fills()}
    unresolved: list[str] = []
    for cid, t in list(ex.open.by_client_id.items()):
        try:
            snap = ex.calls(ex.broker.order, cid, t.order.symbol)
        except Exception as e:
            log.error("reconcile_query_failed", order_id=t.order.id, error=repr(e))
            unresolved.append(t.order.id)
            continue
        if snap is None and _may_still_arrive(ex, t):
            unresolved.append(t.order.id)  # asked again next round
            continue
        _order(ex, t, snap, known_fills, out, diffs)
    if not died:  # a simulator born empty with this process: nothing to compare
        _venue_only_orders(ex, diffs)
        _positions(ex, out, diffs)
    # A venue's "filled" (or a close) whose trades are not all listed: asked again every round.
    unconfirmed = [t.order.id for t in ex.open.by_client_id.values() if t.unconfirmed]
    ex.in_doubt = unresolved + unconfirmed
    events: list[Payload] = []
    ex.commit(out, events, diffs)
    for d in diffs:
        ex.telemetry.inc("reconciliation_differences")
        log.error("reconciliation_difference", **d)
        events.append(Event("alert", {"reason": "reconciliation", **d}))
    if unresolved:
        events.append(Event("alert", {"reason": "orders_in_doubt", "order_ids": unresolved[:20]}))
    for event in events:
        ex._publish(event)
    log.info("reconciled", differences=len(diffs), in_doubt=len(unresolved))
    return diffs


def drain_reports(ex: Executor, out: Outcome) -> int:
    """Apply the broker's reports to ``out``; returns how many (0 if it cannot be asked).

    A call that failed or timed out (and may still be running) may have
    taken trades from the venue, as a broker marks them seen while it builds
    its answer: what they were is lost. Every open order is then in doubt, so
    reconciliation asks the venue for its fills (the journal's decide which
    are new). An order a drain then fills whole is no longer in doubt; one it
    closes otherwise stays, so reconciliation compares positions.
    """
    if not len(ex.open):
        return 0
    try:
        reports = ex.calls(ex.broker.reports)
    except Exception as e:
        log.error("broker_reports_failed", error=repr(e), open_orders=len(ex.open))
        if not (isinstance(e, BrokerTimeout) and not e.started):  # never began: took nothing
            opened = [t.order.id for t in ex.open.by_client_id.values()]
            ex.in_doubt = list(dict.fromkeys([*ex.in_doubt, *opened]))
        return 0
    for r in reports:
        ex.open.on_report(r, out)
    if reports and ex.in_doubt:
        filled = {o for o, u in out.updates.items() if u.status is OrderStatus.FILLED}
        ex.in_doubt = [o for o in ex.in_doubt if o not in filled]
    doubt_short(ex, out)
    return len(reports)


def doubt_short(ex: Executor, out: Outcome) -> None:
    """Orders the venue called filled short of their qty: in doubt, so reconciliation asks.

    It closes them if the venue holds no more fills of theirs (`_closed_short`).
    """
    if not out.short:  # every drain of reports comes here
        return
    still_open = {t.order.id: t for t in ex.open.by_client_id.values()}
    for order_id in out.short:
        if order_id in still_open:
            still_open[order_id].short = True  # in doubt already or not: this is why now
            if order_id not in ex.in_doubt:
                log.warning("order_filled_short_at_venue", order_id=order_id)
                ex.in_doubt.append(order_id)


def _may_still_arrive(ex: Executor, t: Tracked) -> bool:
    """An order in doubt that its venue may still carry out: not found proves nothing yet.

    A create that went unanswered can still reach the exchange's matching
    engine for a while (the broker's ``unanswered_order_s``; Binance: its
    ``recvWindow``); closed as not at the venue before that, it could fill unseen.
    """
    window_s = getattr(ex.broker, "unanswered_order_s", 0.0)
    age_s = (time.time_ns() - max(t.order.ts_ns, t.sent_ns)) / 1e9
    if t.state.status is not OrderStatus.PENDING_NEW or age_s >= window_s:
        return False
    log.warning("order_not_found_yet", order_id=t.order.id, age_s=round(age_s, 3))
    return True


def venue_died_with_executor(replay: bool, broker: object) -> bool:
    """A replay on the built-in simulator: its venue lived in the executor's process."""
    return replay and isinstance(broker, SimulatedBroker)


def place_unsent(ex: Executor) -> None:
    """A replay on the built-in simulator: place the orders a killed executor left PENDING_NEW.

    That simulator lived in the killed process and what it knew died with it:
    an order journaled but not settled then was filled nowhere. Placed now,
    against the same tape at its own market time, it fills exactly as in a run
    without the crash. (Closed as not at the venue, as a live venue's
    reconciliation does, the replay's fills would differ from the fast replay's.)
    A trading state that refuses it (halted meanwhile) rejects it instead; a
    flatten's own closing order is checked as the flatten checked it (REDUCING).
    """
    unsent = [
        t
        for t in ex.open.by_client_id.values()
        if t.state.status is OrderStatus.PENDING_NEW
        and ex.broker.order(t.order.client_order_id, t.order.symbol) is None
    ]
    if not unsent:
        return
    out, events = Outcome(), list[Payload]()
    state = ex.engine.state
    for t in unsent:
        order, flatten = t.order, t.strategy_id == ex.executor_id
        # A flatten's order went out with the state HALTED on the journal: it is
        # checked, and sent, as `flattening` did (REDUCING, through an open breaker).
        ex.engine.state = TradingState.REDUCING if flatten else state
        ex._flattening = flatten
        try:
            left = order.qty - t.state.filled_qty
            working = ex.open.working(order.symbol, order.side) - left
            reason = ex.engine.state_refuses(order, ex.portfolio.position(order.symbol), working)
            if reason:  # halted before the kill: refused now, as it would have been then
                ack = OrderAck(order.client_order_id, False, reason=reason)
                ex.open.on_ack(t, ack, out, "risk")
                continue
            log.warning("order_placed_again", order_id=order.id, reason="replay venue restarted")
            ex._submit(order, t.strategy_id, out, events)
        finally:
            ex.engine.state, ex._flattening = state, False
    ex._drain(out)
    ex.commit(out, events)
    for event in events:
        ex._publish(event)
    if out.fills and ex.risk.max_daily_loss:
        ex.check_daily_loss(max(f.ts_ns for f in out.fills))


def _order(
    ex: Executor,
    t: Tracked,
    snap: OrderSnapshot | None,
    known_fills: set[str],
    out: Outcome,
    diffs: list[dict[str, Any]],
) -> None:
    """What the venue says of one journaled order: applied to ``out``, differences listed."""
    cid = t.order.client_order_id
    journaled = t.state.status
    unconfirmed, t.unconfirmed = t.unconfirmed, ()  # set again below while it lasts
    if snap is None:
        reason = "not at the venue (reconciliation)"
        diffs.append(_diff("order_not_at_venue", t.order.id, t.order.symbol, journaled))
        if journaled is OrderStatus.PENDING_NEW:
            ex.open.on_ack(t, OrderAck(cid, False, reason=reason), out, "reconcile")
        else:
            ex.open.on_report(
                ExecutionReport(cid, OrderStatus.REJECTED, 0, "", None, reason), out, "reconcile"
            )
        return
    if journaled is OrderStatus.PENDING_NEW:
        ex.open.on_ack(t, OrderAck(cid, True, snap.venue_order_id), out, "reconcile")
        diffs.append(
            _diff("missed_ack", t.order.id, t.order.symbol, journaled, venue=snap.status.value)
        )
    for f in snap.fills:
        if f.id in known_fills:
            continue
        status = (
            OrderStatus.FILLED
            if t.state.filled_qty + f.qty >= t.order.qty - qty_eps(t.order.qty)
            else OrderStatus.PARTIALLY_FILLED
        )
        ex.open.on_report(
            ExecutionReport(cid, status, f.ts_ns, snap.venue_order_id, f), out, "reconcile"
        )
        diffs.append(
            _diff("missed_fill", t.order.id, t.order.symbol, journaled, fill_id=f.id)
            | {"qty": f.qty, "price": f.price, "fee": f.fee, "ts_ns": f.ts_ns}
            | ({"fee_qty": f.fee_qty} if f.fee_qty else {})
            | ({"fee_asset": f.fee_asset} if f.fee_asset else {})
        )
    eps = qty_eps(t.order.qty)
    listed = sum(f.qty for f in snap.fills)
    if snap.status.terminal and snap.status is not OrderStatus.FILLED and t.state.open:
        if listed < snap.filled_qty - eps:  # its trades not all listed: closed, they are lost
            seen = (snap.qty, snap.filled_qty, listed, t.state.filled_qty)
            if seen != unconfirmed:  # named once; asked again every round (`reconcile`)
                diffs.append(
                    _diff("closed_fills_unlisted", t.order.id, t.order.symbol, journaled)
                    | {"venue": snap.status.value, "venue_filled_qty": snap.filled_qty}
                    | {"venue_fills_qty": listed, "filled_qty": t.state.filled_qty}
                )
            t.unconfirmed = seen
            return
        ex.open.on_report(
            ExecutionReport(cid, snap.status, 0, snap.venue_order_id, None, snap.reason),
            out,
            "reconcile",
        )
        diffs.append(
            _diff("missed_status", t.order.id, t.order.symbol, journaled, venue=snap.status)
        )
    elif snap.status is OrderStatus.FILLED and t.state.open:
        if _done_short(t, snap):
            _closed_short(ex, t, snap, out, diffs, journaled)
        else:  # the venue's record does not show it: left open, asked again (`reconcile`)
            seen = (snap.qty, snap.filled_qty, listed, t.state.filled_qty)
            if seen != unconfirmed:  # named for the operator once, not every round
                diffs.append(
                    _diff("filled_short_unconfirmed", t.order.id, t.order.symbol, journaled)
                    | {"venue_qty": seen[0], "venue_filled_qty": seen[1]}
                    | {"venue_fills_qty": seen[2], "filled_qty": seen[3], "qty": t.order.qty}
                )
            t.unconfirmed = seen


def _done_short(t: Tracked, snap: OrderSnapshot) -> bool:
    """Whether the venue's own record shows the order done for less than the journal's qty.

    All of: it holds the order for a smaller amount, has filled all of that
    amount, lists trades for all of it, and the journal has them all. A
    venue's "filled" with a lagging count or trades not listed yet proves
    nothing: closing the order then would lose the trades that follow.
    """
    eps = qty_eps(t.order.qty)
    return (
        0 < snap.qty < t.order.qty - eps
        and snap.filled_qty >= snap.qty - eps
        and sum(f.qty for f in snap.fills) >= snap.filled_qty - eps
        and t.state.filled_qty >= snap.filled_qty - eps
    )


def _closed_short(
    ex: Executor,
    t: Tracked,
    snap: OrderSnapshot,
    out: Outcome,
    diffs: list[dict[str, Any]],
    journaled: OrderStatus,
) -> None:
    """The venue filled the order for less than the journal's qty and closed it (`_done_short`).

    The venue took a smaller amount than journaled (a journal from before the
    executor rounded quantities to lot steps, or a venue that cut the order):
    nothing more will fill, so the rest is closed as cancelled. Left open, it
    would count as working for ever.
    """
    s = t.state
    reason = f"the venue closed it with {s.filled_qty:g} of {t.order.qty:g} filled"
    report = ExecutionReport(
        t.order.client_order_id, OrderStatus.CANCELLED, 0, snap.venue_order_id, None, reason
    )
    ex.open.on_report(report, out, "reconcile")
    diffs.append(
        _diff("closed_short", t.order.id, t.order.symbol, journaled, venue=snap.status)
        | {"filled_qty": s.filled_qty, "qty": t.order.qty}
    )


def _diff(kind: str, order_id: str, symbol: str, journaled: Any, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "order_id": order_id,
        "symbol": symbol,
        "journaled": str(journaled),
        **{k: str(v) if isinstance(v, OrderStatus) else v for k, v in extra.items()},
    }


def _venue_only_orders(ex: Executor, diffs: list[dict[str, Any]]) -> None:
    try:
        venue_open = ex.calls(ex.broker.open_orders)
    except Exception as e:
        log.error("reconcile_open_orders_failed", error=repr(e))
        return
    ours = {row["client_order_id"] for row in ex.journal.orders()}
    for snap in venue_open:
        if snap.client_order_id not in ours:
            diffs.append(
                {
                    "kind": "venue_order_not_in_journal",
                    "client_order_id": snap.client_order_id,
                    "venue_order_id": snap.venue_order_id,
                }
            )


def _positions(ex: Executor, out: Outcome, diffs: list[dict[str, Any]]) -> None:
    try:
        venue = ex.calls(ex.broker.positions)
    except Exception as e:
        log.error("reconcile_positions_failed", error=repr(e))
        return
    if venue is None:
        return  # the venue has no positions to compare with
    ours = {s: p.qty for s, p in ex.portfolio.positions.items()}
    for f in out.fills:  # the fills found above, not yet applied (journaled with the diffs)
        ours[f.symbol] = ours.get(f.symbol, 0.0) + f.position_change
    for sym in sorted(set(ours) | set(venue)):
        a, b = ours.get(sym, 0.0), venue.get(sym, 0.0)
        if abs(a - b) > qty_eps(a, b):
            diffs.append({"kind": "position_mismatch", "symbol": sym, "journal": a, "venue": b})
