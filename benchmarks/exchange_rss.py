"""Runner RSS with the exchange feed (ccxt) beside the simulated feed, measured in one run.

Starts the local Binance server of the tests (``tests/fixtures/binance_server``),
then a pipeline on ``gateway.feed = "exchange"`` (paper: simulated broker) and
one on the simulated feed, and prints each runner's RSS once every runner is
running and ticks flow. Only the exchange gateway imports ccxt; the strategy
and executor must stay at the simulated pipeline's figures (<= 60 MB).

    python benchmarks/exchange_rss.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_DIR, Figure, print_figures, script_main

sys.path.insert(0, str(REPO_DIR / "tests"))
from fixtures.binance_server.server import BinanceServer

from workbench.config import BUS_STREAMS, build_config
from workbench.runner.logs import configure_logging
from workbench.supervisor import Supervisor

SYMBOL = "USD/JPY"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(folder: Path, server: BinanceServer | None):
    data = {
        "run_id": "bench",
        "bus": {f"{n}_address": f"ipc://{folder}/ipc/{n}" for n in BUS_STREAMS},
        "runtime": {"run_dir": str(folder / "runs"), "heartbeat_interval_s": 0.1},
        "executor": {"exit_on_eos": False, "risk": {"max_order_qty": 1e6, "max_position_qty": 1e6}},
    }
    if server is not None:
        data["gateway"] = {
            "feed": "exchange",
            "exchange": {
                "symbols": [SYMBOL],
                "rest_url": server.rest_url,
                "ws_url": server.ws_url,
                "ws_api_url": server.ws_api_url,
            },
        }
        cond = {
            "id": "c",
            "symbol": SYMBOL,
            "side": "BUY",
            "trigger_price": 86.7,
            "turning_point": 0.003,
            "take_profit": 0.004,
            "stop_loss": 0.004,
        }
        data["strategies"] = [{"id": "sr-1", "params": {"conditions": [cond]}}]
    return build_config(data, base_dir=folder)


def measure(folder: Path, server: BinanceServer | None) -> dict[str, float]:
    sup = Supervisor(_config(folder, server))
    try:
        sup.start()
        deadline = time.monotonic() + 60
        while not sup.all_running():
            if time.monotonic() > deadline:
                raise TimeoutError("pipeline did not start")
            time.sleep(0.02)
        time.sleep(2.0)  # ticks flowing, imports done
        return {s["runner"]: _rss_mb(s["pid"]) for s in sup.status()}
    finally:
        sup.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    configure_logging("WARNING", json=False)
    sim, ex = [], []
    with BinanceServer() as server:
        for i in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="wb-exrss-") as d:
                sim.append(measure(Path(d) / f"sim{i}", None))
                ex.append(measure(Path(d) / f"ex{i}", server))
    figures = []
    for runner in sim[0]:
        base = statistics.median(r[runner] for r in sim)
        live = statistics.median(r[runner] for r in ex)
        figures.append(
            Figure(
                "exchange_rss", f"RSS {runner}, simulated feed", round(base, 1), "MB", "baseline"
            )
        )
        figures.append(
            Figure(
                "exchange_rss",
                f"RSS {runner}, exchange feed",
                round(live, 1),
                "MB",
                f"{live / base:.2f}x baseline",
            )
        )
    print_figures(f"runner RSS, exchange vs simulated feed (median of {args.repeat})", figures)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
