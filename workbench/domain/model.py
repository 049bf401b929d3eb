"""Trading domain values: ticks, signals, orders, fills.

Pure data: nothing here imports messaging, files or the network. Timestamps are
integer nanoseconds since the epoch (UTC) so they survive the wire exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Side(enum.StrEnum):
    """Order or signal direction."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        """The side that closes a position opened on this side."""
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Side.BUY else -1


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

    @staticmethod
    def make_id(strategy_id: str, seq: int) -> str:
        """The stable signal id for a strategy's ``seq``-th signal."""
        return f"{strategy_id}:{seq}"


class OrderStatus(enum.StrEnum):
    """Lifecycle of an order in the executor's journal."""

    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FILLED = "FILLED"


@dataclass(frozen=True, slots=True)
class Order:
    """A market order derived from exactly one signal."""

    id: str
    signal_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    ts_ns: int

    @classmethod
    def from_signal(cls, signal: Signal) -> Order:
        """The one order a signal becomes; its id derives from the signal id."""
        return cls(
            id=f"O-{signal.id}",
            signal_id=signal.id,
            symbol=signal.symbol,
            side=signal.side,
            qty=signal.qty,
            price=signal.price,
            ts_ns=signal.ts_ns,
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
