"""[gateway.exchange] and [recorder]: validation, env-only secrets, credential files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workbench.config import build_config, load_config
from workbench.exceptions import ConfigurationError
from workbench.exchanges.config import ExchangeConfig


def test_the_exchange_feed_is_a_live_feed_that_needs_risk_limits(tmp_path: Path) -> None:
    from workbench.config import live_risk_problems

    cfg = build_config({"gateway": {"feed": "exchange"}})
    assert [p.split(": ")[1] for p in live_risk_problems(cfg)] == [
        "executor.risk.max_order_qty",
        "executor.risk.max_position_qty",
    ]


def test_symbols_must_be_unified_and_the_exchange_an_id() -> None:
    with pytest.raises(ConfigurationError) as e:
        build_config({"gateway": {"exchange": {"symbols": ["BTCUSDT"], "exchange": "Bin ance"}}})
    text = str(e.value)
    assert "gateway.exchange.symbols" in text and "gateway.exchange.exchange" in text


def test_a_secret_in_a_config_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[gateway.exchange]\napi_secret = "hunter2-very-secret"\n')
    with pytest.raises(ConfigurationError) as e:
        load_config(f)
    assert "gateway.exchange.api_secret" in str(e.value) and "environment" in str(e.value)
    assert "hunter2" not in str(e.value)


def test_secrets_from_the_environment_are_never_dumped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", "k-planted-1234")
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", "s-planted-5678")
    cfg = build_config({"gateway": {"feed": "exchange"}})
    key, secret = cfg.gateway.exchange.credentials()
    assert (key.get_secret_value(), secret.get_secret_value()) == (
        "k-planted-1234",
        "s-planted-5678",
    )
    saved = cfg.save(tmp_path / "saved.toml").read_text()
    for text in (saved, cfg.to_toml(), repr(cfg), str(cfg.model_dump())):
        assert "planted" not in text


def test_credentials_from_files_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_text("file-key\n")
    (tmp_path / "secret").write_text("file-secret\n")
    monkeypatch.setenv("WORKBENCH_EXCHANGE_API_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("WORKBENCH_EXCHANGE_API_SECRET_FILE", str(tmp_path / "secret"))
    key, secret = ExchangeConfig().credentials()
    assert (key.get_secret_value(), secret.get_secret_value()) == ("file-key", "file-secret")
    monkeypatch.setenv("WORKBENCH_EXCHANGE_API_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match=r"gateway\.exchange\.api_secret: cannot read"):
        ExchangeConfig().credentials()


def test_half_a_credential_pair_is_an_error_and_none_is_public_only() -> None:
    assert ExchangeConfig().credentials() is None
    with pytest.raises(ConfigurationError, match=r"gateway\.exchange\.api_secret: binance"):
        ExchangeConfig(api_key="only-the-key").credentials()


def test_recorder_path_is_rebased_with_the_config(tmp_path: Path) -> None:
    cfg = build_config({"recorder": {"enabled": True, "path": "ticks"}}, base_dir=tmp_path)
    saved = load_config(cfg.save(tmp_path / "sub" / "c.toml"))
    assert saved.resolve(saved.recorder.path) == tmp_path / "ticks"


def test_an_unanswered_order_is_awaited_longer_than_the_recv_window_asked_for():
    """recvWindow = 60000 (a drifting clock's usual fix) beside the default 15 s: an order
    closed as not at the venue after 15 s could still be carried out for 45 s more."""
    with pytest.raises(ValidationError, match=r"unanswered_order_s \(15\) must be at least "
                       r"options.recvWindow \(60000 ms\) \+ 5 s"):  # fmt: skip
        ExchangeConfig(options={"recvWindow": 60_000})
    assert ExchangeConfig(options={"recvWindow": 60_000}, unanswered_order_s=65).options
    assert ExchangeConfig(options={"recvWindow": 10_000}).unanswered_order_s == 15
    with pytest.raises(ValidationError, match="recvWindow"):  # ccxt reads a quoted one too
        ExchangeConfig(options={"recvWindow": "60000"})
    with pytest.raises(ValidationError, match="must be a number of ms"):
        ExchangeConfig(options={"recvWindow": "soon"})
