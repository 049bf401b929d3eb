"""What the supervisor reports: runner states, one frozen status per runner, events.

`RunnerStatus` is what `Supervisor.status()` returns and what ``/health``,
``/metrics``, the notebook and the cli read. Its heartbeat parts are typed
per role through `workbench.messaging.heartbeat_extras`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from workbench.messaging.heartbeat_extras import (
    ExecutorExtra,
    GatewayExtra,
    RoleExtra,
    StrategyExtra,
    extra_of,
    latency_of,
)


class RunnerState(enum.StrEnum):
    """Lifecycle state of a supervised runner.

    starting   spawned (or waiting to respawn), no heartbeat yet
    running    heartbeat fresh
    unhealthy  heartbeat older than ``heartbeat_timeout_s``; restarted when hung
    stopped    not running, on purpose (stopped, or finished its replay)
    failed     gave up: restart budget spent, or a configuration error
    """

    STARTING = "starting"
    RUNNING = "running"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Something the supervisor saw or did (state change, restart, alert, eos)."""

    kind: str
    runner: str
    ts_ns: int
    data: dict[str, Any] = field(default_factory=dict)


HEALTH_FIELDS = (
    "role",
    "state",
    "pid",
    "uptime_s",
    "restarts",
    "heartbeat_age_s",
    "exit_code",
    "detail",
)


@dataclass(frozen=True, slots=True)
class RunnerStatus:
    """One runner as its supervisor sees it now.

    Attributes:
        runner: Runner name (``sr-1``, ``gateway``, ...).
        role: ``gateway``, ``strategy`` or ``executor``.
        state: Its lifecycle state.
        pid: Process id while it has a process, else None.
        uptime_s: Seconds since its first heartbeat (0 without a process).
        restarts: Restarts so far (crashes and requested restarts).
        heartbeat_age_s: Age of its last heartbeat (None without one or a process).
        exit_code: Exit code of its last process, None while none exited.
        detail: Why it is in its state (``gated``, ``restart in 0.05 s (...)``, ...).
        rates: Per-second rates of its numeric counters between two heartbeats.
        counters: Counters of its last heartbeat.
        extra: ``extra`` of its last heartbeat as sent (see `info` for it typed).
        counter_totals: Its counters summed over its processes (restarts do not
            reset them); ``/metrics`` exports these.
        latency_totals: Its latency histograms summed the same way.
        log_write_errors: Output lines its log file did not take when they came
            (a full or read-only disk): kept in memory to write later, or dropped.
    """

    runner: str
    role: str
    state: RunnerState
    pid: int | None = None
    uptime_s: float = 0.0
    restarts: int = 0
    heartbeat_age_s: float | None = None
    exit_code: int | None = None
    detail: str = ""
    rates: Mapping[str, float] = field(default_factory=dict)
    counters: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    log_write_errors: int = 0
    counter_totals: Mapping[str, Any] = field(default_factory=dict)
    latency_totals: Mapping[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> RoleExtra | None:
        """The heartbeat ``extra`` typed for this runner's role."""
        return extra_of(self.role, self.extra)

    @property
    def gateway(self) -> GatewayExtra | None:
        """`info` when this is a gateway."""
        info = self.info
        return info if isinstance(info, GatewayExtra) else None

    @property
    def strategy(self) -> StrategyExtra | None:
        """`info` when this is a strategy."""
        info = self.info
        return info if isinstance(info, StrategyExtra) else None

    @property
    def executor(self) -> ExecutorExtra | None:
        """`info` when this is an executor."""
        info = self.info
        return info if isinstance(info, ExecutorExtra) else None

    @property
    def latency(self) -> dict[str, dict[str, Any]]:
        """Latency histograms of its last heartbeat, by name."""
        return latency_of(self.extra)

    @property
    def is_running(self) -> bool:
        """True in state ``running``."""
        return self.state is RunnerState.RUNNING

    def health(self) -> dict[str, Any]:
        """The part ``/health`` shows, as JSON-ready data."""
        return {k: getattr(self, k) for k in HEALTH_FIELDS} | {"state": self.state.value}

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (the shape `status()` had as a dict)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("rates", "counters", "extra", "counter_totals", "latency_totals"):
            out[k] = dict(out[k])
        return out

    def __getitem__(self, key: str) -> Any:
        """``status["state"]``: scripts written against the old dicts keep reading."""
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)


_FIELD_NAMES = frozenset(f.name for f in fields(RunnerStatus))

StatusSource = Callable[[], list[RunnerStatus]]
"""What `HealthServer` and `RunnerCollector` read: the runners' statuses now."""
