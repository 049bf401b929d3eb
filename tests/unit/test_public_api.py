"""The flat public API, and the dependency rule of DESIGN.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

PACKAGE = Path(workbench.__file__).parent

PINNED = {
    "Broker",
    "Condition",
    "ConditionSpec",
    "ConditionState",
    "CodecError",
    "ConfigurationError",
    "DataError",
    "Fill",
    "Journal",
    "Order",
    "OrderRejected",
    "OrderStatus",
    "Portfolio",
    "Position",
    "RunnerState",
    "Side",
    "Signal",
    "SimulatedBroker",
    "Strategy",
    "StrategyError",
    "Supervisor",
    "SupervisorEvent",
    "SupportResistance",
    "TemporaryError",
    "Tick",
    "TickBatch",
    "TickTable",
    "WorkbenchConfig",
    "WorkbenchError",
    "build_config",
    "check_config",
    "load_config",
    "load_strategy",
    "load_ticks",
    "synth_ticks",
    "write_ticks",
    "sweep",
    "SweepResult",
}


def test_all_is_pinned():
    assert set(workbench.__all__) >= PINNED


@pytest.mark.parametrize("name", sorted(PINNED))
def test_every_public_name_resolves(name):
    assert getattr(workbench, name) is not None


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        workbench.Nope  # noqa: B018


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


FORBIDDEN = (
    "zmq",
    "msgpack",
    "sqlite3",
    "socket",
    "http",
    "urllib",
    "pandas",
    "pyarrow",
    "workbench.messaging",
    "workbench.execution",
    "workbench.supervisor",
    "workbench.runner",
    "workbench.gateway",
    "workbench.marketdata",
    "workbench.config",
)


@pytest.mark.parametrize(
    "path",
    sorted([*PACKAGE.glob("domain/*.py"), *PACKAGE.glob("strategies/*.py")]),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_domain_and_strategies_import_no_io(path):
    bad = {m for m in _imports(path) for f in FORBIDDEN if m == f or m.startswith(f + ".")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_runner_modules_do_not_import_pandas_plotly_jupyter_numpy_or_ccxt():
    code = (
        "import sys, runners.gateway, runners.strategy, runners.executor, workbench.container;"
        "import workbench.strategies.support_resistance;"
        "heavy = ('pandas', 'plotly', 'ipywidgets', 'IPython', 'pyarrow', 'numpy', 'ccxt');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_replay_is_the_function_and_replays_the_package():
    import types

    import workbench.replays
    from workbench.replays.session import replay

    assert "replay" in workbench.__all__
    assert workbench.replay is replay
    assert type(workbench.replays) is types.ModuleType
    assert not callable(workbench.replays)


def test_replay_declares_its_result_type():
    import typing

    from workbench.replays.report import ReplayResult
    from workbench.replays.session import replay

    hints = typing.get_type_hints(replay, localns={"ReplayResult": ReplayResult})
    assert hints["return"] is ReplayResult


MAX_MODULE_LINES = 400  # the structure issue's rule: split a module before it grows past this


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (lines): {long}"
