"""Which runners a config change restarts: `plan_apply(old, new)`, pure."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError

# Parts a running pipeline cannot switch: they need a new supervisor. (Keys and hosts
# reach every socket and process: a partial restart would strand the others.)
FIXED_PARTS = ("bus", "runtime", "run_id", "security", "hosts")


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """What applying a new config does.

    Attributes:
        restart: Runners whose part changed: stopped and started again at once (one
            stopped on purpose stays stopped, and reads the new config when started).
        add: Strategies new in the config: started.
        remove: Strategies gone from the config: stopped and forgotten.
    """

    restart: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def touched(self) -> tuple[str, ...]:
        """Runners restarted or started, in that order."""
        return (*self.restart, *self.add)


def plan_apply(old: WorkbenchConfig, new: WorkbenchConfig) -> ApplyPlan:
    """Compare two configs: a strategy restarts when its section changed, the
    gateway when the gateway or recorder section did, the executor when its
    section or the set of strategies did.

    Raises:
        ConfigurationError: ``new`` changes the bus, runtime, run id, security, hosts,
            or the gateway's or executor's id.
    """
    for part in FIXED_PARTS:
        if getattr(old, part) != getattr(new, part):
            raise ConfigurationError(
                f"{part} changed: stop and start again to apply it (a live change would "
                "strand the running processes)"
            )
    for part in ("gateway", "executor"):  # its watcher and every heartbeat go by this name
        if getattr(old, part).id != getattr(new, part).id:
            raise ConfigurationError(
                f"{part}.id changed: stop and start again to apply it (the running "
                f"{getattr(old, part).id!r} would be restarted under a name nobody watches)"
            )
    old_s = {s.id: s for s in old.strategies}
    new_s = {s.id: s for s in new.strategies}
    restart = [sid for sid, s in new_s.items() if sid in old_s and old_s[sid] != s]
    add = [sid for sid in new_s if sid not in old_s]
    remove = [sid for sid in old_s if sid not in new_s]
    if old.gateway != new.gateway or old.recorder != new.recorder:  # the gateway records
        restart.append(new.gateway.id)
    if old.executor != new.executor or add or remove:
        restart.append(new.executor.id)
    return ApplyPlan(tuple(restart), tuple(add), tuple(remove))
