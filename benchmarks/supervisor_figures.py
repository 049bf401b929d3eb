"""Supervisor figures: cold start, restart after SIGKILL, runner RSS.

Printed beside baselines measured in the same run on the same machine:
a bare ``python -c pass`` spawn-to-exit (what any runner start costs at
least) and the RSS of a bare interpreter.

    python benchmarks/supervisor_figures.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.config import BUS_STREAMS, build_config
from workbench.runner.logs import configure_logging
from workbench.supervisor import Supervisor


def _config(folder: Path):
    names = BUS_STREAMS
    bus = {f"{n}_address": f"ipc://{folder}/ipc/{n}" for n in names}
    return build_config(
        {
            "run_id": "bench",
            "bus": bus,
            "runtime": {"run_dir": str(folder / "runs"), "heartbeat_interval_s": 0.05},
            "supervisor": {"restart_backoff_initial_s": 0.0, "restart_backoff_jitter": 0.0},
            "executor": {"risk": {"max_order_qty": 1e6, "max_position_qty": 1e6}},
        },
        base_dir=folder,
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare_python() -> tuple[float, float]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    spawn = time.perf_counter() - t0
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    time.sleep(0.3)
    rss = _rss_mb(p.pid)
    p.kill()
    p.wait()
    return spawn, rss


def _wait(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.002)


def measure_once(folder: Path) -> dict[str, float]:
    sup = Supervisor(_config(folder))
    try:
        t0 = time.perf_counter()
        sup.start()
        _wait(sup.all_running)
        cold = time.perf_counter() - t0
        rss = {s["runner"]: _rss_mb(s["pid"]) for s in sup.status()}
        victim = next(s for s in sup.status() if s["runner"] == "sr-1")
        t1 = time.perf_counter()
        os.kill(victim["pid"], signal.SIGKILL)

        def back() -> bool:
            s = next(x for x in sup.status() if x["runner"] == "sr-1")
            return s["state"] == "running" and s["pid"] not in (None, victim["pid"])

        _wait(back)
        restart = time.perf_counter() - t1
    finally:
        sup.stop()
    return {"cold": cold, "restart": restart, **{f"rss_{k}": v for k, v in rss.items()}}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Measure and print; returns the medians."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    configure_logging("WARNING", json=False)
    runs = []
    bases = []
    for i in range(args.repeat):
        bases.append(_bare_python())
        with tempfile.TemporaryDirectory(prefix="wb-sup-") as d:
            runs.append(measure_once(Path(d) / str(i)))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    spawn = statistics.median(b[0] for b in bases)
    bare_rss = statistics.median(b[1] for b in bases)
    print(f"supervisor figures (median of {args.repeat} runs)")
    print(f"  bare python spawn-to-exit    {spawn * 1000:7.0f} ms  (baseline)")
    print(
        f"  cold start, 3 runners        {med['cold'] * 1000:7.0f} ms  "
        f"= {med['cold'] / spawn:.1f}x baseline   target <= 1000 ms"
    )
    print(
        f"  SIGKILL to running again     {med['restart'] * 1000:7.0f} ms  "
        f"= {med['restart'] / spawn:.1f}x baseline   target <= 500 ms"
    )
    print(f"  bare python RSS              {bare_rss:7.1f} MB  (baseline)")
    for k, v in med.items():
        if k.startswith("rss_"):
            print(
                f"  RSS {k[4:]:<24} {v:7.1f} MB  = {v / bare_rss:.1f}x baseline   target <= 60 MB"
            )
    return {**med, "baseline_spawn": spawn, "baseline_rss": bare_rss}


if __name__ == "__main__":
    main()
