"""A runner's output when its log cannot take it: the pipe is still read, the trouble told."""

from __future__ import annotations

import sys
import time

from supervisor_fakes import Rig

from workbench.supervisor.child_process import RunnerProcess
from workbench.supervisor.status import RunnerState

LINES = 20_000  # 2 MB of output: a pipe holds 64 KB


def test_the_pipe_is_still_read_when_every_line_fails_to_be_stored():
    def full_disk(line: str) -> None:
        raise OSError(28, "No space left on device")

    argv = [sys.executable, "-c", f"for i in range({LINES}): print('x' * 99)"]
    proc = RunnerProcess(argv, full_disk)
    try:
        assert proc.wait(timeout=20) == 0  # not blocked on a full pipe
        proc.join_output(5)
        lost, error = proc.output_trouble()
        assert lost == LINES and "No space left on device" in str(error)
        assert proc.output_trouble() == (0, None)  # told once
    finally:
        proc.kill()
        proc.wait(5)


def test_each_run_of_failures_is_told_once_and_lines_stored_end_it():
    seen: list[str] = []

    def flaky(line: str) -> None:
        if line.startswith("bad"):
            raise OSError(28, "No space left on device")
        seen.append(line)

    script = "print('bad'); print('bad'); print('good'); print('bad'); print('good')"
    proc = RunnerProcess([sys.executable, "-c", script], flaky)
    try:
        proc.wait(timeout=20)
        proc.join_output(5)
        assert proc.output_trouble() == (3, "[Errno 28] No space left on device")
        assert seen == ["good\n", "good\n"]
    finally:
        proc.kill()
        proc.wait(5)


def test_a_bug_in_the_line_handler_does_not_stop_the_reading_either():
    def broken(line: str) -> None:
        raise KeyError("oops")

    proc = RunnerProcess([sys.executable, "-c", "print('a'); print('b')"], broken)
    try:
        proc.wait(timeout=20)
        deadline = time.monotonic() + 5
        lost = 0
        while lost < 2 and time.monotonic() < deadline:
            lost += proc.output_trouble()[0]
            time.sleep(0.01)
        assert lost == 2
    finally:
        proc.kill()
        proc.wait(5)


def test_the_watcher_counts_lost_lines_and_alerts_once_per_run_of_failures():
    r = Rig()
    r.running()
    r.proc.trouble = (5, "[Errno 28] No space left on device")
    r.w.tick()
    r.proc.trouble = (7, None)  # the same run of failures goes on
    r.w.tick()
    alerts = [d for k, d in r.events if k == "alert"]
    assert alerts == [{"reason": "log_write_failed", "error": "[Errno 28] No space left on device"}]
    assert r.w.status().log_write_errors == 12
    assert r.w.state is RunnerState.RUNNING  # a full disk is no reason to restart it
    r.proc.trouble = (1, "[Errno 28] No space left on device")  # a new run, after a recovery
    r.proc.rc = 1
    r.w.tick()  # its last trouble is counted as it exits
    assert [d["reason"] for k, d in r.events if k == "alert"] == ["log_write_failed"] * 2
    assert r.w.status().log_write_errors == 13
