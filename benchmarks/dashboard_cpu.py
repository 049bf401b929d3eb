"""Kernel CPU of the live dashboard on a 10k ticks/s simulated feed.

Starts a `Workbench` (supervisor, taps and the three runner processes) in this
process, as a notebook kernel would, then measures this process's CPU use for
``--seconds`` with a dashboard, between two half-length spells without
one (their mean is the baseline, so a load change on the machine shows). The
dashboard needs no browser: its update thread does the same work (reading the
rings, building the figures, serialising widget state), only no frontend
receives the messages. Figures are in % of one core; the target is the
dashboard's share staying small (<= 25 % of a core for the whole kernel is the
issue's aim). Prints only; never asserts.

    .venv/bin/python benchmarks/dashboard_cpu.py [--rate 10000] [--seconds 10] [--refresh-hz 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import REPO_DIR, Figure, ipc_bus, machine, print_figures, script_main, work_dir

BENCH = "dashboard_cpu"
WARMUP_S = 2.0


def _thread_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) per Python thread name, from /proc.

    Threads Python does not know (libzmq's I/O threads) are summed as ``other``.
    """
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        name = names.get(int(tid), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _measure(wb: Any, seconds: float) -> dict[str, Any]:
    """Process CPU % of one core, per-thread CPU %, and ticks/s over ``seconds``."""
    threads0, cpu0, wall0 = _thread_cpu_s(), time.process_time(), time.monotonic()
    ticks0 = wb.ticks.total
    time.sleep(seconds)
    threads1, cpu1, wall1 = _thread_cpu_s(), time.process_time(), time.monotonic()
    wall = wall1 - wall0
    per_thread = {n: 100 * (v - threads0.get(n, 0.0)) / wall for n, v in threads1.items()}
    return {
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "threads": per_thread,
        "ticks_per_s": (wb.ticks.total - ticks0) / wall,
    }


def _config(folder: Path, rate: float) -> Any:
    from workbench.config import build_config, load_config

    base = load_config(REPO_DIR / "configs" / "paper.toml").model_dump()
    (folder / "ipc").mkdir(parents=True, exist_ok=True)
    base["bus"].update(ipc_bus(folder))
    base["runtime"]["run_dir"] = str(folder / "runs")
    base["gateway"]["simulated"]["rate_per_s"] = rate
    return build_config(base, base_dir=folder, source=f"{BENCH} (paper.toml at {rate:g}/s)")


def run(rate: float, seconds: float, refresh_hz: float) -> list[Figure]:
    """Measure without, with, then again without the dashboard, in one run."""
    from workbench.notebook.dashboard import Dashboard
    from workbench.notebook.workbench import Workbench

    with work_dir(BENCH) as folder:
        wb = Workbench(_config(folder, rate))
        try:
            wb.start(wait=True, timeout=30)
            time.sleep(WARMUP_S)
            before = _measure(wb, seconds / 2)
            dash = Dashboard(wb, refresh_hz=refresh_hz)
            time.sleep(1.0)
            redraws0 = dash.redraws
            with_dash = _measure(wb, seconds)
            redraws = (dash.redraws - redraws0) / seconds
            dash.close()
            after = _measure(wb, seconds / 2)
            missed = wb.ticks.missed
        finally:
            wb.stop()
    bare = (before["cpu_pct"] + after["cpu_pct"]) / 2
    dash_thread = with_dash["threads"].get("wb-dashboard", 0.0)
    taps_thread = (before["threads"]["workbench-taps"] + after["threads"]["workbench-taps"]) / 2
    note = f"{machine()}; feed {rate:,.0f} ticks/s"
    return [
        Figure(BENCH, "kernel CPU without dashboard", round(bare, 1), "% core", note),
        Figure(BENCH, "kernel CPU with dashboard", round(with_dash["cpu_pct"], 1), "% core"),
        Figure(BENCH, "dashboard thread", round(dash_thread, 1), "% core", "its own work only"),
        Figure(BENCH, "per redraw", round(10 * dash_thread / max(redraws, 1e-9), 2), "ms CPU"),
        Figure(BENCH, "redraws", round(redraws, 2), "/s", f"limit {refresh_hz:g}/s"),
        Figure(BENCH, "taps thread", round(taps_thread, 1), "% core", "without dashboard"),
        Figure(BENCH, "ticks tapped", round(with_dash["ticks_per_s"]), "ticks/s"),
        Figure(BENCH, "ticks missed by the tap", missed, "ticks", "sequence gaps"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=10_000.0, help="simulated ticks/s")
    p.add_argument("--seconds", type=float, default=10.0, help="each measurement's length")
    p.add_argument("--refresh-hz", type=float, default=5.0, help="dashboard redraws/s at most")
    args = p.parse_args(argv)
    figures = run(args.rate, args.seconds, args.refresh_hz)
    print_figures("dashboard CPU in the kernel process", figures)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
