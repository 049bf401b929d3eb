"""Signals become orders: idempotent, risk-checked, behind a circuit breaker, journaled.

`Executor` is transport-free: the executor runner feeds it signals from the
wire, the fast replay feeds it signals in-process, and both get the same
orders, fills and positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pybreaker
import structlog

from workbench.config import RiskConfig
from workbench.domain.accounting import Portfolio
from workbench.domain.model import Fill, Order, OrderStatus, Signal
from workbench.exceptions import OrderRejected
from workbench.execution.broker import Broker
from workbench.execution.journal import Journal
from workbench.messaging.codec import Event
from workbench.runtime.telemetry import Telemetry

log = structlog.get_logger()

EventSink = Callable[[Event], None]


def make_breaker(fail_max: int, reset_timeout_s: float) -> pybreaker.CircuitBreaker:
    """A circuit breaker that ignores business rejections."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max, reset_timeout=reset_timeout_s, exclude=[OrderRejected]
    )


class Executor:
    """Turns each signal into at most one order, ever."""

    def __init__(
        self,
        broker: Broker,
        journal: Journal,
        risk: RiskConfig,
        breaker: pybreaker.CircuitBreaker,
        telemetry: Telemetry,
        publish: EventSink | None = None,
    ) -> None:
        self.broker = broker
        self.journal = journal
        self.risk = risk
        self.breaker = breaker
        self.telemetry = telemetry
        self._publish = publish or (lambda e: None)
        self.portfolio = Portfolio()
        for f in journal.fills():
            self.portfolio.apply(f)
        pending = journal.orders_in(OrderStatus.PENDING)
        self.in_doubt = pending  # also on the runner's heartbeats: an event now finds no subscriber
        if pending:
            # Sent or not, we cannot know: never resend, flag for reconciliation.
            log.error("orders_in_doubt", order_ids=pending[:20], count=len(pending))
            self._publish(Event("alert", {"reason": "orders_in_doubt", "order_ids": pending[:20]}))

    def _risk_reason(self, order: Order, position: float) -> str:
        r = self.risk
        if r.max_order_qty and order.qty > r.max_order_qty:
            return f"qty {order.qty} exceeds max_order_qty {r.max_order_qty}"
        if r.max_position_qty:
            after = position + order.side.sign * order.qty
            if abs(after) > r.max_position_qty:
                return f"position {after} would exceed max_position_qty {r.max_position_qty}"
        return ""

    def on_signal(self, signal: Signal) -> list[Fill]:
        """Act on one signal once; a redelivered signal id does nothing."""
        return self.on_signals([signal])

    def on_signals(self, signals: list[Signal], received_ns: int | None = None) -> list[Fill]:
        """Act on signals in order, each at most once ever, with two journal commits in all.

        Every signal and its order are committed before any order goes to the
        broker, the broker's answers are committed together afterwards, and
        events are published only once that is durable. Position limits see
        the positions earlier signals of the batch will leave (orders are
        assumed to fill in full, as market orders here do).
        """
        received_ns = received_ns or time.time_ns()
        journaled = self.journal.known_signals([s.id for s in signals])
        for s in signals:
            old = journaled.get(s.id)
            if old is not None and old != (s.symbol, s.side.value, s.qty, s.price, s.ts_ns):
                # Not a redelivery: a strategy reuses ids (its state was lost or
                # moved away). Ignoring it quietly would stop it trading unseen.
                self.telemetry.inc("signal_id_conflicts")
                log.error("signal_id_reused", signal_id=s.id, journaled=old)
                self._publish(Event("alert", {"reason": "signal_id_reused", "signal_id": s.id}))
        known = set(journaled)
        projected: dict[str, float] = {}
        items = []
        for s in signals:
            order = Order.from_signal(s)
            pos = projected.get(s.symbol, self.portfolio.position(s.symbol))
            reason = self._risk_reason(order, pos)
            if not reason and s.id not in known:
                projected[s.symbol] = pos + order.side.sign * order.qty
            known.add(s.id)
            items.append(
                (s, order, OrderStatus.REJECTED if reason else OrderStatus.PENDING, reason)
            )
        fresh = self.journal.begin_orders(items)
        events: list[Event] = []
        results: list[tuple[str, OrderStatus, list[Fill], str]] = []
        all_fills: list[Fill] = []
        for (signal, order, _, reason), new in zip(items, fresh, strict=True):
            if not new:
                self.telemetry.inc("signals_duplicate")
                log.warning("signal_duplicate_ignored", signal_id=signal.id)
                continue
            self.telemetry.inc("signals_in")
            events.append(Event("signal_received", _signal_data(signal, received_ns)))
            if reason:
                results.append(self._rejected(order, reason, events))
                continue
            fills, result = self._submit(order, events)
            results.append(result)
            all_fills.extend(fills)
        if results:
            self.journal.finish_orders(results)
        for e in events:
            self._publish(e)
        return all_fills

    def _submit(self, order: Order, events: list[Event]) -> tuple[list[Fill], tuple]:
        self.telemetry.inc("orders_out")
        try:
            fills = self.breaker.call(self.broker.submit, order)
        except pybreaker.CircuitBreakerError:
            events.append(Event("alert", {"reason": "circuit_open", "order_id": order.id}))
            return [], self._rejected(order, "circuit_open", events)
        except OrderRejected as e:
            return [], self._rejected(order, e.reason, events)
        except Exception as e:
            log.error("broker_error", order_id=order.id, error=repr(e))
            return [], self._rejected(order, f"broker_error: {type(e).__name__}: {e}", events)
        events.append(Event("order_accepted", _order_data(order)))
        for f in fills:
            realized = self.portfolio.apply(f)
            self.telemetry.inc("fills")
            data = _fill_data(f)
            data["realized_pnl"] = realized
            data["position"] = self.portfolio.position(f.symbol)
            events.append(Event("order_filled", data))
        status = OrderStatus.FILLED if fills else OrderStatus.ACCEPTED
        return fills, (order.id, status, fills, "")

    def _rejected(self, order: Order, reason: str, events: list[Event]) -> tuple:
        self.telemetry.inc("orders_rejected")
        log.warning("order_rejected", order_id=order.id, reason=reason)
        events.append(Event("order_rejected", {**_order_data(order), "reason": reason}))
        return (order.id, OrderStatus.REJECTED, [], reason)


def _signal_data(s: Signal, received_ns: int) -> dict[str, Any]:
    return {
        "signal_id": s.id,
        "strategy_id": s.strategy_id,
        "symbol": s.symbol,
        "side": s.side.value,
        "qty": s.qty,
        "price": s.price,
        "ts_ns": s.ts_ns,
        "reason": s.reason,
        "condition_id": s.condition_id,
        "origin_ns": s.origin_ns,
        "received_ns": received_ns,
    }


def _order_data(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.id,
        "signal_id": o.signal_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "qty": o.qty,
        "price": o.price,
        "ts_ns": o.ts_ns,
    }


def _fill_data(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.id,
        "order_id": f.order_id,
        "signal_id": f.signal_id,
        "symbol": f.symbol,
        "side": f.side.value,
        "qty": f.qty,
        "price": f.price,
        "ts_ns": f.ts_ns,
    }
