"""Health and metrics for a monitoring stack: any address behind a token, promtool-clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from helpers import make_config

from workbench.exceptions import ConfigurationError
from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-the-test-7f1c"


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_token_lets_health_and_metrics_bind_every_address_and_is_required(tmp_path):
    cfg = make_config(
        tmp_path,
        supervisor={"http_host": "0.0.0.0", "http_token": TOKEN},
        gateway={"simulated": {"rate_per_s": 200.0}},
        executor={"exit_on_eos": False},
    )
    sup = Supervisor(cfg)
    try:
        sup.start(wait=True, timeout=30)
        port = sup._http.port
        assert sup.health_url.startswith("http://0.0.0.0:")
        # Reachable on loopback and on a non-loopback address of this host (0.0.0.0 bind).
        for base in (f"http://127.0.0.1:{port}", f"http://{_host_address()}:{port}"):
            assert get(f"{base}/health")[0] == 401
            assert get(f"{base}/metrics", "wrong")[0] == 401
            code, body = get(f"{base}/health", TOKEN)
            assert code == 200, body
            assert set(json.loads(body)["runners"]) == {"gateway", "sr-1", "executor"}
        time.sleep(0.6)  # a heartbeat with the executor's state
        code, metrics = get(f"http://127.0.0.1:{port}/metrics", TOKEN)
        assert code == 200
    finally:
        sup.stop()
    text = metrics.decode()
    assert 'workbench_executor_trading_state{runner="executor",state="ACTIVE"} 1.0' in text
    assert 'workbench_executor_trading_state{runner="executor",state="HALTED"} 0.0' in text
    assert 'workbench_executor_breaker_state{runner="executor",state="closed"} 1.0' in text
    # Counters alerts and panels take increase() of are there at 0 before their first count.
    declared = [("executor", "signal_gaps"), ("executor", "orders_rejected"),
                ("executor", "duplicates"), ("sr-1", "gaps"), ("sr-1", "bad_frames")]  # fmt: skip
    for runner, counter in declared:
        assert f'workbench_{counter}_total{{runner="{runner}"}} 0.0' in text, counter
    for f in cfg.run_path().rglob("*"):
        if f.is_file() and f.suffix != ".sqlite":
            assert TOKEN not in f.read_text(errors="replace"), f
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'); format not linted")
    r = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_without_a_token_a_network_address_is_refused_naming_the_field(tmp_path):
    cfg = make_config(tmp_path, supervisor={"http_host": "0.0.0.0"})
    with pytest.raises(ConfigurationError, match=r"supervisor\.http_host"):
        Supervisor(cfg)


def test_the_token_is_never_saved(tmp_path):
    cfg = make_config(tmp_path, supervisor={"http_host": "0.0.0.0", "http_token": TOKEN})
    saved = cfg.save(tmp_path / "c.toml").read_text()
    assert TOKEN not in saved and TOKEN not in repr(cfg)
    assert re.search(r'http_host = "0\.0\.0\.0"', saved)


def _host_address() -> str:
    """A non-loopback IPv4 address of this host (falls back to loopback)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    v4 = [a for a in out if "." in a and not a.startswith("127.")]
    return v4[0] if v4 else "127.0.0.1"
