"""The live dashboard in a real browser: JupyterLab in headless Chromium.

Starts JupyterLab on a free loopback port (its own config, runtime and
workspace folders, the sandbox's bus), opens ``notebooks/02_live_dashboard.ipynb``,
runs every cell above the final ``wb.stop()`` cell from the Run menu, and
checks that the runner table shows every runner running, that the price chart
gains points, and that a row's stop and start buttons work. Then it runs the
stop cell and checks the runners are gone and the notebook file unchanged.
A screenshot of the dashboard lands in the test's ``tmp_path``.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``) and the Python
``playwright`` package; it never downloads a browser and skips without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port
from nb_sandbox import ROOT, Sandbox, make_sandbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
NOTEBOOK = "notebooks/02_live_dashboard.ipynb"
RUNNERS = ("executor", "gateway", "sr-1")
LAB_START_TIMEOUT_S = 60
RUNNING_TIMEOUT_S = 90

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _require_browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing: pip install playwright")
    return sync_playwright


LAB_SETTINGS = {
    # Every cell in the DOM (no virtual scrolling), so the last one is the last one.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No news or update pop-ups over the page, and no network look-ups for them.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Never write the executed notebook back into the repository.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def _write_lab_settings(folder: Path) -> None:
    for name, values in LAB_SETTINGS.items():
        path = folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


class Lab:
    """A JupyterLab server in its own session, with private Jupyter folders."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        home = sandbox.folder / "jupyter"
        env = {
            **sandbox.env,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        }
        argv = [
            str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
            f"--port={self.port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={ROOT}",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no PyPI look-ups
            f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",  # not in notebooks/
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ]  # fmt: skip
        _write_lab_settings(home / "settings")
        self.log_path = sandbox.folder / "jupyterlab.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API; returns the decoded JSON (or None)."""
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def wait_ready(self) -> None:
        """Wait until the server answers.

        Raises:
            RuntimeError: it exited or did not answer in time (with its log).
        """
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                self.api("/api/status")
                return
            time.sleep(0.25)
        raise RuntimeError(f"JupyterLab did not come up:\n{self.log()}")

    def log(self) -> str:
        """The server's output so far (the end of it)."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        """Shut the kernels down politely (their atexit stops the runners), then the server."""
        with contextlib.suppress(OSError, ValueError):
            for k in self.api("/api/kernels") or []:
                self.api(f"/api/kernels/{k['id']}", method="DELETE")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """JupyterLab on a sandboxed bus; the server, kernel and runners die at teardown."""
    _require_browser()
    with make_sandbox() as box:
        server = Lab(box)
        try:
            server.wait_ready()
            yield server
        finally:
            server.close()


@pytest.fixture
def page(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium page (the system Chromium, never a downloaded one).

    Whatever happens, the page's last state is saved as ``tmp_path/last.png``.
    """
    sync_playwright = _require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": 1800})
            yield pg
            with contextlib.suppress(Exception):
                pg.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        finally:
            browser.close()


def _menu(page: Any, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _wait_idle(page: Any, timeout_s: float) -> None:
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_s * 1000
    )


def _chart_state(page: Any) -> dict[str, Any]:
    """Points in the price trace, its newest time (ISO text), and the summary line."""
    return page.evaluate(
        """() => {
            // The chart widget's element is plotly's graph div itself.
            const gd = document.querySelector('.wb-price-chart.js-plotly-plot');
            const x = gd && gd.data && gd.data[0] ? gd.data[0].x : null;
            const summary = document.querySelector('.wb-summary');
            return {
                points: x ? x.length : 0,
                last: x && x.length ? String(x[x.length - 1]) : '',
                axis: gd && gd._fullLayout ? gd._fullLayout.xaxis.type : '',
                summary: summary ? summary.innerText : '',
            };
        }"""
    )


CODE_CELLS = "Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'))"
CLEARED = """() => {
    const cells = CELLS;
    return cells.length > 0 && cells.every((c) => {
        const p = c.querySelector('.jp-InputPrompt');
        return !/[0-9*]/.test(p ? p.innerText : '') && !c.querySelector('.jp-OutputArea-output');
    });
}""".replace("CELLS", CODE_CELLS)
RUN_STATE = """() => {
    const prompts = CELLS.map((c) => (c.querySelector('.jp-InputPrompt') || {}).innerText || '');
    if (/[0-9]/.test(prompts[0])) return 'executed';
    return prompts.some((p) => p.includes('*')) ? 'queued' : 'idle';
}""".replace("CELLS", CODE_CELLS)
"""The first code cell ran (its prompt has a number), some cell waits or runs (``[*]``), or
neither: nothing was queued, or what was queued was dropped (prompts back to ``[ ]``)."""


def _clear_all_outputs(page: Any, timeout_s: float = 30) -> None:
    """Clear every cell's outputs and prompts, and wait until the page shows it.

    The notebook is committed with its outputs. On a loaded machine a menu
    click can land before the notebook takes commands, or take effect late:
    asked again until every prompt is empty and no output is left.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _menu(page, "Edit", "Clear Outputs of All Cells")
        with contextlib.suppress(PlaywrightTimeout):  # the UI clears asynchronously
            page.wait_for_function(CLEARED, timeout=5_000)
            return
    raise AssertionError(f"outputs not cleared in {timeout_s:.0f} s:\n{_notebook_state(page)}")


def _run_all_above_the_last_cell(page: Any, attempts: int = 3) -> None:
    """Select the final ``wb.stop()`` cell and run every cell above it from the Run menu.

    Returns once the first cell has run. On a loaded machine a click can land
    before the notebook takes it, and cells queued while the kernel connection
    is still settling can be dropped (their prompts go back to ``[ ]``, nothing
    ran): the menu is used again then. Outputs must be cleared first
    (`_clear_all_outputs`), so a prompt with a number is one of this run's.
    """
    last_active = """() => {
        const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
        return cells.length > 0 && cells[cells.length - 1].classList.contains('jp-mod-active');
    }"""
    for _ in range(attempts):
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.wait_for_function(last_active, timeout=10_000)
        _menu(page, "Run", "Run All Above Selected Cell")
        clicked = time.monotonic()
        queued = False
        idle_since = clicked
        while time.monotonic() - clicked < RUNNING_TIMEOUT_S:
            state = page.evaluate(RUN_STATE)
            now = time.monotonic()
            if state == "executed":
                return
            if state == "queued":
                queued, idle_since = True, now
            elif now - idle_since > (2 if queued else 10):
                break  # dropped, or never queued: use the menu again
            page.wait_for_timeout(200)
        else:
            raise AssertionError(f"the first cell did not run:\n{_notebook_state(page)}")
    raise AssertionError(f"Run All Above Selected Cell ran nothing:\n{_notebook_state(page)}")


def _notebook_state(page: Any) -> str:
    """Each code cell's prompt and the start of its outputs, for a failure message."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell')).map(
            (cell, i) => {
                const prompt = cell.querySelector('.jp-InputPrompt');
                const out = cell.querySelector('.jp-OutputArea');
                const text = out ? out.innerText.trim().slice(0, 800) : '';
                return `cell ${i} ${prompt ? prompt.innerText.trim() : '?'} ${text}`;
            }).join('\\n')"""
    )


def _wait_for_output(page: Any, lab: Lab, text: str, timeout_s: float) -> None:
    """Wait until ``text`` shows in an output; fail at once, saying why, if a cell errs.

    Raises:
        AssertionError: a cell showed an error, or ``text`` did not show in time;
            the message has every code cell's prompt and outputs and the server's log.
    """
    wanted = page.locator(f"text={text}")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if wanted.count():
            return
        if tracebacks.count():
            break
        page.wait_for_timeout(250)
    state = _notebook_state(page)
    status = page.evaluate(
        """() => (document.querySelector('.jp-Notebook-ExecutionIndicator') || {dataset: {}})
            .dataset.status"""
    )
    why = "a cell failed" if tracebacks.count() else f"not shown in {timeout_s:.0f} s"
    raise AssertionError(
        f"{text!r}: {why} (kernel {status}, {errors.count()} stderr outputs)\n"
        f"{state}\n--- JupyterLab log ---\n{lab.log()}"
    )


def _runner_pids(sandbox: Sandbox) -> list[int]:
    """Runner processes (``python -m runners.<role>``) started in the sandbox."""
    out = []
    for pid in sandbox.pids():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(a.startswith(b"runners.") for a in argv):
                out.append(pid)
    return out


def test_dashboard_shows_running_runners_and_a_live_chart(
    lab: Lab, page: Any, tmp_path: Path, record_property: Any
) -> None:
    original = (ROOT / NOTEBOOK).read_bytes()
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    _wait_idle(page, 60)
    _clear_all_outputs(page)  # so the outputs waited for are this run's
    _run_all_above_the_last_cell(page)
    # The promote cell is the last one above the stop cell: once its output shows,
    # start, dashboard, tune and apply (which waits for the restart) have all run.
    _wait_for_output(page, lab, "same config: True", RUNNING_TIMEOUT_S)

    rows = page.locator(".wb-runner-table .wb-runner-row.wb-state-running")
    deadline = time.monotonic() + 10
    while rows.count() < len(RUNNERS) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    shown = page.locator(".wb-runner-table .wb-runner-row").all_inner_texts()
    assert rows.count() == len(RUNNERS), f"runner table: {shown}\n{lab.log()}"
    for name in RUNNERS:
        assert page.locator(f".wb-runner-row.wb-runner-{name}.wb-state-running").count() == 1

    page.wait_for_selector(".wb-price-chart.js-plotly-plot", timeout=30_000)
    before = _chart_state(page)
    page.wait_for_timeout(3_000)
    after = _chart_state(page)
    assert after["points"] > 0 and after["axis"] == "date", after
    assert after["last"] > before["last"], f"chart did not move: {before} -> {after}"
    assert after["summary"] != before["summary"]

    dashboard = page.locator(".wb-dashboard")
    dashboard.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    dashboard.screenshot(path=str(tmp_path / "dashboard.png"))
    page.screenshot(path=str(tmp_path / "notebook.png"), full_page=True)
    record_property("screenshot", str(tmp_path / "dashboard.png"))

    # The row buttons work through the real frontend: stop sr-1, then start it again.
    page.locator(".wb-runner-sr-1 .wb-action-stop").click()
    page.wait_for_selector(".wb-runner-sr-1.wb-state-stopped", timeout=30_000)
    page.locator(".wb-runner-sr-1 .wb-action-start").click()
    page.wait_for_selector(".wb-runner-sr-1.wb-state-running", timeout=30_000)

    assert _runner_pids(lab.sandbox), "no runner processes found under the sandbox marker"
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Control+Enter")  # run wb.stop() in place
    deadline = time.monotonic() + 15
    while _runner_pids(lab.sandbox) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _runner_pids(lab.sandbox), "wb.stop() in the browser left runners running"
    assert (ROOT / NOTEBOOK).read_bytes() == original, "the browser saved over the notebook"
