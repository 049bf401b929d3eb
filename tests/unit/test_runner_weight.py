"""Runner weight: a simulated live pipeline never loads numpy, pyarrow, pandas or ccxt.

numpy alone is about 11 MB of RSS and 80 ms of start-up per runner. It belongs
to the columnar paths only: a replay's tick file (gateway) and the simulator's
tape (executor, in a replay). The probe runs the three runners of the default
simulated feed in threads of one fresh interpreter until a fill, then lists
what got imported; the same probe on a replay shows that it can tell, and that
a replay, CSV or Parquet (streamed with the numpy-only `parquet_lite`) or a
dataset folder the recorder wrote (read with the numpy-only dataset reader),
loads numpy and nothing else of the list: pyarrow alone would blow the
gateway's 60 MB budget.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

# tenacity (with tornado, 2 MB) only loads when a bind finds its address busy;
# the executor's pybreaker imports tornado anyway. zmq.auth (with zmq.asyncio)
# only loads with CURVE on.
HEAVY = (
    "numpy", "pyarrow", "pandas", "ccxt", "aiohttp", "dask", "tenacity", "zmq.auth",
    "workbench.marketdata",
)  # fmt: skip
TICKS = "data/ticks/synth-ABC-5000"

PROBE = """
import sys, tempfile, threading, time
from pathlib import Path

import runners.executor, runners.gateway, runners.strategy
from workbench.config import BUS_STREAMS, build_config
from workbench.container import Container

feed, heavy, ticks, latency_ms = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
d = Path(tempfile.mkdtemp())
every = {"symbol": "ABC", "turning_point": 0.02, "take_profit": 0.05, "stop_loss": 0.05,
         "following": True, "rearm": True}
cfg = build_config({
    "bus": {f"{n}_address": f"ipc://{d}/{n}" for n in BUS_STREAMS}
    | {"reconnect_interval_ms": 10, "reconnect_interval_max_ms": 0},
    "gateway": {"feed": feed, "simulated": {"symbols": ["ABC"], "rate_per_s": 2000.0},
                "replay": {"path": str(Path(ticks).resolve())}},
    "strategies": [{"id": "sr-1", "params": {"conditions": [
        {"id": "b", "side": "BUY", "trigger_price": 1e9, **every},
        {"id": "s", "side": "SELL", "trigger_price": 0.01, **every}]}}],
    "executor": {"risk": {"max_order_qty": 1e6, "max_position_qty": 1e6},
                 "broker": {"params": {"latency_ms": float(latency_ms)}}},
    "runtime": {"run_dir": str(d / "runs"), "heartbeat_interval_s": 0.05},
})
containers, runners = [], []
for rid, provider in (("executor", "executor_runner"), ("sr-1", "strategy_runner"),
                      ("gateway", "gateway")):
    c = Container(config=cfg, runner_id=rid, strategy_id=rid)
    c.init_resources()
    containers.append(c)
    runners.append(getattr(c, provider)())
threads = [threading.Thread(target=r.run) for r in runners]
for t in threads:
    t.start()
executor = runners[0]
deadline = time.monotonic() + 20
while executor.telemetry.get("fills") < 1 and time.monotonic() < deadline:
    time.sleep(0.02)
for r in runners:
    r.stop()
for t in threads:
    t.join(10)
for c in containers:
    c.shutdown_resources()
if executor.telemetry.get("fills") < 1:
    sys.exit("no fill within 20 s (runner errors above)")
loaded = [m for m in heavy if m in sys.modules]
print("FILLS=%d HEAVY=%s" % (executor.telemetry.get("fills"), ",".join(loaded)))
"""


def _run_probe(code: str, *args: str, marker: str) -> str:
    """Run ``code`` in a fresh interpreter; its one output line starting with ``marker``."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # The runners log to stdout too: pick the probe's line.
    [line] = [x for x in out.stdout.splitlines() if x.startswith(marker)]
    return line


def _probe(feed: str, ticks: str = f"{TICKS}.csv", latency_ms: float = 0) -> tuple[int, list[str]]:
    line = _run_probe(PROBE, feed, ",".join(HEAVY), ticks, str(latency_ms), marker="FILLS=")
    fills, heavy = (part.split("=")[1] for part in line.split())
    return int(fills), [m for m in heavy.split(",") if m]


def test_simulated_live_runners_import_no_numpy_pyarrow_or_ccxt() -> None:
    fills, heavy = _probe("simulated")
    assert fills >= 1  # ticks went through strategy and executor to the simulator
    assert heavy == []


@pytest.mark.parametrize(
    ("suffix", "latency_ms"), [(".csv", 0), (".parquet", 0), (".csv", 5), (".parquet", 5)]
)
def test_a_replay_loads_numpy_and_nothing_heavier(suffix: str, latency_ms: float) -> None:
    """The probe can tell. With a latency the simulator loads its tape of the file too."""
    fills, heavy = _probe("replay", TICKS + suffix, latency_ms)
    assert fills >= 1
    assert heavy == ["numpy", "workbench.marketdata"]


@pytest.fixture(scope="module")
def recorded_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as the live recorder writes it: a dataset folder of several files."""
    from workbench.marketdata import load_ticks
    from workbench.marketdata.recorder import TickRecorder

    root = tmp_path_factory.mktemp("recorded") / "ticks"
    recorder = TickRecorder(root, max_rows=1_000)
    for batch in load_ticks(ROOT / f"{TICKS}.csv").batches(250):
        recorder.write(batch)
    recorder.close()
    assert recorder.files_written == 5
    return root


@pytest.mark.parametrize("latency_ms", [0, 5])
def test_a_replay_of_a_recorded_dataset_loads_numpy_and_nothing_heavier(
    recorded_sample: Path, latency_ms: float
) -> None:
    """Gateway and (with a latency) the simulator's tape read the folder without pyarrow."""
    fills, heavy = _probe("replay", str(recorded_sample), latency_ms)
    assert fills >= 1
    assert heavy == ["numpy", "workbench.marketdata"]


STRATEGY_PROBE = """
import sys, tempfile
from pathlib import Path

import runners.strategy
from workbench.config import BUS_STREAMS, build_config
from workbench.container import Container

d = Path(tempfile.mkdtemp())
cfg = build_config({
    "bus": {f"{n}_address": f"ipc://{d}/{n}" for n in BUS_STREAMS},
    "runtime": {"run_dir": str(d / "runs")},
})
c = Container(config=cfg, runner_id="sr-1", strategy_id="sr-1")
c.init_resources()
c.strategy_runner().send_heartbeat()
c.shutdown_resources()
prefixes = sys.argv[1].split(",")
print("OTHERS=" + ",".join(sorted(m for m in sys.modules if m.startswith(tuple(prefixes)))))
"""


def test_a_strategy_runner_loads_no_executor_code() -> None:
    """Executor-only modules (sqlite journal, breaker, bind retries) stay out of strategies."""
    others = ("workbench.execution", "workbench.gateway", "sqlite3", "pybreaker", "tenacity")
    assert _run_probe(STRATEGY_PROBE, ",".join(others), marker="OTHERS=") == "OTHERS="


def test_deferred_imports_on_call() -> None:
    from workbench.classpath import deferred

    make = deferred("fractions:Fraction.from_float")
    assert make.__name__ == "Fraction.from_float"
    assert make(0.5) == 0.5
