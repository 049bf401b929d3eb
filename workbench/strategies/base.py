"""The Strategy port and the helpers every strategy host uses.

A strategy is plain Python: it sees ticks and returns signals. It never touches
sockets, files or clocks, so the same object runs in a wire runner, in the fast
in-process replay and in a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from workbench.classpath import import_class
from workbench.domain.model import Signal, Tick, TickBatch
from workbench.exceptions import ConfigurationError, StrategyError


@runtime_checkable
class Strategy(Protocol):
    """What a strategy must do.

    Attributes:
        strategy_id: Unique id; signal ids are ``f"{strategy_id}:{seq}"``.
    """

    strategy_id: str

    def on_tick(self, tick: Tick) -> list[Signal]:
        """Advance on one tick; return the signals it causes (often none)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """State as plain msgpack-able data (dicts, lists, str, int, float, bool)."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from a `snapshot`; signal numbering continues where it stopped."""
        ...


# -- optional capabilities -----------------------------------------------------------
# A host uses these when a strategy has them and never depends on one for a
# guarantee: state is saved on an interval and on close whatever they return.
# Order outcome hooks (on_fill, on_order_rejected, ...) are in outcomes.py.


@runtime_checkable
class BatchStrategy(Protocol):
    """A faster path over a whole batch; must give exactly what `on_tick` per tick would."""

    def on_batch(self, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
        """Signals for the batch, in tick order."""
        ...


@runtime_checkable
class HasSymbols(Protocol):
    """Subscribes to some symbols only (the host filters ticks by topic)."""

    def symbols(self) -> list[str]:
        """Symbols to receive; empty means all."""
        ...


@runtime_checkable
class HasLevels(Protocol):
    """Reports its price levels, drawn on the dashboard's chart."""

    def levels(self) -> list[dict[str, Any]]:
        """One dict per condition/level (id, state, prices...)."""
        ...


@runtime_checkable
class EventSource(Protocol):
    """Keeps a log of what changed inside it, for notebooks and tests."""

    def pop_events(self) -> list[Any]:
        """Events since the last call."""
        ...


def levels_of(strategy: Strategy) -> list[dict[str, Any]] | None:
    """The strategy's levels, or None when it has none to report."""
    return strategy.levels() if isinstance(strategy, HasLevels) else None


def on_batch(strategy: Strategy, batch: TickBatch, origin_ns: int = 0) -> list[Signal]:
    """Run ``strategy`` over a batch, in tick order.

    Uses the strategy's own ``on_batch(batch, origin_ns)`` when it has one (a
    faster path that must give exactly the signals ``on_tick`` would); otherwise
    calls ``on_tick`` per tick.

    Raises:
        StrategyError: the strategy raised; the original is chained.
    """
    fast = getattr(strategy, "on_batch", None)
    try:
        if fast is not None:
            out: list[Signal] = fast(batch, origin_ns)
        else:
            out = []
            for i in range(len(batch)):
                out.extend(strategy.on_tick(batch.tick(i)))
    except Exception as e:
        raise StrategyError(
            f"strategy {strategy.strategy_id!r} raised {type(e).__name__}: {e}"
        ) from e
    return checked(strategy, out)


def checked(strategy: Strategy, signals: list[Signal]) -> list[Signal]:
    """``signals``, once each is found to be the strategy's own and fit to trade.

    Before it is saved or sent: the executor would refuse it (a bad frame on
    the wire), and its outbox would send it again for ever.

    Raises:
        StrategyError: a signal names another strategy, its id is not
            ``Signal.make_id(strategy_id, seq)``, or a value is unfit
            (`Signal.problem`: qty 0, a NaN price, a seq past 2**63...).
    """
    for s in signals:
        if s.strategy_id != strategy.strategy_id or not s.has_own_id():
            raise StrategyError(
                f"strategy {strategy.strategy_id!r} made signal {s.id!r} of strategy "
                f"{s.strategy_id!r} with seq {s.seq}: a signal's strategy_id must be its "
                f"strategy's and its id Signal.make_id(strategy_id, seq)"
            )
        problem = s.problem()
        if problem:
            raise StrategyError(
                f"strategy {strategy.strategy_id!r} made signal {s.id!r}: {problem}"
            )
    return signals


def check_seqs(strategy_id: str, signals: list[Signal], last_seq: int, acked: int = 0) -> int:
    """The last seq of ``signals``, once each is found to follow ``last_seq`` in turn.

    Raises:
        StrategyError: a seq skips or repeats (`seq_problem`).
    """
    for i, s in enumerate(signals):
        if s.seq != last_seq + 1 + i or s.seq <= acked:
            raise StrategyError(seq_problem(strategy_id, s, last_seq + 1 + i, acked))
    return signals[-1].seq if signals else last_seq


def seq_problem(strategy_id: str, s: Signal, expected: int, acked: int) -> str:
    """Why ``s`` cannot go: its seq is not the next one (``expected``), or was acknowledged.

    Seqs run 1, 2, 3... and go on after a restart (`Strategy.restore` gets the
    counter back from `Strategy.snapshot`). A gap would hold every later
    signal at the executor for its gap timeout; a seq used before is another
    signal's id (the executor refuses it, and the signal is lost).
    """
    if s.seq == expected:  # the next by the host's own saved count, but acknowledged already
        return (
            f"strategy {strategy_id!r} made signal {s.id!r}, but the executor has journaled its "
            f"signals up to seq {acked}: the strategy's saved state is older than the "
            "executor's journal (state lost, or snapshot() does not keep the seq counter)"
        )
    return (
        f"strategy {strategy_id!r} made signal {s.id!r} with seq {s.seq}; the next must be "
        f"{expected}: seqs run 1, 2, 3... and go on after a restart (snapshot() must keep "
        "the counter, restore() take it back)"
    )


def symbols_of(strategy: Strategy) -> list[str]:
    """Symbols the strategy wants ticks for; empty means all."""
    fn = getattr(strategy, "symbols", None)
    return list(fn()) if fn is not None else []


def load_strategy(class_path: str, strategy_id: str, params: Mapping[str, Any]) -> Strategy:
    """Build a strategy declared as data: ``"package.module:ClassName"`` plus params.

    Raises:
        ConfigurationError: the path does not import, or the params do not fit.
    """
    cls = import_class(class_path, "strategy", "strategy class_path")
    try:
        strategy = cls(strategy_id=strategy_id, **dict(params))
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"strategy {class_path!r} rejected its params: {e}") from e
    if not isinstance(strategy, Strategy):
        raise ConfigurationError(f"{class_path!r} does not implement the Strategy protocol")
    return strategy
