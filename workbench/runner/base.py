"""The `Runner` base: loop, heartbeats, stop handling and shutdown for every role."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import structlog

from workbench.exceptions import (  # noqa: F401  (re-exported: runners and the supervisor use them)
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_STRATEGY,
    EXIT_TEMPORARY,
)
from workbench.messaging import security
from workbench.messaging.codec import Heartbeat
from workbench.messaging.ports import Sender
from workbench.telemetry import Telemetry

log = structlog.get_logger()


class Runner(ABC):
    """Owns the run loop; each role fills in `step` (and `on_start` / `on_close`).

    The loop calls `step` until `stop` is called (signal handler, test) or the
    role sets ``finished`` (a replay reached end-of-stream), sending a heartbeat
    every ``heartbeat_interval_s`` in between.
    """

    role: ClassVar[str] = "runner"
    counters: ClassVar[tuple[str, ...]] = ()
    """Counters at 0 from the start (`Telemetry.declare`): alerts and panels read them."""

    def __init__(
        self,
        runner_id: str,
        telemetry: Telemetry,
        heartbeats: Sender,
        heartbeat_interval_s: float,
    ) -> None:
        self.runner_id = runner_id
        self.telemetry = telemetry
        telemetry.declare(*self.counters)
        self._heartbeats = heartbeats
        self._hb_interval = heartbeat_interval_s
        self._stop_requested = False
        self._stop_reason = ""
        self.finished = False
        self._next_hb = 0.0
        self.state = "starting"
        self.log = log.bind(runner=runner_id, role=self.role)

    def stop(self, reason: str = "") -> None:
        """Ask the loop to end after the current step (signal-safe: only sets flags)."""
        self._stop_reason = reason
        self._stop_requested = True

    @abstractmethod
    def step(self, timeout_ms: int) -> None:
        """Do one unit of work, waiting at most ``timeout_ms`` for input."""

    def on_start(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Hook run once before the loop."""

    def on_close(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Hook run once after the loop, even after an error."""

    def heartbeat_extra(self) -> dict[str, Any]:
        """Role-specific data for heartbeats (positions, stream state...)."""
        return {}

    def send_heartbeat(self) -> None:
        """Publish liveness and counters now."""
        counters, latencies = self.telemetry.snapshot()
        extra = self.heartbeat_extra()
        extra["latency"] = latencies
        extra["uptime_s"] = (time.time_ns() - self.telemetry.started_ns) / 1e9
        self._heartbeats.send(Heartbeat(self.role, os.getpid(), self.state, counters, extra))

    def beat_if_due(self) -> None:
        """Send a heartbeat if one is due: the loop does, and so may a long wait inside a step."""
        now = time.monotonic()
        if now >= self._next_hb:
            # A binder that refused our key leaves that connection dead for good (libzmq
            # does not retry): fail, and the supervisor's restart connects anew.
            security.check_peers()
            self.send_heartbeat()
            self._next_hb = now + self._hb_interval

    def run(self) -> int:
        """Run until stopped or finished; returns the process exit code."""
        self.on_start()
        self.state = "running"
        self.log.info("runner_started", pid=os.getpid())
        self._next_hb = time.monotonic()
        try:
            while not self._stop_requested and not self.finished:
                self.beat_if_due()
                wait_s = self._next_hb - time.monotonic()
                self.step(max(0, min(100, int(wait_s * 1000))))
            if self._stop_requested:
                self.log.info("stop_requested", signal=self._stop_reason or None)
            self.state = "finished" if self.finished else "stopped"
            self.send_heartbeat()
            self.log.info("runner_stopped", state=self.state, counters=self.telemetry.counters)
        finally:
            self.on_close()
        return EXIT_OK


class StartupBeats:
    """Heartbeats in state ``starting`` while a runner is built (a long replay file loading).

    The supervisor fails a runner that sends no heartbeat ``start_timeout_s``
    after its spawn: an 8-million-row CSV takes longer than that to load and
    check, so the gateway was killed as hung until the run failed. These beats
    say "alive, not running yet"; the supervisor keeps the runner starting.

    The sender is handed over to a thread for the build and back after `stop`
    (a ZeroMQ socket may move between threads across a join): nothing else may
    send on it meanwhile.
    """

    def __init__(self, role: str, heartbeats: Sender, interval_s: float) -> None:
        import threading

        self._role = role
        self._heartbeats = heartbeats
        self._interval_s = interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="startup-beats", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while True:
            self._heartbeats.send(Heartbeat(self._role, os.getpid(), "starting", {}, {}))
            if self._done.wait(self._interval_s):
                return

    def stop(self) -> None:
        """Stop beating; the sender is the caller's again."""
        self._done.set()
        self._thread.join()
