"""workbench: a Jupyter-driven research-to-live trading workbench.

The whole public API is importable from here (``from workbench import
Supervisor``). Names load on first use, so a runner process that imports one
submodule does not pay for pandas, plotly or the supervisor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # domain
    "Side": "workbench.domain.model",
    "Tick": "workbench.domain.model",
    "TickBatch": "workbench.domain.model",
    "Signal": "workbench.domain.model",
    "Order": "workbench.domain.model",
    "OrderStatus": "workbench.domain.model",
    "Fill": "workbench.domain.model",
    "Position": "workbench.domain.accounting",
    "Portfolio": "workbench.domain.accounting",
    "Condition": "workbench.domain.condition",
    "ConditionSpec": "workbench.domain.condition",
    "ConditionState": "workbench.domain.condition",
    # strategies
    "Strategy": "workbench.strategies.base",
    "load_strategy": "workbench.strategies.base",
    "SupportResistance": "workbench.strategies.support_resistance",
    # config
    "WorkbenchConfig": "workbench.config",
    "load_config": "workbench.config",
    "build_config": "workbench.config",
    "check_config": "workbench.config",
    # market data
    "TickTable": "workbench.marketdata.table",
    "load_ticks": "workbench.marketdata.loaders",
    "synth_ticks": "workbench.marketdata.synth",
    "write_ticks": "workbench.marketdata.writers",
    # execution
    "Broker": "workbench.execution.broker",
    "SimulatedBroker": "workbench.execution.simulator",
    "Journal": "workbench.execution.journal",
    # supervisor
    "Supervisor": "workbench.supervisor.supervisor",
    "SupervisorEvent": "workbench.supervisor.supervisor",
    "RunnerState": "workbench.supervisor.supervisor",
    # errors
    "WorkbenchError": "workbench.exceptions",
    # notebook and replay
    "Workbench": "workbench.notebook.workbench",
    "ReplayResult": "workbench.replays.report",
    "replay": "workbench.replays.session",
    "diff_runs": "workbench.replays.diff",
    "promote": "workbench.replays.promote",
    "sweep": "workbench.sweeps.sweep",
    "SweepResult": "workbench.sweeps.results",
    "ConfigurationError": "workbench.exceptions",
    "TemporaryError": "workbench.exceptions",
    "OrderRejected": "workbench.exceptions",
    "StrategyError": "workbench.exceptions",
    "CodecError": "workbench.exceptions",
    "DataError": "workbench.exceptions",
    "FlattenIncomplete": "workbench.exceptions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from workbench.config import WorkbenchConfig, build_config, check_config, load_config
    from workbench.domain.accounting import Portfolio, Position
    from workbench.domain.condition import Condition, ConditionSpec, ConditionState
    from workbench.domain.model import Fill, Order, OrderStatus, Side, Signal, Tick, TickBatch
    from workbench.exceptions import (
        CodecError,
        ConfigurationError,
        DataError,
        FlattenIncomplete,
        OrderRejected,
        StrategyError,
        TemporaryError,
        WorkbenchError,
    )
    from workbench.execution.broker import Broker
    from workbench.execution.journal import Journal
    from workbench.execution.simulator import SimulatedBroker
    from workbench.marketdata.loaders import load_ticks
    from workbench.marketdata.synth import synth_ticks
    from workbench.marketdata.table import TickTable
    from workbench.marketdata.writers import write_ticks
    from workbench.notebook.workbench import Workbench
    from workbench.replays.diff import diff_runs
    from workbench.replays.promote import promote
    from workbench.replays.report import ReplayResult
    from workbench.replays.session import replay
    from workbench.strategies.base import Strategy, load_strategy
    from workbench.strategies.support_resistance import SupportResistance
    from workbench.supervisor.supervisor import RunnerState, Supervisor, SupervisorEvent
    from workbench.sweeps.results import SweepResult
    from workbench.sweeps.sweep import sweep
