"""The kill switch and the daily loss limit: what moves the executor's trading state.

Cancel the executor's resting orders, halt on the daily loss limit, refuse a
resume while it is still breached (``halt --flatten``'s orders: `flattening`).

`Executor.halt` and `Executor.flatten` drive these. Halting first stops new
orders (journaled, so a restart stays halted); then every order the venue may
still act on (resting limits and stops, orders in doubt) is cancelled through
the broker port, each request journaled beside the report that answers it, so
nothing the strategies placed before the halt can fill after it. `resume`
places nothing again: a cancelled order stays cancelled.

Cancels skip the circuit breaker (the venue failing is when a kill switch
matters most); one the venue does not take is asked again (`CancelRetries`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any

import structlog

from workbench.domain.model import Order, OrderStatus
from workbench.domain.orders import OrderAck, qty_eps
from workbench.exceptions import RiskRefused
from workbench.execution.lifecycle import Outcome, Tracked
from workbench.execution.risk import TradingState, utc_day
from workbench.messaging.codec import Command, Event, Payload

if TYPE_CHECKING:
    from workbench.execution.executor import Executor

log = structlog.get_logger()


def set_trading_state(ex: Executor, state: TradingState, reason: str, source: str) -> None:
    """Change the trading state now; journaled first, so a restart keeps it; alerted."""
    if state is ex.engine.state and reason == ex.state_reason:
        return
    if state is TradingState.HALTED:  # even if the journal fails: see `halted_anyway`
        ex.engine.state, ex.state_reason = state, reason
    ex.journal.set_trading_state(state.value, reason, source)
    ex.engine.state, ex.state_reason = state, reason
    log.warning("trading_state_changed", state=state.value, reason=reason, source=source)
    data = {"state": state.value, "reason": reason, "source": source}
    ex._publish(Event("trading_state", data))
    if state is not TradingState.ACTIVE:
        alert = {**data, "reason": f"trading_{state.value.lower()}", "detail": reason}
        ex._publish(Event("alert", alert))


def halt(ex: Executor, reason: str, source: str) -> int:
    """HALT now (journaled first), then cancel every open order at the venue.

    Returns:
        How many cancels the venue took.
    """
    ex.set_trading_state(TradingState.HALTED, reason, source)
    return cancel_open_orders(ex, reason)


def reduce(ex: Executor, source: str) -> int:
    """REDUCING now (journaled first), then cancel the open orders that could grow a position.

    Those are the orders on a position's growing side, and closing orders
    beyond what it holds (all of them filling would flip it).

    Returns:
        How many cancels the venue took.
    """
    unwind = ""
    if ex.risk.max_daily_loss:  # chosen past the loss limit: the way to unwind, not halted again
        now_ns = ex._now_ns()
        check_daily_loss(ex, now_ns)
        if ex.engine.daily_loss_breached(total_pnl(ex), now_ns):
            unwind = utc_day(now_ns)
    ex.engine.unwind_day = unwind
    ex.set_trading_state(TradingState.REDUCING, "reduce", source)
    return cancel_open_orders(ex, "reduce", only=_may_not_stay_reducing(ex))


def _may_not_stay_reducing(ex: Executor) -> Callable[[Tracked], bool]:
    """Which open orders REDUCING cancels: a position's growing side, and closing ones beyond it."""
    closing: dict[str, float] = {}  # per symbol: what the kept closing orders add up to

    def may_not_stay(t: Tracked) -> bool:
        pos = ex.portfolio.position(t.order.symbol)
        if t.order.side.sign * pos >= 0:
            return True  # it grows the position (or opens one)
        left = t.order.qty - t.state.filled_qty
        kept = closing.get(t.order.symbol, 0.0)
        if kept + left > abs(pos) + qty_eps(pos):  # a float's drift (0.7 - 0.4) is not a flip
            return True  # with the others kept, it would flip the position
        closing[t.order.symbol] = kept + left
        return False

    return may_not_stay


def after_reconcile(ex: Executor, diffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An order in doubt found resting while HALTED or REDUCING: cancelled now, as the
    state change would have; so are exits the last process left open after their entry
    ended unfilled (`closing.exits_on_working`). Returns ``diffs``."""
    if ex.engine.state is not TradingState.ACTIVE and any(d["kind"] == "missed_ack" for d in diffs):
        cancel_what_may_not_rest(ex, "landed while not active")
    if ex.orphaned_exits:  # once, after the first reconciliation (a fill meanwhile is in)
        orphans, ex.orphaned_exits = ex.orphaned_exits, set()
        cancel_exits(ex, orphans, restart=True)
    return diffs


def cancel_exits(ex: Executor, exits: set[str], **why: Any) -> None:
    """Cancel the open exits ``exits`` (client order ids): their entry ended unfilled
    (`closing`), so they would shrink what other entries hold."""
    log.warning("exits_of_unfilled_entry_cancelled", exits=len(exits), **why)
    cancel_open_orders(
        ex, "its entry ended unfilled", only=lambda t: t.order.client_order_id in exits
    )


def cancel_what_may_not_rest(ex: Executor, reason: str) -> int:
    """HALTED or REDUCING: cancel the open orders the state does not let rest.

    After a restart, the cancels the state change asked for may have failed
    (their retries were in the last process's memory, `CancelRetries`), or
    never gone (a crash between the journaled state and the cancels); and an
    order in doubt may land at the venue after the halt. Any of them could
    fill while halted. A flatten's own closing orders stay.

    Returns:
        How many cancels the venue took.
    """
    state = ex.engine.state
    if state is TradingState.HALTED:
        own = ex.executor_id

        def not_flatten(t: Tracked) -> bool:
            return t.strategy_id != own

        return cancel_open_orders(ex, f"halted, {reason}", only=not_flatten)
    if state is TradingState.REDUCING:
        return cancel_open_orders(ex, f"reducing, {reason}", only=_may_not_stay_reducing(ex))
    return 0


def cancel_open_orders(
    ex: Executor, reason: str, only: Callable[[Tracked], bool] | None = None
) -> int:
    """Ask the venue to cancel every open order of ``ex``; journal each request and its report.

    A cancel the venue does not take (an error, a timeout) is journaled, logged
    and alerted, and asked again later (`CancelRetries`); the other orders are
    still asked.

    Args:
        only: Cancel only the open orders it is true for (all when None).

    Returns:
        How many cancels the venue took.
    """
    tracked = [t for t in ex.open.by_client_id.values() if only is None or only(t)]
    if not tracked:
        return 0
    out, events = Outcome(), list[Payload]()
    now, asked = time.time_ns(), 0
    for t in tracked:
        state = t.state
        cid = t.order.client_order_id
        try:
            ex.calls(ex.broker.cancel, cid)
        except Exception as e:
            log.error("order_cancel_failed", order_id=t.order.id, error=repr(e))
            note = f"cancel failed: {e!r}"
            events.append(Event("alert", {"reason": "cancel_failed", "order_id": t.order.id}))
            ex.cancel_retries.failed(cid, time.monotonic())
        else:
            asked += 1
            note = f"cancel requested: {reason}"
            log.warning("order_cancel_requested", order_id=t.order.id, reason=reason)
            if state.status is OrderStatus.PENDING_NEW:  # in doubt: the venue may not know
                ex.cancel_retries.failed(cid, time.monotonic())  # it yet: ask until it closes
            else:
                ex.cancel_retries.done(cid)
        u = out.update(t)
        u.reports.append((state.status, now, state.venue_order_id, None, note, "cancel"))
    ex._drain(out)  # the venue's answers: CANCELLED, or a fill that came first
    ex.commit(out, events)
    for event in events:
        ex._publish(event)
    return asked


class CancelRetries:
    """Cancels the venue did not take, asked again with backoff (1 s doubling to 30 s)."""

    FIRST_S = 1.0
    MAX_S = 30.0

    def __init__(self) -> None:
        self._next: dict[str, tuple[float, float]] = {}  # client id -> (due, backoff)

    def __len__(self) -> int:
        return len(self._next)

    def failed(self, client_order_id: str, now: float) -> None:
        """A cancel failed: ask again after the backoff, which doubles each time."""
        backoff = self._next.get(client_order_id, (0.0, self.FIRST_S / 2))[1] * 2
        backoff = min(self.MAX_S, backoff)
        self._next[client_order_id] = (now + backoff, backoff)

    def done(self, client_order_id: str) -> None:
        """The venue took the cancel, or the order is closed: stop asking."""
        self._next.pop(client_order_id, None)

    def due(self, now: float, open_ids: Container[str]) -> set[str]:
        """Client ids to ask again now; closed orders are forgotten."""
        for cid in [c for c in self._next if c not in open_ids]:
            del self._next[cid]
        return {cid for cid, (at, _) in self._next.items() if at <= now}


def obey_commands(ex: Executor, order: Order, strategy_id: str, out: Outcome) -> bool:
    """Serve the operator's waiting commands before ``order`` goes; True if the state stops it.

    The executor calls this between a batch's orders, once a command came, with
    the earlier orders settled (journaled, positions applied): a halt that came
    while they went out takes effect before the next one, however slow the
    venue. An order the trading state refuses is journaled REJECTED with its reason.
    """
    ex.serve_commands()
    sym, side = order.symbol, order.side
    reason = ex.engine.state_refuses(order, ex.portfolio.position(sym), ex.open.working(sym, side))
    if not reason:
        return False
    refuse(ex, order, strategy_id, reason, out)
    return True


def refuse(ex: Executor, order: Order, strategy_id: str, reason: str, out: Outcome) -> None:
    """Journal a batch's ``order`` REJECTED with ``reason`` in ``out``: it is not sent."""
    ex.telemetry.inc("orders_rejected")
    log.warning("order_rejected", order_id=order.id, reason=reason)
    t = ex.open.track(order, strategy_id)
    ex.open.on_ack(t, OrderAck(order.client_order_id, False, reason=reason), out, "risk")


# -- the daily loss limit ------------------------------------------------------------------


def save_marks(ex: Executor) -> None:
    """Journal the market prices ``ex`` saw since the last save (one transaction)."""
    saved = ex.marks_saved
    new = {s: q for s, q in ex.engine.market.items() if saved.get(s) is not q}
    if new:
        ex.journal.save_marks({s: (q.price, q.ts_ns) for s, q in new.items()})
        saved.update(new)


def total_pnl(ex: Executor) -> float:
    """Realized plus unrealized PnL at the last market prices seen, net of fees paid."""
    total = ex.portfolio.realized_pnl - ex.portfolio.fees
    market, restored = ex.engine.market, ex.engine.restored
    for sym, pos in ex.portfolio.positions.items():
        q = market.get(sym) or restored.get(sym)
        if q is not None and pos.qty:
            total += pos.unrealized(q.price)
    return total


def check_daily_loss(ex: Executor, now_ns: int) -> None:
    """HALT when the day's PnL is past ``max_daily_loss`` (journals the day's start).

    From ACTIVE, and from REDUCING but for the day an operator chose it with
    the limit already passed: that is how a loss halt is unwound (a restart
    forgets it: halted again, the operator reduces again). The day's
    start is the PnL at its first check, each position valued at the last
    market price seen (the previous close, for a symbol quiet since), which
    is journaled (`Executor.save_marks`) so a restart values it alike; one
    never priced is counted at its cost.
    """
    engine = ex.engine
    day = utc_day(now_ns)
    if day != engine.day:
        saved = ex.journal.risk_day(day)
        if saved is None:
            engine.day, engine.day_start_pnl = day, total_pnl(ex)
            ex.journal.set_risk_day(day, engine.day_start_pnl)
            ex.save_marks()  # the prices the start was valued at
        else:
            engine.day, engine.day_start_pnl = day, saved
    total = total_pnl(ex)
    unwinding = ex._flattening or (  # a flatten's own orders: halted already, for real
        engine.state is TradingState.REDUCING and engine.unwind_day == day
    )
    if (
        engine.daily_loss_breached(total, now_ns)
        and engine.state is not TradingState.HALTED
        and not unwinding
    ):
        loss = total - engine.day_start_pnl
        ex.set_trading_state(
            TradingState.HALTED,
            f"max_daily_loss: the day's PnL {loss:.6g} is below -{ex.risk.max_daily_loss}",
            "risk",
        )


def resume(ex: Executor, source: str) -> None:
    """Back to ACTIVE; refused while the day's loss is still past ``max_daily_loss``.

    Raises:
        RiskRefused: the daily loss limit is still breached.
    """
    if ex.risk.max_daily_loss:
        now_ns = ex._now_ns()  # in replay the market's clock, as every other check
        check_daily_loss(ex, now_ns)  # the day's start is set for now_ns from here on
        total = total_pnl(ex)
        if ex.engine.daily_loss_breached(total, now_ns):
            loss = total - ex.engine.day_start_pnl
            raise RiskRefused(
                f"the day's PnL {loss:.6g} is still below -{ex.risk.max_daily_loss} "
                "(max_daily_loss): 'reduce' or 'halt --flatten' can unwind; resume needs "
                "a higher limit or the next day"
            )
    ex.set_trading_state(TradingState.ACTIVE, "resume", source)


def obey(ex: Executor, p: Payload, run_id: str, waited_ms: float = 0.0) -> Event | dict[str, Any]:
    """Act on an operator's command; returns an ``error`` event, or the answer's extra fields.

    A command must name the executor's run (``run_id``; `send_command` sends
    the config's): one meant for another pipeline that shares the command
    address is refused, never acted on. A failing command never takes the
    executor down. A ``halt`` whose ``flatten`` is not a bool halts and answers
    an error, closing nothing: ``"False"`` must never close every position.
    A ``resume`` or ``reduce`` that may have waited on the socket
    (``waited_ms``, by this executor's clock: it was busy in a slow venue call)
    half as long as its sender waits for an answer (``expires_in_ms``) or more
    is refused: a sender that gave up told the operator nothing was done, and
    loosening a halt nobody knows of must not happen (one still waiting gets
    the refusal, and may retry). A late ``halt`` still holds.

    Returns:
        The ``error`` event, or the fields the answer adds to the trading state:
        for ``halt --flatten`` ``not_flattened``, each symbol still open and
        why (empty when every position was closed); else none.
    """
    if not isinstance(p, Command):
        return Event("error", {"error": f"expected a command, got {type(p).__name__}"})
    log.info("command_received", command=p.name, args=p.args)
    meant = p.args.get("run_id")
    if run_id and meant != run_id:
        log.error("command_for_another_run", command=p.name, run_id=run_id, meant=meant)
        error = f"this executor runs {run_id!r}, not {meant!r}"
        return Event("error", {"error": error, "run_id": run_id})
    patience = p.args.get("expires_in_ms")  # half: the answer must reach it in time too
    if (
        p.name in ("resume", "reduce")
        and isinstance(patience, int | float)
        and (waited_ms >= patience / 2)
    ):
        log.warning("command_expired", command=p.name, waited_ms=round(waited_ms),
                    sender_waits_ms=patience)  # fmt: skip
        error = (
            f"{p.name} may have waited {waited_ms:.0f} ms while the executor was busy; "
            f"its sender waits {patience} ms and may have given up: not done, ask again"
        )
        return Event("error", {"error": error})
    flatten = p.args.get("flatten", False)
    bad = p.name == "halt" and not isinstance(flatten, bool)  # "False" or "no" flattened all
    if bad:
        log.error("command_flatten_refused", command=p.name, flatten=repr(flatten))
    try:
        if p.name == "halt":
            if flatten is True:
                ex.flatten()  # halted first, whatever the flatten manages
                return {"not_flattened": dict(ex.not_flattened)}
            ex.halt(str(p.args.get("reason") or "halt"))
            if bad:  # the halt is what stops trading: it holds; the flatten is not guessed
                error = (
                    f"halt: flatten must be true or false, got {flatten!r}; halted, nothing closed"
                )
                return Event("error", {"error": error})
        elif p.name == "reduce":
            ex.reduce()
        elif p.name == "resume":
            ex.resume()
        elif p.name != "state":
            return Event("error", {"error": f"No command named {p.name!r}"})
    except sqlite3.Error as e:  # the journal failed: see there
        from workbench.execution.flattening import halted_anyway  # it imports this module

        return halted_anyway(ex, p.name, flatten is True, e)
    except Exception as e:
        log.error("command_failed", command=p.name, error=repr(e))
        return Event("error", {"error": f"{p.name} failed: {e}"})
    return {}
