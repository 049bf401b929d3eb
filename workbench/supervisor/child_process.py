"""A runner process handle shaped like `subprocess.Popen`, with its output captured."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from workbench.exchanges.config import SECRET_ENV
from workbench.runner.parent_link import GATE_ENV, PARENT_PID_ENV

log = structlog.get_logger()


def runner_argv(role: str, config_path: Path, strategy_id: str | None = None) -> list[str]:
    """The command line that starts a runner: ``python -m runners.<role> --config FILE``."""
    argv = [sys.executable, "-m", f"runners.{role}", "--config", str(config_path)]
    if strategy_id is not None:
        argv += ["--id", strategy_id]
    return argv


class RunnerProcess:
    """One spawned runner.

    The child gets ``WORKBENCH_PARENT_PID`` so it exits by itself if this
    process dies (see `workbench.runner.parent_link.die_with_parent`). Each output
    line is handed to ``on_line`` from a reader thread, which keeps reading
    whatever ``on_line`` raises (a full disk): a pipe nobody reads would block
    the runner at its next log line. `output_trouble` tells of such failures.
    """

    def __init__(
        self,
        argv: list[str],
        on_line: Callable[[str], object],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        gated: bool = False,
    ) -> None:
        # The config file is fully resolved already: environment overrides that
        # reached it must not be applied a second time, differently, by a child.
        # Secrets are the exception: never in the file, they reach children only so.
        # In any case, as pydantic-settings reads them (workbench__run_id too).
        child_env = {
            k: v
            for k, v in {**os.environ, **(env or {})}.items()
            if not k.upper().startswith("WORKBENCH__") or k.upper() in SECRET_ENV
        }
        child_env[PARENT_PID_ENV] = str(os.getpid())
        child_env.pop(GATE_ENV, None)
        if gated:
            child_env[GATE_ENV] = "stdin"
        self.gated = gated
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        self._popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if gated else subprocess.DEVNULL,
            cwd=cwd,
            env=child_env,
            text=True,
            errors="replace",  # odd bytes must not end the reading either
            bufsize=1,
            start_new_session=True,  # a Ctrl-C in the terminal goes to us, not straight to runners
        )
        self.pid = self._popen.pid
        self._trouble_lock = threading.Lock()
        self._failing = False  # the last line handed on failed
        self._lost = 0  # lines whose on_line failed, not yet told by output_trouble
        self._news: str | None = None  # the error that began a run of failures, untold
        self._reader = threading.Thread(
            target=self._pump, args=(on_line,), name=f"log-{self.pid}", daemon=True
        )
        self._reader.start()

    def _pump(self, on_line: Callable[[str], object]) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            try:
                on_line(line)
            except Exception as e:
                self._on_line_failed(e)
            else:
                if self._failing:
                    with self._trouble_lock:
                        self._failing = False
        self._popen.stdout.close()

    def _on_line_failed(self, e: Exception) -> None:
        with self._trouble_lock:
            self._lost += 1
            first, self._failing = not self._failing, True
            if first:
                self._news = str(e) or repr(e)
        if first and not isinstance(e, OSError):  # a LogBook logs its own disk's failures
            log.error("runner_output_not_stored", pid=self.pid, error=repr(e), exc_info=e)

    def output_trouble(self) -> tuple[int, str | None]:
        """What went wrong handing output on since the last call.

        Returns:
            The lines ``on_line`` raised on, and the error that began a new
            run of such failures (None if none began).
        """
        with self._trouble_lock:
            lost, self._lost = self._lost, 0
            news, self._news = self._news, None
        return lost, news

    def release(self) -> None:
        """Open the gate of a gated runner: it may connect and start now."""
        if not self.gated or self._popen.stdin is None:
            return
        try:
            self._popen.stdin.write("go\n")
            self._popen.stdin.close()
        except (BrokenPipeError, ValueError):
            pass  # it already exited; the supervisor sees that on its next poll
        self.gated = False

    def poll(self) -> int | None:
        """Exit code, or None while running (reaps the child: no zombies)."""
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; raises `subprocess.TimeoutExpired` after ``timeout``."""
        return self._popen.wait(timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the child if it still runs."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM: the runner finishes its step and shuts down cleanly."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def join_output(self, timeout: float = 1.0) -> None:
        """Wait for the reader thread to pass on the last lines."""
        self._reader.join(timeout)
