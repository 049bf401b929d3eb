"""A runner whose supervisor dies, however it dies, goes too: even hung, even on a log pipe.

Real processes: a stand-in supervisor starts a child that does what a runner
does (stop handlers, `die_with_parent`, JSON logs on stdout, a pipe the parent
never reads), then is SIGKILLed. The child's writes to that pipe fail from
then on; its parent-watch thread must still end it, and a child whose loop
still runs must stop cleanly (its last save made), not be cut short by the
parent-death signal repeated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHILD = """
import os, sys, time
from workbench.runner.logs import configure_logging
from workbench.runner.parent_link import die_with_parent, install_stop_handlers
import structlog
configure_logging(json=True)
log = structlog.get_logger()
stop = []
install_stop_handlers(stop.append)
die_with_parent()
saved = sys.argv[2]
while True:
    log.info("working", pad="x" * 200)  # fills the unread pipe, then fails on it
    time.sleep(0.01)
    if stop and sys.argv[1] == "healthy":
        log.info("stop_requested", signal=stop[0])
        open(saved, "w").write("saved")  # the runner's on_close: its last save
        raise SystemExit(0)
"""

PARENT = """
import os, subprocess, sys
env = dict(os.environ, WORKBENCH_PARENT_PID=str(os.getpid()))
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
print(child.pid, flush=True)
child.wait()
"""


def _start(kind: str, saved: Path) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, kind, str(saved)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(1.5)  # the child is up, its pipe full
    return parent, child


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["hung", "healthy"])
def test_a_runner_goes_with_its_dead_supervisor_and_a_healthy_one_saves_first(tmp_path, kind):
    saved = tmp_path / "saved"
    parent, child = _start("hung" if kind == "hung" else "healthy", saved)
    try:
        parent.kill()  # the supervisor dies, however it dies
        parent.wait(10)
        gone_by = time.monotonic() + 5
        while _alive(child) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not _alive(child), f"the {kind} child outlived its supervisor"
        if kind == "healthy":
            assert saved.read_text() == "saved"  # stopped cleanly, not cut short
    finally:
        for pid in (child, parent.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


FORKING = """
import os, time
from workbench.runner.parent_link import die_with_parent, install_stop_handlers
stop = []
install_stop_handlers(stop.append)
die_with_parent()
child = os.fork()  # a process of the runner's own (a worker), its supervisor alive
if child == 0:
    while True:
        time.sleep(0.05)
print(child, flush=True)
while True:
    time.sleep(0.05)
"""


def test_a_process_a_runner_forked_still_dies_of_a_second_sigterm():
    """Its parent is the runner, not the supervisor: it is not orphaned, and has no watch
    thread to end it, so a repeated SIGTERM must end it at once."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, FORKING, "-", "-"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        runner = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        child = 0
        while not child and time.monotonic() < deadline:
            time.sleep(0.05)
            found = subprocess.run(["pgrep", "-P", str(runner)], capture_output=True, text=True)
            child = int(found.stdout.split()[0]) if found.stdout.split() else 0
        assert child, "the runner forked nothing"
        for _ in range(2):
            os.kill(child, signal.SIGTERM)
            time.sleep(0.2)
        gone_by = time.monotonic() + 3
        while _alive(child) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not _alive(child), "a second SIGTERM did not end the runner's own child"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(10)
