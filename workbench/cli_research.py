"""The research commands: replay, replay-notebook, promote, sweep, data synth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.cli import EXIT_USAGE, finite_arg
from workbench.exceptions import ConfigurationError, DataError, StrategyError


def _parse_overrides(items: list[str]) -> dict[str, float | bool]:
    out: dict[str, float | bool] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        low = raw.strip().lower()
        if low in ("true", "false"):
            out[key.strip()] = low == "true"
            continue
        try:
            out[key.strip()] = float(raw)
        except ValueError:
            raise ValueError(
                f"--set {item}: {key.strip()} takes a number (or true/false), not {raw!r}"
            ) from None
    return out


def _speed(text: str) -> float:
    """A replay speed: finite and >= 0 (0 = as fast as possible)."""
    says = ": 0 (as fast as possible) or a multiple of real time > 0"
    return finite_arg(text, zero=True, says=says)


def _threshold(text: str) -> float:
    """A promotion threshold: a finite number (``nan`` would fail every gate as if judged)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _seconds(text: str) -> float:
    """A wait in seconds: finite and > 0."""
    return finite_arg(text, zero=False, says=" is not a number of seconds > 0")


def _replay(args: argparse.Namespace) -> int:
    from workbench.replays import ReplayFailed, replay
    from workbench.runner.logs import configure_logging

    configure_logging("WARNING", json=False)
    try:
        overrides = _parse_overrides(args.set)
        result = replay(
            args.config,
            args.data,
            speed=args.speed,
            mode=args.mode,
            out=args.out,
            condition_overrides=overrides,
            progress=not args.quiet,
        )
    except (ConfigurationError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ReplayFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except StrategyError as e:  # the strategy's own bug (a fast replay runs it here)
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    s = result.summary
    print(
        f"{args.mode} replay: ticks {s['ticks']}  signals {s['signals']}  fills {s['fills']}  "
        f"trades {s['trades']}  net PnL {s['net_pnl']:.4f}  max drawdown {s['max_drawdown']:.4f}  "
        f"({result.run['elapsed_s']} s, {result.run['ticks_per_s']:,} ticks/s)"
    )
    print(f"fills sha256 {s['fills_sha256']}")
    if args.out:
        print(f"results in {args.out}")
    return 0


def _replay_notebook(args: argparse.Namespace) -> int:
    import importlib.util

    from workbench.replays.notebook import run_replay_notebook

    if importlib.util.find_spec("papermill") is None:
        print(
            "error: replay-notebook needs the notebooks extra: "
            ".venv/bin/pip install -e '.[notebooks]' (make test installs it)",
            file=sys.stderr,
        )
        return EXIT_USAGE

    try:
        params = {name: _literal(value) for name, value in args.parameters}
        if "out_dir" in params:  # it would win over --out, and the results go elsewhere
            raise ConfigurationError("-p out_dir: give the results folder as --out")
        for key in ("config", "data", "mode", "speed"):
            value = getattr(args, key)
            name = {"config": "config_path", "data": "data_path"}.get(key, key)
            if value is not None and name in params:  # one would silently win
                raise ConfigurationError(f"-p {name} and --{key} both given: give one of them")
            if value is not None and key in ("config", "data"):
                # From this shell's folder, as --out: the notebook reads a relative
                # path from the project's root, where a file of that name may be another.
                value = str(Path(value).expanduser().resolve())
                if not Path(value).exists():
                    raise ConfigurationError(f"--{key} {getattr(args, key)}: no such file")
            if value is not None:
                params[name] = value
        nb = run_replay_notebook(args.out, params)
    except (ConfigurationError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # papermill's execution error carries the failing cell
        print(f"error: the replay notebook failed: {e}", file=sys.stderr)
        return 1
    print(f"executed notebook {nb}; results beside it in {nb.parent}")
    return 0


def _literal(raw: str):
    import ast

    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _promote(args: argparse.Namespace) -> int:
    from workbench.replays.promote import PromotionRefused, promote

    if Path(args.out).exists() and not args.force:  # it may be what runs live now
        print(f"error: --out {args.out} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = promote(
            args.replay,
            args.out,
            max_drawdown=args.max_drawdown,
            min_trades=args.min_trades,
            min_net_pnl=args.min_net_pnl,
            min_win_rate=args.min_win_rate,
            min_sharpe=args.min_sharpe,
            min_oos_net_pnl=args.min_oos_net_pnl,
            min_oos_positive_windows=args.min_oos_positive_windows,
        )
    except (ConfigurationError, OSError) as e:  # OSError: --out cannot be written
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except PromotionRefused as e:
        for c in e.checks:
            print(str(c), file=sys.stderr)
        print("not promoted", file=sys.stderr)
        return 1
    print(f"promoted {args.replay} -> {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from workbench.runner.logs import configure_logging
    from workbench.sweeps import SweepLost, parse_grid_args, sweep
    from workbench.sweeps.tasks import METRICS

    if args.metric not in METRICS:
        print(f"error: --metric {args.metric!r}: choose from {', '.join(METRICS)}", file=sys.stderr)
        return EXIT_USAGE
    from workbench.sweeps.results import existing_outputs

    found = existing_outputs(args.out)
    if found and not args.force:  # best/ would be promoted on the earlier sweep's numbers
        print(
            f"error: --out {args.out} already holds a sweep's results ({', '.join(found)}); "
            "pass --force to replace them",
            file=sys.stderr,
        )
        return EXIT_USAGE
    configure_logging("WARNING", json=False)
    try:
        result = sweep(
            args.config,
            args.data,
            grid=parse_grid_args(args.grid),
            search=args.search,
            trials=args.trials,
            metric=args.metric,
            maximize=not args.minimize,
            walk_forward=args.walk_forward,
            scheduler=args.scheduler,
            workers=args.workers,
            connect_timeout_s=args.connect_timeout,
            out=args.out,
            force=args.force,
            progress=not args.quiet,
        )
    except (ConfigurationError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SweepLost as e:  # the cluster, not the input: no best from a partial grid
        print(f"error: {e}", file=sys.stderr)
        return 1
    run = result.run
    print(
        f"sweep: {run['runs']} runs on {run['workers']} workers in {run['elapsed_s']} s, "
        f"{run['failed']} failed"
    )
    for _, row in result.failures.iterrows():
        params = ", ".join(f"{p}={row[p]}" for p in result.params)
        print(f"failed: {params}: {row['error']}", file=sys.stderr)
    no_best = False
    if run["failed"] < run["runs"]:
        try:
            best = result.best()
        except ConfigurationError as e:  # e.g. sharpe_annual of data shorter than 2 days
            print(f"error: {e}; see results.parquet for the other metrics", file=sys.stderr)
            no_best = True
        else:
            params = ", ".join(f"{p}={best[p]}" for p in result.params)
            print(f"best by {result.metric}: {params} ({result.metric} {best[result.metric]})")
    oos = result.oos_summary()
    if oos:
        print(
            f"walk-forward {oos['spec']}: {oos['windows']} windows, net PnL after fees: "
            f"in-sample {oos['is_net_pnl_after_fees_scaled']:.4f} (scaled to the test "
            f"windows' length), out-of-sample "
            f"{oos['oos_net_pnl_after_fees']:.4f} (before fees "
            f"{oos['oos_net_pnl_before_fees']:.4f}; "
            f"{oos['oos_positive_windows_after_fees']:.0%} of test windows positive after fees)"
        )
        if oos["failed_windows"]:
            print(
                f"warning: {oos['failed_windows']} of {oos['windows']} test windows failed or "
                "were skipped (oos_error in walk_forward.parquet); they add nothing to the "
                "out-of-sample sums, and promote refuses an out-of-sample gate on them",
                file=sys.stderr,
            )
    print(f"results in {args.out}")
    return 1 if run["failed"] == run["runs"] or no_best else 0


def _add_sweep_parser(sub) -> None:
    # No import of workbench.sweeps here (pandas, plotly, Dask: 0.7 s): every
    # command builds this parser, the kill switch too.
    sw = sub.add_parser("sweep", help="fast replays over a parameter grid on Dask")
    sw.add_argument("--config", required=True)
    sw.add_argument("--data", default=None, help="tick file; default: the config's replay path")
    sw.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="NAME=SPEC",
        help="a condition field and its values: a,b,c or START:STOP:STEP (inclusive)",
    )
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address; default: local")
    sw.add_argument(
        "--workers", type=int, default=None, help="local workers (default: one per core)"
    )
    sw.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="--scheduler: seconds to wait for it to answer, then for --workers (default 30)",
    )
    sw.add_argument(
        "--metric",
        default="net_pnl_after_fees",
        help="the statistic that picks the best: a summary column "
        "(default net_pnl_after_fees; net_pnl is before fees; sharpe, calmar, ...)",
    )
    sw.add_argument(
        "--minimize",
        action="store_true",
        help="lower --metric is better (not for drawdowns: they are <= 0, higher is better)",
    )
    sw.add_argument("--walk-forward", default=None, metavar="train=5d,test=1d")
    sw.add_argument("--search", choices=["grid", "optuna"], default="grid")
    sw.add_argument("--trials", type=int, default=32, help="--search optuna: how many trials")
    sw.add_argument("--out", required=True, help="folder for results.parquet, best/, ...")
    sw.add_argument(
        "--force",
        action="store_true",
        help="--out holds an earlier sweep: remove its results (only those) and sweep again",
    )
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_sweep)


_SYNTH_OPTIONS = {"symbol": "--symbol", "n": "--ticks", "start_price": "--start-price"}


def _data_synth(args: argparse.Namespace) -> int:
    from workbench.marketdata import synth_ticks, write_ticks

    if args.ticks <= 0:
        print("error: --ticks must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        table = synth_ticks(args.symbol, args.ticks, args.seed, start_price=args.start_price)
    except ValueError as e:  # "start_price: ...": named as the option the user typed
        name, _, why = str(e).partition(": ")
        print(f"error: {_SYNTH_OPTIONS.get(name, name)}: {why}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = write_ticks(table, args.out)
    except (DataError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {len(table)} ticks of {args.symbol} to {path}")
    return 0


def add_research_parsers(sub) -> None:
    """Add replay, replay-notebook, promote, sweep and data to the subcommands."""
    rp = sub.add_parser("replay", help="replay a tick file through the pipeline")
    rp.add_argument("--config", required=True)
    rp.add_argument("--data", default=None, help="tick file; default: the config's replay path")
    rp.add_argument("--speed", type=_speed, default=0.0, help="0 = as fast as possible")
    rp.add_argument("--mode", choices=["wire", "fast"], default="wire")
    rp.add_argument("--out", default=None, help="folder for results and report.html")
    rp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="condition override for every condition, e.g. turning_point=0.1",
    )
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.set_defaults(func=_replay)

    rn = sub.add_parser("replay-notebook", help="run notebooks/03_replay.ipynb with papermill")
    rn.add_argument("--out", required=True, help="folder for the executed notebook and results")
    rn.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter, as papermill's -p",
    )
    rn.add_argument("--config", default=None)
    rn.add_argument("--data", default=None)
    rn.add_argument("--mode", choices=["wire", "fast"], default=None)
    rn.add_argument("--speed", type=_speed, default=None)
    rn.set_defaults(func=_replay_notebook)

    pr = sub.add_parser("promote", help="write a config from a replay that passes thresholds")
    pr.add_argument("--replay", required=True, help="a folder written by replay --out")
    pr.add_argument("--out", required=True, help="the config to write")
    pr.add_argument("--force", action="store_true", help="replace --out if it exists")
    pr.add_argument("--max-drawdown", type=_threshold, default=None, help="largest drawdown")
    pr.add_argument("--min-trades", type=int, default=None)
    pr.add_argument("--min-net-pnl", type=_threshold, default=None)
    pr.add_argument("--min-win-rate", type=_threshold, default=None)
    pr.add_argument("--min-sharpe", type=_threshold, default=None)
    pr.add_argument(
        "--min-oos-net-pnl",
        type=_threshold,
        default=None,
        help="walk-forward: least out-of-sample net PnL after fees over all test windows",
    )
    pr.add_argument(
        "--min-oos-positive-windows",
        type=_threshold,
        default=None,
        help="walk-forward: least share (0-1) of test windows with a PnL after fees > 0",
    )
    pr.set_defaults(func=_promote)
    _add_sweep_parser(sub)

    data = sub.add_parser("data", help="tick data tools")
    data_sub = data.add_subparsers(dest="action", required=True)
    synth = data_sub.add_parser("synth", help="write deterministic synthetic ticks")
    synth.add_argument("--symbol", required=True)
    synth.add_argument("--ticks", type=int, required=True)
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument(
        "--start-price",
        type=lambda t: finite_arg(t, zero=False, says=" is not a price > 0"),
        default=100.0,
    )
    synth.add_argument("--out", required=True, help=".csv or .parquet")
    synth.set_defaults(func=_data_synth)
