"""The ``workbench`` command line.

    workbench config check FILE        validate a config; exit 2 listing each problem
    workbench config show FILE         print the effective config (file + env) as TOML
    workbench run ROLE --config FILE   run one runner in the foreground
    workbench data synth ...           write deterministic synthetic ticks
"""

from __future__ import annotations

import argparse
import sys

from workbench.exceptions import ConfigurationError, DataError

EXIT_USAGE = 2


def _config_check(args: argparse.Namespace) -> int:
    from workbench.config import check_config, load_config

    try:
        cfg = load_config(args.file)
    except ConfigurationError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return EXIT_USAGE
    problems = check_config(cfg)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"{args.file}: ok")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from workbench.config import load_config

    try:
        cfg = load_config(args.file)
    except ConfigurationError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return EXIT_USAGE
    print(cfg.to_toml(), end="")
    return 0


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    import importlib

    module = importlib.import_module(f"runners.{args.role}")
    return module.main(rest)


def _data_synth(args: argparse.Namespace) -> int:
    from workbench.marketdata.synth import synth_ticks, write_ticks

    if args.ticks <= 0:
        print("error: --ticks must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        table = synth_ticks(args.symbol, args.ticks, args.seed, start_price=args.start_price)
        path = write_ticks(table, args.out)
    except (DataError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {len(table)} ticks of {args.symbol} to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="check or show a config file")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    chk = cfg_sub.add_parser("check", help="validate; exit 2 listing every problem")
    chk.add_argument("file")
    chk.set_defaults(func=_config_check)
    show = cfg_sub.add_parser("show", help="print the effective config as TOML")
    show.add_argument("file")
    show.set_defaults(func=_config_show)

    run = sub.add_parser("run", help="run one runner in the foreground")
    run.add_argument("role", choices=["gateway", "strategy", "executor"])
    run.set_defaults(func=None)

    data = sub.add_parser("data", help="tick data tools")
    data_sub = data.add_subparsers(dest="action", required=True)
    synth = data_sub.add_parser("synth", help="write deterministic synthetic ticks")
    synth.add_argument("--symbol", required=True)
    synth.add_argument("--ticks", type=int, required=True)
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument("--start-price", type=float, default=100.0)
    synth.add_argument("--out", required=True, help=".csv or .parquet")
    synth.set_defaults(func=_data_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        return _run(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
