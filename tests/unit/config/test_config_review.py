"""Config edges a review found: table keys from the environment, secrets never echoed or
saved, values TOML cannot hold, and bus values libzmq refuses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from workbench.config import build_config, check_config, load_config
from workbench.exceptions import ConfigurationError

PAPER = Path(__file__).resolve().parents[3] / "configs" / "paper.toml"


@pytest.mark.parametrize(
    "name",
    ["WORKBENCH__EXECUTOR__RISK__MAX_POSITION_QTY_BY_SYMBOL__ABC",
     "WORKBENCH__GATEWAY__EXCHANGE__OPTIONS__recvWindow"],
)  # fmt: skip
def test_a_variable_naming_one_key_of_a_table_is_refused_json_keeps_the_case(monkeypatch, name):
    # ABC became abc: the position limit applied to no symbol, and check_config said nothing.
    monkeypatch.setenv(name, "1")
    with pytest.raises(ConfigurationError, match="a table's keys lose their case") as e:
        load_config(PAPER)
    assert name in str(e.value)
    monkeypatch.delenv(name)
    monkeypatch.setenv("WORKBENCH__EXECUTOR__RISK__MAX_POSITION_QTY_BY_SYMBOL", '{"ABC": 1}')
    assert load_config(PAPER).executor.risk.max_position_qty_by_symbol == {"ABC": 1.0}
    monkeypatch.setenv("WORKBENCH__EXECUTOR__BROKER__PARAMS__FEE_BPS", "2")  # keyword names
    assert load_config(PAPER).executor.broker.params["fee_bps"] == "2"  # (the class converts)


def test_a_mistyped_secret_variable_is_named_not_echoed(monkeypatch):
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRT", "sk_live_DO_NOT_PRINT")
    with pytest.raises(ConfigurationError, match="api_secrt: unknown field") as e:
        load_config(PAPER)
    assert "sk_live" not in str(e.value)


def test_a_secret_in_broker_params_from_the_environment_is_refused_before_it_is_saved(
    monkeypatch,
):
    # The file check saw only the file: up wrote the variable's secret into config.toml.
    monkeypatch.setenv("WORKBENCH__EXECUTOR__BROKER__PARAMS__API_SECRET", "sk_live_XYZ")
    with pytest.raises(ConfigurationError, match="secrets go in WORKBENCH__GATEWAY__EXCHANGE") as e:
        load_config(PAPER)
    assert "sk_live" not in str(e.value)


def test_inf_in_strategy_params_is_saved_and_a_none_is_named_by_config_check(tmp_path):
    # json-mode dump made inf a null: config check said ok, then up crashed with a bare
    # TypeError naming no field.
    cfg = build_config({"strategies": [{"id": "x", "params": {"conditions": [], "cap": math.inf}}]},
                       environment=False)  # fmt: skip
    again = load_config(cfg.save(tmp_path / "c.toml"), environment=False)
    assert again.strategies[0].params["cap"] == math.inf
    cfg.strategies[0].params["cap"] = None
    with pytest.raises(
        ConfigurationError, match=r"strategies\[0\]\.params\.cap: cannot be written"
    ):
        cfg.to_toml()
    assert any("strategies[0].params.cap" in p for p in check_config(cfg))


@pytest.mark.parametrize(
    ("field", "value"),
    [("zmq_heartbeat_timeout_ms", 7_200_000), ("linger_ms", 2**31),
     ("reconnect_interval_ms", 2**31)],
)  # fmt: skip
def test_bus_values_libzmq_refuses_are_configuration_errors(field, value):
    # They passed config check, then every runner crashed at start (EINVAL, OverflowError).
    with pytest.raises(ConfigurationError, match=f"bus.{field}: Input should be less than"):
        build_config({"bus": {field: value}}, environment=False)


def test_a_table_inside_a_broker_param_and_any_secret_like_param_are_refused(monkeypatch):
    # PARAMS__OPTIONS__recvWindow became {'recvwindow': ...}; api_token went to config.toml.
    monkeypatch.setenv("WORKBENCH__EXECUTOR__BROKER__PARAMS__OPTIONS__recvWindow", "5000")
    with pytest.raises(ConfigurationError, match="a table's keys lose their case"):
        load_config(PAPER)
    monkeypatch.delenv("WORKBENCH__EXECUTOR__BROKER__PARAMS__OPTIONS__recvWindow")
    for name in ("API_TOKEN", "PASSPHRASE", "PRIVATE_KEY"):
        monkeypatch.setenv(f"WORKBENCH__EXECUTOR__BROKER__PARAMS__{name}", "s3cr3t")
        with pytest.raises(ConfigurationError, match="secrets go in") as e:
            load_config(PAPER)
        assert "s3cr3t" not in str(e.value)
        monkeypatch.delenv(f"WORKBENCH__EXECUTOR__BROKER__PARAMS__{name}")
