"""The ``workbench record`` and ``workbench diff`` commands (live sessions).

workbench record --config FILE [--out DIR] [--seconds S]
    record the config's live feed (an exchange, or the simulated one) to a
    Parquet dataset by symbol and date, without the rest of the pipeline
workbench diff RUN_A RUN_B [--limit N]
    the first differences in signals and fills of two run folders or replay
    outputs; exit 1 when there are any
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from workbench.exceptions import ConfigurationError, DataError, WorkbenchError

EXIT_DIFFERENT = 1
EXIT_USAGE = 2


def _record_seconds(text: str) -> float:
    """How long to record: finite and >= 0 (0 = until Ctrl-C)."""
    from workbench.cli import finite_arg

    return finite_arg(text, zero=True, says=" is not a number of seconds >= 0")


def add_live_parsers(sub) -> None:
    """Add ``record`` and ``diff`` to the ``workbench`` subcommands."""
    rec = sub.add_parser("record", help="record the live feed to a Parquet dataset")
    rec.add_argument("--config", required=True)
    rec.add_argument("--out", default=None, help="dataset folder; default: recorder.path")
    rec.add_argument(
        "--seconds", type=_record_seconds, default=0.0, help="stop after; 0 = until Ctrl-C"
    )
    rec.set_defaults(func=_record)
    d = sub.add_parser("diff", help="first differences in signals and fills of two runs")
    d.add_argument("run_a", help="a run folder (journal.sqlite) or a replay --out folder")
    d.add_argument("run_b")
    d.add_argument("--limit", type=_at_least_one, default=20, help="differences shown (>= 1)")
    d.set_defaults(func=_diff)


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:  # 0 showed "no differences" for runs that differ
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return n


def _diff(args: argparse.Namespace) -> int:
    import sqlite3

    import pandas as pd

    from workbench.replays.diff import diff_runs, format_diff

    try:
        diff = diff_runs(args.run_a, args.run_b, limit=args.limit)
    except (DataError, OSError, sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
        # Not a run to compare (no journal, not a database): 2, never "they differ" (1).
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_diff(diff))
    return EXIT_DIFFERENT if len(diff) else 0


def _record(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.exceptions import EXIT_ERROR, EXIT_TEMPORARY
    from workbench.marketdata.recorder import RecordingFeed, make_recorder

    try:
        cfg = load_config(args.config)
        if cfg.gateway.feed == "replay":
            raise ConfigurationError(
                f"{cfg.source}: gateway.feed: 'replay' is not live; record 'exchange' or "
                "'simulated'"
            )
        recorder = make_recorder(cfg, Path(args.out) if args.out else None)
        inner: Any
        if cfg.gateway.feed == "exchange":
            from workbench.gateway.exchange_feed import ExchangeFeed

            inner = ExchangeFeed.from_config(cfg)
        else:
            from workbench.gateway.feeds import SimulatedFeed

            inner = SimulatedFeed(cfg.gateway.simulated)
    except ConfigurationError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return EXIT_USAGE
    feed = RecordingFeed(inner, recorder)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + args.seconds if args.seconds else float("inf")
    code = 0
    try:
        while not stop and time.monotonic() < deadline and not feed.exhausted:
            feed.poll(1 << 16)
            time.sleep(min(feed.seconds_to_next(), 0.05))
    except KeyboardInterrupt:
        pass
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        code = e.exit_code
    finally:
        close = getattr(feed, "close", None)
        if close is not None:
            close()
    print(f"recorded {recorder.rows_written} ticks to {recorder.root}")
    if code == 0 and recorder.rows_dropped:  # a full disk, say: what could not be written
        print(f"error: {recorder.rows_dropped} ticks could not be written", file=sys.stderr)
        code = EXIT_ERROR
    elif code == 0 and not recorder.rows_written:  # a job must not take nothing for success
        print("error: no tick was recorded: did the feed connect?", file=sys.stderr)
        code = EXIT_TEMPORARY
    return code
