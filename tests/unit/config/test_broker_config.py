"""Brokers are declared like strategies: class_path plus params; the old form still reads."""

from __future__ import annotations

import pytest

from workbench.config import DEFAULT_BROKER_PATH, build_config, check_config
from workbench.container import make_broker
from workbench.exceptions import ConfigurationError
from workbench.execution.simulator import SimulatedBroker


def test_old_kind_and_slippage_read_as_the_simulator_and_save_in_the_new_form(tmp_path):
    cfg = build_config({"executor": {"broker": {"kind": "simulated", "slippage": 0.01}}})
    b = cfg.executor.broker
    assert (b.class_path, b.params) == (DEFAULT_BROKER_PATH, {"slippage": 0.01})
    again = type(cfg).model_validate(cfg.model_dump())
    assert again.executor.broker == b
    broker = make_broker(cfg)
    assert isinstance(broker, SimulatedBroker) and broker.slippage == 0.01


def test_an_unknown_kind_or_broken_broker_is_named():
    with pytest.raises(ConfigurationError, match="class_path"):
        build_config({"executor": {"broker": {"kind": "ib"}}})
    cfg = build_config({"executor": {"broker": {"class_path": "nowhere.mod:Broker", "params": {}}}})
    assert any("executor.broker" in p and "nowhere.mod" in p for p in check_config(cfg))
    cfg = build_config({"executor": {"broker": {"params": {"latency_ms": -5}}}})
    assert any("latency_ms" in p for p in check_config(cfg))


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"partial_fills": "false"}, "partial_fills must be true or false, got 'false'"),
        ({"partial_fills": 1}, "partial_fills must be true or false, got 1"),
        ({"fee_bps": True}, "fee_bps must be a finite number >= 0, got True"),
    ],
)
def test_a_simulator_param_of_the_wrong_type_is_named_not_coerced(params, says):
    # bool("false") is True: the string turned partial fills on.
    cfg = build_config({"executor": {"broker": {"params": params}}})
    assert any(says in p for p in check_config(cfg)), check_config(cfg)
    with pytest.raises(ValueError, match=says):
        SimulatedBroker(**params)
