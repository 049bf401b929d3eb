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
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from workbench.exceptions import ConfigurationError

_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)
_ADDRESS_SCHEMES = ("tcp://", "ipc://", "inproc://")
BUS_STREAMS = ("ticks", "signals", "events", "control", "telemetry", "command")
"""The bus's sockets: ``BusConfig.<name>_address`` for each."""

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
    command_address: str = Field(
        "tcp://127.0.0.1:5706", description="the executor's operator commands (halt, resume)"
    )
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
        "command_address",
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
            self.command_address,
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


DEFAULT_BROKER_PATH = "workbench.execution.simulator:SimulatedBroker"


class BrokerConfig(_Section):
    """The broker adapter behind the executor (declared like a strategy), and its breaker.

    ``params`` go to the class's constructor; the built-in simulator takes
    ``latency_ms``, ``fee_bps``, ``fee_per_order``, ``slippage``,
    ``slippage_half_spreads`` and ``partial_fills``. The older form ``kind = "simulated"`` plus ``slippage``
    is read as the simulator with that slippage.
    """

    class_path: str = DEFAULT_BROKER_PATH
    params: dict[str, Any] = Field(default_factory=dict)
    call_timeout_s: float = Field(
        5.0, gt=0, description="a broker call slower than this fails (and counts for the breaker)"
    )
    breaker_fail_max: int = Field(5, ge=1)
    breaker_reset_timeout_s: float = Field(10.0, gt=0)
    reconcile_interval_s: float = Field(
        5.0, gt=0, description="how often orders left in doubt are asked for again"
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("kind" not in data and "slippage" not in data):
            return data
        data = dict(data)
        kind = data.pop("kind", "simulated")
        if kind != "simulated":
            raise ValueError(f"kind {kind!r}: use class_path (kind only knew 'simulated')")
        if "slippage" in data:
            data["params"] = {**data.get("params", {}), "slippage": data.pop("slippage")}
        return data

    @property
    def is_simulator(self) -> bool:
        """The built-in simulator (the one fast replay can always run)."""
        return self.class_path == DEFAULT_BROKER_PATH


class RiskConfig(_Section):
    """Pre-trade limits; 0 disables a limit. A config whose feed is not a replay
    must set ``max_order_qty`` and ``max_position_qty`` (`check_config`)."""

    max_order_qty: float = Field(0.0, ge=0, description="largest order, in units")
    max_order_notional: float = Field(0.0, ge=0, description="largest qty x price of an order")
    max_position_qty: float = Field(0.0, ge=0, description="largest |position| per symbol")
    max_position_qty_by_symbol: dict[str, float] = Field(
        default_factory=dict, description="per-symbol overrides of max_position_qty"
    )
    max_orders_per_s: float = Field(0.0, ge=0, description="orders a second per strategy")
    max_orders_per_s_total: float = Field(0.0, ge=0, description="orders a second in all")
    order_burst: float = Field(
        0.0, ge=0, description="orders a rate limit lets through at once; 0 = its rate"
    )
    price_collar_pct: float = Field(
        0.0, ge=0, description="largest distance of an order's price from the last market price"
    )
    stale_market_data_s: float = Field(
        0.0, ge=0, description="reject orders when the symbol's last tick is older than this"
    )
    max_daily_loss: float = Field(
        0.0, ge=0, description="HALT when the UTC day's realized + unrealized PnL is below -this"
    )


class ExecutorConfig(_Section):
    """The signal puller, broker and journal."""

    id: str = "executor"
    journal_path: str = Field("", description="SQLite file; '' = <run_dir>/<run_id>/journal.sqlite")
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    exit_on_eos: bool = Field(
        True, description="exit 0 once every strategy's end-of-stream arrived"
    )
    signal_gap_timeout_s: float = Field(
        10.0, gt=0, description="a hole in a strategy's signal seqs no re-send filled: alert"
    )
    ack_interval_s: float = Field(
        0.25, gt=0, description="how often the executor repeats its acks to the strategies"
    )


class RuntimeConfig(_Section):
    """What every runner shares: heartbeats, logs, folders."""

    heartbeat_interval_s: float = Field(0.5, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    run_dir: str = "../runs"
    state_dir: str = Field("", description="strategy state files; '' = <run_dir>/<run_id>/state")
    bad_frame_log_interval_s: float = Field(5.0, gt=0)
    signal_resend_after_s: float = Field(
        1.0, gt=0, description="a strategy re-sends a signal the executor has not acked by then"
    )
    log_max_mb: float = Field(
        50.0, ge=0, description="rotate a runner's log file at this size; 0 = never"
    )
    log_keep: int = Field(5, ge=0, description="rotated log files kept per runner")


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
    # A secret: required as a bearer token on every request when set. Excluded
    # from dumps, so it never reaches runs/<run>/config.toml or a saved file;
    # give it in the environment (WORKBENCH__SUPERVISOR__HTTP_TOKEN).
    http_token: SecretStr | None = Field(None, exclude=True, repr=False)

    @field_validator("http_host")
    @classmethod
    def _host_chars(cls, v: str) -> str:
        if not v or any(c.isspace() or c in "/@" for c in v):
            raise ValueError("must be a host name or an IP address")
        return v


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def exposure_problems(cfg: WorkbenchConfig) -> list[str]:
    """Health and metrics leave loopback only behind a bearer token.

    Checked where the server starts (`workbench up`, `Supervisor`) and by
    `check_config`, not at load: the token is never saved, and runners load
    the saved copy.
    """
    sc = cfg.supervisor
    if sc.http_host in LOOPBACK_HOSTS or sc.http_token is not None:
        return []
    return [
        f"{cfg.source}: supervisor.http_host: {sc.http_host!r} is not a loopback address; "
        "set supervisor.http_token (e.g. WORKBENCH__SUPERVISOR__HTTP_TOKEN) to serve "
        "health and metrics to the network"
    ]


_Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


class SecurityConfig(_Section):
    """CURVE on the bus (see `workbench.messaging.security`). Public keys only: no secrets."""

    curve: bool = False
    keys_dir: str = Field(
        "", description="folder of <name>.key_secret files; WORKBENCH_SECRET_KEY_<NAME> wins"
    )
    public_keys: dict[str, str] = Field(
        default_factory=dict, description="z85 public key per runner id, 'supervisor', 'tap...'"
    )

    @field_validator("public_keys")
    @classmethod
    def _z85(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [name for name, key in v.items() if not _Z85_KEY.match(key)]
        if bad:
            raise ValueError(f"not a 40-character z85 public key: {', '.join(sorted(bad))}")
        return v


class HostConfig(_Section):
    """One host of a pipeline spread over several (``workbench up --runners ...``).

    Its supervisor binds ``telemetry_address`` (reachable from the other
    hosts), and every runner sends its heartbeats to every host's supervisor,
    so each sees the heartbeats of the remote runners it depends on.
    """

    name: str
    runners: list[str] = Field(min_length=1)
    telemetry_address: str

    @field_validator("telemetry_address")
    @classmethod
    def _zmq_address(cls, v: str) -> str:
        return BusConfig._zmq_address(v)


class ReportConfig(_Section):
    """How reports turn PnL into returns (`workbench.replays.performance`)."""

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
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    hosts: list[HostConfig] = Field(default_factory=list)
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

    @model_validator(mode="after")
    def _hosts(self) -> WorkbenchConfig:
        if not self.hosts:
            return self
        known = {self.gateway.id, self.executor.id, *(s.id for s in self.strategies)}
        seen: dict[str, str] = {}
        for i, h in enumerate(self.hosts):
            for r in h.runners:
                if r not in known:
                    raise ValueError(f"hosts[{i}].runners: no runner named {r!r}")
                if r in seen:
                    raise ValueError(f"hosts[{i}].runners: {r!r} is on host {seen[r]!r} too")
                seen[r] = h.name
        addrs = [h.telemetry_address for h in self.hosts]
        if len(set(addrs)) != len(addrs):
            raise ValueError("hosts: telemetry_address must differ per host")
        return self

    @model_validator(mode="after")
    def _curve_keys(self) -> WorkbenchConfig:
        if not self.security.curve:
            return self
        from workbench.messaging.security import is_tap, pipeline_members

        members = pipeline_members(self)
        missing = [m for m in members if m not in self.security.public_keys]
        if missing:
            raise ValueError(
                f"security.public_keys: curve is on but no public key for {', '.join(missing)}"
            )
        strangers = [n for n in self.security.public_keys if n not in members and not is_tap(n)]
        if strangers:
            raise ValueError(
                f"security.public_keys: {', '.join(strangers)} is not a runner id, "
                "'supervisor' or a tap ('tap...')"
            )
        return self

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
        data["security"]["keys_dir"] = rebase(self.security.keys_dir)
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


def live_risk_problems(cfg: WorkbenchConfig) -> list[str]:
    """A pipeline on a live feed must have order and position limits.

    Returns:
        One message per missing limit, naming the file and the field.
    """
    if cfg.gateway.feed == "replay":
        return []
    risk = cfg.executor.risk
    return [
        f"{cfg.source}: executor.risk.{name}: must be set (> 0) when gateway.feed is "
        f"{cfg.gateway.feed!r}, not a replay"
        for name in ("max_order_qty", "max_position_qty")
        if not getattr(risk, name)
    ]


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
    problems += live_risk_problems(cfg)
    problems += exposure_problems(cfg)
    known = {s.id for s in cfg.strategies}
    for sid in cfg.gateway.replay.subscribers or []:
        if sid not in known:
            problems.append(f"{src}: gateway.replay.subscribers: no strategy {sid!r}")
    for i, s in enumerate(cfg.strategies):
        try:
            load_strategy(s.class_path, s.id, s.params)
        except ConfigurationError as e:
            problems.append(f"{src}: strategies[{i}] ({s.id}): {e}")
    from workbench.execution.broker import load_broker

    try:
        load_broker(cfg.executor.broker.class_path, cfg.executor.broker.params)
    except ConfigurationError as e:
        problems.append(f"{src}: executor.broker: {e}")
    return problems
