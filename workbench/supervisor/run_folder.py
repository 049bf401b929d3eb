"""The run folder step: done by whoever starts a supervisor, before it starts.

``runs/<run_id>/`` records what ran: ``config.toml`` (every runner reads it),
logs, journal, strategy state. A replay is a session, so an earlier replay's
folder is moved aside first; a live run resumes from what its folder holds,
unless a replay left it (then it is moved aside too).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
import tomllib
from pathlib import Path

import structlog

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.runner.parent_link import process_alive
from workbench.supervisor.hosts import host_config

log = structlog.get_logger()

CONFIG_FILE = "config.toml"


def archive_previous_run(run_path: Path) -> Path | None:
    """Move an earlier run's folder aside, so a replay starts from nothing.

    A replay is a session: its journal and strategy state must not carry over
    from the last one (a live run, by contrast, resumes from them).

    Returns:
        Where the earlier run went, or None if there was none.
    """
    if not run_path.exists() or not any(run_path.iterdir()):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run_path.stat().st_mtime))
    dest = run_path.with_name(f"{run_path.name}.{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = run_path.with_name(f"{run_path.name}.{stamp}.{n}")
    run_path.rename(dest)
    log.info("previous_run_archived", path=str(dest))
    return dest


def prepare_run_folder(config: WorkbenchConfig, runners: list[str] | None = None) -> Path:
    """Archive an earlier replay's folder and write this host's ``config.toml``.

    Args:
        config: What will run.
        runners: This host's runners (``workbench up --runners``), or None for all.

    Returns:
        The path of the written ``config.toml``; pass it to `Supervisor`.

    Raises:
        ConfigurationError: ``runners`` matches none of the config's ``[[hosts]]``,
            or the run folder cannot be written (naming ``runtime.run_dir``).
        TemporaryError: another process runs this run folder (`lock_run`), or
            its disk is full (exit 75: a service manager starts it again later).
    """
    config = host_config(config, runners)
    run_path = config.run_path()
    held = holds_run(run_path)  # by this process already (a notebook's other session)
    try:
        lock_run(run_path, config.run_id)
        if not held:  # `up` reaps as it takes the lock, before its port checks
            reap_orphans(run_path)
        if config.gateway.feed == "replay" or held_a_replay(run_path):
            # A live run resumes only a live run: the journal of a run that ended (its
            # end-of-stream, its positions) would end it at once or trade on them.
            archive_previous_run(run_path)
        return config.save(run_path / CONFIG_FILE)
    except ConfigurationError as e:  # config.toml there is a folder
        if not held:
            unlock_run(run_path)
        raise ConfigurationError(
            f"{config.source}: runtime.run_dir: cannot prepare the run folder {run_path}: {e}"
        ) from e
    except OSError as e:  # read-only, full, not a folder: say which field points there
        if not held:
            unlock_run(run_path)  # nothing runs it: another process may try
        why = f"{config.source}: runtime.run_dir: cannot prepare the run folder {run_path}"
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # no config error: a later start may work
            raise TemporaryError(f"{why}: {e.strerror or e}; free some space") from e
        raise ConfigurationError(f"{why}: {e.strerror or e}") from e


_LOCKS: dict[Path, int] = {}  # run folder -> the open lock file this process holds
_RUNNING: dict[Path, int] = {}  # run folder -> id() of the supervisor of this process running it


def lock_run(run_path: Path, run_id: str) -> None:
    """Hold ``.<run_id>.lock`` beside the run folder while this process runs it.

    One supervisor per run folder.

    Two ``workbench up`` of one run started at once both passed the check of
    busy ports, then shared (and moved aside) one folder. The lock is the
    kernel's (``flock``): a process that dies, however, leaves it free. A
    process may take it again (a notebook's second session).

    Raises:
        TemporaryError: another process runs it (exit 75), naming its pid.
    """
    key = run_path.resolve()
    if key in _RUNNING:  # a second Workbench in one kernel: the folder is in use
        raise TemporaryError(
            f"run {run_id!r} is up already in this process (a Workbench or "
            "Supervisor started it): stop that one first"
        )
    if key in _LOCKS:
        return
    path = key.with_name(f".{key.name}.lock")  # beside the folder: moving it aside keeps it
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise TemporaryError(
            f"run {run_id!r} is up already: process {holder} holds {path}"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _LOCKS[key] = fd


def reap_orphans(run_path: Path, grace_s: float = 3.0) -> list[int]:
    """End the runners of this run that outlived their supervisor; returns their pids.

    Call with the run lock held: no supervisor runs the folder, so a runner
    of it still alive is an orphan. One paused (SIGSTOP) or stuck when its
    supervisor was SIGKILLed never saw the parent-death signal, and keeps its
    ports. It gets SIGCONT and SIGTERM, then SIGKILL after ``grace_s``.
    """
    import signal

    config = str(run_path.resolve() / CONFIG_FILE)
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        args = [a.decode(errors="replace") for a in argv]
        if (
            len(args) >= 5
            and args[1:2] == ["-m"]
            and args[2].startswith("runners.")
            and config in args[3:5]
        ):
            found.append(int(entry.name))
    for pid in found:
        log.warning("orphan_runner_ended", pid=pid, config=config)
        for sig in (signal.SIGCONT, signal.SIGTERM):
            _signal(pid, sig)
    deadline = time.monotonic() + grace_s
    while any(process_alive(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found:
        _signal(pid, signal.SIGKILL)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.kill(pid, sig)


def holds_run(run_path: Path) -> bool:
    """Whether this process holds the run folder's lock (`lock_run`)."""
    return run_path.resolve() in _LOCKS


def claim_run(run_path: Path, owner: object, run_id: str) -> bool:
    """``owner`` (a starting supervisor) runs the folder: this process may not prepare it again.

    Returns:
        True (claimed).

    Raises:
        TemporaryError: another supervisor of this process runs it.
    """
    key = run_path.resolve()
    if _RUNNING.setdefault(key, id(owner)) != id(owner):
        raise TemporaryError(f"run {run_id!r} is up already in this process: stop that one first")
    return True


def release_run(run_path: Path, owner: object, *, claimed: bool, prepared: bool) -> None:
    """``owner`` (a supervisor) stopped: let the folder go if it was its to let go.

    Args:
        claimed: ``owner`` started, and so claimed the folder (`claim_run`).
        prepared: ``owner`` took the lock itself (`prepare_run_folder`); a
            supervisor given the folder leaves an unstarted one to its caller.
    """
    key = run_path.resolve()
    holder = _RUNNING.get(key)
    if claimed and holder == id(owner):
        del _RUNNING[key]
        unlock_run(run_path)
    elif prepared and holder is None:
        unlock_run(run_path)


def unlock_run(run_path: Path) -> None:
    """Let the run folder go (the supervisor stopped)."""
    fd = _LOCKS.pop(run_path.resolve(), None)
    if fd is not None:
        os.close(fd)


def held_a_replay(run_path: Path) -> bool:
    """Whether the run folder's ``config.toml`` is a run that ends: a replay's (promotion
    keeps the run_id) or a simulated feed's with ``max_ticks``. Its journal holds the
    stream's end, which would end the next run's executor at once."""
    try:
        with open(run_path / CONFIG_FILE, "rb") as f:
            saved = tomllib.load(f)
    except (OSError, ValueError):  # unreadable, not UTF-8, not TOML
        return False
    gateway = saved.get("gateway")
    gateway = gateway if isinstance(gateway, dict) else {}
    feed = gateway.get("feed", "simulated")
    simulated = gateway.get("simulated")
    max_ticks = simulated.get("max_ticks", 0) if isinstance(simulated, dict) else 0
    ends = feed == "simulated" and isinstance(max_ticks, int) and max_ticks > 0
    return feed == "replay" or ends
