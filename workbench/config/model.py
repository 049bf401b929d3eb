"""`WorkbenchConfig`: the whole config, its sources, paths and TOML round trip."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from workbench.config.addresses import clashing
from workbench.config.sections import (
    BUS_STREAMS,
    BusConfig,
    ExecutorConfig,
    GatewayConfig,
    HostConfig,
    PromotionRecord,
    ReportConfig,
    RuntimeConfig,
    SecurityConfig,
    StrategyConfig,
    SupervisorConfig,
)
from workbench.exceptions import ConfigurationError
from workbench.exchanges.config import RecorderConfig

_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)
_USE_ENV: contextvars.ContextVar[bool] = contextvars.ContextVar("use_env", default=True)


def plain_name(v: str) -> bool:
    """Whether ``v`` can name a file or folder of its own (a run's folder, a runner's log)."""
    return bool(v) and not v.startswith(".") and not any(c in v for c in "/\\ \t\n")


PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("gateway", "replay", "path"),
    ("executor", "journal_path"),
    ("runtime", "run_dir"),
    ("runtime", "state_dir"),
    ("security", "keys_dir"),
    ("recorder", "path"),
)
"""Fields holding a path; a relative one is relative to the config file's folder."""


class WorkbenchConfig(BaseSettings):
    """Everything a run needs; see the module docstring for precedence."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH__",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        ser_json_inf_nan="constants",
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
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)
    promotion: PromotionRecord | None = None

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="<defaults>")
    _env: bool = PrivateAttr(default=False)  # whether WORKBENCH__ variables were applied

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        toml_file = _TOML_FILE.get()
        sources = [init_settings, env_settings] if _USE_ENV.get() else [init_settings]
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
        # It names a folder in run_dir: "." or ".." would be run_dir itself or its parent,
        # and a new run moves the folder of the one before aside, other runs' journals too.
        if not plain_name(v):
            raise ValueError("must be non-empty, not start with '.', without slashes or spaces")
        return v

    @model_validator(mode="after")
    def _runner_ids_distinct(self) -> WorkbenchConfig:
        # The executor names its own kill-switch orders by its id: a strategy
        # of that name would pass for them.
        for i, s in enumerate(self.strategies):
            if s.id in (self.executor.id, self.gateway.id):
                raise ValueError(
                    f"strategies[{i}].id: {s.id!r} is the id of the "
                    f"{'executor' if s.id == self.executor.id else 'gateway'}; pick another"
                )
        # An id names the runner's log file and CURVE key: the supervisor's key may send
        # kill-switch commands, a tap's read everything.
        named = [("gateway.id", self.gateway.id), ("executor.id", self.executor.id)]
        named += [(f"strategies[{i}].id", s.id) for i, s in enumerate(self.strategies)]
        for where, rid in named:
            if not plain_name(rid):
                raise ValueError(f"{where}: {rid!r} must be non-empty, not start with '.', "
                                 "without slashes or spaces")  # fmt: skip
            if rid == "supervisor" or rid.startswith("tap"):
                raise ValueError(f"{where}: {rid!r} is reserved (the supervisor's, the taps' keys)")
        return self

    @model_validator(mode="after")
    def _hosts(self) -> WorkbenchConfig:
        if not self.hosts:
            return self
        known = {self.gateway.id, self.executor.id, *(s.id for s in self.strategies)}
        names = [h.name for h in self.hosts]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # one systemd unit each: the second overwrote the first
            raise ValueError(f"hosts: names must differ; repeated: {', '.join(repeated)}")
        seen: dict[str, str] = {}
        for i, h in enumerate(self.hosts):
            for r in h.runners:
                if r not in known:
                    raise ValueError(f"hosts[{i}].runners: no runner named {r!r}")
                if r in seen:
                    raise ValueError(f"hosts[{i}].runners: {r!r} is on host {seen[r]!r} too")
                seen[r] = h.name
        if unplaced := sorted(known - set(seen)):  # no host would start it: the rest wait
            raise ValueError(f"hosts: {', '.join(unplaced)} is on no host; place every runner")
        addrs = [h.telemetry_address for h in self.hosts]
        if len(set(addrs)) != len(addrs):
            raise ValueError("hosts: telemetry_address must differ per host")
        bus = [getattr(self.bus, f"{n}_address") for n in BUS_STREAMS if n != "telemetry"]
        for i, a in enumerate(addrs):  # a host's supervisor binds it beside the bus
            if clashing([*bus, a]):
                raise ValueError(f"hosts[{i}].telemetry_address: {a} is a bus address too")
        return self

    @model_validator(mode="after")
    def _replays_start_afresh(self) -> WorkbenchConfig:
        # Each replay run starts from an empty run folder; a fixed file outside it
        # would resume another replay's journal (its seen signal ids: skipped).
        fixed = [("executor.journal_path", self.executor.journal_path)]
        fixed.append(("runtime.state_dir", self.runtime.state_dir))
        feed = self.gateway.feed
        ends = feed == "simulated" and self.gateway.simulated.max_ticks > 0  # runs that end too
        for where, value in fixed:
            if (feed == "replay" or ends) and value:
                what = "replay" if feed == "replay" else "run of a simulated feed with max_ticks"
                raise ValueError(
                    f"{where}: {value!r} with gateway.feed {feed!r}: each {what} starts afresh "
                    "in its run folder, and a fixed path would resume another's (its end of "
                    "stream ends the next at once); leave it unset (set runtime.run_dir to "
                    "move the run folders)"
                )
        return self

    @model_validator(mode="after")
    def _gaps_wait_for_resends(self) -> WorkbenchConfig:
        gap_s, resend_s = self.executor.signal_gap_timeout_s, self.runtime.signal_resend_after_s
        if gap_s < 2 * resend_s:
            raise ValueError(
                f"executor.signal_gap_timeout_s ({gap_s}) must be at least twice "
                f"runtime.signal_resend_after_s ({resend_s}): a lost signal must get re-sends "
                "before the executor gives up waiting for it"
            )
        return self

    @model_validator(mode="after")
    def _heartbeats_within_timeout(self) -> WorkbenchConfig:
        timeout_s = self.supervisor.heartbeat_timeout_s
        interval_s = self.runtime.heartbeat_interval_s
        if timeout_s <= interval_s:
            raise ValueError(
                f"supervisor.heartbeat_timeout_s ({timeout_s:g}) must exceed "
                f"runtime.heartbeat_interval_s ({interval_s:g}): every runner would turn "
                "unhealthy between two heartbeats, and be killed as hung"
            )
        return self

    @model_validator(mode="after")
    def _snapshots_fresher_than_stale(self) -> WorkbenchConfig:
        stale_s = self.executor.risk.stale_market_data_s
        interval_ms = self.gateway.market_snapshot_interval_ms
        if self.gateway.feed != "replay" and stale_s and interval_ms >= stale_s * 1000:
            raise ValueError(
                f"gateway.market_snapshot_interval_ms ({interval_ms}) must be below "
                f"executor.risk.stale_market_data_s ({stale_s} s): the executor would see "
                "its prices go stale between snapshots"
            )
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

    def recorder_path(self) -> Path:
        """The recorder's dataset folder (``recorder.path``, or ``<run_dir>/<run_id>/ticks``)."""
        return self.resolve(self.recorder.path) if self.recorder.path else self.run_path() / "ticks"

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

    def snapshot_interval_ms(self) -> int:
        """The gateway's market snapshot interval; 0 in a replay (no executor market socket)."""
        return 0 if self.gateway.feed == "replay" else self.gateway.market_snapshot_interval_ms

    # -- persistence -------------------------------------------------------------

    def to_toml(self) -> str:
        """This config as TOML text; `load_config` of it gives an equal config."""
        data = self.model_dump(mode="json", exclude_none=True)
        try:
            return tomli_w.dumps(data)
        except TypeError as e:  # TOML has no null: a None in a strategy's params, say
            raise ConfigurationError(
                f"{_unwritable(data) or '<config>'}: cannot be written as TOML ({e}); "
                "leave the key out instead of None"
            ) from e

    def save(self, path: str | Path) -> Path:
        """Write the config as TOML, rebasing relative paths onto the new folder.

        Returns:
            The absolute path written.

        Raises:
            ConfigurationError: ``path`` is a folder; nothing is written.
            OSError: it cannot be written; nothing is left behind.
        """
        dest = Path(path).expanduser().resolve()
        if dest.is_dir():  # was "[Errno 21] Is a directory", and <dir>.tmp left behind
            raise ConfigurationError(
                f"{dest}: is a folder; save the config to a file (e.g. {dest / 'config.toml'})"
            )
        clone = self.rebased(dest.parent)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        try:
            tmp.write_text(clone.to_toml())
            tmp.replace(dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        return dest

    def rebased(self, new_base: Path) -> WorkbenchConfig:
        """A copy whose relative paths point at the same files from ``new_base``."""
        import os

        def rebase(p: str) -> str:
            if not p or Path(p).is_absolute():
                return p
            return os.path.relpath(self.resolve(p), new_base)

        data = self.model_dump()
        for loc in PATH_FIELDS:
            *sections, name = loc
            here = data
            for s in sections:
                here = here[s]
            here[name] = rebase(here[name])
        from workbench.config.loading import build_config  # loading builds on this module

        # A copy of this config: the shell's variables are not in it.
        return build_config(data, base_dir=new_base, environment=False)


def _unwritable(data: Any, at: str = "") -> str:
    """The dotted path of the first value in ``data`` TOML cannot hold (None), or ''."""
    if not isinstance(data, dict | list):
        return ""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for k, v in items:
        here = f"{at}[{k}]" if isinstance(k, int) else f"{at}.{k}" if at else str(k)
        if v is None:
            return here
        if found := _unwritable(v, here):
            return found
    return ""
