"""Process-level plumbing for runners: signals, dying with the parent, whether a pid lives."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger()

_PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "WORKBENCH_PARENT_PID"
GATE_ENV = "WORKBENCH_GATE"


def install_stop_handlers(stop: Callable[[str], None]) -> None:
    """Call ``stop(signal name)`` on SIGTERM and SIGINT (a second one exits at once).

    The handler only sets a flag: logging from it could deadlock on the lock
    of a log write it interrupted.
    """
    seen = {"n": 0}

    def handler(signum: int, _frame: object) -> None:
        seen["n"] += 1
        if seen["n"] > 1:
            if _watching == os.getpid() and orphaned():  # the parent's death, signalled
                return  # again: this process's watch thread ends it (`die_with_parent`)
            os._exit(128 + signum)
        stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


_watching = 0
"""The pid whose parent-watch thread runs (a process forked from a runner has none)."""


def orphaned() -> bool:
    """Whether the supervisor that started this process (``WORKBENCH_PARENT_PID``) is gone."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return False
    return os.getppid() != int(parent)


def _silence_stdio() -> None:
    """Point stdout and stderr at /dev/null: the pipes to a dead parent only fail writes."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def die_with_parent() -> None:
    """Make this process exit when the process that started it dies, however it dies.

    Uses Linux's ``PR_SET_PDEATHSIG`` (SIGTERM, then our handlers run) and, as a
    backstop for other platforms and for the race where the parent died before
    the call, a watcher thread on ``WORKBENCH_PARENT_PID``.
    """
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    parent_pid = int(parent)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        log.warning("parent_gone_at_start", parent_pid=parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        ev = threading.Event()
        while not ev.wait(0.5):
            if os.getppid() != parent_pid:
                # Its log pipe is gone: a write would fail (and end this thread), so
                # the clean stop's log lines go nowhere instead, and it saves state.
                with contextlib.suppress(OSError):  # out of fds: exit below all the same
                    _silence_stdio()
                os.kill(os.getpid(), signal.SIGTERM)  # a repeat is ignored (`orphaned`)
                # Orphaned: nobody is left to flush to, so do not wait out socket
                # lingers; the 2 s promise includes up to 0.5 s to notice.
                if ev.wait(0.8):
                    return
                os._exit(70)

    global _watching
    _watching = os.getpid()
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def wait_at_gate() -> bool:
    """Block until the supervisor writes a line on stdin.

    The supervisor starts every runner at once so their imports overlap, but a
    runner that connects to others waits here, fully loaded, until the runners
    it depends on are up.

    Returns:
        False if stdin closed first (the supervisor is gone): do not start.
    """
    import sys

    return bool(sys.stdin.readline())


def try_lock(path: str | os.PathLike[str], mode: int = 0o644, *, create: bool = True) -> int | None:
    """An exclusive ``lockf`` lock on the file ``path``: its descriptor, or None if another
    process holds it.

    The lock is this process's and goes with it, even by SIGKILL; closing the
    descriptor (or any other of the file, in this process) lets it go.

    Raises:
        OSError: the file cannot be opened (or, without ``create``, is missing).
    """
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), mode)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    return fd


def process_alive(pid: int) -> bool:
    """Still running (a zombie, dead but not reaped by anyone yet, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
