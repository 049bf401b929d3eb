"""The built-in broker: a deterministic simulator of a venue.

Declared like any broker (``[executor.broker] class_path`` plus ``params``).
Its defaults (no latency, no fees, no slippage, market orders) fill every
order at once, in full, at its signal's price: the fills of the workbench
before order lifecycles existed.

Rules (all deterministic, all in market time):

- An order reaches the venue ``latency_ms`` after its signal. With no latency
  it meets the signal's own tick (its price); otherwise the first tick at or
  after that time. Later ticks follow in time order (on a tape, those of the
  signal's time after its tick too); a tick from before the order reached the
  venue never fills it (live, a snapshot read after the signal).
- MARKET fills at the tick's price, ``slippage`` against the trader. With
  ``slippage_half_spreads`` set, a tick that has bid and ask (a quote file)
  fills instead at ``mid + side * slippage_half_spreads * (ask - bid) / 2``:
  0 fills at the mid, 1 crosses the spread (a buy pays the ask, a sell gets
  the bid), 2 goes one half-spread beyond. Ticks without quotes (trade files,
  and live ticks, which carry one price) keep the fixed ``slippage``.
- LIMIT fills on arrival at the tick's price if that is at or better than the
  limit; otherwise it rests and fills at the limit once a tick trades through
  it (strictly better than the limit).
- STOP (stop-market) triggers on the first tick at or through its price and
  fills there as MARKET.
- IOC: what did not fill on the arrival tick expires (on a tape that ends
  before it arrives, at its arrival time).
- ``partial_fills``: a tick fills at most its size; the rest waits for later ticks.
  Live, with no latency, the signal's own tick (not among the executor's
  snapshots) fills the order whole.
- Fees: ``fee_bps`` of every fill's notional, plus ``fee_per_order`` on an
  order's first fill.

In a replay the simulator is given the recorded ticks (`use_tape`) and
resolves an order against them when it arrives: its reports are ready at once
and carry the market times they happen at. Live, it matches pending orders
against the ticks the executor passes to `on_tick`: the gateway's snapshots
of each symbol's newest tick (a partial fill waits for the next snapshot).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.domain.model import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from workbench.domain.orders import ExecutionReport, OrderAck, OrderSnapshot, qty_eps
from workbench.execution.sim_orders import KEEP_DONE, Quote, VenueOrder, invalid

if TYPE_CHECKING:  # numpy comes with the tape, in a replay only: live stays without it
    from workbench.execution.tape import MarketTape, SymbolTape


class SimulatedBroker:
    """A deterministic venue (see the module docstring for its rules).

    Args:
        latency_ms: Time from a signal to its order reaching the venue.
        fee_bps: Fee on every fill, in basis points of its notional.
        fee_per_order: Fixed fee on an order's first fill.
        slippage: Price units a MARKET (or triggered STOP) fill moves against the trader.
        slippage_half_spreads: Where a tick has bid and ask, a MARKET (or
            triggered STOP) fill is this many half-spreads from the mid against
            the trader instead (1.0: buy at the ask, sell at the bid); None: off.
        partial_fills: A tick fills at most its size.
    """

    in_process = True
    """Calls never block: the executor needs no worker thread or timeout for them."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        fee_bps: float = 0.0,
        fee_per_order: float = 0.0,
        slippage: float = 0.0,
        partial_fills: bool = False,
        slippage_half_spreads: float | None = None,
    ) -> None:
        for name, v in (
            ("latency_ms", latency_ms),
            ("fee_bps", fee_bps),
            ("fee_per_order", fee_per_order),
            ("slippage", slippage),
            (
                "slippage_half_spreads",
                0.0 if slippage_half_spreads is None else slippage_half_spreads,
            ),
        ):
            if isinstance(v, bool) or not (
                isinstance(v, int | float) and math.isfinite(v) and v >= 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(partial_fills, bool):  # "false" would read as True
            raise ValueError(f"partial_fills must be true or false, got {partial_fills!r}")
        self.latency_ns = round(latency_ms * 1_000_000)
        self.fee_rate = fee_bps / 10_000.0
        self.fee_per_order = float(fee_per_order)
        self.slippage = float(slippage)
        self.half_spreads = None if slippage_half_spreads is None else float(slippage_half_spreads)
        self.partial_fills = partial_fills
        self._orders: dict[str, VenueOrder] = {}
        self._waiting: dict[str, list[VenueOrder]] = {}  # live: open orders by symbol
        self._reports: list[ExecutionReport] = []
        # Bounded: a paper run places orders for weeks (`KEEP_DONE`).
        self._done: OrderedDict[str, None] = OrderedDict()  # finished, oldest first
        self._fills: deque[Fill] = deque(maxlen=KEEP_DONE)
        self._positions: dict[str, float] = {}
        self._tape_loader: Callable[[], MarketTape] | None = None
        self._tape: MarketTape | None = None
        self._clock = 0

    # -- market ---------------------------------------------------------------------

    def use_tape(self, loader: Callable[[], MarketTape]) -> None:
        """Replay: match orders against recorded ticks.

        Loaded now when every order will need them (latency, partial fills),
        otherwise when an order first does (a limit or stop order).
        """
        self._tape_loader = loader
        if self.latency_ns or self.partial_fills:
            self._tape = loader()

    def on_tick(self, symbol: str, price: float, ts_ns: int, size: float = float("inf")) -> None:
        """Live: a tick of the market; open orders of ``symbol`` may fill on it."""
        self._clock = max(self._clock, ts_ns)
        waiting = self._waiting.get(symbol)
        if not waiting:
            return
        for vo in list(waiting):
            if not vo.open:  # cancelled since: it never fills
                waiting.remove(vo)
                continue
            if ts_ns < vo.arrival_ns:  # a trade from before the order reached the venue
                continue
            if not vo.arrived:
                self._arrive(vo, ts_ns, price, size)
            else:
                self._step(vo, ts_ns, price, size, arrival=False)
            if not vo.open:
                waiting.remove(vo)

    # -- the port -------------------------------------------------------------------

    def submit(self, order: Order) -> OrderAck:
        """Accept (or refuse) an order; its fills come as reports."""
        cid = order.client_order_id
        known = self._orders.get(cid)
        if known is not None:  # the venue deduplicates on the client order id
            return OrderAck(cid, True, known.venue_id, "duplicate client order id", order.ts_ns)
        reason = invalid(order)
        if reason:
            return OrderAck(cid, False, "", reason, order.ts_ns)
        vo = VenueOrder(order, f"SIM-{cid}", order.ts_ns + self.latency_ns)
        self._orders[cid] = vo
        self._clock = max(self._clock, order.ts_ns)
        ack = OrderAck(cid, True, vo.venue_id, "", order.ts_ns)
        signal_tick = None
        if self.latency_ns == 0:
            # The order meets the tick that caused it (on a tape, its size bounds a partial fill).
            sym, signal_tick = self._signal_tick(order)
            size, quote = float("inf"), None
            if sym is not None and signal_tick is not None:
                if self.partial_fills:
                    size = float(sym.size[signal_tick])
                if self.half_spreads is not None and order.order_type is not OrderType.LIMIT:
                    quote = sym.quote(signal_tick)
            self._arrive(vo, order.ts_ns, order.price, size, quote)
            if not vo.open or (order.order_type is OrderType.MARKET and not self.partial_fills):
                return ack
        tape = self._market_tape()
        if tape is None:
            self._waiting.setdefault(order.symbol, []).append(vo)
        else:
            self._run_tape(vo, tape.symbol(order.symbol), signal_tick)
        return ack

    def fills_whole(self, order: Order) -> bool:
        """Whether ``order`` certainly fills its whole qty, no fee out of it (`batch_plan`).

        A market order does unless ticks bound fills (``partial_fills``), it is an IOC
        that may arrive after the market's last tick (latency), or it is cancelled
        first (a halt, which also stops what would follow it).
        """
        late = order.tif is TimeInForce.IOC and self.latency_ns > 0
        return order.order_type is OrderType.MARKET and not self.partial_fills and not late

    def reports(self) -> list[ExecutionReport]:
        """Execution reports since the last call, in the order they happened."""
        out, self._reports = self._reports, []
        return out

    def cancel(self, client_order_id: str) -> None:
        """Cancel an open order (a CANCELLED report follows); unknown or done: nothing."""
        vo = self._orders.get(client_order_id)
        if vo is None or not vo.open:
            return
        vo.status, vo.reason = OrderStatus.CANCELLED, "cancelled"
        self._report(vo, None, max(self._clock, vo.order.ts_ns))

    def order(self, client_order_id: str, symbol: str = "") -> OrderSnapshot | None:
        """The venue's view of one order, or None if it never received it."""
        vo = self._orders.get(client_order_id)
        return vo.snapshot() if vo is not None else None

    def open_orders(self) -> list[OrderSnapshot]:
        """Orders still able to fill."""
        return [vo.snapshot() for vo in self._orders.values() if vo.open]

    def fills_since(self, ts_ns: int) -> list[Fill]:
        """Fills at or after ``ts_ns`` (market time), in the order they happened (the last
        `KEEP_DONE`)."""
        return [f for f in self._fills if f.ts_ns >= ts_ns]

    def positions(self) -> dict[str, float]:
        """Net position per symbol from every fill of this venue."""
        return dict(self._positions)

    # -- matching -------------------------------------------------------------------

    def _signal_tick(self, order: Order) -> tuple[SymbolTape | None, int | None]:
        """A replay's tape of ``order``'s symbol and the index there of the tick that caused it.

        (None, None) live, and for an order that needs no tick (a MARKET order
        filled whole at its signal's price, without spreads).
        """
        if (
            order.order_type is OrderType.MARKET
            and not self.partial_fills
            and self.half_spreads is None
        ):
            return None, None
        tape = self._market_tape()
        sym = tape.symbol(order.symbol) if tape is not None else None
        return sym, sym.index_of(order.ts_ns, order.price) if sym is not None else None

    def _market_tape(self) -> MarketTape | None:
        if self._tape is None and self._tape_loader is not None:
            self._tape = self._tape_loader()
        return self._tape

    def _run_tape(
        self, vo: VenueOrder, tape: SymbolTape | None, signal_tick: int | None = None
    ) -> None:
        """Settle ``vo`` against the ticks after it (arrived at ``signal_tick``, or not yet)."""
        if tape is None or not vo.open:
            return
        if vo.arrived:  # the ticks after its own, those of its time that came after it too
            k = tape.first_after(vo.order.ts_ns) if signal_tick is None else signal_tick + 1
        else:
            k = tape.first_at_or_after(vo.arrival_ns)
            if k >= len(tape):  # it reaches the venue after the last tick
                if vo.order.tif is TimeInForce.IOC:  # nothing to fill it: it cannot rest
                    vo.status, vo.reason = OrderStatus.EXPIRED, "IOC: not filled on arrival"
                    self._report(vo, None, vo.arrival_ns)
                return
            ts, px, sz = int(tape.ts_ns[k]), float(tape.price[k]), float(tape.size[k])
            self._arrive(vo, ts, px, sz, tape.quote(k))
            k += 1
        while vo.open and k < len(tape):
            k = self._next_eligible(vo, tape, k)
            if k >= len(tape):
                return
            ts, px, sz = int(tape.ts_ns[k]), float(tape.price[k]), float(tape.size[k])
            self._step(vo, ts, px, sz, False, tape.quote(k))
            k += 1

    def _next_eligible(self, vo: VenueOrder, tape: SymbolTape, k: int) -> int:
        """Index of the first tick from ``k`` on that can fill (or trigger) the order."""
        o = vo.order
        px = tape.price[k:]
        buy = o.side is Side.BUY
        if o.order_type is OrderType.LIMIT:
            mask = px < o.order_price if buy else px > o.order_price
        elif o.order_type is OrderType.STOP and not vo.triggered:
            mask = px >= o.order_price if buy else px <= o.order_price
        elif self.partial_fills:
            mask = tape.size[k:] > 0
        else:
            return k
        hit = int(mask.argmax()) if len(mask) else 0
        return k + hit if len(mask) and mask[hit] else len(tape)

    def _arrive(
        self, vo: VenueOrder, ts_ns: int, price: float, size: float, quote: Quote = None
    ) -> None:
        vo.arrived = True
        self._step(vo, ts_ns, price, size, True, quote)
        if vo.open and vo.order.tif is TimeInForce.IOC:
            vo.status, vo.reason = OrderStatus.EXPIRED, "IOC: not filled on arrival"
            self._report(vo, None, ts_ns)

    def _step(
        self,
        vo: VenueOrder,
        ts_ns: int,
        price: float,
        size: float,
        arrival: bool,
        quote: Quote = None,
    ) -> None:
        o = vo.order
        fill_price = self._fill_price(vo, price, arrival, quote)
        if fill_price is None:
            return
        remaining = o.qty - vo.filled
        qty = min(remaining, size) if self.partial_fills else remaining
        eps = qty_eps(o.qty)  # as `OrderState`
        if qty <= eps:
            return
        n = len(vo.fills) + 1
        fee = qty * fill_price * self.fee_rate + (self.fee_per_order if n == 1 else 0.0)
        fill = Fill(
            f"F-{o.signal_id}" if n == 1 else f"F-{o.signal_id}-{n}",
            o.id,
            o.signal_id,
            o.symbol,
            o.side,
            qty,
            fill_price,
            ts_ns,
            round(fee, 10),
        )
        vo.filled += qty
        vo.fills.append(fill)
        self._fills.append(fill)
        self._positions[o.symbol] = self._positions.get(o.symbol, 0.0) + fill.position_change
        done = vo.filled >= o.qty - eps
        vo.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._report(vo, fill, ts_ns)

    def _fill_price(
        self, vo: VenueOrder, price: float, arrival: bool, quote: Quote
    ) -> float | None:
        o = vo.order
        buy = o.side is Side.BUY
        if o.order_type is OrderType.STOP and not vo.triggered:
            if not (price >= o.order_price if buy else price <= o.order_price):
                return None
            vo.triggered = True
        if o.order_type is OrderType.LIMIT:
            lim = o.order_price
            if arrival:  # marketable on arrival: the tick's price, at or better than the limit
                return price if (price <= lim if buy else price >= lim) else None
            return lim if (price < lim if buy else price > lim) else None
        if self.half_spreads is not None and quote is not None:
            bid, ask = quote
            return round((bid + ask) / 2 + o.side.sign * self.half_spreads * (ask - bid) / 2, 10)
        return round(price + o.side.sign * self.slippage, 10)

    def _report(self, vo: VenueOrder, fill: Fill | None, ts_ns: int) -> None:
        cid = vo.order.client_order_id
        if not vo.open and cid not in self._done:  # finished: remembered a while only
            self._done[cid] = None
            if len(self._done) > KEEP_DONE:
                self._orders.pop(self._done.popitem(last=False)[0], None)
        self._reports.append(
            ExecutionReport(
                vo.order.client_order_id, vo.status, ts_ns, vo.venue_id, fill, vo.reason
            )
        )
