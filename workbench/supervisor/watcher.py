"""One runner's lifecycle: `RunnerWatcher`, a small state machine the supervisor drives.

The supervisor's thread calls it with what happened (a heartbeat arrived, a
command came in, time passed: `tick`) and it decides: spawn, release the
start gate, mark unhealthy, terminate a hung process, kill after the grace,
restart after a backoff (`RestartPolicy`), give up. It starts processes through
the function it is given and reads time from its clock, so tests drive it with
fake processes and a fake clock.

Public states are `RunnerState`; what happens when the process exits is the
watcher's `Intent`::

    RUN      keep it running: a crash restarts it after a backoff, a hang too
    STOP     stopped on purpose (or finished, or failed): it stays stopped
    RESTART  being stopped to start again at once (restart_runner, apply)
    REMOVE   being stopped to be forgotten (a strategy apply removed)
"""

from __future__ import annotations

import collections
import contextlib
import enum
import signal
import threading
import time
from collections.abc import Callable

import structlog

from workbench.messaging.codec import Heartbeat
from workbench.messaging.heartbeat_extras import ExecutorExtra, GatewayExtra
from workbench.runner.base import EXIT_CONFIG
from workbench.supervisor.child_process import RunnerProcess
from workbench.supervisor.events import Emit
from workbench.supervisor.feed_watch import StaleFeed
from workbench.supervisor.heartbeat_track import HeartbeatTrack
from workbench.supervisor.policy import RestartPolicy
from workbench.supervisor.status import RunnerState, RunnerStatus

log = structlog.get_logger()

# Wait this long for the output reader to pass on a dead runner's last lines.
OUTPUT_JOIN_S = 0.5


class Intent(enum.Enum):
    """What the watcher does when the runner's process exits."""

    RUN = "run"
    STOP = "stop"
    RESTART = "restart"
    REMOVE = "remove"


class RunnerWatcher:
    """Starts, watches and restarts one runner.

    Args:
        name: Runner name.
        role: ``gateway``, ``strategy`` or ``executor``.
        stage: Start stage (0 binds, 1 connects); later stages start gated.
        start_process: Spawns the runner's process, gated (held at its start gate) or not.
        policy: Restart policy; its ``config`` also gives the timeouts.
        emit: Where events go.
        clock: Monotonic seconds.
        lock: Held while the fields `status` reads change.
    """

    def __init__(
        self,
        name: str,
        role: str,
        stage: int,
        *,
        start_process: Callable[[bool], RunnerProcess],
        policy: RestartPolicy,
        emit: Emit,
        clock: Callable[[], float] = time.monotonic,
        lock: threading.RLock | None = None,
    ) -> None:
        self.name, self.role, self.stage = name, role, stage
        self._start_process = start_process
        self.policy = policy
        self._emit = emit
        self._clock = clock
        self._lock = lock or threading.RLock()
        self.state = RunnerState.STOPPED
        self.detail = ""
        self.intent = Intent.STOP
        self.launched = False  # spawned at least once
        self.held = False  # its stage has not started: every spawn waits at the gate
        self.removed = False  # exited after `request_remove`: forget it
        self.proc: RunnerProcess | None = None
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.restarts = self.log_write_errors = 0  # and output lines its log did not take
        self.restart_times: collections.deque[float] = collections.deque()
        self.restart_streak = 0  # restarts since a process last stayed up restart_window_s
        self.hb = HeartbeatTrack()
        self.spawned_at = self.running_since = 0.0
        self.next_start_at: float | None = None
        self.stopping_since: float | None = None
        self._hung = False  # being terminated because it hung: restart after exit
        self.unhealthy_since: float | None = None
        self._alerted_pid: int | None = None

    # -- commands ---------------------------------------------------------------------

    def request_start(self) -> None:
        """Run it now with a fresh restart budget (a stopping one starts again once gone)."""
        self.restart_times.clear()
        self.restart_streak = 0
        if self.proc is None:
            self.intent = Intent.RUN
            self.spawn()
        elif self.intent is not Intent.RUN:
            self.intent = Intent.RESTART

    def request_stop(self) -> None:
        """Stop it on purpose; it stays stopped."""
        self.intent = Intent.STOP
        self.next_start_at = None
        if self.proc is None:
            self._set_state(RunnerState.STOPPED, "stopped")
        else:
            self.terminate()

    def request_restart(self) -> None:
        """Stop it cleanly and start it again at once (not counted against the budget)."""
        if self.proc is None:
            self.request_start()
            return
        self.intent = Intent.RESTART
        self.terminate()

    def request_remove(self) -> bool:
        """Stop it to forget it; True when it has no process and can go at once."""
        if self.proc is None:
            self.removed = True
            return True
        self.intent = Intent.REMOVE
        self.next_start_at = None
        self.terminate()
        return False

    # -- transitions ------------------------------------------------------------------

    def spawn(self, gated: bool = False) -> None:
        """Start a new process, held at its start gate when ``gated`` or while `held`.

        ``gated`` on a first spawn marks the runner `held` until `release`: a
        respawn before then (its first spawn failed) waits at the gate too.
        """
        if not self.launched:
            self.held = gated
        gated = gated or self.held
        self.launched = True
        self.next_start_at = None
        self.running_since = 0.0  # the new process is up once it beats, not the old one's time
        self.exit_code = None
        self.stopping_since = None
        self._hung = False
        self.unhealthy_since = None
        self._stale = StaleFeed()
        with self._lock:
            self.hb.reset()
        try:
            self.proc = self._start_process(gated)
        except OSError as e:  # too many open files, no memory, ...: a failed start
            log.error("runner_spawn_failed", runner=self.name, error=str(e))
            self._schedule_restart(f"spawn failed: {e}")
            return
        self.pid = self.proc.pid
        self.spawned_at = self._clock()
        self._set_state(RunnerState.STARTING, "gated" if gated else "spawned")
        log.info("runner_spawned", runner=self.name, pid=self.pid)

    def release(self) -> None:
        """Its stage starts: open the gate of a gated process; later spawns are not held."""
        self.held = False
        if self.proc is None or not self.proc.gated:
            return
        self.proc.release()
        self.spawned_at = self._clock()
        self._set_state(RunnerState.STARTING, "released")

    def terminate(self) -> None:
        """SIGTERM (and SIGCONT: a stopped process must wake to see it), once."""
        if self.proc is None or self.stopping_since is not None:
            return
        self.stopping_since = self._clock()
        self.proc.terminate()
        self.proc.send_signal(signal.SIGCONT)

    def on_heartbeat(self, hb: Heartbeat) -> bool:
        """Take a heartbeat; False (ignored) when it is not from the current process."""
        if hb.pid != self.pid:
            return False  # the last words of a replaced process
        now = self._clock()
        with self._lock:
            self.hb.observe(hb, now)
        if hb.state == "starting":  # alive, still being built (a big replay file loading)
            return True
        if self.role == "executor":
            doubt = ExecutorExtra.from_wire(hb.extra).orders_in_doubt
            if doubt and self._alerted_pid != self.pid:
                self._alerted_pid = self.pid
                self._emit("alert", self.name, reason="orders_in_doubt", order_ids=list(doubt))
        live = self.proc is not None and self.stopping_since is None  # not a hung one dying
        if live:
            self.unhealthy_since = None  # it beats: not hung (a stale feed's late beat was)
        if self.role == "gateway" and self._feed_stale(hb):
            return True
        if live and self.state in (RunnerState.STARTING, RunnerState.UNHEALTHY):
            if self.state is RunnerState.STARTING:
                self.running_since = now
                seconds = round(now - self.spawned_at, 3)
                self._emit("started", self.name, pid=self.pid, seconds=seconds)
            self._set_state(RunnerState.RUNNING)
        return True

    def _feed_stale(self, hb: Heartbeat) -> bool:
        """A live feed silent too long: unhealthy; an alert per symbol newly silent."""
        feed = GatewayExtra.from_wire(hb.extra).feed
        if (report := self._stale.on_beat(feed, self.state, self.detail)) is None:
            return False
        if report.alert:
            self._emit("alert", self.name, reason="feed_stale", silent_s=report.age_s,
                       symbols=list(report.new_symbols))  # fmt: skip
        if report.action == "set":
            self._set_state(RunnerState.UNHEALTHY, report.detail)
        elif report.action == "age":
            with self._lock:  # only the age moved: no state event each heartbeat
                self.detail = report.detail
        return True

    def tick(self) -> None:
        """Look at the process and the clock: respawn, notice an exit, a hang, a late stop."""
        sc = self.policy.config
        now = self._clock()
        proc = self.proc
        if proc is None:
            due = self.next_start_at is not None and now >= self.next_start_at
            if due and self.intent is Intent.RUN:
                self.spawn()
            return
        self._check_output(proc)
        rc = proc.poll()
        if rc is not None:
            self._on_exit(rc)
            return
        if self.stopping_since is not None:
            if now - self.stopping_since > sc.stop_grace_s:
                log.warning(
                    "runner_killed", runner=self.name, pid=self.pid, after_s=sc.stop_grace_s
                )
                proc.kill()
            return
        if self.state is RunnerState.STARTING:
            if not proc.gated and now - max(self.spawned_at, self.hb.at) > sc.start_timeout_s:
                self._on_hung(f"no heartbeat {sc.start_timeout_s} s after start")
            elif not proc.gated and now - self.spawned_at > sc.build_timeout_s:  # beats, stuck
                self._on_hung(f"still being built {sc.build_timeout_s} s after start")
            return
        age = now - self.hb.at
        if age <= sc.heartbeat_timeout_s:
            return
        # (unhealthy_since is None when only its feed was stale: now it is hung too)
        feed_only = self.state is RunnerState.UNHEALTHY and self.unhealthy_since is None
        if self.state is RunnerState.RUNNING or feed_only:
            self.unhealthy_since = now
            self._set_state(RunnerState.UNHEALTHY, f"heartbeat {age:.1f} s old")
            log.warning("runner_unhealthy", runner=self.name, heartbeat_age_s=round(age, 2))
        elif (since := self.unhealthy_since) is not None and now - since >= sc.hung_restart_after_s:
            self._on_hung(f"hung: heartbeat {age:.1f} s old")

    def _check_output(self, proc: RunnerProcess) -> None:
        """Count the output lines its log did not take; one alert per run of failures."""
        lost, error = proc.output_trouble()
        if lost:
            with self._lock:
                self.log_write_errors += lost
        if error is not None:
            self._emit("alert", self.name, reason="log_write_failed", error=error)

    def _on_hung(self, reason: str) -> None:
        log.warning("runner_hung", runner=self.name, pid=self.pid, reason=reason)
        self._emit("hung", self.name, reason=reason)
        self._hung = True
        self.terminate()

    def _on_exit(self, rc: int) -> None:
        assert self.proc is not None
        self.proc.join_output(OUTPUT_JOIN_S)
        self._check_output(self.proc)
        self.proc = None
        self.exit_code = rc
        self.stopping_since = None
        hung, self._hung = self._hung, False
        if self.running_since and self._clock() - self.running_since >= self._window_s():
            self.restart_streak = 0  # it ran a while (crashed or restarted on purpose): forgiven
        self._emit("exited", self.name, exit_code=rc, pid=self.pid)
        log.info("runner_exited", runner=self.name, pid=self.pid, exit_code=rc)
        if self.intent is Intent.REMOVE:
            self.removed = True
        elif self.intent is Intent.RESTART:
            self.intent = Intent.RUN
            self.restarts += 1
            self.spawn()
        elif self.intent is Intent.STOP:
            self._set_state(RunnerState.STOPPED, "stopped")
        elif rc == 0 and self.hb.finished:
            self.intent = Intent.STOP
            self._set_state(RunnerState.STOPPED, "finished")
        elif rc == EXIT_CONFIG:
            self._fail(f"configuration error (exit code {rc}); fix the config")
        else:
            self._schedule_restart("hung" if hung else f"exit code {rc}")

    def _schedule_restart(self, reason: str) -> None:
        sc = self.policy.config
        decision = self.policy.decide(self.restart_times, self._clock(), self.restart_streak)
        if decision.delay_s is None:
            self._fail(f"{decision.spent(sc.restart_window_s)}; last: {reason}")
            return
        delay = decision.delay_s
        self.restart_streak += 1
        self.restarts += 1
        self.next_start_at = self._clock() + delay
        self._set_state(RunnerState.STARTING, f"restart in {delay:.2f} s ({reason})")
        self._emit("restarting", self.name, delay_s=round(delay, 4), attempt=decision.attempt,
                   reason=reason)  # fmt: skip
        log.warning("runner_restart_scheduled", runner=self.name, delay_s=round(delay, 3),
                    reason=reason)  # fmt: skip

    def _window_s(self) -> float:
        return self.policy.config.restart_window_s

    def _fail(self, reason: str) -> None:
        self.intent = Intent.STOP
        self.next_start_at = None
        self._set_state(RunnerState.FAILED, reason)
        log.error("runner_failed", runner=self.name, reason=reason)
        self._emit("alert", self.name, reason="runner_failed", detail=reason)

    def _set_state(self, state: RunnerState, detail: str = "") -> None:
        with self._lock:
            changed = self.state is not state or self.detail != detail
            self.state = state
            self.detail = detail
        if changed:
            self._emit("state", self.name, state=state.value, detail=detail)

    # -- shutdown ---------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Stop for good (the supervisor stops): SIGTERM now, `finish_shutdown` waits."""
        self.intent = Intent.STOP
        self.next_start_at = None
        self.terminate()

    def finish_shutdown(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for the exit, then SIGKILL."""
        proc = self.proc
        if proc is None:  # a restart that was due, or a loop that crashed mid-exit
            if self.state not in (RunnerState.STOPPED, RunnerState.FAILED):
                self._set_state(RunnerState.STOPPED, "stopped")
            return
        try:
            proc.wait(max(0.05, deadline - self._clock()))
        except Exception:
            log.warning("runner_killed", runner=self.name, pid=self.pid)
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(5)
        proc.join_output(OUTPUT_JOIN_S)
        self.exit_code = proc.poll()
        self.proc = None
        self._set_state(RunnerState.STOPPED, "stopped")

    # -- reading ----------------------------------------------------------------------

    def status(self) -> RunnerStatus:
        """Its status now (call with the lock held for a consistent view)."""
        now = self._clock()
        alive = self.proc is not None
        return RunnerStatus(
            runner=self.name,
            role=self.role,
            state=self.state,
            pid=self.pid if alive else None,
            uptime_s=round(now - self.running_since, 3) if alive and self.running_since else 0.0,
            restarts=self.restarts,
            log_write_errors=self.log_write_errors,
            exit_code=self.exit_code,
            detail=self.detail,
            **self.hb.status_parts(now, alive),
        )
