"""Supervisor figures: cold start, restart after SIGKILL, runner RSS.

Printed beside baselines measured in the same run on the same machine:
a bare ``python -c pass`` spawn-to-exit (what any runner start costs at
least) and the RSS of a bare interpreter. Once per feed: the simulated
live default, and a replay of the sample data at real-time speed, from the
CSV file, from the Parquet one, and from a dataset folder the live recorder
wrote of it (each gateway loads the ticks into numpy columns; the other
runners must not differ).

    python benchmarks/supervisor_figures.py [--repeat 5]
        [--feeds simulated,replay,parquet,dataset]
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

from _common import Figure

from workbench.config import BUS_STREAMS, build_config
from workbench.runner.logs import configure_logging
from workbench.supervisor import Supervisor

FEEDS = ("simulated", "replay", "parquet", "dataset")
# 5,000 ticks over 500 s: at real-time speed the replay outlasts a measurement.
REPLAY_FILES = {
    feed: Path(__file__).resolve().parents[1] / "data" / "ticks" / f"synth-ABC-5000.{ext}"
    for feed, ext in (("replay", "csv"), ("parquet", "parquet"))
}


def _record_sample(root: Path) -> Path:
    """The CSV sample written by the live recorder: a dataset folder of 5 files."""
    from workbench.marketdata import load_ticks
    from workbench.marketdata.recorder import TickRecorder

    recorder = TickRecorder(root, max_rows=1_000)
    for batch in load_ticks(REPLAY_FILES["replay"]).batches(250):
        recorder.write(batch)
    recorder.close()
    return root


def _config(folder: Path, feed: str = "simulated"):
    names = BUS_STREAMS
    bus = {f"{n}_address": f"ipc://{folder}/ipc/{n}" for n in names}
    data = {
        "run_id": "bench",
        "bus": bus,
        "runtime": {"run_dir": str(folder / "runs"), "heartbeat_interval_s": 0.05},
        "supervisor": {"restart_backoff_initial_s": 0.0, "restart_backoff_jitter": 0.0},
        "executor": {"risk": {"max_order_qty": 1e6, "max_position_qty": 1e6}},
    }
    if feed in REPLAY_FILES:
        replay = {"path": str(REPLAY_FILES[feed]), "speed": 1.0}
        data["gateway"] = {"feed": "replay", "replay": replay}
    return build_config(data, base_dir=folder)


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


def measure_once(folder: Path, feed: str = "simulated") -> dict[str, float]:
    sup = Supervisor(_config(folder, feed))
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
    feeds_help = f"comma-separated: {','.join(FEEDS)}"
    p.add_argument("--feeds", default=",".join(FEEDS), help=feeds_help)
    args = p.parse_args(argv)
    feeds = [f for f in args.feeds.split(",") if f]
    if unknown := set(feeds) - set(FEEDS):
        p.error(f"unknown feed(s): {', '.join(sorted(unknown))}")
    configure_logging("WARNING", json=False)
    runs: dict[str, list[dict[str, float]]] = {f: [] for f in feeds}
    bases = []
    with tempfile.TemporaryDirectory(prefix="wb-sup-ds-") as recorded:
        if "dataset" in feeds:
            REPLAY_FILES["dataset"] = _record_sample(Path(recorded) / "ticks")
        for i in range(args.repeat):
            bases.append(_bare_python())
            for feed in feeds:  # the feeds take turns: all see the same background load
                with tempfile.TemporaryDirectory(prefix="wb-sup-") as d:
                    runs[feed].append(measure_once(Path(d) / str(i), feed))
    spawn = statistics.median(b[0] for b in bases)
    bare_rss = statistics.median(b[1] for b in bases)
    print(f"supervisor figures (median of {args.repeat} runs)")
    print(f"  bare python spawn-to-exit    {spawn * 1000:7.0f} ms  (baseline)")
    print(f"  bare python RSS              {bare_rss:7.1f} MB  (baseline)")
    out: dict[str, float] = {"baseline_spawn": spawn, "baseline_rss": bare_rss}
    figures = [
        Figure("supervisor", "bare python spawn-to-exit", round(spawn * 1000, 1), "ms", "baseline"),
        Figure("supervisor", "bare python RSS", round(bare_rss, 1), "MB", "baseline"),
    ]
    for feed in feeds:
        med = {k: statistics.median(r[k] for r in runs[feed]) for k in runs[feed][0]}
        print(f" {feed} feed")
        print(
            f"  cold start, 3 runners        {med['cold'] * 1000:7.0f} ms  "
            f"= {med['cold'] / spawn:.1f}x baseline   target <= 1000 ms"
        )
        print(
            f"  SIGKILL to running again     {med['restart'] * 1000:7.0f} ms  "
            f"= {med['restart'] / spawn:.1f}x baseline   target <= 500 ms"
        )
        for name, key, target in (("cold start", "cold", 1.0), ("restart", "restart", 0.5)):
            note = f"{med[key] / spawn:.1f}x baseline, target <= {target} s"
            figures.append(Figure("supervisor", f"{name}, {feed}", round(med[key], 3), "s", note))
        for k, v in med.items():
            if k.startswith("rss_"):
                print(
                    f"  RSS {k[4:]:<24} {v:7.1f} MB  = {v / bare_rss:.1f}x baseline"
                    "   target <= 60 MB"
                )
                note = f"{v / bare_rss:.1f}x baseline, target <= 60 MB"
                figures.append(
                    Figure("supervisor", f"RSS {k[4:]}, {feed}", round(v, 1), "MB", note)
                )
        prefix = "" if feed == "simulated" else f"{feed}_"
        out.update({prefix + k: v for k, v in med.items()})
    for f in figures:  # JSON lines: `make bench` puts them in its summary
        print(f.as_json())
    return out


if __name__ == "__main__":
    main()
