"""The supervisor: starts the runners in order, watches them, restarts them.

One background thread owns every runner process and both sockets (telemetry
in, executor events in); the public methods are thread-safe and hand work to
that thread through a command queue. It runs the same inside a Jupyter kernel
and under ``workbench up``. Each runner's lifecycle is a `RunnerWatcher`
(states in `RunnerState`); restarts follow `RestartPolicy`; `apply_config`
follows `plan_apply`. Whoever starts a supervisor prepares the run folder
first (`prepare_run_folder`: archive an earlier replay, write ``config.toml``).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import zmq

from workbench.config import WorkbenchConfig, exposure_problems
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.messaging import codec, security
from workbench.messaging.codec import Event, Heartbeat
from workbench.messaging.heartbeat_extras import ExecutorExtra
from workbench.supervisor.child_process import RunnerProcess, runner_argv
from workbench.supervisor.commands import CommandQueue
from workbench.supervisor.eos import EndOfStream
from workbench.supervisor.events import EventHub
from workbench.supervisor.hosts import RemoteRunners, host_config, remote_dependencies
from workbench.supervisor.inbox import Inbox
from workbench.supervisor.logs import LogBook
from workbench.supervisor.plan import plan_apply
from workbench.supervisor.policy import RestartPolicy
from workbench.supervisor.run_folder import claim_run, prepare_run_folder, release_run
from workbench.supervisor.stages import advance, runner_specs
from workbench.supervisor.status import RunnerState, RunnerStatus, SupervisorEvent
from workbench.supervisor.watcher import Intent, RunnerWatcher
from workbench.telemetry import Telemetry

log = structlog.get_logger()

LOOP_INTERVAL_MS = 20

__all__ = ["RunnerState", "RunnerStatus", "Supervisor", "SupervisorEvent"]


class Supervisor:
    """Starts, watches and restarts the runners of one config.

    Args:
        config: What to run.
        runners: Names to supervise (default: gateway, every strategy, executor).
        env: Extra environment for the runner processes.
        config_path: The ``config.toml`` `prepare_run_folder` wrote, which every
            runner reads. Without it the supervisor runs that step itself.
    """

    def __init__(
        self,
        config: WorkbenchConfig,
        *,
        runners: list[str] | None = None,
        env: dict[str, str] | None = None,
        config_path: Path | None = None,
    ) -> None:
        host = host_config(config, runners)  # a pipeline over hosts: this host's part
        problems = exposure_problems(host)
        if problems:
            raise ConfigurationError("\n".join(problems), problems)
        self._prepared = config_path is None  # the run lock is this one's to let go
        if config_path is None:
            config_path = prepare_run_folder(config, runners)
        self.config = host.model_copy(deep=True)  # ours: callers may edit theirs
        self.run_path = host.run_path()
        self.config_path = config_path
        self.logs = LogBook(
            self.run_path / "logs",
            host.supervisor.log_lines_kept,
            max_bytes=int(host.runtime.log_max_mb * 1024 * 1024),
            backups=host.runtime.log_keep,
            copy_of=(str(config_path), config.source if Path(config.source).is_file() else ""),
        )
        self._env = dict(env or {})
        self._lock = threading.RLock()
        self._hub = EventHub()
        self.events = self._hub.recent  # the last events, newest last
        self._policy = RestartPolicy(host.supervisor)
        self._watchers: dict[str, RunnerWatcher] = {}
        for name, role, stage, sid in runner_specs(host, runners):
            self._add_watcher(name, role, stage, sid)
        self._commands = CommandQueue()
        self._thread: threading.Thread | None = None
        self._shutdown = threading.Event()
        self._claimed = False  # this one started: it runs the folder (`claim_run`)
        self._ready = threading.Event()
        self.loop_error: BaseException | None = None  # what ended the loop thread, if anything
        self._stage = 0
        self.eos = EndOfStream()
        self.eos_reached = self.eos.reached  # set once the end-of-stream is in
        self.started_at = 0.0
        self._http: Any = None
        deps = remote_dependencies(host, list(self._watchers))
        self.remote = RemoteRunners(deps, host.supervisor.heartbeat_timeout_s)
        self.telemetry = Telemetry()  # the supervisor's own counters (bad frames, handshakes)
        self.loop_beat = 0.0

    def _add_watcher(self, name: str, role: str, stage: int, strategy_id: str | None) -> None:
        def start_process(gated: bool) -> RunnerProcess:
            argv = runner_argv(role, self.config_path, strategy_id)
            return RunnerProcess(
                argv, lambda line: self.logs.add(name, line), env=self._env, gated=gated
            )

        self._watchers[name] = RunnerWatcher(
            name, role, stage, start_process=start_process, policy=self._policy,
            emit=self._hub.emit, lock=self._lock,
        )  # fmt: skip

    # -- public API (thread-safe) -----------------------------------------------

    @property
    def runner_names(self) -> list[str]:
        """Supervised runner names, in start order."""
        return sorted(self._watchers, key=lambda n: (self._watchers[n].stage, n))

    @property
    def eos_summary(self) -> dict[str, Any] | None:
        """The executor's end-of-stream summary (plus ``eos_ns``) once the replay ended."""
        return self.eos.summary

    def start(self, *, wait: bool = False, timeout: float = 30.0) -> None:
        """Start the thread, the health server and the runners (``wait``: until all run).

        Raises:
            TimeoutError: with ``wait``, not all running within ``timeout``.
            TemporaryError: the health port is taken (nothing was started).
            ConfigurationError: the health address cannot be bound here.
        """
        if self._thread is not None:
            return
        if self._shutdown.is_set():  # its loop would end at once: a health URL over nothing
            raise RuntimeError("this Supervisor was stopped: create a new one to start again")
        from workbench.supervisor.http import HealthServer

        self._claimed = claim_run(self.run_path, self, self.config.run_id)
        sc = self.config.supervisor
        token = sc.http_token.get_secret_value() if sc.http_token else None
        try:  # before any runner starts: a busy port must leave nothing behind
            self._http = HealthServer(
                self.status, sc.http_host, sc.http_port, token, remote=self.remote_status,
                run_id=self.config.run_id, own=self.telemetry,
                loop=lambda: (self.loop_beat, self.loop_error),
            )  # fmt: skip
        except OSError as e:
            self.stop()  # nothing started: the run is free again
            where = f"supervisor.http_host/http_port ({sc.http_host}:{sc.http_port})"
            busy = e.errno == errno.EADDRINUSE  # another run, or anything else, holds it
            raise (TemporaryError if busy else ConfigurationError)(f"{where}: {e}") from e
        self._http.start()
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="workbench-supervisor", daemon=True)
        self._thread.start()
        self._ready.wait()  # bounded: the bind retries are (see BusConfig.bind_retry_*)
        if self.loop_error is not None:
            self.stop()  # nothing runs: the run is free again
            raise self.loop_error
        log.info("supervisor_started", health_url=self.health_url, logs=str(self.logs.folder))
        if wait:
            self.wait_running(timeout)

    stopping = property(
        lambda self: self._shutdown.is_set(), doc="`stop` was called (maybe cut short)."
    )

    @property
    def health_url(self) -> str:
        """Base URL of ``/health`` and ``/metrics``."""
        return self._http.url if self._http else ""

    def stop(self, timeout: float | None = None) -> None:
        """Stop every runner (SIGTERM, then SIGKILL after the grace) and the thread."""
        if self._thread is not None:
            self._shutdown.set()
            self._thread.join(timeout or self.config.supervisor.stop_grace_s + 10)
            self._http.stop()
            self.logs.close()
            self._thread = None
            log.info("supervisor_stopped")
        release_run(self.run_path, self, claimed=self._claimed, prepared=self._prepared)
        self._claimed = self._prepared = False  # once: never another's lock

    close = stop

    def start_runner(self, name: str) -> None:
        """(Re)start a stopped or failed runner now, with a fresh restart budget."""
        self._commands.call(lambda: self._watcher(name).request_start())

    def stop_runner(self, name: str, wait: bool = True) -> None:
        """Stop a runner on purpose; it is not restarted."""
        self._commands.call(lambda: self._watcher(name).request_stop())
        if wait:
            w = self._watchers[name]
            self.wait_for(lambda: w.proc is None, self.config.supervisor.stop_grace_s + 5)

    def restart_runner(self, name: str) -> None:
        """Stop a runner cleanly and start it again at once (not counted as a failure)."""
        self._commands.call(lambda: self._watcher(name).request_restart())

    def apply_config(self, new: WorkbenchConfig) -> list[str]:
        """Switch to ``new`` and restart only the runners whose part of it changed.

        Added strategies start, removed ones stop. Returns those (re)started.

        Raises:
            ConfigurationError: ``new`` changes the bus, runtime or run id,
                which needs a new supervisor.
        """
        plan = plan_apply(self.config, new)
        new = new.model_copy(deep=True)

        def do() -> list[str]:
            self.config = new
            self._policy.config = new.supervisor
            new.save(self.config_path)
            for sid in plan.remove:
                w = self._watchers.get(sid)
                if w is not None and w.request_remove():
                    with self._lock:
                        del self._watchers[sid]
                    self.logs.forget(sid)
            touched = []
            for name in plan.restart:  # one stopped on purpose stays so (`stop_runner`)
                w = self._watchers.get(name)
                if w is not None and not (w.proc is None and w.state is RunnerState.STOPPED):
                    touched.append(name)
                    w.request_restart()
            for sid in plan.add:
                with self._lock:
                    self._add_watcher(sid, "strategy", 1, sid)
                self._watchers[sid].request_start()
                touched.append(sid)
            return touched

        restarted = self._commands.call(do)
        log.info("config_applied", restarted=restarted)
        self._hub.emit("config_applied", "", restarted=restarted)
        return restarted

    def status(self) -> list[RunnerStatus]:
        """One `RunnerStatus` per runner, in start order."""
        with self._lock:
            return [self._watchers[n].status() for n in self.runner_names]

    def remote_status(self) -> dict[str, dict[str, Any]]:
        """The remote runners this host depends on: role, state, heartbeat age, stale."""
        with self._lock:
            return self.remote.status()

    def all_running(self) -> bool:
        """True when every supervised runner is running."""
        with self._lock:
            return all(w.state is RunnerState.RUNNING for w in self._watchers.values())

    def any_failed(self) -> bool:
        """True when a runner has given up, or the supervisor itself has."""
        if self.loop_error is not None or (self._thread and not self._thread.is_alive()):
            return True
        with self._lock:
            return any(w.state is RunnerState.FAILED for w in self._watchers.values())

    def wait_running(self, timeout: float = 30.0) -> None:
        """Block until every runner is running.

        Raises:
            TimeoutError: listing the runners that are not.
        """
        # Not the whole timeout for a runner that gave up: why it did is known now.
        self.wait_for(lambda: self.all_running() or self.any_failed(), timeout)
        if not self.all_running():
            late = {s.runner: f"{s.state.value}: {s.detail}".rstrip(": ") + (
                f"; last error: {err}" if (err := self.logs.last_error(s.runner)) else ""
            ) for s in self.status() if not s.is_running}  # fmt: skip
            why = "failed" if self.any_failed() else f"not running after {timeout} s"
            raise TimeoutError(f"runners {why}: {late}")

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll ``predicate`` until true or ``timeout`` seconds passed; its last answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (on the supervisor thread) for every event; returns an unsubscriber."""
        return self._hub.subscribe(callback)

    def heartbeat(self, name: str) -> Heartbeat | None:
        """The last heartbeat of a runner."""
        with self._lock:
            return self._watcher(name).hb.heartbeat

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- plumbing -------------------------------------------------------------------

    def _watcher(self, name: str) -> RunnerWatcher:
        try:
            return self._watchers[name]
        except KeyError:
            raise ConfigurationError(
                f"No runner named {name!r}; have {', '.join(self.runner_names)}"
            ) from None

    # -- the loop -------------------------------------------------------------------

    def _loop(self) -> None:
        self._commands.owner = threading.current_thread()
        ctx = zmq.Context()
        try:
            security.install(ctx, self.config, security.SUPERVISOR, self.telemetry)
            inbox = Inbox(ctx, self.config, self.telemetry)
        except Exception as e:
            self.loop_error = e
            self._ready.set()
            security.uninstall(ctx)
            ctx.destroy(linger=0)
            return
        for w in self._watchers.values():
            if not w.launched:
                w.intent = Intent.RUN
        self._ready.set()
        try:
            while not self._shutdown.is_set():
                self.loop_beat = time.monotonic()  # the systemd watchdog follows this
                self._commands.run_pending()
                inbox.poll(LOOP_INTERVAL_MS, self._on_heartbeat, self._on_event)
                remote_ok = self._stage > 0 or self.remote.binders_ready(time.monotonic())
                self._stage = advance(list(self._watchers.values()), self._stage, remote_ok)
                for w in list(self._watchers.values()):
                    w.tick()
                    if w.removed:
                        with self._lock:
                            self._watchers.pop(w.name, None)
                        self.logs.forget(w.name)
        except Exception as e:
            log.error("supervisor_loop_crashed", error=repr(e), exc_info=True)
            self.loop_error = e
            self._hub.emit("alert", "", reason="supervisor_failed", detail=repr(e))
        finally:
            self._commands.close("the supervisor is stopping")  # none may start a runner now
            self._stop_all()
            security.uninstall(ctx)
            ctx.destroy(linger=0)

    def _on_heartbeat(self, env: codec.Envelope) -> None:
        hb = env.payload
        if not isinstance(hb, Heartbeat):
            return
        w = self._watchers.get(env.sender)
        if w is None:
            with self._lock:
                self.remote.on_heartbeat(env.sender, hb)  # a runner on another host
        elif not w.on_heartbeat(hb):
            return  # another run's runner, or the last words of a replaced process
        # The executor's end-of-stream, also from another host (heartbeats repeat it).
        if env.sender == self.config.executor.id and ExecutorExtra.from_wire(hb.extra).eos_summary:
            self._end_of_stream(env.sender, hb.extra["eos_summary"], env.sent_ns)

    def _on_event(self, env: codec.Envelope) -> None:
        ev = env.payload
        if not isinstance(ev, Event):
            return
        if ev.name == "eos":
            self._end_of_stream(env.sender, ev.data, env.sent_ns)
        elif ev.name == "alert":
            self._hub.emit("alert", env.sender, **ev.data)

    def _end_of_stream(self, sender: str, summary: dict[str, Any], sent_ns: int) -> None:
        """The one place an end-of-stream lands, from a heartbeat or an event."""
        if self.eos.offer(summary, sent_ns):
            self._hub.emit("eos", sender, **summary)

    def _stop_all(self) -> None:
        for w in self._watchers.values():
            w.begin_shutdown()
        deadline = time.monotonic() + self.config.supervisor.stop_grace_s
        for w in self._watchers.values():
            w.finish_shutdown(deadline)
