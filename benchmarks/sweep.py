"""Sweep throughput: the same grid serially in one process and on a 2-worker local cluster.

1M synthetic ticks (seed 11), SupportResistance with the 10 conditions of
`fast_replay.py`, a grid of 4 x 4 x 2 = 32 combinations (turning point, take
profit, stop loss). Both runs call the same task function (`replay_row`: a
fast replay plus its report) on the same table in the same run, and must give
the same fills hashes.

- **serial**: a plain loop over the combinations in this process.
- **cluster**: `LocalCluster` with ``--workers`` single-threaded worker
  processes; start-up and putting the data on the workers are timed apart
  from the sweep itself.
- The two take turns on slices of ``--slice`` combinations (serial, then the
  same slice on the cluster), so both see the same background load on a
  shared machine; the speed-up is the ratio of the summed times, and the
  range of the per-turn ratios is printed beside it.
- **per-task overhead**: (cluster sweep wall time x workers - the time the
  tasks spent inside `replay_row`) / tasks: scheduling, transfer of the
  parameters and rows, and idle tails.

    python benchmarks/sweep.py [--ticks 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import Figure
from fast_replay import conditions

from workbench.config import build_config
from workbench.marketdata import synth_ticks
from workbench.replays.session import prepare_config
from workbench.sweeps.engine import TaskRunner, cluster_client
from workbench.sweeps.grid import as_specs, combinations
from workbench.sweeps.tasks import replay_row

GRID = {
    "turning_point": [0.02, 0.03, 0.04, 0.05],
    "take_profit": [0.08, 0.12, 0.16, 0.2],
    "stop_loss": [0.1, 0.15],
}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Measure and print; returns the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--slice", type=int, default=8, help="combinations per serial/cluster turn")
    args = ap.parse_args(argv)
    table = synth_ticks("SYN", args.ticks, seed=11)
    cfg = prepare_config(
        build_config(
            {
                "gateway": {"feed": "replay"},
                "strategies": [{"id": "sr", "params": {"conditions": conditions()}}],
            }
        )
    )
    combos = combinations(as_specs(GRID))
    n = len(combos)

    # Serial and cluster take turns on slices of the grid, so both see the same
    # background load (the machine is shared); the totals are the sums.
    serial: list[dict] = []
    rows: list[dict] = []
    serial_s = cluster_s = 0.0
    ratios = []
    t0 = time.perf_counter()
    with cluster_client(None, args.workers) as client:
        start_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        with TaskRunner(client, cfg, table) as runner:
            ship_s = time.perf_counter() - t1
            for lo in range(0, n, args.slice):
                part = combos[lo : lo + args.slice]
                t2 = time.perf_counter()
                serial += [replay_row(cfg, table, p) for p in part]
                one_s = time.perf_counter() - t2
                t2 = time.perf_counter()
                rows += runner.run([(p, None) for p in part], progress=False)
                many_s = time.perf_counter() - t2
                serial_s += one_s
                cluster_s += many_s
                ratios.append(one_s / many_s)
    failed = [r for r in serial + rows if r.get("error")]
    same = [a["fills_sha256"] for a in serial] == [b["fills_sha256"] for b in rows]
    busy_s = sum(r["elapsed_s"] for r in rows)
    cpu_serial = sum(r["cpu_s"] for r in serial) / n
    cpu_cluster = sum(r["cpu_s"] for r in rows) / n
    overhead_ms = (cluster_s * args.workers - busy_s) / n * 1e3
    speedup = serial_s / cluster_s
    speedup_total = serial_s / (cluster_s + start_s + ship_s)
    figures = [
        Figure("sweep", "serial", n / serial_s, "runs/s", f"{n} runs in {serial_s:.2f} s"),
        Figure("sweep", "cluster", n / cluster_s, "runs/s", f"{args.workers} workers"),
        Figure(
            "sweep",
            "speed-up",
            speedup,
            "x",
            f"cluster vs serial, turns {min(ratios):.2f}-{max(ratios):.2f}x; target >= 1.7x",
        ),
        Figure("sweep", "speed-up incl. start", speedup_total, "x", "with cluster start + data"),
        Figure("sweep", "cluster start", start_s, "s"),
        Figure("sweep", "data to workers", ship_s, "s", f"{args.ticks:,} ticks, once per worker"),
        Figure("sweep", "per-task overhead", overhead_ms, "ms"),
        Figure("sweep", "mean task", busy_s / n * 1e3, "ms", "inside replay_row on a worker"),
        Figure(
            "sweep",
            "task CPU, worker / serial",
            cpu_cluster / cpu_serial,
            "x",
            f"thread CPU per task {cpu_cluster * 1e3:.0f} ms on workers, "
            f"{cpu_serial * 1e3:.0f} ms serial",
        ),
    ]
    for f in figures:
        print(f.as_json())
    print(f"sweep of {n} fast replays on {args.ticks:,} ticks")
    print(f"  serial, one process    {serial_s:7.2f} s  {n / serial_s:6.2f} runs/s  (baseline)")
    print(
        f"  local cluster x{args.workers}     {cluster_s:7.2f} s  {n / cluster_s:6.2f} runs/s"
        f"  = {speedup:.2f}x serial (turns of {args.slice}: {min(ratios):.2f}-{max(ratios):.2f}x)"
        f"   target >= 1.7x"
    )
    print(
        f"  + cluster start {start_s:.2f} s, data to workers {ship_s:.2f} s "
        f"= {speedup_total:.2f}x serial overall"
    )
    print(f"  per-task overhead {overhead_ms:.1f} ms (mean task {busy_s / n * 1e3:.0f} ms)")
    print(
        f"  CPU per task: {cpu_cluster * 1e3:.0f} ms on workers, {cpu_serial * 1e3:.0f} ms serial "
        f"({cpu_cluster / cpu_serial:.2f}x); wall/CPU serial {serial_s / n / cpu_serial:.2f} "
        "(above 1: other processes took the cores)"
    )
    if failed or not same:
        print(f"  ERROR: {len(failed)} failed runs; fills hashes equal: {same}", file=sys.stderr)
        raise SystemExit(1)
    return {"serial_s": serial_s, "cluster_s": cluster_s, "speedup": speedup}


if __name__ == "__main__":  # LocalCluster's worker processes re-import this module
    main()
