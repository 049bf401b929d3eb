"""Fake processes, a fake clock and a watcher rig for the supervisor's unit tests."""

from __future__ import annotations

import random
import signal
from typing import Any

from workbench.config import SupervisorConfig
from workbench.messaging.codec import Heartbeat
from workbench.supervisor.policy import RestartPolicy
from workbench.supervisor.status import RunnerState
from workbench.supervisor.watcher import RunnerWatcher


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, s: float) -> None:
        self.now += s


class FakeProcess:
    """The parts of `RunnerProcess` the watcher uses; exits when told to."""

    def __init__(self, pid: int, gated: bool) -> None:
        self.pid = pid
        self.gated = gated
        self.rc: int | None = None
        self.signals: list[int] = []
        self.released = False
        self.exits_on_term = True
        self.trouble: tuple[int, str | None] = (0, None)  # what output_trouble tells next

    def poll(self) -> int | None:
        return self.rc

    def terminate(self) -> None:
        self.signals.append(signal.SIGTERM)
        if self.exits_on_term:
            self.rc = 0

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.rc = -9

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def release(self) -> None:
        self.released = True
        self.gated = False

    def join_output(self, timeout: float = 1.0) -> None:
        pass

    def output_trouble(self) -> tuple[int, str | None]:
        told, self.trouble = self.trouble, (0, None)
        return told

    def wait(self, timeout: float | None = None) -> int:
        if self.rc is None:
            raise TimeoutError
        return self.rc


class Rig:
    def __init__(self, name: str = "sr-1", role: str = "strategy", **settings: Any) -> None:
        self.role = role
        self.clock = Clock()
        self.procs: list[FakeProcess] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.spawn_errors: list[OSError] = []  # the next spawns raise these, in turn
        base = {"restart_backoff_jitter": 0.0, "restart_backoff_initial_s": 0.1}
        self.config = SupervisorConfig(**{**base, **settings})
        self.w = RunnerWatcher(
            name, role, 1, start_process=self._start,
            policy=RestartPolicy(self.config, random.Random(1)), emit=self._emit, clock=self.clock,
        )  # fmt: skip

    def _start(self, gated: bool) -> FakeProcess:
        if self.spawn_errors:
            raise self.spawn_errors.pop(0)
        p = FakeProcess(100 + len(self.procs), gated)
        self.procs.append(p)
        return p

    def _emit(self, kind: str, runner: str, /, **data: Any) -> None:
        self.events.append((kind, data))

    @property
    def proc(self) -> FakeProcess:
        return self.procs[-1]

    def beat(
        self, state: str = "running", extra: dict | None = None, counters: dict | None = None
    ) -> bool:
        hb = Heartbeat(self.role, self.proc.pid, state, counters or {}, extra or {})
        return self.w.on_heartbeat(hb)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def running(self) -> None:
        self.w.request_start()
        self.beat()
        assert self.w.state is RunnerState.RUNNING
