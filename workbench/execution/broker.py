"""The Broker port: an order lifecycle any venue adapter can implement.

`submit` answers with an `OrderAck` (accepted with the venue's order id, or
rejected with a reason); what happens afterwards arrives as
`ExecutionReport`s that the executor polls with `reports`. The client order
id (`Order.client_order_id`) derives from the signal id alone, so a venue
that deduplicates on it never holds two orders for one signal. Queries by
client order id, open orders, fills since a time and positions serve
reconciliation at start.

Adapters are declared like strategies, ``[executor.broker] class_path`` plus
``params``; `load_broker` builds one. An adapter raises `OrderRejected` only
for a refusal it knows happened; any other exception is a failure the
circuit breaker counts, and a submit that failed that way leaves its order in
doubt until reconciliation asks the venue.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import pybreaker

from workbench.classpath import import_class
from workbench.domain.model import Fill, Order, Side
from workbench.domain.orders import ExecutionReport, OrderAck, OrderSnapshot
from workbench.exceptions import ConfigurationError, OrderRejected, WorkbenchError

if TYPE_CHECKING:
    from workbench.execution.tape import MarketTape  # numpy: only a replay's simulator loads it

T = TypeVar("T")


class BrokerTimeout(WorkbenchError):
    """A broker call did not return within its timeout (counted by the circuit breaker).

    ``started`` is False when the call never began (it waited behind a hung
    one and was withdrawn): a submit that never started certainly sent nothing.
    """

    def __init__(self, message: str, started: bool = True) -> None:
        super().__init__(message)
        self.started = started


@runtime_checkable
class Broker(Protocol):
    """A venue, seen through its order lifecycle."""

    def submit(self, order: Order) -> OrderAck:
        """Send a new order; accepted (venue order id) or rejected (reason)."""
        ...

    def reports(self) -> list[ExecutionReport]:
        """Execution reports received since the last call, oldest first."""
        ...

    def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel an order; a CANCELLED report follows if it could."""
        ...

    def order(self, client_order_id: str, symbol: str) -> OrderSnapshot | None:
        """The venue's view of one order, or None if it does not know it.

        ``symbol``: the order's, as journaled (an exchange asks per symbol, and
        the order's may have left the config since).
        """
        ...

    def open_orders(self) -> list[OrderSnapshot]:
        """Orders the venue still holds open."""
        ...

    def fills_since(self, ts_ns: int) -> list[Fill]:
        """Fills at or after ``ts_ns``."""
        ...

    def positions(self) -> dict[str, float] | None:
        """Net position per symbol, or None where the venue has no positions."""
        ...


@runtime_checkable
class ReplayableBroker(Protocol):
    """A broker that can run on recorded ticks (fast and wire replay)."""

    def use_tape(self, loader: Callable[[], MarketTape]) -> None:
        """Match against these ticks; ``loader`` is called when first needed."""
        ...


@runtime_checkable
class MarketFed(Protocol):
    """A broker that wants the executor's market ticks (a simulator, live)."""

    def on_tick(self, symbol: str, price: float, ts_ns: int, size: float = ...) -> None:
        """One tick of the market."""
        ...


@runtime_checkable
class LotSized(Protocol):
    """A broker whose venue trades quantities in lot steps (an exchange; not the simulator)."""

    def lot_qty(self, symbol: str, qty: float) -> float:
        """``qty`` rounded down to the lot step, as the venue takes it (no I/O).

        Raises:
            OrderRejected: below the market's smallest order.
        """
        ...


@runtime_checkable
class TickSized(Protocol):
    """A broker whose venue takes limit and stop prices on a tick (an exchange)."""

    def tick_price(self, symbol: str, side: Side, price: float) -> float:
        """A limit or stop ``price`` on the venue's tick: a buy's down, a sell's up (no I/O).

        Raises:
            OrderRejected: a buy's price below one tick.
        """
        ...


def make_breaker(fail_max: int, reset_timeout_s: float) -> pybreaker.CircuitBreaker:
    """A circuit breaker that ignores business rejections (`OrderRejected`)."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max, reset_timeout=reset_timeout_s, exclude=[OrderRejected]
    )


def replay_refusal(cfg: Any) -> str:
    """Why a replay feed cannot run with ``cfg``'s broker, which cannot run on recorded ticks.

    A replay's executor takes each signal's own price for the market (there is
    no live one) and a replay feed needs no risk limits: a live broker's orders
    would reach its venue unlimited, judged against the strategy's prices.
    """
    return (
        f"{cfg.executor.broker.class_path!r} cannot run on recorded ticks (no use_tape), and "
        "gateway.feed = 'replay': its orders would go to a real venue with the replay's "
        "prices and no risk limits; replay with the simulator, or trade live with a live "
        "feed ('exchange' or 'simulated') and its limits"
    )


def load_broker(class_path: str, params: Mapping[str, Any]) -> Broker:
    """Build a broker declared as data: ``"package.module:ClassName"`` plus params.

    Raises:
        ConfigurationError: the path does not import, the params do not fit,
            or the class does not implement `Broker`.
    """
    cls = import_class(class_path, "broker", "executor.broker.class_path")
    try:
        broker = cls(**dict(params))
    except (TypeError, ValueError) as e:
        raise ConfigurationError(
            f"broker {class_path!r} rejected executor.broker.params: {e}"
        ) from e
    if not isinstance(broker, Broker):
        raise ConfigurationError(f"{class_path!r} does not implement the Broker protocol")
    return broker


class TimedCalls:
    """Runs a broker's calls on one worker thread, each within ``timeout_s``.

    A hung venue makes calls raise `BrokerTimeout`, which the circuit breaker
    counts, instead of blocking the executor. Calls queue behind a hung one
    and time out too, so the breaker opens and then fails fast. Brokers that
    declare ``in_process = True`` (the simulator) are called directly.
    """

    def __init__(
        self,
        broker: Broker,
        timeout_s: float,
        on_wait: Callable[[], None] | None = None,
        wait_tick_s: float = 0.1,
    ) -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        # Called every ``wait_tick_s`` while a call is under way (the runner's
        # heartbeat: a slow venue must not make the supervisor think it hung).
        self.on_wait = on_wait
        self.wait_tick_s = wait_tick_s
        self._direct = bool(getattr(broker, "in_process", False)) or timeout_s <= 0
        self._pool: cf.ThreadPoolExecutor | None = None

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` within the timeout."""
        if self._direct:
            return fn(*args)
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="broker")
        future = self._pool.submit(fn, *args)
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                if self.on_wait is None or left <= 0:
                    return future.result(timeout=max(0.0, left))
                return future.result(timeout=min(left, self.wait_tick_s))
            except cf.TimeoutError:
                if self.on_wait is not None and time.monotonic() < deadline:
                    self.on_wait()
                    continue
                withdrawn = future.cancel()  # True only if it never started
                name = getattr(fn, "__name__", "call")
                raise BrokerTimeout(
                    f"broker {name} took longer than {self.timeout_s} s", started=not withdrawn
                ) from None

    def close(self) -> None:
        """Stop the worker thread (without waiting for a hung call)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
