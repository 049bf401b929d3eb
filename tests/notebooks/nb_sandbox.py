"""A sandbox per notebook test: its own bus, run folder, and no process left behind.

(A plain module, not a ``conftest.py``: several conftest modules without
``__init__.py`` shadow each other for ``from conftest import ...``.)

The notebooks load ``../configs/paper.toml``, whose bus sits on fixed tcp ports.
Rather than editing the notebooks, the sandbox overrides the bus and the run
folder with ``WORKBENCH__...`` environment variables (the config's documented
override), so notebook tests run beside any other test. Every process started
under the sandbox (pytest, JupyterLab, the kernel, the runners) inherits a
marker variable; at teardown whatever still carries it is killed by pid, and
the test can assert that nothing had to be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.config import BUS_STREAMS

ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "WORKBENCH_NOTEBOOK_TEST"
BUS_NAMES = BUS_STREAMS


@dataclass
class Sandbox:
    """Environment for notebook processes, and their reaper."""

    folder: Path
    env: dict[str, str]
    marker: str

    def pids(self) -> list[int]:
        """Live processes that carry this sandbox's marker in their environment."""
        needle = f"{MARKER_ENV}={self.marker}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if needle in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
        return found

    def reap(self, grace_s: float = 5.0) -> list[int]:
        """Wait up to ``grace_s`` for the marked processes to exit, then SIGKILL the rest.

        Returns:
            The pids that had to be killed.
        """
        deadline = time.monotonic() + grace_s
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        stubborn = self.pids()
        for pid in stubborn:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return stubborn


@contextlib.contextmanager
def make_sandbox() -> Iterator[Sandbox]:
    """An ipc bus and run folder under a short temp folder; leftovers killed on exit."""
    # ipc paths must stay under ~100 characters, so not under pytest's tmp_path.
    folder = Path(tempfile.mkdtemp(prefix="wbnb-", dir="/tmp"))
    (folder / "ipc").mkdir()
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        MARKER_ENV: marker,
        "WORKBENCH__RUNTIME__RUN_DIR": str(folder / "runs"),
        "WORKBENCH__BUS__LINGER_MS": "50",  # stopping runners wait less for peers going too
        **{
            f"WORKBENCH__BUS__{n.upper()}_ADDRESS": f"ipc://{folder / 'ipc' / n}" for n in BUS_NAMES
        },
    }
    box = Sandbox(folder, env, marker)
    try:
        yield box
    finally:
        box.reap(grace_s=3.0)
        shutil.rmtree(folder, ignore_errors=True)
