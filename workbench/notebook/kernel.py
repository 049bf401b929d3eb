"""What a `Workbench` does in its kernel: readable logs, and a stop when the kernel exits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel

from workbench.exceptions import ConfigurationError, TemporaryError

if TYPE_CHECKING:
    from workbench.notebook.workbench import Workbench
    from workbench.supervisor import Supervisor


def quiet_logging() -> None:
    """Readable WARNING+ logs in a kernel, unless the user configured structlog."""
    if not structlog.is_configured():
        from workbench.runner.logs import configure_logging

        configure_logging("WARNING", json=False)


STARTED: dict[Path, Workbench] = {}
"""Each started workbench by its run folder. Held here, not only by a notebook's variable:
re-running ``wb = Workbench.from_config(...); wb.start()`` rebinds ``wb``, and the first
one, collected, left its runners with nothing that could stop them (`Workbench.running`)."""


def started_by_another(path: Path, wb: Workbench) -> TemporaryError | None:
    """The error for a start of run folder ``path`` that another `Workbench` runs, or None."""
    other = STARTED.get(path)
    if other is None or other is wb:
        return None
    run_id = other.supervisor.config.run_id if other.supervisor else other.config.run_id
    return TemporaryError(
        f"run {run_id!r} is up already in this kernel, started by another Workbench (a "
        f"re-run cell?): Workbench.running({run_id!r}) gets it back; stop that one first"
    )


def running(run_id: str) -> Workbench:
    """The started `Workbench` of ``run_id`` in this kernel.

    Raises:
        ConfigurationError: none runs it.
    """
    for wb in STARTED.values():
        if run_id in (wb.config.run_id, wb.supervisor and wb.supervisor.config.run_id):
            return wb
    raise ConfigurationError(f"no Workbench of this kernel runs {run_id!r}")


def carry_secrets(src: BaseModel, dst: BaseModel) -> None:
    """Copy the fields a dump leaves out (``exclude=True``: the secrets) that ``dst`` lacks."""
    for name, field in type(src).model_fields.items():
        value = getattr(src, name)
        if field.exclude:
            if value is not None and getattr(dst, name) is None:
                setattr(dst, name, value)
        elif isinstance(value, BaseModel):
            carry_secrets(value, getattr(dst, name))


def stop_at_exit(wb: Workbench) -> None:
    """Stop ``wb`` when the interpreter exits normally (a kernel shutdown, say).

    A weak reference (`STARTED` holds it while it runs). Abrupt deaths are
    covered by the runners themselves (they exit with their parent).
    """
    import atexit
    import weakref

    ref = weakref.ref(wb)

    def stop() -> None:
        w = ref()
        if w is not None:
            w.stop()

    atexit.register(stop)


def wait_restarted(
    sup: Supervisor, restarted: list[str], before: dict[str, int | None], timeout: float
) -> None:
    """Wait until each of ``restarted`` runs again, in a process other than ``before``'s.

    Raises:
        TimeoutError: not all within ``timeout``.
    """

    def back() -> bool:
        now = {s.runner: s for s in sup.status()}
        return all(
            n in now and now[n].is_running and now[n].pid != before.get(n) for n in restarted
        )

    if not sup.wait_for(back, timeout):
        raise TimeoutError(f"runners {restarted} not running again after {timeout} s")
