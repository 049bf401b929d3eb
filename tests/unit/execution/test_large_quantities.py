"""Millions of units filled in a venue's exact decimal pieces: float sums a hair off.

An absolute 1e-9 anywhere on quantities fails above a few million units; each
tolerance is relative to the size at hand, in the simulator, the positions
and reconciliation alike (the order state machine's: `test_lifecycle`).
"""

from __future__ import annotations

from workbench.config import RiskConfig
from workbench.domain.model import Fill, Side, Signal
from workbench.execution.executor import Executor, make_breaker
from workbench.execution.journal import Journal
from workbench.execution.simulator import SimulatedBroker
from workbench.telemetry import Telemetry

NS, MS = 10**9, 10**6
T = 1_709_251_200 * NS
BUY_PARTS = (4669178.9, [235278.3, 3501235.9, 573118.0, 311448.1, 48098.6])
SELL_PARTS = (4379480.6, [389774.2, 2173899.5, 1689778.1, 124301.9, 1726.9])


def executor(broker: SimulatedBroker | None = None) -> Executor:
    broker = broker or SimulatedBroker(latency_ms=1, partial_fills=True)
    return Executor(broker, Journal(":memory:"), RiskConfig(), make_breaker(3, 60), Telemetry())


def test_the_simulator_and_the_executor_agree_an_order_filled_in_decimal_pieces_is_done():
    qty, parts = BUY_PARTS
    ex = executor()
    ex.on_signals([Signal("a:1", "a", 1, "ABC", Side.BUY, qty, 1.0, T)])
    for i, size in enumerate(parts):
        ex.on_tick("ABC", 1.0, T + (2 + i) * MS, size)
    ex.poll()
    ex.on_tick("ABC", 1.0, T + 10 * MS, 100.0)  # nothing left at the venue to fill
    ex.poll()
    assert [o["status"] for o in ex.journal.orders()] == ["FILLED"] and not len(ex.open)
    assert ex.journal.reconciliations() == [] and ex.reconcile() == []


def test_a_position_sold_back_in_decimal_pieces_is_flat_not_dust():
    qty, parts = SELL_PARTS
    ex = executor()
    ex.on_signals([Signal("a:1", "a", 1, "ABC", Side.BUY, qty, 1.0, T)])
    ex.on_tick("ABC", 1.0, T + 2 * MS, qty)
    ex.poll()
    ex.on_signals([Signal("a:2", "a", 2, "ABC", Side.SELL, qty, 1.0, T + 3 * MS)])
    for i, size in enumerate(parts):
        ex.on_tick("ABC", 1.0, T + (5 + i) * MS, size)
    ex.poll()
    assert ex.portfolio.position("ABC") == 0.0
    assert ex.flatten(wait_s=0) == [] and ex.not_flattened == {}


class Exact(SimulatedBroker):
    def positions(self) -> dict[str, float]:
        return {"ABC": SELL_PARTS[0]}  # the exchange's balance, in exact decimals


def test_reconciliation_takes_a_float_sum_a_hair_off_a_venue_s_balance_as_equal():
    ex = executor(Exact())
    for i, q in enumerate(SELL_PARTS[1]):
        ex.portfolio.apply(Fill(f"F{i}", "O", "s:1", "ABC", Side.BUY, q, 1.0, i))
    assert ex.reconcile() == []
