"""The sections of the config: bus, gateway, strategies, executor, runtime, supervisor, ...

Units are in field names; every section refuses unknown fields.
"""

from __future__ import annotations

import re
import string
from functools import reduce
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from workbench.config.addresses import check_address, clashing
from workbench.config.feeds import ReplayFeedConfig, SimulatedFeedConfig
from workbench.config_section import Section
from workbench.exchanges.config import ExchangeConfig

BUS_BINDERS = {
    "ticks": "gateway",
    "signals": "executor",
    "events": "executor",
    "control": "gateway",
    "telemetry": "supervisor",
    "command": "executor",
}
"""The role that binds each bus socket (the others connect to it)."""
BUS_STREAMS = tuple(BUS_BINDERS)
"""The bus's sockets: ``BusConfig.<name>_address`` for each."""

DEFAULT_STRATEGY_PATH = "workbench.strategies.support_resistance:SupportResistance"


class BusConfig(Section):
    """Where the runners meet, and how their sockets behave."""

    ticks_address: str = "tcp://127.0.0.1:5701"
    signals_address: str = "tcp://127.0.0.1:5702"
    events_address: str = "tcp://127.0.0.1:5703"
    control_address: str = "tcp://127.0.0.1:5704"
    telemetry_address: str = "tcp://127.0.0.1:5705"
    command_address: str = Field(
        "tcp://127.0.0.1:5706", description="the executor's operator commands (halt, resume)"
    )
    # Bounded as libzmq takes them: above, every runner crashed at start (EINVAL, overflow).
    reconnect_interval_ms: int = Field(100, ge=1, le=2**31 - 1)
    reconnect_interval_max_ms: int = Field(1_000, ge=0, le=2**31 - 1)
    zmq_heartbeat_interval_ms: int = Field(1_000, ge=0, le=2**31 - 1)
    zmq_heartbeat_timeout_ms: int = Field(3_000, ge=0, le=6_553_500)  # HEARTBEAT_TTL: 0.1 s units
    linger_ms: int = Field(1_000, ge=0, le=2**31 - 1)
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
        return check_address(v)

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
        same = clashing(addrs)
        if same:
            raise ValueError(f"bus addresses must all differ; these name one: {', '.join(same)}")
        return self


class GatewayConfig(Section):
    """The tick publisher."""

    id: str = "gateway"
    feed: Literal["simulated", "replay", "exchange"] = "simulated"
    simulated: SimulatedFeedConfig = Field(default_factory=SimulatedFeedConfig)
    replay: ReplayFeedConfig = Field(default_factory=ReplayFeedConfig)
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    market_snapshot_interval_ms: int = Field(
        10,
        ge=1,
        le=1_000,
        description="live: each symbol's newest tick goes to the executor at most this often "
        "(only when it changed); the executor's prices are this much older at worst",
    )


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


class StrategyConfig(Section):
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


class BrokerConfig(Section):
    """The broker adapter behind the executor (declared like a strategy), and its breaker.

    ``params`` go to the class's constructor; the built-in simulator takes
    ``latency_ms``, ``fee_bps``, ``fee_per_order``, ``slippage``,
    ``slippage_half_spreads`` and ``partial_fills``. The older form
    ``kind = "simulated"`` plus ``slippage`` is read as the simulator with that slippage.
    """

    class_path: str = DEFAULT_BROKER_PATH
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _no_secrets(cls, params: dict[str, Any]) -> dict[str, Any]:
        # From a file or the environment alike: params are saved with the run's config.toml
        words = ("key", "secret", "token", "password", "passphrase")  # api_key, private_key...
        leaked = [k for k in params if any(w in k.lower().split("_") for w in words)]
        if leaked:
            raise ValueError(
                f"{leaked[0]}: secrets go in WORKBENCH__GATEWAY__EXCHANGE__API_KEY / "
                "..._API_SECRET (read from the environment, never saved), not broker params"
            )
        return params

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


class RiskConfig(Section):
    """Pre-trade limits; 0 disables a limit. A config whose feed is not a replay
    must set ``max_order_qty`` and ``max_position_qty`` (`check_config`)."""

    max_order_qty: float = Field(0.0, ge=0, description="largest order, in units")
    max_order_notional: float = Field(0.0, ge=0, description="largest qty x price of an order")
    max_position_qty: float = Field(0.0, ge=0, description="largest |position| per symbol")
    max_position_qty_by_symbol: dict[str, Annotated[float, Field(ge=0)]] = Field(
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


class ExecutorConfig(Section):
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


class RuntimeConfig(Section):
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


MIN_TOKEN_CHARS = 16
"""The least length of ``supervisor.http_token`` (``openssl rand -hex 16`` gives 32)."""


class SupervisorConfig(Section):
    """How the supervisor starts, watches and restarts runners, and where it reports."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(
        0, ge=0, le=65535, description="health/metrics port; 0 = pick a free one"
    )
    start_timeout_s: float = Field(15.0, gt=0, description="spawn to first heartbeat")
    build_timeout_s: float = Field(
        600.0, gt=0, description="spawn to running for a runner still being built (loading)"
    )
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

    @field_validator("http_token")
    @classmethod
    def _token_strong(cls, v: SecretStr | None) -> SecretStr | None:
        # An empty line in an EnvironmentFile must not pass for a token: with none,
        # health and metrics went to the network without asking for one.
        if v is not None and len(v.get_secret_value().strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"a bearer token of at least {MIN_TOKEN_CHARS} characters (not spaces); "
                "unset it to serve on loopback only"
            )
        return v


_Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_Z85_DIGITS = string.digits + string.ascii_letters + ".-:+=^!/*?&<>()[]{}@%$#"


def is_z85_key(key: str) -> bool:
    """40 z85 characters that decode to 32 bytes: each group of 5 below 2**32 ("#####" is not)."""
    groups = (key[i : i + 5] for i in range(0, 40, 5))
    return bool(_Z85_KEY.match(key)) and all(
        reduce(lambda v, c: v * 85 + _Z85_DIGITS.index(c), g, 0) < 1 << 32 for g in groups
    )


class SecurityConfig(Section):
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
        bad = [name for name, key in v.items() if not is_z85_key(key)]
        if bad:
            raise ValueError(f"not a 40-character z85 public key: {', '.join(sorted(bad))}")
        return v


class HostConfig(Section):
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


class ReportConfig(Section):
    """How reports turn PnL into returns (`workbench.replays.performance`)."""

    capital: float = Field(
        10_000.0,
        gt=0,
        description="capital base in quote currency; daily return = equity change / "
        "(capital + equity at the previous day's close)",
    )


class PromotionRecord(Section):
    """Why this config was promoted: the replay it passed and the checks it met."""

    replay: str = ""
    fills_sha256: str = ""
    promoted_at: str = ""
    checks: dict[str, float] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
