"""The one typed configuration: TOML file, ``WORKBENCH__...`` environment overrides.

Precedence, highest first: keyword arguments, environment variables
(``WORKBENCH__GATEWAY__FEED=replay``; nested fields joined by ``__``), the TOML
file, the embedded defaults. Units are in field names. Relative paths are
resolved against the directory of the config file (the current directory for a
config built in code), so a promoted config reads the same files wherever it is
started from.
"""

from __future__ import annotations

import contextvars
import copy
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from workbench.exceptions import ConfigurationError

_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)
_ADDRESS_SCHEMES = ("tcp://", "ipc://", "inproc://")

DEFAULT_STRATEGY_PATH = "workbench.strategies.support_resistance:SupportResistance"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class BusConfig(_Section):
    """Where the runners meet, and how their sockets behave."""

    ticks_address: str = "tcp://127.0.0.1:5701"
    signals_address: str = "tcp://127.0.0.1:5702"
    events_address: str = "tcp://127.0.0.1:5703"
    control_address: str = "tcp://127.0.0.1:5704"
    telemetry_address: str = "tcp://127.0.0.1:5705"
    reconnect_interval_ms: int = Field(100, ge=1)
    reconnect_interval_max_ms: int = Field(1_000, ge=0)
    zmq_heartbeat_interval_ms: int = Field(1_000, ge=0)
    zmq_heartbeat_timeout_ms: int = Field(3_000, ge=0)
    linger_ms: int = Field(1_000, ge=0)
    bind_retry_attempts: int = Field(20, ge=1)
    bind_retry_max_wait_ms: int = Field(1_000, ge=1)

    @field_validator(
        "ticks_address",
        "signals_address",
        "events_address",
        "control_address",
        "telemetry_address",
    )
    @classmethod
    def _zmq_address(cls, v: str) -> str:
        if not v.startswith(_ADDRESS_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_ADDRESS_SCHEMES)}")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> BusConfig:
        addrs = [
            self.ticks_address,
            self.signals_address,
            self.events_address,
            self.control_address,
            self.telemetry_address,
        ]
        if len(set(addrs)) != len(addrs):
            raise ValueError("bus addresses must all differ")
        return self


class SimulatedFeedConfig(_Section):
    """A seeded random-walk live feed: the embedded default, no account needed."""

    symbols: list[str] = Field(default_factory=lambda: ["ABC"], min_length=1)
    rate_per_s: float = Field(50.0, gt=0, description="ticks per second per symbol")
    seed: int = 7
    start_price: float = Field(100.0, gt=0)
    tick_size: float = Field(0.01, gt=0)
    volatility_ticks: float = Field(1.0, gt=0, description="std dev of a step, in ticks")
    max_ticks: int = Field(
        0, ge=0, description="stop with end-of-stream after this many; 0 = run forever"
    )


class ReplayFeedConfig(_Section):
    """Replay of a tick file (CSV or Parquet) with flow control."""

    path: str = "../data/ticks/synth-ABC-5000.csv"
    format: Literal["auto", "csv", "parquet", "histdata"] = "auto"
    symbol: str | None = None
    price: Literal["mid", "bid", "ask"] = "mid"
    repair: bool = False
    speed: float = Field(0.0, ge=0, description="x real time; 0 = as fast as the pipeline allows")
    batch_size: int = Field(1_000, ge=1, le=100_000)
    window_batches: int = Field(32, ge=1, description="batches in flight before waiting for credit")
    subscribers: list[str] | None = Field(
        None, description="strategy ids that must be ready before replay starts; None = all"
    )
    start_timeout_s: float = Field(30.0, gt=0)


class GatewayConfig(_Section):
    """The tick publisher."""

    id: str = "gateway"
    feed: Literal["simulated", "replay"] = "simulated"
    simulated: SimulatedFeedConfig = Field(default_factory=SimulatedFeedConfig)
    replay: ReplayFeedConfig = Field(default_factory=ReplayFeedConfig)


def _default_conditions() -> list[dict[str, Any]]:
    return [
        {
            "id": "buy-dip",
            "symbol": "ABC",
            "side": "BUY",
            "trigger_price": 99.8,
            "turning_point": 0.05,
            "take_profit": 0.2,
            "stop_loss": 0.15,
            "following": True,
            "rearm": True,
        },
        {
            "id": "sell-rip",
            "symbol": "ABC",
            "side": "SELL",
            "trigger_price": 100.2,
            "turning_point": 0.05,
            "take_profit": 0.2,
            "stop_loss": 0.15,
            "following": True,
            "rearm": True,
        },
    ]


class StrategyConfig(_Section):
    """One strategy runner: a class declared as data, plus its parameters."""

    id: str = "sr-1"
    class_path: str = DEFAULT_STRATEGY_PATH
    params: dict[str, Any] = Field(default_factory=lambda: {"conditions": _default_conditions()})

    @field_validator("id")
    @classmethod
    def _id_chars(cls, v: str) -> str:
        if not v or any(c in v for c in ":/ "):
            raise ValueError("must be non-empty without ':', '/' or spaces")
        return v


class BrokerConfig(_Section):
    """The broker adapter behind the executor, and its circuit breaker."""

    kind: Literal["simulated"] = "simulated"
    slippage: float = Field(0.0, ge=0, description="price units added against the trader")
    breaker_fail_max: int = Field(5, ge=1)
    breaker_reset_timeout_s: float = Field(10.0, gt=0)


class RiskConfig(_Section):
    """Pre-trade limits; 0 disables a limit."""

    max_order_qty: float = Field(0.0, ge=0)
    max_position_qty: float = Field(0.0, ge=0)


class ExecutorConfig(_Section):
    """The signal puller, broker and journal."""

    id: str = "executor"
    journal_path: str = Field("", description="SQLite file; '' = <run_dir>/<run_id>/journal.sqlite")
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    exit_on_eos: bool = Field(
        True, description="exit 0 once every strategy's end-of-stream arrived"
    )


class RuntimeConfig(_Section):
    """What every runner shares: heartbeats, logs, folders."""

    heartbeat_interval_s: float = Field(0.5, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    run_dir: str = "../runs"
    state_dir: str = Field("", description="strategy state files; '' = <run_dir>/<run_id>/state")
    bad_frame_log_interval_s: float = Field(5.0, gt=0)


class SupervisorConfig(_Section):
    """How the supervisor starts, watches and restarts runners, and where it reports."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(
        0, ge=0, le=65535, description="health/metrics port; 0 = pick a free one"
    )
    start_timeout_s: float = Field(15.0, gt=0, description="spawn to first heartbeat")
    heartbeat_timeout_s: float = Field(
        2.0, gt=0, description="heartbeat age that makes a runner unhealthy"
    )
    hung_restart_after_s: float = Field(
        1.0, ge=0, description="unhealthy this long = hung: restart it"
    )
    stop_grace_s: float = Field(3.0, gt=0, description="SIGTERM to SIGKILL")
    restart_backoff_initial_s: float = Field(0.05, ge=0)
    restart_backoff_max_s: float = Field(10.0, ge=0)
    restart_backoff_jitter: float = Field(0.2, ge=0, le=1, description="+/- fraction of the delay")
    max_restarts: int = Field(5, ge=0, description="restarts allowed per window before 'failed'")
    restart_window_s: float = Field(60.0, gt=0)
    unlimited_restarts: bool = False
    log_lines_kept: int = Field(
        500, ge=10, description="recent log lines kept per runner in memory"
    )

    @field_validator("http_host")
    @classmethod
    def _loopback_only(cls, v: str) -> str:
        if v not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                "must be a loopback address (health and metrics are not for the network)"
            )
        return v


class ReportConfig(_Section):
    """How reports turn PnL into returns (`workbench.replay.performance`)."""

    capital: float = Field(
        10_000.0,
        gt=0,
        description="capital base in quote currency; daily return = equity change / "
        "(capital + equity at the previous day's close)",
    )


class PromotionRecord(_Section):
    """Why this config was promoted: the replay it passed and the checks it met."""

    replay: str = ""
    fills_sha256: str = ""
    promoted_at: str = ""
    checks: dict[str, float] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)


class WorkbenchConfig(BaseSettings):
    """Everything a run needs; see the module docstring for precedence."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH__",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    run_id: str = "default"
    bus: BusConfig = Field(default_factory=BusConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    strategies: list[StrategyConfig] = Field(default_factory=lambda: [StrategyConfig()])
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    promotion: PromotionRecord | None = None

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="<defaults>")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        toml_file = _TOML_FILE.get()
        sources = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("strategies")
    @classmethod
    def _unique_ids(cls, v: list[StrategyConfig]) -> list[StrategyConfig]:
        ids = [s.id for s in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"strategy ids must be unique; repeated: {', '.join(dupes)}")
        if not v:
            raise ValueError("at least one strategy is required")
        return v

    @field_validator("run_id")
    @classmethod
    def _run_id_chars(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\ "):
            raise ValueError("must be non-empty without slashes or spaces")
        return v

    def __eq__(self, other: object) -> bool:
        """Equal content; where the config was loaded from does not count."""
        if not isinstance(other, WorkbenchConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # mutable

    # -- paths -----------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """Directory relative paths are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Where this config came from (file path or ``<defaults>``)."""
        return self._source

    def resolve(self, path: str) -> Path:
        """A config path made absolute against `base_dir`."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self._base_dir / p).resolve()

    def run_path(self) -> Path:
        """The folder of this run: ``<run_dir>/<run_id>``."""
        return self.resolve(self.runtime.run_dir) / self.run_id

    def journal_path(self) -> Path:
        """The executor's SQLite journal."""
        if self.executor.journal_path:
            return self.resolve(self.executor.journal_path)
        return self.run_path() / "journal.sqlite"

    def state_path(self) -> Path:
        """Folder of strategy state files."""
        if self.runtime.state_dir:
            return self.resolve(self.runtime.state_dir)
        return self.run_path() / "state"

    def strategy(self, strategy_id: str | None) -> StrategyConfig:
        """The strategy section with this id (the only one when ``None``).

        Raises:
            ConfigurationError: no such id, or ``None`` with several strategies.
        """
        if strategy_id is None:
            if len(self.strategies) != 1:
                ids = ", ".join(s.id for s in self.strategies)
                raise ConfigurationError(f"{self._source}: several strategies ({ids}); pick one")
            return self.strategies[0]
        for s in self.strategies:
            if s.id == strategy_id:
                return s
        ids = ", ".join(s.id for s in self.strategies)
        raise ConfigurationError(f"{self._source}: no strategy {strategy_id!r}; have {ids}")

    def replay_subscribers(self) -> list[str]:
        """Strategy ids the replay gateway waits for."""
        subs = self.gateway.replay.subscribers
        return list(subs) if subs is not None else [s.id for s in self.strategies]

    # -- persistence -------------------------------------------------------------

    def to_toml(self) -> str:
        """This config as TOML text; `load_config` of it gives an equal config."""
        data = self.model_dump(mode="json", exclude_none=True)
        return tomli_w.dumps(data)

    def save(self, path: str | Path) -> Path:
        """Write the config as TOML, rebasing relative paths onto the new folder.

        Returns:
            The absolute path written.
        """
        dest = Path(path).expanduser().resolve()
        clone = self.rebased(dest.parent)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        tmp.write_text(clone.to_toml())
        tmp.replace(dest)
        return dest

    def rebased(self, new_base: Path) -> WorkbenchConfig:
        """A copy whose relative paths point at the same files from ``new_base``."""
        import os

        def rebase(p: str) -> str:
            if not p or Path(p).is_absolute():
                return p
            return os.path.relpath(self.resolve(p), new_base)

        data = self.model_dump()
        data["gateway"]["replay"]["path"] = rebase(self.gateway.replay.path)
        data["executor"]["journal_path"] = rebase(self.executor.journal_path)
        data["runtime"]["run_dir"] = rebase(self.runtime.run_dir)
        data["runtime"]["state_dir"] = rebase(self.runtime.state_dir)
        clone = build_config(data, base_dir=new_base)
        return clone


def _format_errors(e: ValidationError, source: str) -> list[str]:
    problems = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        detail = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        problems.append(f"{source}: {loc}: {msg}{detail}")
    return problems


def build_config(
    data: dict[str, Any] | None = None, *, base_dir: Path | None = None, source: str = "<code>"
) -> WorkbenchConfig:
    """A config from a dict (environment overrides still apply).

    Raises:
        ConfigurationError: with one problem per invalid field.
    """
    try:
        # Deep copy: pydantic keeps `Any` values (strategy params) by reference, and
        # editing a config must never reach back into the caller's dicts.
        cfg = WorkbenchConfig(**copy.deepcopy(data or {}))
    except ValidationError as e:
        problems = _format_errors(e, source)
        raise ConfigurationError("\n".join(problems), problems) from e
    cfg._base_dir = (base_dir or Path.cwd()).resolve()
    cfg._source = source
    return cfg


def load_config(path: str | Path) -> WorkbenchConfig:
    """Load and validate a TOML config file, with environment overrides.

    Raises:
        ConfigurationError: unreadable file, bad TOML, or invalid fields; each
            problem names the file and the field.
    """
    p = Path(path).expanduser()
    try:
        with p.open("rb") as f:
            tomllib.load(f)  # syntax first, for an error with line and column
    except FileNotFoundError as e:
        raise ConfigurationError(f"{p}: config file not found") from e
    except OSError as e:
        raise ConfigurationError(f"{p}: cannot read config file: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{p}: invalid TOML: {e}") from e
    token = _TOML_FILE.set(p)
    try:
        cfg = WorkbenchConfig()
    except ValidationError as e:
        problems = _format_errors(e, str(p))
        raise ConfigurationError("\n".join(problems), problems) from e
    finally:
        _TOML_FILE.reset(token)
    cfg._base_dir = p.resolve().parent
    cfg._source = str(p)
    return cfg


def check_config(cfg: WorkbenchConfig) -> list[str]:
    """Deeper checks than field validation: files exist, strategies build.

    Returns:
        One message per problem, each naming the file and the field.
    """
    from workbench.strategies.base import load_strategy

    problems: list[str] = []
    src = cfg.source
    if cfg.gateway.feed == "replay" and not cfg.resolve(cfg.gateway.replay.path).is_file():
        problems.append(
            f"{src}: gateway.replay.path: file not found: {cfg.resolve(cfg.gateway.replay.path)}"
        )
    known = {s.id for s in cfg.strategies}
    for sid in cfg.gateway.replay.subscribers or []:
        if sid not in known:
            problems.append(f"{src}: gateway.replay.subscribers: no strategy {sid!r}")
    for i, s in enumerate(cfg.strategies):
        try:
            load_strategy(s.class_path, s.id, s.params)
        except ConfigurationError as e:
            problems.append(f"{src}: strategies[{i}] ({s.id}): {e}")
    return problems
