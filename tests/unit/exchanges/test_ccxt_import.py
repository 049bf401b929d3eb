"""ccxt (0.7 s, ~100 MB) is imported only by a runner whose feed is an exchange."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT

PROBE = """
import sys
from pathlib import Path
import runners.gateway, runners.strategy, runners.executor
from workbench.config import build_config
from workbench.container import Container

feed = sys.argv[1]
ticks = str(Path("data/ticks/synth-ABC-5000.csv").resolve())
data = {"gateway": {"feed": feed, "replay": {"path": ticks}}}
if feed == "exchange":
    data["gateway"]["exchange"] = {"rest_url": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9/ws"}
c = Container(config=build_config(data), runner_id="gateway", strategy_id="sr-1")
f = c.feed()
c.strategy()
getattr(f, "close", lambda: None)()
print("ccxt" in sys.modules)
"""


def _imports_ccxt(feed: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, feed], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "True"


def test_simulated_and_replay_runners_never_import_ccxt() -> None:
    assert not _imports_ccxt("simulated")
    assert not _imports_ccxt("replay")


def test_an_exchange_gateway_does() -> None:  # the probe can tell
    assert _imports_ccxt("exchange")


EXECUTOR_PROBE = """
import sys, tempfile
import runners.executor
from workbench.config import build_config
from workbench.container import Container
from workbench.exceptions import WorkbenchError

feed, broker = sys.argv[1], sys.argv[2]
data = {"gateway": {"feed": feed}, "runtime": {"run_dir": tempfile.mkdtemp()},
        "executor": {"risk": {"max_order_qty": 1, "max_position_qty": 1}}}
if broker == "ccxt":
    data["executor"]["broker"] = {
        "class_path": "workbench.exchanges.broker:CcxtBroker",
        "params": {"rest_url": "http://127.0.0.1:9", "timeout_ms": 200},
    }
c = Container(config=build_config(data), runner_id="executor", strategy_id="executor")
try:
    c.broker()
except WorkbenchError:  # nothing listens on port 9: the ccxt broker cannot connect
    pass
print("ccxt" in sys.modules)
"""


def _executor_imports_ccxt(feed: str, broker: str) -> bool:
    env = {
        **os.environ,
        "WORKBENCH__GATEWAY__EXCHANGE__API_KEY": "k",
        "WORKBENCH__GATEWAY__EXCHANGE__API_SECRET": "s",
    }
    out = subprocess.run(
        [sys.executable, "-c", EXECUTOR_PROBE, feed, broker],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "True"


def test_an_executor_imports_ccxt_only_for_the_ccxt_broker() -> None:
    assert not _executor_imports_ccxt("simulated", "simulator")
    assert not _executor_imports_ccxt("exchange", "simulator")  # paper trading on real prices
    assert _executor_imports_ccxt("exchange", "ccxt")
