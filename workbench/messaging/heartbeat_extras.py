"""What a heartbeat's ``extra`` carries, typed per role.

A runner builds its part with ``<Role>Extra(...).to_wire()`` and the runner
kit adds the common ``latency`` and ``uptime_s``; readers (the supervisor, the
notebook, the cli) get it back with `extra_of`. The wire keys are the field
names, and `from_wire` takes what is missing from its defaults, so an older
runner's heartbeat still reads. Unknown keys are ignored.

    common    latency {name: histogram dict}, uptime_s
    gateway   ticks_total, eos, mark, first_tick_ns, last_tick_ns
    strategy  last_signal_seq, eos, outbox (signals unacknowledged), levels (optional)
    executor  positions, realized_pnl, breaker, eos, trading_state, trading_reason,
              signals_held, orders_in_doubt (only when some),
              eos_summary (once every end-of-stream arrived)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EosSummary:
    """The executor's totals once every strategy's end-of-stream arrived."""

    signals: int = 0
    orders: int = 0
    fills: int = 0
    realized_pnl: float = 0.0
    positions: dict[str, float] = field(default_factory=dict)
    ticks: dict[str, int] = field(default_factory=dict)
    completed_ns: int = 0
    """The executor's wall clock when the replay completed (0: not said)."""

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the heartbeat and the ``eos`` event."""
        return {
            "signals": self.signals,
            "orders": self.orders,
            "fills": self.fills,
            "realized_pnl": self.realized_pnl,
            "positions": dict(self.positions),
            "ticks": dict(self.ticks),
            "completed_ns": self.completed_ns,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> EosSummary:
        """Read the plain data back."""
        return cls(
            signals=int(d.get("signals", 0)),
            orders=int(d.get("orders", 0)),
            fills=int(d.get("fills", 0)),
            realized_pnl=float(d.get("realized_pnl", 0.0)),
            positions={str(k): float(v) for k, v in dict(d.get("positions") or {}).items()},
            ticks={str(k): int(v) for k, v in dict(d.get("ticks") or {}).items()},
            completed_ns=int(d.get("completed_ns") or 0),
        )


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A live exchange feed's state (absent for simulated and replay feeds)."""

    feed_stale: bool = False
    feed_age_s: float = 0.0
    feed_reconnects: int = 0
    feed_missed_trades: int = 0
    feed_lag_ms: float = 0.0
    feed_stale_symbols: tuple[str, ...] = ()
    feed_duplicate_trades: int = 0
    feed_bad_frames: int = 0
    feed_bad_ticks: int = 0
    feed_ts_ahead: int = 0

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the heartbeat."""
        return {
            "feed_stale": self.feed_stale,
            "feed_age_s": self.feed_age_s,
            "feed_reconnects": self.feed_reconnects,
            "feed_missed_trades": self.feed_missed_trades,
            "feed_lag_ms": self.feed_lag_ms,
            "feed_stale_symbols": list(self.feed_stale_symbols),
            "feed_duplicate_trades": self.feed_duplicate_trades,
            "feed_bad_frames": self.feed_bad_frames,
            "feed_bad_ticks": self.feed_bad_ticks,
            "feed_ts_ahead": self.feed_ts_ahead,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> FeedHealth | None:
        """Read the plain data back; None when the heartbeat has no feed health."""
        if "feed_stale" not in d:
            return None
        counts = {
            k: int(d.get(k) or 0)
            for k in (
                "feed_reconnects",
                "feed_missed_trades",
                "feed_duplicate_trades",
                "feed_bad_frames",
                "feed_bad_ticks",
                "feed_ts_ahead",
            )
        }
        return cls(
            feed_stale=bool(d.get("feed_stale")),
            feed_age_s=float(d.get("feed_age_s") or 0.0),
            feed_lag_ms=float(d.get("feed_lag_ms") or 0.0),
            feed_stale_symbols=tuple(str(s) for s in d.get("feed_stale_symbols") or ()),
            **counts,
        )


@dataclass(frozen=True, slots=True)
class GatewayExtra:
    """A gateway's stream position, and its live feed's health when it has one."""

    ticks_total: int = 0
    eos: bool = False
    mark: int = 0
    first_tick_ns: int = 0
    last_tick_ns: int = 0
    feed: FeedHealth | None = None

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the heartbeat."""
        return {
            **(self.feed.to_wire() if self.feed is not None else {}),
            "ticks_total": self.ticks_total,
            "eos": self.eos,
            "mark": self.mark,
            "first_tick_ns": self.first_tick_ns,
            "last_tick_ns": self.last_tick_ns,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> GatewayExtra:
        """Read the plain data back."""
        return cls(
            ticks_total=int(d.get("ticks_total") or 0),
            eos=bool(d.get("eos", False)),
            mark=int(d.get("mark") or 0),
            first_tick_ns=int(d.get("first_tick_ns") or 0),
            last_tick_ns=int(d.get("last_tick_ns") or 0),
            feed=FeedHealth.from_wire(d),
        )


@dataclass(frozen=True, slots=True)
class StrategyExtra:
    """A strategy's signal stream and, when its strategy reports them, condition levels."""

    last_signal_seq: int = 0
    eos: bool = False
    outbox: int = 0
    levels: tuple[dict[str, Any], ...] | None = None

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the heartbeat (``levels`` only when the strategy reports them)."""
        out: dict[str, Any] = {
            "last_signal_seq": self.last_signal_seq,
            "eos": self.eos,
            "outbox": self.outbox,
        }
        if self.levels is not None:
            out["levels"] = [dict(lv) for lv in self.levels]
        return out

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> StrategyExtra:
        """Read the plain data back."""
        return cls(
            last_signal_seq=int(d.get("last_signal_seq") or 0),
            eos=bool(d.get("eos", False)),
            outbox=int(d.get("outbox") or 0),
            levels=tuple(dict(lv) for lv in d["levels"]) if d.get("levels") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ExecutorExtra:
    """An executor's book, trading state and end-of-stream progress."""

    positions: dict[str, float] = field(default_factory=dict)
    realized_pnl: float = 0.0
    breaker: str = "closed"
    eos: tuple[str, ...] = ()
    trading_state: str = ""
    trading_reason: str = ""
    signals_held: int = 0
    orders_in_doubt: tuple[str, ...] = ()
    eos_summary: EosSummary | None = None

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the heartbeat (the optional keys only when set)."""
        out: dict[str, Any] = {
            "positions": dict(self.positions),
            "realized_pnl": self.realized_pnl,
            "breaker": self.breaker,
            "eos": list(self.eos),
            "trading_state": self.trading_state,
            "trading_reason": self.trading_reason,
            "signals_held": self.signals_held,
        }
        if self.orders_in_doubt:
            out["orders_in_doubt"] = list(self.orders_in_doubt)
        if self.eos_summary is not None:
            out["eos_summary"] = self.eos_summary.to_wire()
        return out

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExecutorExtra:
        """Read the plain data back."""
        eos = d.get("eos_summary")
        return cls(
            positions={str(k): float(v) for k, v in dict(d.get("positions") or {}).items()},
            realized_pnl=float(d.get("realized_pnl") or 0.0),
            breaker=str(d.get("breaker") or "closed"),
            eos=tuple(str(s) for s in d.get("eos") or ()),
            trading_state=str(d.get("trading_state") or ""),
            trading_reason=str(d.get("trading_reason") or ""),
            signals_held=int(d.get("signals_held") or 0),
            orders_in_doubt=tuple(str(o) for o in d.get("orders_in_doubt") or ()),
            eos_summary=EosSummary.from_wire(eos) if isinstance(eos, Mapping) else None,
        )


RoleExtra = GatewayExtra | StrategyExtra | ExecutorExtra
_BY_ROLE: dict[str, type[GatewayExtra] | type[StrategyExtra] | type[ExecutorExtra]] = {
    "gateway": GatewayExtra,
    "strategy": StrategyExtra,
    "executor": ExecutorExtra,
}


def extra_of(role: str, extra: Mapping[str, Any]) -> RoleExtra | None:
    """The typed ``extra`` of a ``role``'s heartbeat (None for an unknown role)."""
    kind = _BY_ROLE.get(role)
    return kind.from_wire(extra) if kind is not None else None


def latency_of(extra: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The common ``latency`` part: histogram dicts by name (`Telemetry.snapshot`)."""
    lat = extra.get("latency")
    return dict(lat) if isinstance(lat, Mapping) else {}
