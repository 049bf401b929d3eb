"""Each notebook runs top to bottom under nbval and leaves no process behind.

nbval runs in a child pytest so the notebook's kernel inherits the sandbox's
environment (its own ipc bus and run folder): the notebooks themselves load
``../configs/paper.toml`` unchanged. ``--nbval-lax`` checks that every cell
runs without error and compares only the cells marked ``# NBVAL_CHECK_OUTPUT``,
through the sanitizers in ``sanitize.cfg``.

To run one notebook by hand (on the paper config's tcp ports)::

    .venv/bin/python -m pytest --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg \\
        -p no:cacheprovider notebooks/01_quickstart.ipynb
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nb_sandbox import ROOT, Sandbox, make_sandbox

SANITIZE = ROOT / "tests" / "notebooks" / "sanitize.cfg"
# The notebooks this suite runs with nbval; add one here when it runs on the
# embedded defaults in well under a minute.
NOTEBOOKS = ("01_quickstart.ipynb", "02_live_dashboard.ipynb")
RUN_TIMEOUT_S = 100  # below pytest-timeout's 120 s, so this kill comes first


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Own bus and run folder; whatever the notebook leaves running is killed after."""
    with make_sandbox() as box:
        yield box


def run_nbval(notebook: Path, sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    """``pytest --nbval-lax`` on one notebook in a child process; killed on timeout."""
    argv = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-sanitize-with", str(SANITIZE),
        "-p", "no:cacheprovider", "-q", "--nbval-cell-timeout", "60",
        str(notebook),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\n(killed after {RUN_TIMEOUT_S} s)"
    return subprocess.CompletedProcess(argv, proc.returncode, out)


@pytest.mark.integration
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_and_matches_its_checked_outputs(notebook: str, sandbox: Sandbox) -> None:
    result = run_nbval(ROOT / "notebooks" / notebook, sandbox)
    leftovers = sandbox.reap(grace_s=5.0)
    assert result.returncode == 0, f"nbval failed on {notebook}:\n{result.stdout[-6000:]}"
    assert "passed" in result.stdout
    assert not leftovers, f"processes still running after {notebook}: {leftovers}"


@pytest.mark.integration
def test_a_failing_cell_without_a_stop_cell_leaves_no_runner_behind(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The runners die with the kernel even when ``wb.stop()`` never runs."""
    nb = nbformat.read(ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if "wb.start(" in c.source)
    nb.cells.insert(start + 1, nbformat.v4.new_code_cell('raise RuntimeError("boom")'))
    nb.cells = [c for c in nb.cells if "wb.stop()" not in c.source]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "paper.toml", tmp_path / "configs")
    broken = tmp_path / "notebooks" / "broken.ipynb"
    nbformat.write(nb, broken)
    result = run_nbval(broken, sandbox)
    leftovers = sandbox.reap(grace_s=5.0)
    assert result.returncode != 0 and "boom" in result.stdout
    assert not leftovers, f"processes still running after a failed cell: {leftovers}"
