"""The one typed configuration: TOML file, ``WORKBENCH__...`` environment overrides.

Precedence, highest first: keyword arguments, environment variables
(``WORKBENCH__GATEWAY__FEED=replay``; nested fields joined by ``__``), the TOML
file, the embedded defaults. Units are in field names. Relative paths are
resolved against the directory of the config file (the current directory for a
config built in code), so a promoted config reads the same files wherever it is
started from.
"""

from workbench.config.checks import check_config
from workbench.config.feeds import ReplayFeedConfig, SimulatedFeedConfig
from workbench.config.loading import (
    LOOPBACK_HOSTS,
    build_config,
    exposure_problems,
    live_risk_problems,
    load_config,
)
from workbench.config.model import WorkbenchConfig
from workbench.config.sections import (
    BUS_BINDERS,
    BUS_STREAMS,
    DEFAULT_BROKER_PATH,
    DEFAULT_STRATEGY_PATH,
    BrokerConfig,
    BusConfig,
    ExecutorConfig,
    GatewayConfig,
    HostConfig,
    PromotionRecord,
    ReportConfig,
    RiskConfig,
    RuntimeConfig,
    SecurityConfig,
    StrategyConfig,
    SupervisorConfig,
)

__all__ = [
    "BUS_BINDERS",
    "BUS_STREAMS",
    "DEFAULT_BROKER_PATH",
    "DEFAULT_STRATEGY_PATH",
    "LOOPBACK_HOSTS",
    "BrokerConfig",
    "BusConfig",
    "ExecutorConfig",
    "GatewayConfig",
    "HostConfig",
    "PromotionRecord",
    "ReplayFeedConfig",
    "ReportConfig",
    "RiskConfig",
    "RuntimeConfig",
    "SecurityConfig",
    "SimulatedFeedConfig",
    "StrategyConfig",
    "SupervisorConfig",
    "WorkbenchConfig",
    "build_config",
    "check_config",
    "exposure_problems",
    "live_risk_problems",
    "load_config",
]
