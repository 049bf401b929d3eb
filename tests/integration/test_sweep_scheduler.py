"""A --scheduler that is not a Dask scheduler, or has too few workers: exit 2, never a hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo.toml"


def sweep_argv(scheduler: str, out: Path, *extra: str) -> list[str]:
    return [
        "sweep", "--config", str(CONFIG), "--grid", "turning_point=0.05",
        "--scheduler", scheduler, "--connect-timeout", "1", "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_listening_socket_that_never_answers_is_a_configuration_error(
    silent_port, tmp_path, capsys
):
    address = f"tcp://127.0.0.1:{silent_port}"
    # In a child process: before the fix this hung forever (dask/distributed#8071).
    code = (
        "import sys; from workbench.cli import main; "
        f"sys.exit(main({sweep_argv(address, tmp_path / 'o')!r}))"
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: --scheduler {address}: cannot connect: no Dask scheduler answered" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 30


def test_an_http_server_is_not_a_scheduler(tmp_path, capsys):
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        assert main(sweep_argv(address, tmp_path / "o")) == 2
    finally:
        server.shutdown()
        server.server_close()
    assert f"error: --scheduler {address}: cannot connect" in capsys.readouterr().err


def test_a_malformed_scheduler_address_is_a_usage_error(tmp_path, capsys):
    assert main(sweep_argv("notanaddress", tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "error: --scheduler notanaddress: cannot connect" in err and "port" in err


def test_more_workers_than_the_scheduler_has_is_a_usage_error(tmp_path, capsys):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, dashboard_address=":0") as cluster:
        rc = main(sweep_argv(cluster.scheduler_address, tmp_path / "o", "--workers", "2"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: --workers 2: the scheduler at" in err and "has 0 worker(s) after 1 s" in err


def test_cluster_client_bounds_the_handshake_of_a_silent_port(silent_port):
    # The engine's own connect_timeout_s: before the fix Client(timeout=...) never returned.
    code = (
        "import time; from workbench.exceptions import ConfigurationError\n"
        "from workbench.sweeps.engine import cluster_client\n"
        "t = time.monotonic()\n"
        "try:\n"
        f"    with cluster_client('tcp://127.0.0.1:{silent_port}', connect_timeout_s=1): pass\n"
        "except ConfigurationError as e:\n"
        "    print('refused', round(time.monotonic() - t), e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert proc.stdout.startswith("refused 1 --scheduler tcp://"), proc.stderr[-2000:]


def test_cluster_client_names_a_bad_address_and_missing_workers():
    from distributed import LocalCluster

    from workbench.exceptions import ConfigurationError
    from workbench.sweeps.engine import cluster_client

    with (
        pytest.raises(ConfigurationError, match="--scheduler notanaddress: cannot connect"),
        cluster_client("notanaddress", connect_timeout_s=1),
    ):
        pass
    with (
        LocalCluster(n_workers=0, dashboard_address=":0") as cluster,
        pytest.raises(ConfigurationError, match="--workers 3: the scheduler at"),
        cluster_client(cluster.scheduler_address, 3, connect_timeout_s=1),
    ):
        pass
    # Without --workers, a scheduler with none: the sweep's tasks waited for ever.
    with (
        LocalCluster(n_workers=0, dashboard_address=":0") as cluster,
        pytest.raises(ConfigurationError, match=r"--workers 1: .* has 0 worker\(s\) after 1 s"),
        cluster_client(cluster.scheduler_address, connect_timeout_s=1),
    ):
        pass
