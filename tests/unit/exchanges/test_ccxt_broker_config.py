"""[executor.broker] for the ccxt broker: secrets only from the environment, checked early."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import check_config, load_config
from workbench.exceptions import ConfigurationError
from workbench.execution.broker import load_broker

CLASS_PATH = "workbench.exchanges.broker:CcxtBroker"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_KEY", "API_SECRET"):
        monkeypatch.delenv(f"WORKBENCH__GATEWAY__EXCHANGE__{name}", raising=False)
    for name in ("WORKBENCH_EXCHANGE_API_KEY_FILE", "WORKBENCH_EXCHANGE_API_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_without_keys_in_the_environment_the_broker_names_the_variables(no_keys: None) -> None:
    with pytest.raises(ConfigurationError) as e:
        load_broker(CLASS_PATH, {"exchange": "binance"})
    msg = str(e.value)
    assert "gateway.exchange.api_key: binance" in msg
    assert "WORKBENCH__GATEWAY__EXCHANGE__API_KEY" in msg


def test_secrets_in_params_are_refused_without_echoing_them(
    no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "k")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "s")
    with pytest.raises(ConfigurationError) as e:
        load_broker(CLASS_PATH, {"api_secret": "PLANTED-secret"})
    assert "api_secret" in str(e.value) and "PLANTED" not in str(e.value)
    with pytest.raises(ConfigurationError, match="symbols"):
        load_broker(CLASS_PATH, {"symbols": ["BTCUSDT"]})


def test_a_config_file_with_a_secret_in_broker_params_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        '[executor.broker]\nclass_path = "workbench.exchanges.broker:CcxtBroker"\n'
        'params = { api_key = "PLANTED" }\n'
    )
    with pytest.raises(ConfigurationError) as e:
        load_config(p)
    assert "executor.broker.params.api_key" in str(e.value) and "PLANTED" not in str(e.value)


def test_the_testnet_example_passes_config_check_given_env_keys(
    no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(ROOT / "configs" / "live_binance_testnet.toml")
    assert any("api_key" in p for p in check_config(cfg))  # no keys: named
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "k")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "s")
    cfg = load_config(ROOT / "configs" / "live_binance_testnet.toml")
    assert check_config(cfg) == []
    assert cfg.executor.broker.class_path == CLASS_PATH and cfg.gateway.exchange.sandbox


def test_a_replay_feed_with_the_live_broker_is_refused_before_it_connects(
    no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It passed config check; the executor connected to the venue and, a replay, ran with
    # no limits and each signal's own price for the market: a BUY of 1e6 went out.
    from workbench.container import make_broker
    from workbench.exchanges.broker import CcxtBroker

    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "k")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "s")
    monkeypatch.setenv("WORKBENCH__GATEWAY__FEED", "replay")
    monkeypatch.setenv(
        "WORKBENCH__GATEWAY__REPLAY__PATH", str(ROOT / "data/ticks/synth-ABC-5000.csv")
    )
    cfg = load_config(ROOT / "configs" / "live_binance_testnet.toml")
    [problem] = check_config(cfg)
    assert problem.startswith("executor.broker.class_path") or "class_path" in problem
    assert "cannot run on recorded ticks" in problem and "no risk limits" in problem
    opened = []
    monkeypatch.setattr(CcxtBroker, "open", lambda self: opened.append(self))
    with pytest.raises(ConfigurationError, match="cannot run on recorded ticks"):
        make_broker(cfg)
    assert opened == []  # refused before it connected
