"""Trading domain values: ticks, signals, orders, fills.

Pure data: nothing here imports messaging, files or the network. Timestamps are
integer nanoseconds since the epoch (UTC) so they survive the wire exactly.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from dataclasses import dataclass, field

INT64_END = 2**63
"""Integers from here on do not fit a signed 64-bit column (SQLite's, numpy's)."""


class Side(enum.StrEnum):
    """Order or signal direction."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        """The side that closes a position opened on this side."""
        return _SELL if self is _BUY else _BUY

    sign: int
    """+1 for BUY, -1 for SELL (a plain attribute of each member: read per fill)."""


_BUY, _SELL = Side.BUY, Side.SELL
_BUY.sign, _SELL.sign = 1, -1


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade or quote mid price for a symbol."""

    symbol: str
    ts_ns: int
    price: float
    size: float = 1.0
    seq: int = 0


@dataclass(slots=True)
class TickBatch:
    """Consecutive ticks of one symbol, stored as columns.

    The hot path moves batches, not `Tick` objects: one batch is one wire frame.
    Tick ``i`` of the batch has sequence number ``first_seq + i``.
    """

    symbol: str
    first_seq: int
    ts_ns: list[int]
    price: list[float]
    size: list[float]

    def __len__(self) -> int:
        return len(self.price)

    def tick(self, i: int) -> Tick:
        """Materialise tick ``i`` as a `Tick`."""
        return Tick(self.symbol, self.ts_ns[i], self.price[i], self.size[i], self.first_seq + i)

    def ticks(self) -> list[Tick]:
        """All ticks of the batch as `Tick` objects (slow path)."""
        return [self.tick(i) for i in range(len(self.price))]


class OrderType(enum.StrEnum):
    """How an order meets the market."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    """Rests until the market trades through ``order_price``; fills at that price or better."""
    STOP = "STOP"
    """Stop-market: triggers when the market reaches ``order_price``, then fills as MARKET."""


class TimeInForce(enum.StrEnum):
    """How long an order may wait at the venue."""

    GTC = "GTC"
    """Good till cancelled."""
    IOC = "IOC"
    """Immediate or cancel: what does not fill on arrival expires."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's request to trade.

    ``id`` is ``f"{strategy_id}:{seq}"``: unique and stable across strategy
    restarts because ``seq`` is part of the strategy's persisted state. The
    executor is idempotent on it.
    """

    id: str
    strategy_id: str
    seq: int
    symbol: str
    side: Side
    qty: float
    price: float
    ts_ns: int
    reason: str = ""
    condition_id: str = ""
    origin_ns: int = field(default=0, compare=False)
    """Wall-clock ns when the causing tick left the gateway (latency only)."""
    order_type: OrderType = OrderType.MARKET
    order_price: float = 0.0
    """The limit price of a LIMIT, the trigger price of a STOP; 0 for MARKET."""
    tif: TimeInForce = TimeInForce.GTC
    closes: str = ""
    """The id of the entry signal this one exits ('' for an entry, or a signal closing nothing
    in particular): the executor sends no more than that entry holds (`closing`)."""

    @staticmethod
    def make_id(strategy_id: str, seq: int) -> str:
        """The stable signal id for a strategy's ``seq``-th signal."""
        return f"{strategy_id}:{seq}"

    @staticmethod
    def seq_in(signal_id: str, strategy_id: str) -> int:
        """The seq of ``signal_id`` if it is a `make_id` of ``strategy_id``, else 0."""
        tail = signal_id.rpartition(":")[2]
        if not (tail.isascii() and tail.isdigit() and len(tail) < 20):
            return 0
        n = int(tail)
        return n if signal_id == Signal.make_id(strategy_id, n) else 0

    def has_own_id(self) -> bool:
        """Whether ``id`` is `make_id` of its own strategy and seq (no other sender's)."""
        return self.id == self.make_id(self.strategy_id, self.seq)

    def problem(self) -> str:
        """Why no executor may act on this signal ('' when one may).

        Its id must be its own; qty and price finite and > 0; the order price
        finite, > 0 for a LIMIT or STOP; the seq (>= 1) and time stamps (>= 0)
        signed 64-bit integers, as a journal stores them; the entry it closes, if
        any, an earlier signal of its own strategy.
        """
        if not self.has_own_id():
            return f"signal id {self.id[:40]!r} is not {self.strategy_id[:40]!r}:{self.seq}"
        if not self.symbol:
            return "signal has no symbol"
        for name, v in (("qty", self.qty), ("price", self.price)):
            if not (math.isfinite(v) and v > 0):
                return f"signal {name} {v!r} must be finite and positive"
        if not (math.isfinite(self.order_price) and self.order_price >= 0):
            return f"signal order_price {self.order_price!r} must be finite and >= 0"
        if self.order_type is not OrderType.MARKET and self.order_price <= 0:
            return f"a {self.order_type} signal needs a positive order_price"
        if not 0 < self.seq < INT64_END:
            return f"signal seq {self.seq} outside 1 .. 2**63-1"
        for name, t in (("ts_ns", self.ts_ns), ("origin_ns", self.origin_ns)):
            if not 0 <= t < INT64_END:
                return f"signal {name} {t} outside 0 .. 2**63-1"
        if self.closes and not 0 < self.seq_in(self.closes, self.strategy_id) < self.seq:
            return f"signal closes {self.closes[:40]!r}: no earlier signal of its strategy"
        return ""


class OrderStatus(enum.StrEnum):
    """Lifecycle of an order (see `workbench.domain.orders.OrderState`)."""

    PENDING_NEW = "PENDING_NEW"
    """Journaled, sent or about to be; no answer from the venue yet."""
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        """No report can follow this state."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

_CLIENT_ID_SAFE = re.compile(r"[^A-Za-z0-9_]")


def client_order_id(signal_id: str, salt: str = "") -> str:
    """The client order id a venue deduplicates on, from the signal id and the journal's salt.

    At most 36 characters of ``[A-Za-z0-9_-]`` (what exchanges accept):
    ``<strategy id, sanitised, <= 16>-<seq>-<8 hex of a hash of salt and signal id>``,
    so two signals never share one even when sanitising merges their
    strategy ids, and two journals (runs) on one account never share one
    either. Without a salt it is the id journals before version 4 used.
    """
    strategy, _, seq = signal_id.rpartition(":")
    digest = hashlib.blake2b(signal_id.encode(), digest_size=4, key=salt.encode()).hexdigest()
    base = _CLIENT_ID_SAFE.sub("_", strategy)[:16]
    seq = _CLIENT_ID_SAFE.sub("_", seq)[:10]
    return f"{base}-{seq}-{digest}"


@dataclass(frozen=True, slots=True)
class Order:
    """The one order derived from a signal."""

    id: str
    signal_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    """The reference (market) price of the signal's tick."""
    ts_ns: int
    order_type: OrderType = OrderType.MARKET
    order_price: float = 0.0
    """The limit price of a LIMIT, the trigger price of a STOP."""
    tif: TimeInForce = TimeInForce.GTC
    client_order_id: str = ""

    @classmethod
    def from_signal(cls, signal: Signal, salt: str = "") -> Order:
        """The one order a signal becomes; its ids derive from the signal id.

        Args:
            salt: The journal's `client_id_salt`, mixed into the client order id.
        """
        return cls(
            id=f"O-{signal.id}",
            signal_id=signal.id,
            symbol=signal.symbol,
            side=signal.side,
            qty=signal.qty,
            price=signal.price,
            ts_ns=signal.ts_ns,
            order_type=signal.order_type,
            order_price=signal.order_price,
            tif=signal.tif,
            client_order_id=client_order_id(signal.id, salt),
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution of (part of) an order."""

    id: str
    order_id: str
    signal_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    ts_ns: int
    fee: float = 0.0
    """Fee charged for this fill: its value in the quote currency, or with ``fee_asset`` an
    amount of that asset."""
    fee_qty: float = 0.0
    """The part of the fee the venue took out of the traded asset itself, in ``qty``'s units
    (a spot buy's fee in the base asset; ``fee`` holds its value). The position moves by
    ``side * qty - fee_qty``."""
    fee_asset: str = ""
    """Set when the fee was paid in a third asset (BNB on Binance): ``fee`` is an amount of it,
    with no value in the quote currency here. Empty for a fee in the quote currency."""

    @property
    def quote_fee(self) -> float:
        """The fee's value in the quote currency, 0 for one paid in a third asset."""
        return 0.0 if self.fee_asset else self.fee

    @property
    def position_change(self) -> float:
        """How the fill moves its symbol's position (signed, net of a fee in the asset)."""
        return self.side.sign * self.qty - self.fee_qty
