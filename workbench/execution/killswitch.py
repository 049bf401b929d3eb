"""The kill switch at the venue: cancel the executor's resting orders, build flatten signals.

`Executor.halt` and `Executor.flatten` drive these. Halting first stops new
orders (journaled, so a restart stays halted); then every order the venue may
still act on (resting limits and stops, orders in doubt) is cancelled through
the broker port, each request journaled beside the report that answers it, so
nothing the strategies placed before the halt can fill after it. `resume`
places nothing again: a cancelled order stays cancelled.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from workbench.domain.model import Side, Signal
from workbench.execution.lifecycle import Outcome
from workbench.messaging.codec import Event, Payload

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger()


def cancel_open_orders(ex: Executor, reason: str) -> int:
    """Ask the venue to cancel every open order of ``ex``; journal each request and its report.

    A cancel the venue does not take (an error, a timeout, an open circuit) is
    journaled, logged and alerted; the other orders are still asked.

    Returns:
        How many cancels the venue took.
    """
    tracked = list(ex.open.by_client_id.values())
    if not tracked:
        return 0
    out, events = Outcome(), list[Payload]()
    now, asked = time.time_ns(), 0
    for t in tracked:
        state = t.state
        try:
            ex.breaker.call(ex.calls, ex.broker.cancel, t.order.client_order_id)
        except Exception as e:
            log.error("order_cancel_failed", order_id=t.order.id, error=repr(e))
            note = f"cancel failed: {e!r}"
            events.append(Event("alert", {"reason": "cancel_failed", "order_id": t.order.id}))
        else:
            asked += 1
            note = f"cancel requested: {reason}"
            log.warning("order_cancel_requested", order_id=t.order.id, reason=reason)
        u = out.update(t)
        u.reports.append((state.status, now, state.venue_order_id, None, note, "cancel"))
    ex._drain(out)  # the venue's answers: CANCELLED, or a fill that came first
    ex.commit(out, events)
    for event in events:
        ex._publish(event)
    return asked


def flatten_signals(ex: Executor) -> list[Signal]:
    """Signals of the executor's own that bring every position to zero at the last price.

    A symbol without a market price is left open, logged and alerted (not sent blind).
    """
    base = ex.journal.last_signal_seq(ex.executor_id)
    signals: list[Signal] = []
    for sym, pos in sorted(ex.portfolio.positions.items()):
        if not pos.qty:
            continue
        q = ex.engine.market.get(sym)
        if q is None:
            log.error("flatten_without_price", symbol=sym, position=pos.qty)
            ex._publish(Event("alert", {"reason": "flatten_without_price", "symbol": sym}))
            continue
        seq = base + len(signals) + 1
        side = Side.SELL if pos.qty > 0 else Side.BUY
        signals.append(
            Signal(
                Signal.make_id(ex.executor_id, seq), ex.executor_id, seq, sym, side,
                abs(pos.qty), q.price, q.ts_ns, "flatten", "",
            )
        )  # fmt: skip
    return signals
