"""Staged start: every runner spawns at once, later stages wait at their start gate.

Stage 0 binds (executor, gateway), stage 1 connects (strategies). Spawning
everything at once lets the imports overlap; a gated runner connects only
when `next_stage` moves on, i.e. when no runner of the current stage is still
starting (and, for a pipeline over hosts, the remote binders are alive).
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError
from workbench.supervisor.status import RunnerState
from workbench.supervisor.watcher import Intent, RunnerWatcher


def runner_specs(
    config: WorkbenchConfig, runners: list[str] | None = None
) -> list[tuple[str, str, int, str | None]]:
    """(name, role, stage, strategy id) of the runners to supervise: ``runners`` or all.

    Raises:
        ConfigurationError: a name in ``runners`` is not a runner of ``config``.
    """
    ex, gw = config.executor.id, config.gateway.id
    specs: list[tuple[str, str, int, str | None]] = [(ex, "executor", 0, None)]
    specs += [(gw, "gateway", 0, None)]
    specs += [(s.id, "strategy", 1, s.id) for s in config.strategies]
    unknown = set(runners or ()) - {spec[0] for spec in specs}
    if unknown:
        names = ", ".join(sorted(unknown))
        known = ", ".join(spec[0] for spec in specs)
        raise ConfigurationError(f"no runner named {names} (the config has {known})")
    return [spec for spec in specs if runners is None or spec[0] in runners]


def launch_new(watchers: Iterable[RunnerWatcher], stage: int) -> None:
    """Spawn the runners never launched that should run; gated when past ``stage``."""
    for w in watchers:
        if w.intent is Intent.RUN and not w.launched:
            w.spawn(gated=w.stage > stage)


def next_stage(watchers: Iterable[RunnerWatcher], stage: int, remote_ok: bool) -> int:
    """The stage to be in now: the next one once ``stage`` has started, else ``stage``."""
    watchers = list(watchers)
    later = [w.stage for w in watchers if w.stage > stage]
    current = [w for w in watchers if w.stage == stage]
    if later and remote_ok and all(w.state is not RunnerState.STARTING for w in current):
        return min(later)
    return stage


def advance(watchers: list[RunnerWatcher], stage: int, remote_ok: bool) -> int:
    """Launch new runners, release the next stage's once the current one runs; the stage now."""
    launch_new(watchers, stage)
    new = next_stage(watchers, stage, remote_ok)
    if new != stage:
        for w in watchers:
            if w.stage == new:
                w.release()
    return new
