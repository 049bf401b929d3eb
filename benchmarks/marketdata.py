"""Columnar market data: load time, a whole fast replay, gateway memory in a wire replay.

1. ``load_ticks`` of a 1M-row Parquet file beside raw
   ``pyarrow.parquet.read_table(...)`` plus ``to_numpy()`` of every column
   (target <= 2x the raw read).
2. A whole ``workbench.replay(mode="fast")`` call on those 1M ticks (load,
   replay, report) beside the plain-loop baseline of `fast_replay.py` on the
   same prices (target >= 1.5x its ticks/s).
3. Peak RSS (VmHWM) of the gateway process during a wire replay of a
   10M-tick Parquet file (streamed in chunks with `parquet_lite`, no pyarrow
   in the gateway; target <= 80 MB), beside the gateway's peak on a
   2,000-tick Parquet file (the runner's own floor) and on a 1M-tick CSV
   file, which is loaded whole.

    python benchmarks/marketdata.py [--big-ticks 10000000] [--no-rss]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _common import OUT_DIR, Figure
from fast_replay import conditions, plain_loop

from workbench import replay
from workbench.config import build_config
from workbench.marketdata import load_ticks, synth_ticks, write_ticks
from workbench.replays.session import prepare_config, private_run_config


def _files(big_ticks: int) -> tuple[Path, Path, Path]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    one, csv, big = (
        OUT_DIR / "md-SYN-1m.parquet",
        OUT_DIR / "md-SYN-1m.csv",
        OUT_DIR / f"md-SYN-{big_ticks}.parquet",
    )
    if not one.exists() or not csv.exists():
        table = synth_ticks("SYN", 1_000_000, seed=11)
        write_ticks(table, one)
        write_ticks(table, csv)
    if not big.exists():  # the 1M file repeated, later copies shifted in time
        base = pq.read_table(one)
        span = base["ts_ns"][-1].as_py() - base["ts_ns"][0].as_py() + 1
        with pq.ParquetWriter(big, base.schema, compression="zstd") as w:
            for k in range(-(-big_ticks // len(base))):
                ts = pa.compute.add(base["ts_ns"], k * span)
                w.write_table(base.set_column(0, "ts_ns", ts), row_group_size=262_144)
    return one, csv, big


def _cfg():
    return build_config(
        {
            "gateway": {"feed": "replay"},
            "strategies": [{"id": "sr", "params": {"conditions": conditions()}}],
        }
    )


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def gateway_peak_rss(data: Path) -> tuple[float, int]:
    """Peak gateway RSS (MB) during a wire replay of ``data``, and the ticks replayed."""
    from workbench.supervisor import Supervisor

    with tempfile.TemporaryDirectory(prefix="wbm-") as tmp:
        cfg = private_run_config(prepare_config(_cfg(), data), Path(tmp) / "runs", Path(tmp))
        sup = Supervisor(cfg)
        peak = 0.0
        done = threading.Event()
        try:
            sup.start()
            while not sup.eos_reached.wait(0.05):
                for s in sup.status():
                    if s.runner == cfg.gateway.id and s.pid:
                        peak = max(peak, _hwm_mb(s.pid) or 0.0)
                if sup.any_failed():
                    raise RuntimeError(f"a runner failed; logs in {sup.logs.folder}")
            for s in sup.status():
                if s.runner == cfg.gateway.id and s.pid:
                    peak = max(peak, _hwm_mb(s.pid) or 0.0)
            ticks = max((sup.eos_summary or {}).get("ticks", {}).values(), default=0)
        finally:
            done.set()
            sup.stop()
    return peak, ticks


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big-ticks", type=int, default=10_000_000)
    ap.add_argument("--no-rss", action="store_true", help="skip the gateway RSS figures (3)")
    args = ap.parse_args(argv)
    one, csv, big = _files(args.big_ticks)

    raw, loaded = [], []
    for _ in range(3):  # best of 3 for both, same run
        t0 = time.perf_counter()
        t = pq.read_table(one)
        _ = [t.column(c).to_numpy() for c in t.column_names]
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        table = load_ticks(one)
        loaded.append(time.perf_counter() - t0)
    raw_s, load_s = min(raw), min(loaded)

    cfg = _cfg()
    prices = table.price.tolist()  # the plain loop gets what it was written for: a list
    wholes, plains = [], []
    for _ in range(3):  # alternating, best of 3 for both
        t0 = time.perf_counter()
        result = replay(cfg, one, mode="fast", progress=False)
        wholes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain_fills = plain_loop(prices, conditions())
        plains.append(time.perf_counter() - t0)
    whole_s, plain_s = min(wholes), min(plains)
    n = len(table)
    ratio = (n / whole_s) / (n / plain_s)
    ratios = sorted(p / w for p, w in zip(plains, wholes, strict=True))

    rss = None
    if not args.no_rss:
        big_rss, big_ticks = gateway_peak_rss(big)
        small = OUT_DIR / "md-SYN-2k.parquet"
        write_ticks(synth_ticks("SYN", 2_000, seed=11), small)
        floor_rss, floor_ticks = gateway_peak_rss(small)
        csv_rss, csv_ticks = gateway_peak_rss(csv)
        rss = (big_rss, big_ticks, floor_rss, floor_ticks, csv_rss, csv_ticks)

    figures = [
        Figure("marketdata", "raw pyarrow read + to_numpy", raw_s, "s", "1M rows, baseline"),
        Figure("marketdata", "load_ticks", load_s, "s", f"{load_s / raw_s:.2f}x raw; target <= 2x"),
        Figure("marketdata", "whole fast replay()", n / whole_s, "ticks/s", "load+replay+report"),
        Figure("marketdata", "plain loop", n / plain_s, "ticks/s", "baseline"),
        Figure(
            "marketdata",
            "whole fast replay / plain",
            ratio,
            "x",
            f"best of 3; rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x; target >= 1.5x",
        ),
    ]
    if rss is not None:
        big_rss, big_ticks, floor_rss, floor_ticks, csv_rss, csv_ticks = rss
        figures += [
            Figure("marketdata", f"gateway peak RSS, {big_ticks:,} ticks Parquet", big_rss, "MB"),
            Figure(
                "marketdata", f"gateway peak RSS, {floor_ticks:,} ticks Parquet", floor_rss, "MB"
            ),
            Figure("marketdata", f"gateway peak RSS, {csv_ticks:,} ticks CSV", csv_rss, "MB"),
        ]
    for f in figures:
        print(f.as_json())
    print("columnar market data")
    print(f"  raw pyarrow read + to_numpy (1M)   {raw_s:6.3f} s  (baseline)")
    print(f"  load_ticks (1M)                    {load_s:6.3f} s  = {load_s / raw_s:.2f}x raw")
    print(
        f"  whole fast replay() (1M)     {n / whole_s:12,.0f} ticks/s  {result.summary['fills']} "
        f"fills; plain loop {n / plain_s:,.0f} ticks/s ({plain_fills} fills) = {ratio:.2f}x "
        f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )
    if rss is None:
        return
    print(
        f"  gateway peak RSS: {big_rss:.1f} MB on {big_ticks:,} Parquet ticks (streamed; "
        f"target <= 80 MB); {floor_rss:.1f} MB on {floor_ticks:,} (the runner's floor); "
        f"{csv_rss:.1f} MB on {csv_ticks:,} CSV ticks (loaded whole)"
    )


if __name__ == "__main__":
    main()
