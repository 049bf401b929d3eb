"""The supervisor: starts the runners in order, watches them, restarts them.

One background thread owns every runner process and both sockets (telemetry
in, executor events in); the public methods are thread-safe and hand work to
that thread. It runs the same inside a Jupyter kernel and under
``workbench up``. Runner states:

    starting   spawned (or waiting to respawn), no heartbeat yet
    running    heartbeat fresh
    unhealthy  heartbeat older than ``heartbeat_timeout_s``; restarted when hung
    stopped    not running, on purpose (stopped, or finished its replay)
    failed     gave up: restart budget spent, or a configuration error
"""

from __future__ import annotations

import collections
import concurrent.futures
import enum
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import zmq

from workbench.config import WorkbenchConfig, exposure_problems
from workbench.exceptions import ConfigurationError
from workbench.messaging import codec, security
from workbench.messaging.codec import Event, Heartbeat
from workbench.runner.base import EXIT_CONFIG
from workbench.supervisor.child_process import RunnerProcess, runner_argv
from workbench.supervisor.hosts import RemoteRunners, host_config, remote_dependencies
from workbench.supervisor.logs import LogBook
from workbench.telemetry import BurstLog, Telemetry

log = structlog.get_logger()

LOOP_INTERVAL_MS = 20


class RunnerState(enum.StrEnum):
    """Lifecycle state of a supervised runner."""

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


@dataclass(slots=True)
class _Slot:
    name: str
    role: str
    stage: int
    strategy_id: str | None = None
    state: RunnerState = RunnerState.STOPPED
    proc: RunnerProcess | None = None
    pid: int | None = None
    spawned_at: float = 0.0
    running_since: float = 0.0
    last_hb: float = 0.0
    heartbeat: Heartbeat | None = None
    prev_counters: tuple[float, dict[str, Any]] | None = None
    rates: dict[str, float] = field(default_factory=dict)
    restarts: int = 0
    restart_times: collections.deque[float] = field(default_factory=collections.deque)
    exit_code: int | None = None
    next_start_at: float | None = None
    want_running: bool = False
    stopping_since: float | None = None
    restart_after_exit: bool = False
    immediate_restart: bool = False
    unhealthy_since: float | None = None
    finished: bool = False
    launched: bool = False
    removing: bool = False
    alerted_pid: int | None = None
    detail: str = ""


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


class Supervisor:
    """Starts, watches and restarts the runners of one config.

    Args:
        config: What to run. It is saved to ``<run folder>/config.toml`` and
            every runner reads that file, so the run folder records what ran.
        runners: Names to supervise (default: gateway, every strategy, executor).
        env: Extra environment for the runner processes.
    """

    def __init__(
        self,
        config: WorkbenchConfig,
        *,
        runners: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        config = host_config(config, runners)  # a pipeline over hosts: this host's part
        problems = exposure_problems(config)
        if problems:
            raise ConfigurationError("\n".join(problems), problems)
        self.config = config.model_copy(deep=True)  # ours: callers may edit theirs
        self.run_path = config.run_path()
        if config.gateway.feed == "replay":
            archive_previous_run(self.run_path)
        self.config_path = config.save(self.run_path / "config.toml")
        self.logs = LogBook(
            self.run_path / "logs",
            config.supervisor.log_lines_kept,
            max_bytes=int(config.runtime.log_max_mb * 1024 * 1024),
            backups=config.runtime.log_keep,
        )
        self._env = dict(env or {})
        self._slots: dict[str, _Slot] = {}
        ex, gw = config.executor.id, config.gateway.id
        specs = [(ex, "executor", 0, None), (gw, "gateway", 0, None)]
        specs += [(s.id, "strategy", 1, s.id) for s in config.strategies]
        for name, role, stage, sid in specs:
            if runners is None or name in runners:
                self._slots[name] = _Slot(name, role, stage, sid)
        if runners is not None and set(runners) - set(self._slots):
            raise ConfigurationError(f"no runner named {sorted(set(runners) - set(self._slots))}")
        self._lock = threading.RLock()
        self._commands: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = (
            queue.Queue()
        )
        self._subscribers: list[Callable[[SupervisorEvent], None]] = []
        self.events: collections.deque[SupervisorEvent] = collections.deque(maxlen=1000)
        self._thread: threading.Thread | None = None
        self._loop_ident: int | None = None
        self._shutdown = threading.Event()
        self._ready = threading.Event()
        self._loop_error: BaseException | None = None
        self._stage = 0
        self._rng = random.Random()
        self.eos_summary: dict[str, Any] | None = None
        self.eos_reached = threading.Event()
        self.started_at = 0.0
        self._http = None
        self.remote = RemoteRunners(
            remote_dependencies(config, list(self._slots)), config.supervisor.heartbeat_timeout_s
        )
        self.telemetry = (
            Telemetry()
        )  # the supervisor's own counters (bad frames, refused handshakes)
        self.loop_beat = 0.0
        self._bad_frame_log = BurstLog("bad_frame_dropped", config.runtime.bad_frame_log_interval_s)

    # -- public API (thread-safe) -----------------------------------------------

    @property
    def runner_names(self) -> list[str]:
        """Supervised runner names, in start order."""
        return sorted(self._slots, key=lambda n: (self._slots[n].stage, n))

    def start(self, *, wait: bool = False, timeout: float = 30.0) -> None:
        """Start the supervisor thread, the health server and the runners.

        Returns at once unless ``wait``, then when every runner is running.

        Raises:
            TimeoutError: with ``wait``, not all running within ``timeout``.
        """
        if self._thread is not None:
            return
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="workbench-supervisor", daemon=True)
        self._thread.start()
        self._ready.wait()  # bounded: the bind retries are (see BusConfig.bind_retry_*)
        if self._loop_error is not None:
            raise self._loop_error
        from workbench.supervisor.http import HealthServer

        sc = self.config.supervisor
        token = sc.http_token.get_secret_value() if sc.http_token else None
        self._http = HealthServer(self, sc.http_host, sc.http_port, token)
        self._http.start()
        log.info("supervisor_started", health_url=self.health_url, logs=str(self.logs.folder))
        if wait:
            self.wait_running(timeout)

    @property
    def health_url(self) -> str:
        """Base URL of ``/health`` and ``/metrics``."""
        return self._http.url if self._http else ""

    def stop(self, timeout: float | None = None) -> None:
        """Stop every runner (SIGTERM, then SIGKILL after the grace) and the thread."""
        if self._thread is None:
            return
        self._shutdown.set()
        grace = self.config.supervisor.stop_grace_s
        self._thread.join(timeout or grace + 10)
        if self._http is not None:
            self._http.stop()
        self.logs.close()
        self._thread = None
        log.info("supervisor_stopped")

    close = stop

    def start_runner(self, name: str) -> None:
        """(Re)start a stopped or failed runner now, with a fresh restart budget."""
        self._call(lambda: self._start_runner(self._slot(name)))

    def stop_runner(self, name: str, wait: bool = True) -> None:
        """Stop a runner on purpose; it is not restarted."""
        self._call(lambda: self._stop_runner(self._slot(name)))
        if wait:
            self._wait_for(
                lambda: self._slots[name].proc is None, self.config.supervisor.stop_grace_s + 5
            )

    def restart_runner(self, name: str) -> None:
        """Stop a runner cleanly and start it again at once (not counted as a failure)."""

        def do() -> None:
            slot = self._slot(name)
            if slot.proc is None:
                self._start_runner(slot)
                return
            slot.want_running = True
            slot.immediate_restart = True
            self._terminate(slot)

        self._call(do)

    def apply_config(self, new: WorkbenchConfig) -> list[str]:
        """Switch to ``new`` and restart only the runners whose part of it changed.

        Added strategies start, removed ones stop. Returns the runners restarted
        or started.

        Raises:
            ConfigurationError: ``new`` changes the bus, runtime or run id,
                which needs a new supervisor.
        """
        old = self.config
        for part in ("bus", "runtime", "run_id"):
            if getattr(old, part) != getattr(new, part):
                raise ConfigurationError(
                    f"{part} changed: stop and start again to apply it (a live change would "
                    "strand the running processes)"
                )
        new = new.model_copy(deep=True)
        old_s = {s.id: s for s in old.strategies}
        new_s = {s.id: s for s in new.strategies}
        changed = [sid for sid, s in new_s.items() if sid in old_s and old_s[sid] != s]
        added = [sid for sid in new_s if sid not in old_s]
        removed = [sid for sid in old_s if sid not in new_s]
        if old.gateway != new.gateway:
            changed.append(new.gateway.id)
        if old.executor != new.executor or added or removed:
            changed.append(new.executor.id)

        def do() -> list[str]:
            self.config = new
            new.save(self.config_path)
            for sid in removed:
                slot = self._slots.get(sid)
                if slot is None:
                    continue
                if slot.proc is None:
                    del self._slots[sid]
                else:
                    slot.removing = True
                    self._stop_runner(slot)
            touched = []
            for name in changed:
                slot = self._slots.get(name)
                if slot is None:
                    continue
                touched.append(name)
                if slot.proc is None:
                    self._start_runner(slot)
                else:
                    slot.want_running = True
                    slot.immediate_restart = True
                    self._terminate(slot)
            for sid in added:
                self._slots[sid] = _Slot(sid, "strategy", 1, sid)
                self._start_runner(self._slots[sid])
                touched.append(sid)
            return touched

        restarted = self._call(do)
        log.info("config_applied", restarted=restarted)
        self._emit("config_applied", "", restarted=restarted)
        return restarted

    def status(self) -> list[dict[str, Any]]:
        """One dict per runner: state, pid, uptime, restarts, heartbeat age, exit code, rates."""
        now = time.monotonic()
        out = []
        with self._lock:
            for name in self.runner_names:
                s = self._slots[name]
                hb = s.heartbeat
                out.append(
                    {
                        "runner": name,
                        "role": s.role,
                        "state": s.state.value,
                        "pid": s.pid if s.proc is not None else None,
                        "uptime_s": round(now - s.running_since, 3)
                        if s.proc and s.running_since
                        else 0.0,
                        "restarts": s.restarts,
                        "heartbeat_age_s": round(now - s.last_hb, 3)
                        if s.last_hb and s.proc
                        else None,
                        "exit_code": s.exit_code,
                        "detail": s.detail,
                        "rates": dict(s.rates),
                        "counters": dict(hb.counters) if hb else {},
                        "extra": dict(hb.extra) if hb else {},
                    }
                )
        return out

    def remote_status(self) -> dict[str, dict[str, Any]]:
        """The remote runners this host depends on: role, state, heartbeat age, stale."""
        with self._lock:
            return self.remote.status()

    def all_running(self) -> bool:
        """True when every supervised runner is running."""
        with self._lock:
            return all(s.state is RunnerState.RUNNING for s in self._slots.values())

    def any_failed(self) -> bool:
        """True when a runner has given up, or the supervisor itself has."""
        if self._loop_error is not None or (
            self._thread is not None and not self._thread.is_alive()
        ):
            return True
        with self._lock:
            return any(s.state is RunnerState.FAILED for s in self._slots.values())

    def wait_running(self, timeout: float = 30.0) -> None:
        """Block until every runner is running.

        Raises:
            TimeoutError: listing the runners that are not.
        """
        if not self._wait_for(self.all_running, timeout):
            late = {s["runner"]: s["state"] for s in self.status() if s["state"] != "running"}
            raise TimeoutError(f"runners not running after {timeout} s: {late}")

    def subscribe(self, callback: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (on the supervisor thread) for every event; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- plumbing -------------------------------------------------------------------

    def _slot(self, name: str) -> _Slot:
        try:
            return self._slots[name]
        except KeyError:
            raise ConfigurationError(
                f"No runner named {name!r}; have {', '.join(self.runner_names)}"
            ) from None

    def _call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        if threading.get_ident() == self._loop_ident or self._thread is None:
            return fn()
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, fut))
        return fut.result(timeout)

    def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def _emit(self, kind: str, runner: str, **data: Any) -> None:
        ev = SupervisorEvent(kind, runner, time.time_ns(), data)
        self.events.append(ev)
        with self._lock:
            subs = list(self._subscribers)
        for cb in subs:
            try:
                cb(ev)
            except Exception as e:  # a notebook callback must never kill the supervisor
                log.warning("subscriber_raised", error=repr(e))

    def _set_state(self, slot: _Slot, state: RunnerState, detail: str = "") -> None:
        with self._lock:
            changed = slot.state is not state or slot.detail != detail
            slot.state = state
            slot.detail = detail
        if changed:
            self._emit("state", slot.name, state=state.value, detail=detail)

    # -- the loop -------------------------------------------------------------------

    def _loop(self) -> None:
        self._loop_ident = threading.get_ident()
        ctx = zmq.Context()
        try:
            security.install(ctx, self.config, security.SUPERVISOR, self.telemetry)
            tele = ctx.socket(zmq.SUB)
            tele.setsockopt(zmq.SUBSCRIBE, b"hb/")
            tele.setsockopt(zmq.RCVHWM, 0)  # heartbeats are small: queue, never drop them
            tele.setsockopt(zmq.LINGER, 0)
            from workbench.messaging.zmq_adapters import bind

            security.secure(tele, self.config.bus.telemetry_address, server=True)
            bind(tele, self.config.bus.telemetry_address, self.config.bus)
            events = ctx.socket(zmq.SUB)
            events.setsockopt(zmq.LINGER, 0)
            # A local bus: reconnect fast, or a short replay can end unseen.
            events.setsockopt(zmq.RECONNECT_IVL, 20)
            events.setsockopt(zmq.RECONNECT_IVL_MAX, 200)
            for t in (b"evt/eos/", b"evt/alert/"):
                events.setsockopt(zmq.SUBSCRIBE, t)
            security.secure(events, self.config.bus.events_address, server=False)
            events.connect(self.config.bus.events_address)
        except Exception as e:
            self._loop_error = e
            self._ready.set()
            security.uninstall(ctx)
            ctx.destroy(linger=0)
            return
        poller = zmq.Poller()
        poller.register(tele, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        for slot in self._slots.values():
            slot.want_running = True
        self._ready.set()
        try:
            while not self._shutdown.is_set():
                self.loop_beat = time.monotonic()  # the systemd watchdog follows this
                self._run_commands()
                ready = dict(poller.poll(LOOP_INTERVAL_MS))
                if tele in ready:
                    self._drain(tele, "telemetry", self._on_heartbeat)
                if events in ready:
                    self._drain(events, "events", self._on_event)
                now = time.monotonic()
                self._advance_stages(now)
                for slot in list(self._slots.values()):
                    self._check(slot, now)
        except Exception as e:
            log.error("supervisor_loop_crashed", error=repr(e), exc_info=True)
            self._loop_error = e
        finally:
            self._stop_all()
            self._run_commands()
            security.uninstall(ctx)
            ctx.destroy(linger=0)

    def _run_commands(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as e:
                fut.set_exception(e)

    def _drain(self, sock: zmq.Socket, name: str, handle: Callable[[codec.Envelope], None]) -> None:
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                env = codec.decode(frames)
            except codec.CodecError as e:
                self.telemetry.inc("bad_frames")
                self.telemetry.inc(f"bad_frames_by_socket:{name}")
                self._bad_frame_log(
                    socket=name, error=str(e), total_bad=self.telemetry.get("bad_frames")
                )
                continue
            handle(env)

    def _on_heartbeat(self, env: codec.Envelope) -> None:
        hb = env.payload
        slot = self._slots.get(env.sender)
        if slot is None and isinstance(hb, Heartbeat):
            with self._lock:
                self.remote.on_heartbeat(env.sender, hb)  # a runner on another host
            return
        if not isinstance(hb, Heartbeat) or slot is None or hb.pid != slot.pid:
            return  # another run's runner, or the last words of a replaced process
        now = time.monotonic()
        with self._lock:
            slot.last_hb = now
            slot.heartbeat = hb
            if slot.prev_counters is not None:
                t0, c0 = slot.prev_counters
                dt = now - t0
                if dt > 0.05:
                    slot.rates = {
                        k: round((v - c0.get(k, 0)) / dt, 1)
                        for k, v in hb.counters.items()
                        if isinstance(v, int | float)
                    }
                    slot.prev_counters = (now, hb.counters)
            else:
                slot.prev_counters = (now, hb.counters)
            if hb.state == "finished":
                slot.finished = True
        doubt = hb.extra.get("orders_in_doubt")
        if doubt and slot.alerted_pid != slot.pid:
            slot.alerted_pid = slot.pid
            self._emit("alert", slot.name, reason="orders_in_doubt", order_ids=doubt)
        eos = hb.extra.get("eos_summary")
        if slot.role == "executor" and eos is not None and not self.eos_reached.is_set():
            self.eos_summary = {**eos, "eos_ns": env.sent_ns}
            self.eos_reached.set()
            self._emit("eos", env.sender, **eos)
        stale = hb.extra.get("feed_stale")  # a live feed silent too long: unhealthy, one alert
        if stale and slot.state in (RunnerState.RUNNING, RunnerState.UNHEALTHY):
            if slot.state is RunnerState.RUNNING:
                age = hb.extra.get("feed_age_s")
                self._emit("alert", slot.name, reason="feed_stale", silent_s=age)
                slot.unhealthy_since = now  # if its heartbeats stop too, it is hung at once
                self._set_state(slot, RunnerState.UNHEALTHY, f"feed silent {age} s")
            return
        if slot.state in (RunnerState.STARTING, RunnerState.UNHEALTHY) and slot.proc is not None:
            if slot.state is RunnerState.STARTING:
                slot.running_since = now
                self._emit(
                    "started", slot.name, pid=slot.pid, seconds=round(now - slot.spawned_at, 3)
                )
            slot.unhealthy_since = None
            self._set_state(slot, RunnerState.RUNNING)

    def _on_event(self, env: codec.Envelope) -> None:
        ev = env.payload
        if not isinstance(ev, Event):
            return
        if ev.name == "eos" and not self.eos_reached.is_set():
            self.eos_summary = {**ev.data, "eos_ns": env.sent_ns}
            self.eos_reached.set()
            self._emit("eos", env.sender, **ev.data)
        elif ev.name == "alert":
            self._emit("alert", env.sender, **ev.data)

    def _advance_stages(self, now: float) -> None:
        # Everything is spawned at once so imports overlap; runners of later
        # stages wait at their gate until every earlier stage is running.
        stages = sorted({s.stage for s in self._slots.values()})
        for slot in self._slots.values():
            if slot.want_running and not slot.launched:
                self._spawn(slot, gated=slot.stage > self._stage)
        current = [s for s in self._slots.values() if s.stage == self._stage]
        remote_ok = self._stage > 0 or self.remote.binders_ready(now)  # binders on other hosts
        if (
            self._stage < max(stages, default=0)
            and remote_ok
            and all(s.state is not RunnerState.STARTING for s in current)
        ):
            self._stage = min(st for st in stages if st > self._stage)
            for slot in self._slots.values():
                if slot.stage == self._stage and slot.proc is not None and slot.proc.gated:
                    slot.proc.release()
                    slot.spawned_at = now
                    self._set_state(slot, RunnerState.STARTING, "released")

    def _spawn(self, slot: _Slot, gated: bool = False) -> None:
        slot.launched = True
        slot.next_start_at = None
        slot.exit_code = None
        slot.finished = False
        slot.heartbeat = None
        slot.prev_counters = None
        slot.rates = {}
        slot.last_hb = 0.0
        slot.stopping_since = None
        slot.restart_after_exit = False
        slot.unhealthy_since = None
        argv = runner_argv(slot.role, self.config_path, slot.strategy_id)
        name = slot.name
        slot.proc = RunnerProcess(
            argv, lambda line: self.logs.add(name, line), env=self._env, gated=gated
        )
        slot.pid = slot.proc.pid
        slot.spawned_at = time.monotonic()
        self._set_state(slot, RunnerState.STARTING, "gated" if gated else "spawned")
        log.info("runner_spawned", runner=name, pid=slot.pid)

    def _terminate(self, slot: _Slot) -> None:
        if slot.proc is None or slot.stopping_since is not None:
            return
        slot.stopping_since = time.monotonic()
        slot.proc.terminate()
        slot.proc.send_signal(signal.SIGCONT)  # a stopped process must wake to see SIGTERM

    def _start_runner(self, slot: _Slot) -> None:
        slot.want_running = True
        slot.restart_times.clear()
        if slot.proc is None:
            self._spawn(slot)

    def _stop_runner(self, slot: _Slot) -> None:
        slot.want_running = False
        slot.immediate_restart = False
        slot.next_start_at = None
        if slot.proc is None:
            self._set_state(slot, RunnerState.STOPPED, "stopped")
        else:
            self._terminate(slot)

    def _check(self, slot: _Slot, now: float) -> None:
        sc = self.config.supervisor
        proc = slot.proc
        if proc is None:
            if slot.next_start_at is not None and now >= slot.next_start_at and slot.want_running:
                self._spawn(slot)
            return
        rc = proc.poll()
        if rc is not None:
            self._on_exit(slot, rc)
            return
        if slot.stopping_since is not None:
            if now - slot.stopping_since > sc.stop_grace_s:
                log.warning(
                    "runner_killed", runner=slot.name, pid=slot.pid, after_s=sc.stop_grace_s
                )
                proc.kill()
            return
        if slot.state is RunnerState.STARTING:
            if not proc.gated and now - slot.spawned_at > sc.start_timeout_s:
                self._hung(slot, f"no heartbeat {sc.start_timeout_s} s after start")
            return
        age = now - slot.last_hb
        if age > sc.heartbeat_timeout_s:
            if slot.state is RunnerState.RUNNING:
                slot.unhealthy_since = now
                self._set_state(slot, RunnerState.UNHEALTHY, f"heartbeat {age:.1f} s old")
                log.warning("runner_unhealthy", runner=slot.name, heartbeat_age_s=round(age, 2))
            elif (
                slot.unhealthy_since is not None
                and now - slot.unhealthy_since >= sc.hung_restart_after_s
            ):
                self._hung(slot, f"hung: heartbeat {age:.1f} s old")

    def _hung(self, slot: _Slot, reason: str) -> None:
        log.warning("runner_hung", runner=slot.name, pid=slot.pid, reason=reason)
        self._emit("hung", slot.name, reason=reason)
        slot.restart_after_exit = True
        self._terminate(slot)

    def _on_exit(self, slot: _Slot, rc: int) -> None:
        assert slot.proc is not None
        slot.proc.join_output(0.5)
        slot.proc = None
        slot.exit_code = rc
        requested = slot.stopping_since is not None and not slot.restart_after_exit
        self._emit("exited", slot.name, exit_code=rc, pid=slot.pid)
        log.info("runner_exited", runner=slot.name, pid=slot.pid, exit_code=rc)
        if slot.removing:
            with self._lock:
                self._slots.pop(slot.name, None)
            return
        if slot.immediate_restart and slot.want_running:
            slot.immediate_restart = False
            slot.restarts += 1
            self._spawn(slot)
        elif requested or not slot.want_running:
            self._set_state(slot, RunnerState.STOPPED, "stopped")
        elif rc == 0 and slot.finished:
            slot.want_running = False
            self._set_state(slot, RunnerState.STOPPED, "finished")
        elif rc == EXIT_CONFIG:
            self._fail(slot, f"configuration error (exit code {rc}); fix the config")
        else:
            self._schedule_restart(
                slot, f"exit code {rc}" if not slot.restart_after_exit else "hung"
            )

    def _schedule_restart(self, slot: _Slot, reason: str) -> None:
        sc = self.config.supervisor
        now = time.monotonic()
        while slot.restart_times and now - slot.restart_times[0] > sc.restart_window_s:
            slot.restart_times.popleft()
        if not sc.unlimited_restarts and len(slot.restart_times) >= sc.max_restarts:
            self._fail(
                slot,
                f"{len(slot.restart_times)} restarts in {sc.restart_window_s:g} s; last: {reason}",
            )
            return
        attempt = len(slot.restart_times)
        delay = min(sc.restart_backoff_max_s, sc.restart_backoff_initial_s * 2**attempt)
        delay *= 1 + self._rng.uniform(-sc.restart_backoff_jitter, sc.restart_backoff_jitter)
        slot.restart_times.append(now)
        slot.restarts += 1
        slot.next_start_at = now + delay
        self._set_state(slot, RunnerState.STARTING, f"restart in {delay:.2f} s ({reason})")
        self._emit(
            "restarting", slot.name, delay_s=round(delay, 4), attempt=attempt + 1, reason=reason
        )
        log.warning("runner_restarting", runner=slot.name, delay_s=round(delay, 3), reason=reason)

    def _fail(self, slot: _Slot, reason: str) -> None:
        slot.want_running = False
        slot.next_start_at = None
        self._set_state(slot, RunnerState.FAILED, reason)
        log.error("runner_failed", runner=slot.name, reason=reason)
        self._emit("alert", slot.name, reason="runner_failed", detail=reason)

    def _stop_all(self) -> None:
        for slot in self._slots.values():
            slot.want_running = False
            slot.next_start_at = None
            self._terminate(slot)
        deadline = time.monotonic() + self.config.supervisor.stop_grace_s
        for slot in self._slots.values():
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(0.05, deadline - time.monotonic()))
            except Exception:
                log.warning("runner_killed", runner=slot.name, pid=slot.pid)
                slot.proc.kill()
                slot.proc.wait(5)
            slot.proc.join_output(0.5)
            slot.exit_code = slot.proc.poll()
            slot.proc = None
            self._set_state(slot, RunnerState.STOPPED, "stopped")

    # -- results ----------------------------------------------------------------------

    def heartbeat(self, name: str) -> Heartbeat | None:
        """The last heartbeat of a runner."""
        with self._lock:
            return self._slot(name).heartbeat

    def run_dir(self) -> Path:
        """This run's folder."""
        return self.run_path
