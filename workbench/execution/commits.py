"""An executor's outcome made durable: journaled, applied to its portfolio, its events queued.

`Executor.commit` is this, for every path that settles orders: a batch's
sends, polls, reconciliation, the kill switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from workbench.execution.lifecycle import EVENT_NAMES, Outcome, dashboard_event
from workbench.messaging.codec import KIND_EVENT, KIND_ORDER, Event

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger()


def commit(
    ex: Executor, out: Outcome, events: list, differences: Sequence[dict[str, Any]] = ()
) -> None:
    """Journal an outcome, apply its fills to the portfolio, queue its events.

    The outcome's anomalies and ``differences`` (reconciliation's) are
    journaled in the same transaction as its orders and fills. A fill of the
    kill switch's own flatten (live, reported after the flatten answered)
    moves where the flatten closed its symbol's entries (`closing`).
    """
    subscribed, flatten_fill = ex._subscribed, False
    own = f"{ex.executor_id}:"
    for oe, fill in out.events:
        realized = 0.0
        if fill is not None:
            realized = ex.portfolio.apply(fill)
            ex.telemetry.inc("fills")
            flatten_fill = flatten_fill or fill.signal_id.startswith(own)
        if subscribed(KIND_EVENT, EVENT_NAMES[oe.status]):  # dashboards, taps
            ev = dashboard_event(oe)
            if fill is not None:
                pos = ex.portfolio.position(fill.symbol)
                ev.data.update(fill_id=fill.id, realized_pnl=realized, position=pos)
            events.append(ev)
        if subscribed(KIND_ORDER, oe.strategy_id):  # the strategy's outcome hooks
            events.append(oe)
    if out.updates or out.anomalies or differences:
        updates, anomalies = list(out.updates.values()), [*out.anomalies, *differences]
        ex.journal.record(updates, anomalies, fills=out.fills)  # as positions took them
    if flatten_fill:
        ex.flattened = ex.journal.flattened(ex.executor_id)
    if ex.exits_on_working:
        _entries_ended(ex, out, events)
    for a in out.anomalies:
        ex.telemetry.inc("execution_anomalies")
        log.error("execution_report_refused", **a)
        events.append(Event("alert", {"reason": a["kind"], **a}))


def _entries_ended(ex: Executor, out: Outcome, events: list) -> None:
    """Exits sent while their entry worked, once it ends: cancelled if it filled nothing.

    They took what the entry might still fill (`closing`); an entry a `reduce`
    or `halt` cancelled, or that expired, holds nothing, and an exit of it
    still open would shrink what other entries hold. One that filled part
    leaves its exits alone: what they take beyond it is alerted.
    """
    from workbench.execution.killswitch import cancel_exits  # it commits through here

    for oid, u in out.updates.items():
        watched = ex.exits_on_working.pop(oid, None) if u.status.terminal else None
        if watched is None:
            continue
        entry, exits = watched
        if u.filled_qty <= 0:
            cancel_exits(ex, exits, entry=entry)
            continue
        book = ex.journal.entry_book(entry)
        if book is not None and book.claimed > book.filled * (1 + 1e-9):
            log.error("exits_beyond_entry", entry=entry, filled=book.filled, exits=book.claimed)
            events.append(Event("alert", {"reason": "exits_beyond_entry", "signal_id": entry}))
