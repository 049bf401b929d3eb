"""systemd integration: ``sd_notify`` readiness and watchdog pings, and unit files.

`workbench up` under a ``Type=notify`` unit tells systemd ``READY=1`` once
every runner it supervises sends heartbeats, pings ``WATCHDOG=1`` at half the
``WatchdogSec`` interval while its supervisor thread is alive (a hung
supervisor is restarted by systemd), and says ``STOPPING=1`` on the way out.
The protocol is one datagram per message on the unix socket named by
``$NOTIFY_SOCKET`` (``@`` = the abstract namespace); without it every call is
a no-op, so the same command runs in a terminal.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from workbench.exceptions import EXIT_CONFIG

if TYPE_CHECKING:
    from workbench.config import WorkbenchConfig
    from workbench.supervisor.supervisor import Supervisor

log = structlog.get_logger()

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


class Notifier:
    """Sends sd_notify messages to systemd (or to nothing, outside a notify unit)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get(NOTIFY_SOCKET_ENV, "")
        self._address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._sock: socket.socket | None = None
        if self._address:
            # Non-blocking: a receiver that stopped reading (its queue holds a few
            # datagrams) must cost a lost ping, not a supervisor stuck in sendto.
            flags = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            self._sock = socket.socket(socket.AF_UNIX, flags)
        self._failing = False
        usec = env.get(WATCHDOG_USEC_ENV, "")
        pid = env.get(WATCHDOG_PID_ENV, "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        """True under systemd (``$NOTIFY_SOCKET`` set)."""
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields as one message; True if it was sent."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as e:  # systemd gone or socket full: never take `up` down
            if not self._failing:  # once per run of failures
                log.warning("sd_notify_failed", error=str(e), fields=list(fields))
            self._failing = True
            return False
        self._failing = False
        return True

    def ready(self, status: str) -> bool:
        """``READY=1`` with a status line."""
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        """A status line (``systemctl status`` shows it)."""
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        """One watchdog ping."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """``STOPPING=1``."""
        return self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SupervisorNotifier:
    """Readiness and watchdog pings for a supervisor under a ``Type=notify`` unit.

    Call `tick` often (``workbench up`` does, every 0.1 s). It sends
    ``READY=1`` once every supervised runner is running, and ``WATCHDOG=1``
    at half ``WatchdogSec`` only while the supervisor thread goes round its
    loop: a hung supervisor misses the watchdog and systemd restarts the unit.

    Until then, while the loop goes round, it extends systemd's start timeout
    (``EXTEND_TIMEOUT_USEC``) saying whom it waits for: a host's strategies
    wait at their gate for another host's gateway and executor, which may be
    down for longer than ``TimeoutStartSec`` (90 s), and the unit was killed
    and started again every 92 s. A hung loop stops extending: the timeout
    then ends it.
    """

    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier or Notifier()
        self._ready = False
        self._next_ping = 0.0
        self._next_extend = 0.0

    def tick(self, sup: Supervisor) -> None:
        """Notify what is due now."""
        if not self.notifier.enabled:
            return
        now = time.monotonic()
        if not self._ready and sup.all_running():
            self._ready = True
            names = ", ".join(sup.runner_names)
            self.notifier.ready(f"running {names}; health {sup.health_url}/health")
        elif not self._ready and now >= self._next_extend and now - sup.loop_beat < EXTEND_S:
            self._next_extend = now + EXTEND_S
            waiting = [s.runner for s in sup.status() if not s.is_running]
            self.notifier.notify(
                f"EXTEND_TIMEOUT_USEC={int(3 * EXTEND_S * 1e6)}",
                f"STATUS=starting; waiting for {', '.join(waiting) or 'the runners'}",
            )
        interval = self.notifier.watchdog_interval_s
        if interval and now >= self._next_ping and now - sup.loop_beat < interval:
            self.notifier.watchdog()
            self._next_ping = now + interval

    def stopping(self) -> None:
        """Say ``STOPPING=1`` and close."""
        self.notifier.stopping()
        self.notifier.close()


EXTEND_S = 5.0
"""Before READY, the start timeout is extended every this many seconds, by three times it."""
START_LIMIT_S = 600
START_LIMIT_BURST = 10
"""A unit whose supervisor gave up 10 times in 10 minutes stays failed (alert on that)."""


@dataclass(frozen=True)
class UnitSpec:
    """What one unit runs."""

    name: str
    config: Path
    runners: list[str]
    workdir: Path
    user: str | None = None
    watchdog_s: int = 30
    env_file: Path | None = None
    stop_grace_s: float = 10.0
    """The config's ``supervisor.stop_grace_s``: `up` takes that long to stop its runners."""


USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}|[0-9]{1,10}")
"""A plain POSIX user or group name, or a numeric id (systemd takes both): nothing a unit
file reads as a specifier or a new line."""


def render_unit(spec: UnitSpec, executable: str | None = None) -> str:
    """The text of a ``Type=notify`` service unit that runs ``workbench up``.

    Raises:
        ValueError: a value a unit line cannot hold (a newline), or ``user`` is
            not a plain user name; nothing is written.
    """
    if spec.user is not None and not USER_NAME.fullmatch(spec.user):
        # A newline wrote a line of its own (ExecStartPre=...), a % a specifier.
        raise ValueError(
            f"User={spec.user!r}: not a plain user name: use letters, digits, _ . - "
            "(not starting with a digit, '.' or '-'), at most 32 characters, or a numeric id"
        )
    exe = executable or sys.executable
    argv = [exe, "-m", "workbench.cli", "up", "--config", str(spec.config)]
    if spec.runners:
        argv += ["--runners", ",".join(spec.runners)]
    about = f"workbench runners {', '.join(spec.runners) or 'all'} ({spec.config.name})"
    lines = [
        "[Unit]",
        f"Description={_escaped(about, 'Description')}",
        "After=network-online.target",
        "Wants=network-online.target",
        # A supervisor that gave up is started again, but not for ever: at most
        # START_LIMIT_BURST times in START_LIMIT_S, then the unit stays failed.
        f"StartLimitIntervalSec={START_LIMIT_S}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={_escaped(shlex.join(argv), 'ExecStart').replace('$', '$$')}",
        f"WorkingDirectory={_escaped(str(spec.workdir), 'WorkingDirectory')}",
        f"WatchdogSec={spec.watchdog_s}",
        "Restart=on-failure",
        "RestartSec=2",
        # Exit 2: a config error (`up`'s own, or a runner's): a restart cannot mend it.
        f"RestartPreventExitStatus={EXIT_CONFIG}",
        # `up` stops its runners within the grace itself; leave it time to.
        f"TimeoutStopSec={max(30, math.ceil(spec.stop_grace_s) + 15)}",
        # A replay stopped before its end exits 143 (`systemctl stop`): a clean stop.
        "SuccessExitStatus=143",
        "KillMode=mixed",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if spec.env_file is not None:
        # Secrets (WORKBENCH_SECRET_KEY_*, WORKBENCH__SUPERVISOR__HTTP_TOKEN) live here, 0600.
        lines.append(f"EnvironmentFile={_escaped(str(spec.env_file), 'EnvironmentFile')}")
    if spec.user:
        lines.append(f"User={spec.user}")
    lines += [
        "NoNewPrivileges=yes",
        # No PrivateTmp: ipc sockets under /tmp must stay reachable from a shell (workbench
        # halt, state) and from taps, and a run folder there must outlive the service.
        "ProtectSystem=full",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _escaped(value: str, key: str) -> str:
    """``value`` of ``key`` in a unit file: ``%`` is a specifier there (``%d``: another folder)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{key}={value!r}: a unit file line cannot hold a newline")
    return value.replace("%", "%%")


UNIT_NAME = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]*")
"""What ``workbench-<name>.service`` may be named (systemd's unit name characters)."""
READ_ONLY = (Path("/etc"), Path("/usr"), Path("/boot"))
"""What ``ProtectSystem=full`` makes read-only for the service."""


def unit_problems(cfg: WorkbenchConfig) -> list[str]:
    """What would stop ``cfg``'s pipeline under the generated unit: writes under `READ_ONLY`."""
    places = [("runtime.run_dir", cfg.resolve(cfg.runtime.run_dir))]
    places += [("executor.journal_path", cfg.journal_path())]
    places += [("runtime.state_dir", cfg.state_path())]
    if cfg.recorder.enabled and cfg.gateway.feed != "replay":  # the gateway writes its ticks
        places += [("recorder.path", cfg.recorder_path())]
    return [
        f"{cfg.source}: {field}: {path} is under {ro}, which the unit's ProtectSystem=full "
        f"makes read-only; set {field} to a writable place (e.g. /var/lib/workbench/...)"
        for field, path in places
        for ro in READ_ONLY
        if path.resolve().is_relative_to(ro)
    ]


def write_units(
    specs: list[UnitSpec], out_dir: Path, executable: str | None = None, *, force: bool = False
) -> list[Path]:
    """Write ``workbench-<name>.service`` per spec into ``out_dir``; returns the paths.

    Raises:
        ValueError: a spec cannot be rendered (see `render_unit`), or (without
            ``force``) a unit file there says something else (hand edits would
            be lost); nothing is written.
    """
    texts = {out_dir / f"workbench-{s.name}.service": render_unit(s, executable) for s in specs}
    changed = [p for p, text in texts.items() if p.is_file() and p.read_text() != text]
    if changed and not force:
        raise ValueError(
            f"{', '.join(map(str, changed))}: exists with other contents (edited by hand?); "
            "pass --force to replace it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text)
    return list(texts)
