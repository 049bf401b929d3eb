"""What a `Workbench` does in its kernel: readable logs, and a stop when the kernel exits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from workbench.notebook.workbench import Workbench


def quiet_logging() -> None:
    """Readable WARNING+ logs in a kernel, unless the user configured structlog."""
    if not structlog.is_configured():
        from workbench.runner.logs import configure_logging

        configure_logging("WARNING", json=False)


def stop_at_exit(wb: Workbench) -> None:
    """Stop ``wb`` when the interpreter exits normally (a kernel shutdown, say).

    A weak reference, so a forgotten workbench can still be collected. Abrupt
    deaths are covered by the runners themselves (they exit with their parent).
    """
    import atexit
    import weakref

    ref = weakref.ref(wb)

    def stop() -> None:
        w = ref()
        if w is not None:
            w.stop()

    atexit.register(stop)
