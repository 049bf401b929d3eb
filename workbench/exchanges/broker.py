"""The ccxt broker: the executor's lifecycle port on a real exchange account.

Declared like any broker::

    [executor.broker]
    class_path = "workbench.exchanges.broker:CcxtBroker"
    params = { exchange = "binance", symbols = ["BTC/USDT"], sandbox = true }

``params`` are the fields of an exchange section (`ExchangeConfig`: exchange,
symbols, sandbox, timeouts, URL overrides) without the credentials: the API
key and secret come only from the environment, the same variables the
exchange section reads (``WORKBENCH__GATEWAY__EXCHANGE__API_KEY`` and
``..._API_SECRET``, or the files named by ``WORKBENCH_EXCHANGE_API_KEY_FILE``
and ``..._SECRET_FILE``). Building the broker checks them and imports ccxt,
nothing more (``workbench config check`` builds it); `open` connects, and the
container opens it when the executor starts, so a refused key stops the
executor with a configuration error (exit 2, never restarted in a storm).

Each port call maps onto `CcxtVenue`: ``submit`` places the order under its
client order id (derived from the signal id and the journal's salt; safe to
repeat, looked up after a lost answer), ``reports`` turns the venue's order
updates into one fill per exchange trade (trade id, qty, price, fee) plus the final state, ``order``
asks by client order id (reconciliation; an open order is followed from then
on, as one this process placed), ``cancel``, ``open_orders`` and
``fills_since``. ccxt's rate limiter is on and every REST call has the
section's timeout; the executor adds its own call timeout and circuit breaker.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import SecretStr, ValidationError

from workbench.domain.model import Fill, Order, OrderStatus, OrderType, Side
from workbench.domain.orders import ExecutionReport, OrderAck, OrderSnapshot, qty_eps
from workbench.exceptions import ConfigurationError, OrderRejected, TemporaryError
from workbench.exchanges.config import SECRET_FIELDS, ExchangeConfig
from workbench.exchanges.connect import RateLimited, lot_qty, tick_price
from workbench.exchanges.venue import CcxtVenue, VenueFill, VenueOrder

log = structlog.get_logger(__name__)
REPORTS_BUDGET_S = 1.0  # what one reports() call spends on REST look-ups at most
_STATUS = {
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "closed": OrderStatus.FILLED,
}
ENV_PREFIX = "WORKBENCH__GATEWAY__EXCHANGE__"


@dataclass
class _Known:
    """What the broker knows of an order: the workbench's ids and the venue's progress."""

    order_id: str
    signal_id: str
    symbol: str
    venue_order_id: str = ""
    fill_ids: set[str] = field(default_factory=set)
    filled: float = 0.0
    latest: VenueOrder | None = None
    ours: bool = True
    """Placed or asked for by this executor; else another's order on the account, heard of."""


class CcxtBroker:
    """A ccxt exchange account behind the Broker port (see the module docstring).

    Args:
        spot_positions: Report the base asset's balance per symbol as its
            position (reconciliation compares it with the journal's); only
            right for an account that holds nothing this workbench did not buy.
        **exchange: `ExchangeConfig` fields (never ``api_key``/``api_secret``).
    """

    def __init__(self, spot_positions: bool = False, **exchange: Any) -> None:
        leaked = [k for k in SECRET_FIELDS if k in exchange]
        if leaked:
            raise ValueError(
                f"{', '.join(leaked)}: secrets are read from the environment only "
                f"({ENV_PREFIX}API_KEY, {ENV_PREFIX}API_SECRET); remove them from params"
            )
        for name in SECRET_FIELDS:
            value = os.environ.get(ENV_PREFIX + name.upper())
            if value:
                exchange[name] = SecretStr(value)
        try:
            self.cfg = ExchangeConfig(**exchange)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            raise ValueError(problems) from None
        if self.cfg.credentials() is None:
            raise ConfigurationError(
                f"gateway.exchange.api_key: {self.cfg.exchange}: orders need an API key and "
                f"secret; set {ENV_PREFIX}API_KEY and {ENV_PREFIX}API_SECRET"
            )
        from workbench.exchanges import connect  # noqa: F401  (ccxt: only when configured)

        self.spot_positions = spot_positions
        self.venue: CcxtVenue | None = None
        self._known: dict[str, _Known] = {}  # by client order id
        self._pending: dict[str, None] = {}  # client ids with updates not yet reported, in order

    # -- connection ---------------------------------------------------------------------

    def open(self) -> CcxtBroker:
        """Connect: load the markets, check the key, start watching the account's orders.

        Raises:
            ConfigurationError: the key was refused (naming the exchange and the
                field), or a symbol is unknown.
            TemporaryError: the exchange cannot be reached.
        """
        if self.venue is None:
            venue = CcxtVenue(self.cfg)
            try:
                venue.open()
            except BaseException:
                venue.close()
                raise
            self.venue = venue
        return self

    def close(self) -> None:
        """Release the exchange's connections."""
        if self.venue is not None:
            self.venue.close()
            self.venue = None

    @property
    def unanswered_order_s(self) -> float:
        """How long an unanswered create may still be carried out (reconciliation waits)."""
        return self.cfg.unanswered_order_s

    def _v(self) -> CcxtVenue:
        return self.venue if self.venue is not None else self.open().venue  # type: ignore[return-value]

    # -- the port -----------------------------------------------------------------------

    def submit(self, order: Order) -> OrderAck:
        """Place ``order`` under its client order id; accepted or rejected.

        Raises:
            TemporaryError: no answer and the order was not found by its client
                order id: in doubt (the executor leaves it to reconciliation).
        """
        cid = order.client_order_id
        self._known[cid] = _Known(order.id, order.signal_id, order.symbol)
        kind, price, extra = _order_params(order)
        try:
            res = self._v().submit(
                cid, order.symbol, order.side.value.lower(), order.qty, price, kind, extra
            )
        except OrderRejected as e:
            return OrderAck(cid, False, reason=e.reason)
        if not res.accepted or res.order is None:
            return OrderAck(cid, False, reason=res.reason)
        self._known[cid].venue_order_id = res.order.venue_order_id
        return OrderAck(cid, True, res.order.venue_order_id, ts_ns=res.order.ts_ms * 1_000_000)

    def lot_qty(self, symbol: str, qty: float) -> float:
        """``qty`` as the exchange takes it: rounded down to the market's lot step.

        Raises:
            OrderRejected: below the market's smallest order.
        """
        if self.venue is None:  # closed: no markets to ask (the exchange decides)
            return qty
        return lot_qty(self.venue.markets, symbol, qty)

    def tick_price(self, symbol: str, side: Side, price: float) -> float:
        """A limit or stop ``price`` on the market's tick: a buy's down, a sell's up.

        Raises:
            OrderRejected: a buy's price below one tick.
        """
        if self.venue is None:
            return price
        return tick_price(self.venue.markets, symbol, side.value, price)

    def reports(self) -> list[ExecutionReport]:
        """Fills (one per exchange trade) and final states since the last call."""
        venue = self._v()
        for r in venue.reports():
            k = self._known.get(r.order.client_order_id)
            if k is None:  # not one of ours (or ours, before reconciliation asks for it)
                k = self._known[r.order.client_order_id] = _Known("", "", r.order.symbol)
                k.ours = False
            k.latest = r.order
            k.venue_order_id = r.order.venue_order_id or k.venue_order_id
            self._pending[r.order.client_order_id] = None
        out: list[ExecutionReport] = []
        # Each order's trades are a REST call: a backlog (after a restart) is worked
        # through over several calls, so one call never outlasts the call timeout.
        # Ours first, in the order heard of: others' orders on the account (another run,
        # the exchange's web page) never hold our fills back. (Theirs are still read
        # whole: one of ours heard of before reconciliation asked for it looks like theirs.)
        deadline = time.monotonic() + REPORTS_BUDGET_S
        for cid in sorted(self._pending, key=lambda c: not self._known[c].ours):
            if time.monotonic() > deadline:
                break
            try:
                done = self._report(cid, self._known[cid], out)
            except RateLimited:  # the venue pauses every request: the rest after it
                break
            except TemporaryError as e:  # its trades next time
                log.warning("broker_fills_unavailable", client_order_id=cid, error=str(e))
                continue
            if done:
                del self._pending[cid]
        return out

    def _report(self, cid: str, k: _Known, out: list[ExecutionReport]) -> bool:
        o = k.latest
        assert o is not None
        eps = qty_eps(o.qty)
        if o.filled > k.filled + eps:
            for f in self._new_fills(k, o.symbol):
                k.filled += f.qty
                done = k.filled >= o.qty - eps
                status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
                out.append(ExecutionReport(cid, status, f.ts_ns, k.venue_order_id, f))
            if o.filled > k.filled + eps:
                return False  # the trades are not listed yet
        final, reason = _STATUS.get(o.status), ""
        if _closed_part_filled(o, k.filled):  # left PARTIALLY_FILLED, it would work for ever
            final, reason = OrderStatus.EXPIRED, _closed_reason(o)
        if final is not None and final is not OrderStatus.FILLED:
            out.append(
                ExecutionReport(cid, final, o.ts_ms * 1_000_000, k.venue_order_id, reason=reason)
            )
        return True

    def _new_fills(self, k: _Known, symbol: str) -> list[Fill]:
        # After the trades known (Binance's ids grow): a busy order is not read again whole.
        # Reconciliation (`order`) reads from the first.
        known = [int(i) for i in k.fill_ids if i.isdigit()]
        after = max(known) + 1 if known and len(known) == len(k.fill_ids) else 0
        rows = self._v().order_fills(k.venue_order_id, symbol, after)
        fresh = [t for t in rows if t.trade_id not in k.fill_ids]
        k.fill_ids.update(t.trade_id for t in fresh)
        return [self._fill(t, k) for t in sorted(fresh, key=lambda t: (t.ts_ms, t.trade_id))]

    def _fill(self, t: VenueFill, k: _Known | None) -> Fill:
        base, _, quote = t.symbol.partition(":")[0].partition("/")
        fee, fee_qty, fee_asset = t.fee, 0.0, ""
        if t.fee and t.fee_currency == base:  # out of what was bought: the account holds less
            fee, fee_qty = t.fee * t.price, t.fee
        elif t.fee and t.fee_currency not in ("", quote):  # BNB on Binance: not valued here
            fee_asset = t.fee_currency
        return Fill(
            id=f"{self.cfg.exchange}:{base}{quote}:{t.trade_id}",
            order_id=k.order_id if k else "",
            signal_id=k.signal_id if k else "",
            symbol=t.symbol,
            side=Side(t.side.upper()),
            qty=t.qty,
            price=t.price,
            ts_ns=t.ts_ms * 1_000_000,
            fee=fee,
            fee_qty=fee_qty,
            fee_asset=fee_asset,
        )

    def cancel(self, client_order_id: str) -> None:
        """Ask the exchange to cancel; the CANCELLED report follows from `reports`."""
        for symbol in self._symbols(client_order_id):
            if self._v().cancel(client_order_id, symbol) is not None:
                return

    def order(self, client_order_id: str, symbol: str = "") -> OrderSnapshot | None:
        """The exchange's view of one order by client order id, with its trades.

        ``symbol``: the order's, as journaled; without it, the symbol this
        process placed it in, else every configured symbol. (After a restart
        an order's symbol may have left the config: it is still asked there.)
        """
        for sym in [symbol] if symbol else self._symbols(client_order_id):
            o = self._v().query(client_order_id, sym)
            if o is None:
                continue
            k = self._known.setdefault(client_order_id, _Known("", "", sym))
            k.venue_order_id, k.ours = o.venue_order_id, True  # heard of before, it is ours
            fills = [self._fill(t, k) for t in self._v().order_fills(o.venue_order_id, sym)]
            # Reconciliation records these: later reports must not repeat them.
            k.fill_ids.update(f.id.rpartition(":")[2] for f in fills)
            k.filled = sum(f.qty for f in fills)
            # An open order asked for (reconciliation: restored from the journal after
            # a restart) is polled from now on like one this process placed.
            self._v().follow(o)
            return _snapshot(o, fills)
        return None

    def open_orders(self) -> list[OrderSnapshot]:
        """The account's open orders in the configured symbols."""
        return [_snapshot(o, []) for o in self._v().open_orders()]

    def fills_since(self, ts_ns: int) -> list[Fill]:
        """The account's trades in the configured symbols at or after ``ts_ns``."""
        by_venue_id = {k.venue_order_id: k for k in self._known.values() if k.venue_order_id}
        out = [
            self._fill(t, by_venue_id.get(t.venue_order_id))
            for s in self.cfg.symbols
            for t in self._v().fills_since(s, ts_ns // 1_000_000)
        ]
        return sorted(out, key=lambda f: f.ts_ns)

    def positions(self) -> dict[str, float] | None:
        """Base-asset balances per symbol with ``spot_positions``; otherwise None."""
        return self._v().positions() if self.spot_positions else None

    def _symbols(self, client_order_id: str) -> list[str]:
        k = self._known.get(client_order_id)
        return [k.symbol] if k is not None else list(self.cfg.symbols)


def _order_params(order: Order) -> tuple[str, float | None, dict[str, Any]]:
    """ccxt's type, price and extra params for ``order``."""
    extra: dict[str, Any] = {}
    if order.order_type is OrderType.LIMIT:
        extra["timeInForce"] = order.tif.value
        return "limit", order.order_price, extra
    if order.order_type is OrderType.STOP:
        extra["triggerPrice"] = order.order_price  # a stop-market (STOP_LOSS on Binance spot)
        return "market", None, extra
    return "market", None, extra  # never rests: GTC and IOC alike


def _snapshot(o: VenueOrder, fills: list[Fill]) -> OrderSnapshot:
    reason = ""
    if o.status == "open":
        status = OrderStatus.PARTIALLY_FILLED if o.filled > 0 else OrderStatus.ACCEPTED
    elif _closed_part_filled(o, sum(f.qty for f in fills)):
        status, reason = OrderStatus.EXPIRED, _closed_reason(o)
    else:
        status = _STATUS.get(o.status, OrderStatus.ACCEPTED)
    return OrderSnapshot(
        o.client_order_id, o.venue_order_id, status, o.filled, fills, reason, qty=o.qty
    )


def _closed_part_filled(o: VenueOrder, listed: float) -> bool:
    """ "closed" short of its own amount, with every trade listed: the venue ended it.

    An IOC out of liquidity, on an exchange that says "closed" for that: the
    rest will never fill. (With trades still to be listed, it proves nothing.)
    """
    eps = qty_eps(o.qty)
    return o.status == "closed" and o.filled < o.qty - eps and listed >= o.filled - eps


def _closed_reason(o: VenueOrder) -> str:
    return f"closed by the venue with {o.filled:g} of {o.qty:g} filled"
