"""Signals become orders: idempotent, risk-checked, behind a circuit breaker, journaled.

`Executor` is transport-free: the runner feeds it signals from the wire, the
fast replay in-process; both get the same orders, fills and positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pybreaker
import structlog

from workbench.config import RiskConfig
from workbench.domain.accounting import Portfolio
from workbench.domain.model import Fill, Order, OrderStatus, Signal
from workbench.domain.orders import OrderAck
from workbench.exceptions import OrderRejected
from workbench.execution import batch_plan, commits, flattening, killswitch
from workbench.execution.broker import Broker, BrokerTimeout, MarketFed, TimedCalls
from workbench.execution.broker import make_breaker as make_breaker
from workbench.execution.closing import exits_on_working
from workbench.execution.journal_port import JournalPort
from workbench.execution.killswitch import CancelRetries, cancel_open_orders
from workbench.execution.lifecycle import (
    OpenOrders,
    Outcome,
    dashboard_event,
    rejected_event,
    signal_data,
)
from workbench.execution.reconcile import drain_reports, reconcile, venue_died_with_executor
from workbench.execution.risk import Quote, RiskEngine, TradingState
from workbench.messaging.codec import KIND_EVENT, Event, Payload
from workbench.telemetry import BurstLog, Telemetry

log = structlog.get_logger()

EventSink = Callable[[Payload], None]


class Executor:
    """Turns each signal into at most one order, ever, within the risk limits.

    Args:
        allowed_strategies: Strategy ids whose signals are accepted (None = any;
            the runners always pass the configured ids).
        replay: Decide by market time (the signal's tick) rather than the wall
            clock, and take the market price from the signal's tick, so fast and
            wire replay decide alike however fast they run.
        executor_id: Names the kill switch's own flatten orders.
        call_timeout_s: Longest broker call (`TimedCalls`).
        reconcile: Reconcile open journal orders with the broker now.
        subscribed: Whether anyone reads published messages of a wire kind and
            key (None: all do, if ``publish`` is given), asked once per message
            (one nobody reads takes its seq unbuilt, so a tap that joins later
            counts it); events no one reads are not built.
    """

    def __init__(
        self,
        broker: Broker,
        journal: JournalPort,
        risk: RiskConfig,
        breaker: pybreaker.CircuitBreaker,
        telemetry: Telemetry,
        publish: EventSink | None = None,
        *,
        allowed_strategies: set[str] | None = None,
        replay: bool = False,
        executor_id: str = "executor",
        call_timeout_s: float = 5.0,
        reconcile: bool = True,
        subscribed: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.broker = broker
        self.calls = TimedCalls(broker, call_timeout_s)
        self._market_fed = isinstance(broker, MarketFed)
        self.journal = journal
        self.risk = risk
        self.breaker = breaker
        self.telemetry = telemetry
        self._publish = publish or (lambda e: None)
        self._publishing = publish is not None
        self._subscribed = subscribed or (lambda kind, key: self._publishing)
        self.allowed = allowed_strategies
        self.replay = replay
        self.executor_id = executor_id
        self._refused = {r: BurstLog(r, 5.0) for r in ("signal_refused", "signal_invalid")}
        self._flattening = False
        self.flatten_refused: dict[str, str] = {}  # the venue's no to a flatten order, by symbol
        self.not_flattened: dict[str, str] = {}  # what the last flatten left open, and why
        self.flattened = journal.flattened(executor_id)  # entries before hold nothing (closing)
        # The runner's operator commands: whether one is waiting, and serving them.
        # Between a batch's orders a waiting one acts first (a halt stops the rest).
        self.command_waiting: Callable[[], bool] | None = None
        self.serve_commands: Callable[[], None] = lambda: None
        self.cancel_retries = CancelRetries()
        self.engine = RiskEngine(risk)
        # The market as journaled: in replay each symbol's latest signal, exactly the
        # market it had; live the marks saved every second, which only value positions.
        marks = journal.last_signal_prices() if replay else journal.marks()
        quotes = {s: Quote(p, t) for s, (p, t) in marks.items()}
        self.engine.market, self.engine.restored = (quotes, {}) if replay else ({}, quotes)
        self.marks_saved: dict[str, Quote] = {}  # what `save_marks` journaled last
        saved, self.state_reason = journal.trading_state(), ""
        if saved is not None:
            self.engine.state = TradingState(saved[0])
            self.state_reason = saved[1]
            if self.engine.state is not TradingState.ACTIVE:
                log.warning("trading_state_restored", state=saved[0], reason=saved[1])
        self.portfolio = Portfolio()
        open_rows = journal.open_orders()
        fill_ids: dict[str, set[str]] = {r["order_id"]: set() for r in open_rows}
        for f in journal.fills():
            self.portfolio.apply(f)
            if f.order_id in fill_ids:  # an open order's: reported again, it is not new
                fill_ids[f.order_id].add(f.id)
        self.open = OpenOrders()
        opened = journal.open_signals()
        strategies = {s: strategy for s, strategy, _ in opened}
        for row in open_rows:
            sid = strategies.get(row["signal_id"], "")
            self.open.restore(row, sid, fill_ids[row["order_id"]])
        # entry order id -> (its signal id, client ids of exits sent while it worked);
        # exits of entries that ended unfilled, whose cancel was lost (`reconcile`)
        closes = {s: c for s, _, c in opened if c}
        self.exits_on_working, self.orphaned_exits = exits_on_working(
            open_rows, closes, journal.entry_book
        )
        # PENDING_NEW: sent or not, we cannot know. Never resent; reconciliation
        # asks the venue. Also on the heartbeats (an event now finds no one).
        # (A replay's simulator died with the last process: `place_unsent`.)
        self.in_doubt: list[str] = journal.orders_in(OrderStatus.PENDING_NEW)
        if self.in_doubt and not venue_died_with_executor(replay, broker):
            log.error("orders_in_doubt", order_ids=self.in_doubt[:20], count=len(self.in_doubt))
            self._publish(
                Event("alert", {"reason": "orders_in_doubt", "order_ids": self.in_doubt[:20]})
            )
        if reconcile and len(self.open):
            self.reconcile()

    # -- trading state and market ------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED."""
        return self.engine.state

    def set_trading_state(self, state: TradingState, reason: str, source: str) -> None:
        """Change the trading state now; journaled first, so a restart keeps it."""
        killswitch.set_trading_state(self, state, reason, source)

    def on_tick(
        self, symbol: str, price: float, ts_ns: int, size: float = float("inf"), seen_ns: int = 0
    ) -> None:
        """The market moved (live: a gateway market snapshot, a symbol's newest tick).

        ``seen_ns``: when the gateway sent it, in this machine's clock (risk checks judge
        age by it too); a time stamp far ahead of it is counted (``market_quotes_ahead``).
        """
        if self.engine.on_price(symbol, price, ts_ns, seen_ns):  # a broken clock's
            self.telemetry.inc("market_quotes_ahead")
        if self._market_fed:
            self.broker.on_tick(symbol, price, ts_ns, size)  # type: ignore[attr-defined]

    def reconcile(self) -> list[dict[str, Any]]:
        """Compare the journal's open orders and positions with the venue's (see `reconcile`)."""
        return killswitch.after_reconcile(self, reconcile(self))

    def save_marks(self) -> None:
        """Journal the market prices seen since the last save: a restart values positions so."""
        killswitch.save_marks(self)

    def poll(self) -> list[Fill]:
        """Take the broker's execution reports since the last call; journal and publish them.

        Cancels the venue did not take are asked again first, when due.
        """
        if len(self.cancel_retries):
            due = self.cancel_retries.due(time.monotonic(), self.open.by_client_id)
            if due:
                cancel_open_orders(self, "retry", only=lambda t: t.order.client_order_id in due)
        out = Outcome()
        if not self._drain(out):
            return []
        events: list[Payload] = []
        self.commit(out, events)
        for e in events:
            self._publish(e)
        if out.fills and self.risk.max_daily_loss:  # replay: the market's clock, as on_signals
            self.check_daily_loss(max(f.ts_ns for f in out.fills) if self.replay else None)
        return out.fills

    def _now_ns(self, signal: Signal | None = None) -> int:  # replay: the market's clock
        if self.replay and (signal is not None or self.engine.market):
            return signal.ts_ns if signal else max(q.ts_ns for q in self.engine.market.values())
        return time.time_ns()

    def _refuse(self, s: Signal, reason: str) -> None:
        counter = reason.replace("signal_", "signals_")
        self.telemetry.inc(counter)
        n = self.telemetry.get(counter)
        if self._refused[reason](strategy_id=s.strategy_id, signal_id=s.id, total=n):
            self._publish(Event("alert", {"reason": reason, "strategy_id": s.strategy_id}))

    def on_signal(self, signal: Signal) -> list[Fill]:
        """Act on one signal once; a redelivered signal id does nothing."""
        return self.on_signals([signal])

    def on_signals(self, signals: list[Signal], received_ns: int | None = None) -> list[Fill]:
        """Act on signals in order, each at most once ever, with two journal commits in all.

        Signals and orders are committed before any order goes to the broker;
        acks and reports together afterwards; events once that is durable.
        Position rules count earlier orders of the batch as filled, and cut the
        batch before an order whose room only the other side's would make (`batch_plan`).
        """
        received_ns = received_ns or time.time_ns()
        kept = []
        for s in signals:
            if self.allowed is not None and s.strategy_id not in self.allowed:
                self._refuse(s, "signal_refused")
            elif s.problem():  # NaN or 2**64 cannot be journaled; ids are per sender
                self._refuse(s, "signal_invalid")
            else:
                kept.append(s)
        signals = kept
        if not signals:
            return []
        if self.risk.max_daily_loss and len(signals) > 1 and not self._flattening:
            # The loss limit is checked between signals, not only between
            # batches: a batch's size (the wire's, the fast replay's) must not
            # decide how far past the limit trading goes.
            return [f for s in signals for f in self.on_signals([s], received_ns)]
        if self.risk.max_daily_loss:
            # Before the batch moves the market: a day's first trade counts for that day.
            self.check_daily_loss(self._now_ns(signals[0]))
        journaled = self.journal.known_signals([s.id for s in signals])
        known = set(journaled)
        for s in signals:  # a copy must match the journal's, or the batch's first copy
            key = (s.symbol, s.side.value, s.qty, s.price, s.ts_ns)
            old = journaled.setdefault(s.id, key)
            if old != key:
                # Not a redelivery: a strategy reuses ids (its state was lost or
                # moved away). Ignoring it quietly would stop it trading unseen.
                self.telemetry.inc("signal_id_conflicts")
                log.error("signal_id_reused", signal_id=s.id, journaled=old)
                self._publish(Event("alert", {"reason": "signal_id_reused", "signal_id": s.id}))
        fills: list[Fill] = []
        while True:  # cut where `batch_plan` says; each part goes out before the next is checked
            items, signals = batch_plan.plan(self, signals, known)
            fills += self._send(items, received_ns)
            if not signals:
                return fills
            known = set(self.journal.known_signals([s.id for s in signals]))

    def _send(self, items: list[batch_plan.Item], received_ns: int) -> list[Fill]:
        """Journal ``items`` (one commit), send the orders, settle: the fills."""
        fresh = self.journal.begin_orders(items)
        events: list[Payload] = []
        out, fills = Outcome(), list[Fill]()
        waiting, obeyed = self.command_waiting, False
        wanted = self._subscribed
        refused: set[str] = set()  # planned to go, did not: an exit planned on it goes neither
        for (signal, order, _, reason), new in zip(items, fresh, strict=True):
            if not new:
                # A re-send of a journaled signal: the normal price of at-least-once.
                self.telemetry.inc("signals_duplicate")
                log.debug("signal_duplicate_ignored", signal_id=signal.id)
                continue
            self.telemetry.inc("signals_in")
            if wanted(KIND_EVENT, "signal_received"):  # fast replay, headless: nobody listens
                events.append(Event("signal_received", signal_data(signal, received_ns)))
            if reason:
                self._rejected(order, signal.strategy_id, reason, events)
                continue
            if signal.closes in refused:  # planned as if its entry (of this batch) filled whole
                why = f"closes {signal.closes}, which was refused after this exit was planned"
                killswitch.refuse(self, order, signal.strategy_id, why, out)
                refused.add(signal.id)
                continue
            if obeyed or (waiting is not None and not self._flattening and waiting()):
                # An operator's command came while earlier orders went out: they are
                # settled, it acts, and while the state is not ACTIVE each order left
                # goes only if the state allows it then (a halt stops them all).
                fills.extend(self._settle(out, events, signal))
                out, events = Outcome(), []
                if killswitch.obey_commands(self, order, signal.strategy_id, out):
                    obeyed = True
                    refused.add(signal.id)
                    continue
                obeyed = self.engine.state is not TradingState.ACTIVE
            if not self._submit(order, signal.strategy_id, out, events):
                refused.add(signal.id)
        return fills + self._settle(out, events, items[-1][0])

    def _settle(self, out: Outcome, events: list[Payload], last: Signal) -> list[Fill]:
        """Drain the venue's reports, journal ``out``, publish; the daily loss checked."""
        self._drain(out)
        self.commit(out, events)
        for e in events:
            self._publish(e)
        if out.fills and self.risk.max_daily_loss:
            self.check_daily_loss(self._now_ns(last))
        return out.fills

    # -- the kill switch and the daily loss limit (their bodies: `killswitch`) ------------

    def halt(self, reason: str = "halt", source: str = "operator") -> int:
        """HALT now, then cancel every open order at the venue; returns the cancels it took."""
        return killswitch.halt(self, reason, source)

    def flatten(self, wait_s: float = flattening.FILL_WAIT_S) -> list[Fill]:
        """HALT, cancel open orders, then zero every position; what stays open: `not_flattened`."""
        return flattening.flatten(self, wait_s)

    def reduce(self, source: str = "operator") -> int:
        """REDUCING, then cancel the open orders that would grow a position."""
        return killswitch.reduce(self, source)

    def resume(self, source: str = "operator") -> None:
        """Back to ACTIVE (`RiskRefused` while the daily loss limit is still breached)."""
        killswitch.resume(self, source)

    def check_daily_loss(self, now_ns: int | None = None) -> None:
        """HALT when the day's PnL is past ``max_daily_loss``."""
        killswitch.check_daily_loss(self, now_ns or time.time_ns())

    def _drain(self, out: Outcome) -> int:
        """Apply the broker's reports to ``out``; returns how many (see `drain_reports`)."""
        return drain_reports(self, out)

    def _submit(self, order: Order, strategy_id: str, out: Outcome, events: list) -> bool:
        """Send ``order``; whether the venue took it (False also when in doubt)."""
        self.telemetry.inc("orders_out")
        t = self.open.track(order, strategy_id)
        t.sent_ns = time.time_ns()
        cid = order.client_order_id
        try:
            if self._flattening:  # the kill switch tries the venue even with the circuit open
                ack = self.calls(self.broker.submit, order)
            else:
                ack = self.breaker.call(self.calls, self.broker.submit, order)
        except OrderRejected as e:
            ack = OrderAck(cid, False, reason=e.reason)
        except Exception as e:
            # pybreaker raises CircuitBreakerError on the call that trips it too:
            # what that call did is in the exception's context.
            cause = e.__context__ if isinstance(e, pybreaker.CircuitBreakerError) else e
            if isinstance(e, pybreaker.CircuitBreakerError):
                events.append(Event("alert", {"reason": "circuit_open", "order_id": order.id}))
            if cause is None or (isinstance(cause, BrokerTimeout) and not cause.started):
                reason = "circuit_open" if cause is None else f"not sent: {cause}"
                ack = OrderAck(cid, False, reason=reason)  # certainly never sent
            else:
                # Sent or not, we cannot know: the order stays PENDING_NEW, in
                # doubt, never resent; reconciliation asks the venue.
                log.error("broker_call_failed", order_id=order.id, error=repr(cause))
                self.in_doubt.append(order.id)
                events.append(
                    Event(
                        "alert",
                        {"reason": "order_in_doubt", "order_id": order.id, "error": repr(cause)},
                    )
                )
                return False
        if not ack.accepted:
            self.telemetry.inc("orders_rejected")
            log.warning("order_rejected", order_id=order.id, reason=ack.reason)
            if self._flattening:
                self.flatten_refused[order.symbol] = ack.reason
        self.open.on_ack(t, ack, out)
        return ack.accepted

    def commit(
        self, out: Outcome, events: list, differences: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Journal an outcome, apply its fills, queue its events (`commits.commit`)."""
        commits.commit(self, out, events, differences)

    def _rejected(self, order: Order, strategy_id: str, reason: str, events: list) -> None:
        if self._flattening:  # the flatten's answer names it (`flattening.left_open`)
            self.flatten_refused[order.symbol] = reason
        self.telemetry.inc("orders_rejected")
        log.warning("order_rejected", order_id=order.id, reason=reason)
        oe = rejected_event(order, strategy_id, reason)
        events.append(dashboard_event(oe))
        events.append(oe)
