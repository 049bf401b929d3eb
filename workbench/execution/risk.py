"""Pre-trade risk checks and the trading state, as a pure object the executor drives.

Every check is configured in ``[executor.risk]`` (0 disables it) and every
rejection has a reason naming the limit. Time comes in as an argument: the
executor passes the wall clock live and the market's clock (the signal's tick
time) in replay, so a replay decides the same way however fast it runs.

Trading states:

    ACTIVE    every check passes -> the order goes
    REDUCING  only orders that shrink a position go
    HALTED    nothing goes (the kill switch, or the daily loss limit)
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass, field

from workbench.config import RiskConfig
from workbench.domain.model import Order, OrderType

NS = 1_000_000_000
AHEAD_TOLERANCE_NS = 5 * NS
"""How far a quote's market time may be ahead of this machine's clock: beyond, a broken clock."""
DRIFT = 1e-12
"""Relative float error the position and notional checks forgive (0.1 + 0.2 is not 0.3)."""


class TradingState(enum.StrEnum):
    """Whether the executor lets orders out."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(slots=True)
class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up; time in ns."""

    rate_per_s: float
    burst: float
    tokens: float = -1.0
    last_ns: int = 0

    def ready(self, now_ns: int) -> bool:
        """Whether a token is there at ``now_ns`` (refilled, none spent)."""
        if self.tokens < 0:
            self.tokens, self.last_ns = self.burst, now_ns
        elif now_ns > self.last_ns:
            self.tokens = min(
                self.burst, self.tokens + (now_ns - self.last_ns) / NS * self.rate_per_s
            )
            self.last_ns = now_ns
        return self.tokens >= 1.0

    def take(self, now_ns: int) -> bool:
        """Spend one token if there is one."""
        if self.ready(now_ns):
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class Quote:
    """The last market price of a symbol: its time (ns) and, live, when it was passed on.

    ``ts_ns`` is the market's time (an exchange's clock); ``seen_ns`` when the
    gateway sent it on, in this machine's clock (0 = unknown).
    """

    price: float
    ts_ns: int
    seen_ns: int = 0


@dataclass(slots=True)
class RiskEngine:
    """Decides whether an order may go, and keeps the trading state."""

    cfg: RiskConfig
    state: TradingState = TradingState.ACTIVE
    market: dict[str, Quote] = field(default_factory=dict)
    # Prices from before a restart (journaled): they value positions (the daily
    # loss) until a fresh one comes, and never serve the collar or a flatten.
    restored: dict[str, Quote] = field(default_factory=dict)
    _buckets: dict[str | None, TokenBucket] = field(default_factory=dict)  # None: the total
    day: str = ""
    day_start_pnl: float = 0.0
    unwind_day: str = ""
    """The UTC day an operator chose REDUCING past the daily loss limit (to unwind it)."""

    def on_price(self, symbol: str, price: float, ts_ns: int, seen_ns: int = 0) -> bool:
        """The market moved (a tick, or in replay the signal's own tick).

        A price that is not a positive finite number is ignored: a collar needs
        something to divide by, and a bad quote must not pass for a price.
        ``seen_ns``: live, when the gateway sent it, in this machine's clock.

        Returns:
            True if its market time was more than `AHEAD_TOLERANCE_NS` ahead of
            ``seen_ns`` and was taken as ``seen_ns``: stamped by a broken clock,
            it would otherwise stay "newest" and hold every real price back.
        """
        if not _positive(price):
            return False
        ahead = bool(seen_ns) and ts_ns > seen_ns + AHEAD_TOLERANCE_NS
        if ahead:
            ts_ns = seen_ns
        q = self.market.get(symbol)
        if q is None or ts_ns >= q.ts_ns:
            self.market[symbol] = Quote(price, ts_ns, seen_ns)
        elif seen_ns > q.seen_ns:  # older by the market's time, but its feed is alive
            q.seen_ns = seen_ns
        return ahead

    def _bucket(self, key: str | None, rate: float) -> TokenBucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = TokenBucket(rate, max(1.0, self.cfg.order_burst or rate))
        return b

    def _live_price(self, symbol: str) -> float:
        """Live, the last market price seen (or journaled before a restart); 0 if none.

        In replay (quotes without ``seen_ns``) the market is each signal's own
        tick: its price already, and a later signal's must not value it.
        """
        q = self.market.get(symbol)
        if q is None or not q.seen_ns:
            q = self.restored.get(symbol)
        return q.price if q is not None else 0.0

    def position_limit(self, symbol: str) -> float:
        """The position limit of ``symbol`` (0 = none)."""
        return self.cfg.max_position_qty_by_symbol.get(symbol, self.cfg.max_position_qty)

    def state_refuses(self, order: Order, position: float, working: float = 0.0) -> str:
        """The trading state's reason ``order`` may not go ('' when it may); see `check`."""
        if self.state is TradingState.HALTED:
            return "trading halted"
        sign = order.side.sign
        base = position + sign * working
        after = base + sign * order.qty
        if abs(after) <= DRIFT * abs(base):  # closes it, but for a float's drift (0.7 - 0.4)
            after = 0.0
        if self.state is TradingState.REDUCING and not (
            abs(after) < abs(base) and after * base >= 0
        ):
            resting = f" with {working:g} more on its side resting" if working else ""
            return f"trading state REDUCING: order would not reduce position {position}{resting}"
        return ""

    def position_refuses(self, order: Order, position: float, working: float = 0.0) -> str:
        """The trading state's or ``max_position_qty``'s reason ``order`` may not go, or ''."""
        return self.state_refuses(order, position, working) or self._limit_refuses(
            order, position, working
        )

    def _limit_refuses(self, order: Order, position: float, working: float) -> str:
        limit = self.position_limit(order.symbol)
        base = position + order.side.sign * working
        after = base + order.side.sign * order.qty
        # The limit itself is allowed, but for a float's drift (0.1 + 0.2 > 0.3).
        over = abs(after) > limit * (1 + DRIFT)
        if limit and over and (abs(after) > abs(base) or after * base < 0):
            resting = f" (counting {working:g} resting on its side)" if working else ""
            return f"position {after} would exceed max_position_qty {limit}{resting}"
        return ""

    def check(
        self,
        order: Order,
        strategy_id: str,
        position: float,
        now_ns: int,
        *,
        working: float = 0.0,
        flatten: bool = False,
    ) -> str:
        """The reason ``order`` may not go, or '' when it may.

        Args:
            position: The symbol's signed position before this order (fills,
                plus earlier orders of the same batch as if they filled).
            now_ns: The executor's clock (see the module docstring).
            working: What is left of the open orders on this order's side of
                the symbol, counted as if it filled first: the worst case.
            flatten: The kill switch's own order: only the state rule applies.
        """
        r = self.cfg
        bad = _bad_numbers(order)
        if bad:
            return bad
        refused = self.state_refuses(order, position, working)
        if refused or flatten:
            return refused
        if r.max_order_qty and order.qty > r.max_order_qty:
            return f"qty {order.qty} exceeds max_order_qty {r.max_order_qty}"
        quote = self.market.get(order.symbol)
        if r.max_order_notional:
            # A limit or stop order goes to the venue at its own price, not the signal's;
            # a market or stop order trades at the market's, whatever the signal said.
            price = max(order.price, order.order_price, self._live_price(order.symbol))
            if order.qty * price > r.max_order_notional * (1 + DRIFT):  # but for a float's drift
                return (
                    f"notional {order.qty * price:.6g} exceeds max_order_notional "
                    f"{r.max_order_notional}"
                )
        limited = self._limit_refuses(order, position, working)
        if limited:
            return limited
        if r.price_collar_pct:
            if quote is None:
                return f"no market price for {order.symbol} to check price_collar_pct against"
            # A stop's price is a trigger (it then trades at the market); a limit's is a price.
            prices = [order.price]
            if order.order_type is OrderType.LIMIT:
                prices.append(order.order_price)
            for p in prices:
                off = abs(p - quote.price) / quote.price * 100
                if off > r.price_collar_pct:
                    return (
                        f"price {p} is {off:.3g}% from the market {quote.price}, "
                        f"beyond price_collar_pct {r.price_collar_pct}"
                    )
        if r.stale_market_data_s:
            stale = _staleness(quote, order.symbol, now_ns, r.stale_market_data_s)
            if stale:
                return stale
        buckets = []  # a token is spent only from buckets that all have one
        if r.max_orders_per_s:
            bucket = self._bucket(strategy_id, r.max_orders_per_s)
            buckets.append((bucket, f"{strategy_id} over max_orders_per_s {r.max_orders_per_s}"))
        if r.max_orders_per_s_total:
            bucket = self._bucket(None, r.max_orders_per_s_total)  # no strategy id spells it
            buckets.append((bucket, f"over max_orders_per_s_total {r.max_orders_per_s_total}"))
        for bucket, why in buckets:
            if not bucket.ready(now_ns):
                return why
        for bucket, _ in buckets:
            bucket.take(now_ns)
        return ""

    def daily_loss_breached(self, total_pnl: float, now_ns: int) -> bool:
        """True when today's PnL (realized + unrealized) is below ``-max_daily_loss``.

        The day is the UTC date of ``now_ns``; the first call of a day records
        its starting PnL (the executor journals it, so a restart keeps it).
        """
        day = utc_day(now_ns)
        if day != self.day:
            self.day, self.day_start_pnl = day, total_pnl
        if not self.cfg.max_daily_loss:
            return False
        return total_pnl - self.day_start_pnl < -self.cfg.max_daily_loss


def _staleness(quote: Quote | None, symbol: str, now_ns: int, limit_s: float) -> str:
    """Why ``quote`` is too old at ``now_ns`` ('' = fresh), by both clocks that know.

    By the market's time a clock ahead of the exchange's makes every price
    look old, and one behind makes an old price look fresh; by the time it was
    seen here, a price the exchange sent late looks fresh. Too old by either
    is too old: fail closed.
    """
    if quote is None:
        return f"no market data for {symbol} (stale_market_data_s)"
    age_s = (now_ns - quote.ts_ns) / NS
    seen_s = (now_ns - quote.seen_ns) / NS if quote.seen_ns else age_s
    if seen_s > limit_s:
        return f"market data {max(age_s, seen_s):.3g} s old, beyond stale_market_data_s"
    if age_s > limit_s:
        return (
            f"market data {age_s:.3g} s old by the market's clock, beyond "
            f"stale_market_data_s (received {seen_s:.3g} s ago: if the feed is live, "
            "this machine's clock is ahead of the exchange's)"
        )
    return ""


def utc_day(now_ns: int) -> str:
    """The UTC date of ``now_ns``, as the daily loss limit counts days."""
    return dt.datetime.fromtimestamp(now_ns // NS, dt.UTC).strftime("%Y-%m-%d")


def _bad_numbers(order: Order) -> str:
    """Why ``order``'s numbers cannot be traded, or ''.

    The codec checks signals from the wire; this also covers in-process callers.
    """
    if not _positive(order.qty):
        return f"qty {order.qty} is not a positive finite number"
    if not _positive(order.price):
        return f"price {order.price} is not a positive finite number"
    op = order.order_price
    if not (_positive(op) or (op == 0 and order.order_type is OrderType.MARKET)):
        return f"{order.order_type.value} order_price {op} is not a positive finite number"
    return ""


def _positive(x: float) -> bool:
    return x > 0 and math.isfinite(x)
