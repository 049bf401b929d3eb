"""Config sections for exchanges and the recorder (no ccxt import here).

Credentials come only from the environment: ``api_key`` and ``api_secret`` are
`SecretStr` fields excluded from every dump (so never in a saved config or
``runs/<run>/config.toml``), set by ``WORKBENCH__GATEWAY__EXCHANGE__API_KEY``
and ``..._API_SECRET``, or read from the files the environment variables named
by ``api_key_file_env`` / ``api_secret_file_env`` point at. A config file that
contains them is refused (`secrets_in_file`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from workbench.config_section import Section
from workbench.exceptions import ConfigurationError

SECRET_FIELDS = ("api_key", "api_secret")
SECRET_ENV = tuple(f"WORKBENCH__GATEWAY__EXCHANGE__{n.upper()}" for n in SECRET_FIELDS)
"""The environment variables that carry them (runner processes inherit these)."""
UNANSWERED_MARGIN_S = 5.0
"""``unanswered_order_s`` exceeds ``options.recvWindow`` by at least this (clock skew, transit)."""


class ExchangeConfig(Section):
    """A ccxt exchange: which one, which markets, how to reach it."""

    exchange: str = Field("binance", description="ccxt exchange id (ccxt.exchanges)")
    symbols: list[str] = Field(
        default_factory=lambda: ["BTC/USDT"], min_length=1, description="ccxt unified symbols"
    )
    trades: bool = Field(True, description="publish every trade (watch_trades)")
    bids_asks: bool = Field(
        False, description="publish the mid of every best bid/ask change (watch_bids_asks)"
    )
    sandbox: bool = Field(False, description="the exchange's testnet (ccxt set_sandbox_mode)")
    stale_after_s: float = Field(
        10.0, gt=0, description="no tick for this long: the gateway is unhealthy and alerts"
    )
    timeout_ms: int = Field(10_000, ge=100, description="every REST call's timeout")
    unanswered_order_s: float = Field(
        15.0,
        gt=0,
        description="an order whose create went unanswered may still be carried out this "
        "long after it was sent (Binance: within recvWindow, 10 s in ccxt); a look-up that "
        "does not find it sooner proves nothing, so it is neither sent again nor closed",
    )
    reconnect_initial_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    poll_interval_s: float = Field(
        2.0, gt=0, description="REST polling of orders while the WebSocket is down"
    )
    rest_url: str = Field("", description="REST base URL override (tests, a private sandbox)")
    ws_url: str = Field("", description="market WebSocket URL override")
    ws_api_url: str = Field("", description="WebSocket API URL override (user data)")
    options: dict[str, Any] = Field(default_factory=dict, description="extra ccxt options")
    api_key: SecretStr | None = Field(None, exclude=True, repr=False)
    api_secret: SecretStr | None = Field(None, exclude=True, repr=False)
    api_key_file_env: str = Field(
        "WORKBENCH_EXCHANGE_API_KEY_FILE", description="env var naming a file with the key"
    )
    api_secret_file_env: str = Field(
        "WORKBENCH_EXCHANGE_API_SECRET_FILE", description="env var naming a file with the secret"
    )

    @field_validator("symbols")
    @classmethod
    def _unified(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if "/" not in s]
        if bad:
            raise ValueError(f"not ccxt unified symbols (BASE/QUOTE): {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _unanswered_outlasts_recv_window(self) -> ExchangeConfig:
        given = self.options.get("recvWindow")  # ms; Binance carries a request out within it
        if given is None:
            return self
        try:  # ccxt reads it as an integer, a quoted one too
            window = float(given)
        except (TypeError, ValueError):
            window = math.nan
        if isinstance(given, bool) or not math.isfinite(window) or window <= 0:
            raise ValueError(f"options.recvWindow must be a number of ms > 0, not {given!r}")
        if self.unanswered_order_s < window / 1000 + UNANSWERED_MARGIN_S:
            raise ValueError(
                f"unanswered_order_s ({self.unanswered_order_s:g}) must be at least "
                f"options.recvWindow ({window:g} ms) + {UNANSWERED_MARGIN_S:g} s: an order "
                "closed as not at the venue sooner may still be carried out, and fill unjournaled"
            )
        return self

    @field_validator("exchange")
    @classmethod
    def _exchange_id(cls, v: str) -> str:
        if not v.isidentifier() or v != v.lower():
            raise ValueError("must be a ccxt exchange id, e.g. 'binance'")
        return v

    def credentials(self, where: str = "gateway.exchange") -> tuple[SecretStr, SecretStr] | None:
        """The API key and secret, from the environment or the files it names.

        Returns:
            None when neither is given (public data only).

        Raises:
            ConfigurationError: only one of the two is given, or a named file
                cannot be read; the message names the field, never the value.
        """
        key = self.api_key or self._from_file("api_key", self.api_key_file_env, where)
        secret = self.api_secret or self._from_file("api_secret", self.api_secret_file_env, where)
        if key is None and secret is None:
            return None
        if key is None or secret is None:
            missing, env = (
                ("api_key", self.api_key_file_env)
                if key is None
                else ("api_secret", self.api_secret_file_env)
            )
            raise ConfigurationError(
                f"{where}.{missing}: {self.exchange}: set both api_key and api_secret "
                f"(WORKBENCH__GATEWAY__EXCHANGE__{missing.upper()}, or a file named by ${env})"
            )
        return key, secret

    @staticmethod
    def _from_file(name: str, env: str, where: str) -> SecretStr | None:
        path = os.environ.get(env)
        if not path:
            return None
        try:
            return SecretStr(Path(path).read_text().strip())
        except OSError as e:
            raise ConfigurationError(
                f"{where}.{name}: cannot read the file ${env} names: {e.strerror}"
            ) from e


class RecorderConfig(Section):
    """Writes every tick the gateway publishes in live mode to a Parquet dataset."""

    enabled: bool = False
    path: str = Field("", description="dataset folder; '' = <run_dir>/<run_id>/ticks")
    roll_every_s: float = Field(
        120.0, gt=0, description="close the open file this often (a crash loses at most that)"
    )
    max_rows_per_file: int = Field(100_000, ge=1)


def secrets_in_file(data: dict[str, Any], source: str) -> list[str]:
    """Problems for every secret a config file holds (they belong in the environment)."""
    ex = _table(data, "gateway", "exchange")
    params = _table(data, "executor", "broker", "params")
    return [
        f"{source}: gateway.exchange.{name}: secrets are read from the environment only "
        f"(WORKBENCH__GATEWAY__EXCHANGE__{name.upper()}); remove it from the file"
        for name in SECRET_FIELDS
        if name in ex
    ] + [
        f"{source}: executor.broker.params.{name}: secrets are read from the environment "
        f"only (WORKBENCH__GATEWAY__EXCHANGE__{name.upper()}); remove it from the file"
        for name in SECRET_FIELDS
        if name in params
    ]


def _table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data[k1][k2]...`` when every level is a table, else {} (validation names the rest)."""
    for k in keys:
        data = data.get(k) if isinstance(data, dict) else None  # type: ignore[assignment]
        if not isinstance(data, dict):
            return {}
    return data
