"""`plan_apply`: which runners a config change restarts, starts and stops."""

from __future__ import annotations

import pytest

from workbench.config import build_config
from workbench.config.sections import HostConfig
from workbench.exceptions import ConfigurationError
from workbench.supervisor.plan import plan_apply


def cfg(tmp_path, **sections):
    data = {"runtime": {"run_dir": str(tmp_path)}, **sections}
    return build_config(data, base_dir=tmp_path)


def strategies(*ids: str, take_profit: float = 0.5) -> list[dict]:
    cond = {"id": "c", "symbol": "ABC", "side": "BUY", "trigger_price": 100.0,
            "turning_point": 0.1, "take_profit": take_profit, "stop_loss": 0.5}  # fmt: skip
    return [{"id": i, "params": {"conditions": [cond]}} for i in ids]


def test_nothing_changed_restarts_nothing(tmp_path):
    a = cfg(tmp_path, strategies=strategies("sr-1"))
    plan = plan_apply(a, a.model_copy(deep=True))
    assert plan.touched == () and plan.remove == ()


def test_a_changed_strategy_restarts_only_itself(tmp_path):
    a = cfg(tmp_path, strategies=strategies("sr-1", "sr-2"))
    b = cfg(tmp_path, strategies=strategies("sr-1", take_profit=0.9) + strategies("sr-2"))
    b.strategies[1] = a.strategies[1]
    assert plan_apply(a, b).restart == ("sr-1",)


def test_added_and_removed_strategies_restart_the_executor(tmp_path):
    a = cfg(tmp_path, strategies=strategies("sr-1", "sr-2"))
    b = cfg(tmp_path, strategies=strategies("sr-1", "sr-3"))
    plan = plan_apply(a, b)
    assert plan.add == ("sr-3",) and plan.remove == ("sr-2",)
    assert plan.restart == (a.executor.id,)
    assert plan.touched == (a.executor.id, "sr-3")


def test_gateway_and_executor_sections(tmp_path):
    a = cfg(tmp_path)
    b = a.model_copy(deep=True)
    b.gateway.simulated.max_ticks = 7
    assert plan_apply(a, b).restart == (a.gateway.id,)
    c = a.model_copy(deep=True)
    c.executor.broker.params = {"slippage": 0.5}
    assert plan_apply(a, c).restart == (a.executor.id,)


def test_a_recorder_change_restarts_the_gateway_that_records(tmp_path):
    """It restarted nothing: the run folder said ticks were recorded, and none were."""
    a = cfg(tmp_path)
    b = a.model_copy(deep=True)
    b.recorder.enabled = True
    assert plan_apply(a, b).restart == (a.gateway.id,)


@pytest.mark.parametrize("part", ["bus", "runtime", "run_id", "security", "hosts"])
def test_fixed_parts_need_a_new_supervisor(tmp_path, part):
    """Keys and hosts reach every socket: changing them was ignored, without a word."""
    a = cfg(tmp_path)
    b = a.model_copy(deep=True)
    if part == "run_id":
        b.run_id = "other"
    elif part == "security":
        b.security.keys_dir = str(tmp_path / "keys")
    elif part == "hosts":
        b.hosts = [HostConfig(name="h", runners=["gateway", "executor", "sr-1"],
                              telemetry_address="tcp://127.0.0.1:5999")]  # fmt: skip
    elif part == "bus":
        b.bus.linger_ms = a.bus.linger_ms + 1
    else:
        b.runtime.log_level = "DEBUG" if a.runtime.log_level != "DEBUG" else "INFO"
    with pytest.raises(ConfigurationError, match=f"{part} changed"):
        plan_apply(a, b)
