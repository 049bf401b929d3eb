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
