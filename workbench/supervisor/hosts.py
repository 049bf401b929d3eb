"""A pipeline over several hosts: this host's part, and the remote runners it depends on.

``workbench up --config FILE --runners gateway,executor`` on one host and
``--runners sr-1`` on another run one pipeline. The config's ``[[hosts]]``
say which runners each host runs and where its supervisor binds telemetry;
every runner sends heartbeats to every host's supervisor. A supervisor thus
sees the heartbeats of remote runners too: it holds its connectors (the
strategies) at their start gate until the remote binders they need
(gateway, executor) send heartbeats, and shows their heartbeat age in
``/health``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workbench.config import HostConfig, WorkbenchConfig
from workbench.exceptions import ConfigurationError
from workbench.messaging.codec import Heartbeat


def find_host(config: WorkbenchConfig, runners: list[str]) -> HostConfig | None:
    """The ``[[hosts]]`` entry that runs exactly ``runners`` (None without hosts).

    Raises:
        ConfigurationError: hosts are configured but none runs exactly these.
    """
    if not config.hosts:
        return None
    for h in config.hosts:
        if set(h.runners) == set(runners):
            return h
    have = "; ".join(f"{h.name} ({', '.join(h.runners)})" for h in config.hosts)
    raise ConfigurationError(
        f"{config.source}: hosts: no host runs exactly {', '.join(runners)}; have {have}"
    )


def host_config(config: WorkbenchConfig, runners: list[str] | None) -> WorkbenchConfig:
    """``config`` as this host runs it: its supervisor binds the host's telemetry address."""
    host = find_host(config, runners) if runners is not None else None
    if host is None:
        return config
    clone = config.model_copy(deep=True)
    clone.bus = clone.bus.model_copy(update={"telemetry_address": host.telemetry_address})
    return clone


def heartbeat_peers(config: WorkbenchConfig) -> list[str]:
    """Telemetry addresses of the other hosts' supervisors (heartbeats go there too)."""
    own = config.bus.telemetry_address
    return [h.telemetry_address for h in config.hosts if h.telemetry_address != own]


def remote_dependencies(config: WorkbenchConfig, local: list[str]) -> dict[str, str]:
    """Remote runner name -> role, for the remote runners the local ones depend on.

    Strategies need the gateway (ticks) and the executor (signals); a replay
    gateway needs its subscribing strategies. Without ``[[hosts]]`` nothing is
    remote (a subset of runners on one host, as tests run them).
    """
    if not config.hosts:
        return {}
    gw, ex = config.gateway.id, config.executor.id
    strategy_ids = {s.id for s in config.strategies}
    deps: dict[str, str] = {}
    if any(n in strategy_ids for n in local):
        deps[gw], deps[ex] = "gateway", "executor"
    if gw in local and config.gateway.feed == "replay":
        deps.update({sid: "strategy" for sid in config.replay_subscribers()})
    return {n: role for n, role in deps.items() if n not in local}


@dataclass
class _Seen:
    role: str
    at: float = 0.0
    heartbeat: Heartbeat | None = None


class RemoteRunners:
    """Last heartbeats of the remote runners this host depends on."""

    def __init__(self, deps: dict[str, str], timeout_s: float) -> None:
        self._seen = {name: _Seen(role) for name, role in deps.items()}
        self._timeout_s = timeout_s

    def __bool__(self) -> bool:
        return bool(self._seen)

    def on_heartbeat(self, name: str, hb: Heartbeat, now: float | None = None) -> bool:
        """Record ``name``'s heartbeat; False when it is not one we depend on."""
        seen = self._seen.get(name)
        if seen is None:
            return False
        seen.at = time.monotonic() if now is None else now
        seen.heartbeat = hb
        return True

    def binders_ready(self, now: float | None = None) -> bool:
        """True when every remote gateway/executor we depend on has a fresh heartbeat, built."""
        now = time.monotonic() if now is None else now
        return all(
            s.at
            and now - s.at <= self._timeout_s
            and s.heartbeat is not None
            and s.heartbeat.state != "starting"  # still loading
            for s in self._seen.values()
            if s.role in ("gateway", "executor")
        )

    def status(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Per remote runner: role, its own state, heartbeat age, stale."""
        now = time.monotonic() if now is None else now
        out = {}
        for name, s in self._seen.items():
            age = round(now - s.at, 3) if s.at else None
            out[name] = {
                "role": s.role,
                "state": s.heartbeat.state if s.heartbeat else "unseen",
                "heartbeat_age_s": age,
                "stale": age is None or age > self._timeout_s,
            }
        return out
