"""Run every benchmark with its defaults and print a summary table (``make bench``).

`wire_replay` and `latency` run in this process and their figures go into the
summary; every other ``benchmarks/*.py`` script (not ``_*.py``) runs as it is,
in a child process with its own output; the summary shows how it ended and
any figures it printed as `_common.Figure` JSON lines.

Benchmarks print figures beside baselines measured in the same run; they never
assert timings. The exit code is non-zero only when a benchmark could not run.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only wire_replay,latency]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import latency
import wire_replay
from _common import (
    BENCH_DIR,
    REPO_DIR,
    BenchError,
    Figure,
    fmt_value,
    print_figures,
    script_main,
    table,
)

QUICK_WIRE_TICKS = 200_000
QUICK_LATENCY_TICKS = 20_000
EXTRA_TIMEOUT_S = 300.0
"""Per other benchmark script (see `extra_scripts`)."""


def _wire(quick: bool) -> list[Figure]:
    o = wire_replay.Options()
    if quick:
        o.ticks = QUICK_WIRE_TICKS
    return wire_replay.run(o)


def _latency(quick: bool) -> list[Figure]:
    return latency.run(ticks=QUICK_LATENCY_TICKS if quick else latency.DEFAULT_TICKS)


BENCHMARKS: dict[str, tuple[str, Callable[[bool], list[Figure]]]] = {
    "wire_replay": ("wire replay throughput (ticks/s)", _wire),
    "latency": ("tick-to-executor latency", _latency),
}


def extra_scripts() -> list[Path]:
    """Every other benchmark script in this folder (not ``_*.py``, not run here in-process)."""
    mine = {"run_all", *BENCHMARKS}
    return sorted(
        p for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_") and p.stem not in mine
    )


def run_extra(path: Path) -> tuple[str, list[Figure]]:
    """Run another benchmark script as it is, with its defaults, echoing its output.

    Returns:
        ``ok`` or why it failed, and the figures it printed as JSON lines (if any).
    """
    print(f"== {path.stem}", flush=True)
    figures: list[Figure] = []
    with subprocess.Popen(
        [sys.executable, str(path)], cwd=REPO_DIR, stdout=subprocess.PIPE, text=True
    ) as proc:
        timer = threading.Timer(EXTRA_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            for line in proc.stdout or ():
                print(line, end="", flush=True)
                figure = parse_figure(line)
                if figure is not None:
                    figures.append(figure)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # interrupted: SIGTERM lets it clean up its own children
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(flush=True)
    return ("ok" if rc == 0 else f"exit {rc}"), figures


def parse_figure(line: str) -> Figure | None:
    """A figure from one of `Figure.as_json`'s lines, else None."""
    if not line.startswith('{"bench"'):
        return None
    try:
        d = json.loads(line)
        return Figure(d["bench"], d["figure"], d["value"], d.get("unit", ""), d.get("note", ""))
    except (ValueError, KeyError, TypeError):
        return None


def summary(figures: list[Figure], status: dict[str, str]) -> str:
    """Every figure, one line each, and how each benchmark ended."""
    rows = [(f.bench, f.name, fmt_value(f.value), f.unit) for f in figures]
    rows += [(name, "(run)", result, "") for name, result in status.items()]
    return table(rows, ("bench", "figure", "value", "unit"), left=(0, 1, 3))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer ticks (a smoke run)")
    p.add_argument(
        "--only",
        default="",
        help=f"comma-separated names: {', '.join(BENCHMARKS)}, other scripts' names, 'extras'",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run everything, print each benchmark's figures, then the summary."""
    args = parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    started = time.perf_counter()
    figures: list[Figure] = []
    status: dict[str, str] = {}
    for name, (title, bench) in BENCHMARKS.items():
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        try:
            figs = bench(args.quick)
        except BenchError as e:
            status[name] = "FAILED"
            print(f"# {name} failed: {e}", file=sys.stderr, flush=True)
            continue
        status[name] = "ok"
        print_figures(title, figs)
        figures += figs
    for path in extra_scripts():
        if not only or path.stem in only or "extras" in only:
            status[path.stem], figs = run_extra(path)
            figures += figs
    print(f"summary ({time.perf_counter() - started:.0f} s)")
    print(summary(figures, status))
    return 0 if all(s == "ok" for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(script_main(main))
