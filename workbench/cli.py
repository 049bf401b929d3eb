"""The ``workbench`` command line.

workbench config check FILE        validate a config; exit 2 listing each problem
workbench config show FILE         print the effective config (file + env) as TOML
workbench run ROLE --config FILE   run one runner in the foreground
workbench halt|resume|state --config FILE   the kill switch of a running pipeline
workbench data synth ...           write deterministic synthetic ticks
workbench keys generate DIR        write CURVE key pairs, print the config lines
workbench deploy systemd ...       write systemd units that run `workbench up`
workbench sweep --config FILE ...  fast replays over a parameter grid on Dask
workbench record --config FILE     record the live feed to a Parquet dataset
workbench diff RUN_A RUN_B         first differences in signals and fills; exit 1 if any
"""

from __future__ import annotations

import argparse
import sys

from workbench.exceptions import ConfigurationError, DataError

EXIT_USAGE = 2


def _load(path: str):
    """The config at ``path``, or None after printing each problem."""
    from workbench.config import load_config

    try:
        return load_config(path)
    except ConfigurationError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return None


def _config_check(args: argparse.Namespace) -> int:
    from workbench.config import check_config

    cfg = _load(args.file)
    if cfg is None:
        return EXIT_USAGE
    problems = check_config(cfg)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"{args.file}: ok")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return EXIT_USAGE
    print(cfg.to_toml(), end="")
    return 0


def _up(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from workbench.runner.logs import configure_logging
    from workbench.supervisor import Supervisor, prepare_run_folder

    cfg = _load(args.config)
    if cfg is None or _exposure_refused(cfg):
        return EXIT_USAGE
    configure_logging(cfg.runtime.log_level, json=False, runner="supervisor", run_id=cfg.run_id)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config_path = prepare_run_folder(cfg, args.runners)
        sup = Supervisor(cfg, runners=args.runners, config_path=config_path)
    except ConfigurationError as e:
        print(f"{cfg.source}: --runners: {e}", file=sys.stderr)
        return EXIT_USAGE
    from workbench.supervisor.systemd import SupervisorNotifier

    systemd = SupervisorNotifier()
    t0 = time.monotonic()
    sup.start()
    print(f"run {cfg.run_id}: health {sup.health_url}/health  metrics {sup.health_url}/metrics")
    print(f"logs {sup.logs.folder}/<runner>.jsonl")
    ends = cfg.gateway.feed == "replay" or cfg.gateway.simulated.max_ticks > 0
    failed = False
    try:
        while not stop.wait(0.1):
            systemd.tick(sup)
            if sup.any_failed():
                failed = True
                break
            if ends and sup.eos_reached.is_set():
                break
    finally:
        systemd.stopping()
        sup.stop()
    elapsed = time.monotonic() - t0
    for s in sup.status():
        if s.state == "failed":
            print(f"runner {s.runner} failed: {s.detail}", file=sys.stderr)
    if sup.eos_summary is not None:
        _print_summary(sup, elapsed)
    return 1 if failed else 0


def _exposure_refused(cfg) -> bool:
    """True (after printing why) when health/metrics would leave loopback without a token."""
    from workbench.config import exposure_problems

    problems = exposure_problems(cfg)
    for p in problems:
        print(p, file=sys.stderr)
    return bool(problems)


def _print_summary(sup, elapsed: float) -> None:
    from workbench.messaging.heartbeat_extras import GatewayExtra

    summary = sup.eos_summary
    gw_id = sup.config.gateway.id
    gw = sup.heartbeat(gw_id) if gw_id in sup.runner_names else None  # maybe on another host
    ticks = max(summary.get("ticks", {}).values(), default=0)
    first = GatewayExtra.from_wire(gw.extra).first_tick_ns if gw else 0
    replay_s = (summary["eos_ns"] - first) / 1e9 if first else elapsed
    rate = ticks / replay_s if replay_s > 0 else 0.0
    print(
        f"ticks {ticks}  signals {summary['signals']}  orders {summary['orders']}  "
        f"fills {summary['fills']}  realized PnL {summary['realized_pnl']:.4f}  "
        f"positions {summary['positions']}"
    )
    print(f"elapsed {elapsed:.2f} s (replay {replay_s:.3f} s, {rate:,.0f} ticks/s)")


def _trading(args: argparse.Namespace) -> int:
    """halt / resume / state: one request to the running executor's command socket."""
    from workbench.exceptions import TemporaryError
    from workbench.notebook.control import send_command

    cfg = _load(args.config)
    if cfg is None:
        return EXIT_USAGE
    cmd_args = {"flatten": True} if getattr(args, "flatten", False) else {}
    try:
        reply = send_command(cfg, args.command, cmd_args, timeout_s=args.timeout)
    except (TemporaryError, ConfigurationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"trading state {reply['trading_state']}"
        + (f" ({reply['reason']})" if reply.get("reason") else "")
        + f"  positions {reply.get('positions', {})}"
    )
    return 0


def _parse_overrides(items: list[str]) -> dict[str, float | bool]:
    out: dict[str, float | bool] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        low = raw.strip().lower()
        out[key.strip()] = low == "true" if low in ("true", "false") else float(raw)
    return out


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
    from workbench.replays.notebook import run_replay_notebook

    try:
        params = {name: _literal(value) for name, value in args.parameters}
        for key in ("config", "data", "mode", "speed"):
            if getattr(args, key) is not None:
                params[{"config": "config_path", "data": "data_path"}.get(key, key)] = getattr(
                    args, key
                )
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
    except ConfigurationError as e:
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
    from workbench.sweeps import parse_grid_args, sweep

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
            out=args.out,
            progress=not args.quiet,
        )
    except (ConfigurationError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    run = result.run
    print(
        f"sweep: {run['runs']} runs on {run['workers']} workers in {run['elapsed_s']} s, "
        f"{run['failed']} failed"
    )
    for _, row in result.failures.iterrows():
        params = ", ".join(f"{p}={row[p]}" for p in result.params)
        print(f"failed: {params}: {row['error']}", file=sys.stderr)
    if run["failed"] < run["runs"]:
        best = result.best()
        params = ", ".join(f"{p}={best[p]}" for p in result.params)
        print(f"best by {result.metric}: {params} ({result.metric} {best[result.metric]})")
    if result.walk_forward is not None:
        oos = result.oos_summary()
        print(
            f"walk-forward {oos['spec']}: {oos['windows']} windows, in-sample net PnL "
            f"{oos['is_net_pnl']:.4f}, out-of-sample {oos['oos_net_pnl']:.4f} "
            f"({oos['oos_positive_windows']:.0%} of test windows positive)"
        )
    print(f"results in {args.out}")
    return 1 if run["failed"] == run["runs"] else 0


def _add_sweep_parser(sub) -> None:
    from workbench.sweeps.tasks import METRICS

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
    sw.add_argument("--metric", default="net_pnl", choices=METRICS, help="what picks the best")
    sw.add_argument("--minimize", action="store_true", help="lower --metric is better")
    sw.add_argument("--walk-forward", default=None, metavar="train=5d,test=1d")
    sw.add_argument("--search", choices=["grid", "optuna"], default="grid")
    sw.add_argument("--trials", type=int, default=32, help="--search optuna: how many trials")
    sw.add_argument("--out", required=True, help="folder for results.parquet, best/, ...")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_sweep)


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    import importlib

    module = importlib.import_module(f"runners.{args.role}")
    return module.main(rest)


def _data_synth(args: argparse.Namespace) -> int:
    from workbench.marketdata import synth_ticks, write_ticks

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


# -- keys (CURVE) --------------------------------------------------------------------


def _keys_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.messaging.security import config_lines, generate_keys, pipeline_members

    if args.config:
        cfg = _load(args.config)
        if cfg is None:
            return EXIT_USAGE
        names = [*pipeline_members(cfg), *(args.names or ["tap"])]
    else:
        names = args.names or ["gateway", "executor", "sr-1", "supervisor", "tap"]
    try:
        publics = generate_keys(Path(args.dir), names, force=args.force)
    except (FileExistsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"# wrote {len(publics)} key pairs to {args.dir} (secret files mode 0600)")
    print(config_lines(publics, args.dir), end="")
    return 0


def _add_keys_parser(sub) -> None:
    keys = sub.add_parser("keys", help="CURVE key pairs for the bus")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    gen = keys_sub.add_parser("generate", help="write key pairs, print the [security] lines")
    gen.add_argument("dir", help="folder for <name>.key and <name>.key_secret (made 0700)")
    gen.add_argument("--config", default=None, help="one pair per runner of this config")
    gen.add_argument(
        "--names", type=lambda v: v.split(","), default=None, help="comma-separated names"
    )
    gen.add_argument("--force", action="store_true", help="replace existing secret files")
    gen.set_defaults(func=_keys_generate)


# -- deploy (systemd) ------------------------------------------------------------------


def _deploy_systemd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.supervisor.systemd import UnitSpec, write_units

    cfg = _load(args.config)
    if cfg is None:
        return EXIT_USAGE
    known = [cfg.executor.id, cfg.gateway.id, *(s.id for s in cfg.strategies)]
    if args.per_runner and cfg.hosts:
        print(
            f"{cfg.source}: hosts: --per-runner needs a config without [[hosts]] "
            "(`up --runners` must name exactly one host's runners)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    groups: list[tuple[str, list[str]]] = []
    default = [f"{h.name}={','.join(h.runners)}" for h in cfg.hosts] or [",".join(known)]
    for item in args.runners or default:
        name, sep, names = item.rpartition("=")
        runners = [n for n in names.split(",") if n]
        unknown = [n for n in runners if n not in known]
        if unknown or not runners:
            print(
                f"{cfg.source}: --runners {item}: no runner named {', '.join(unknown) or '?'}; "
                f"have {', '.join(known)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if args.per_runner:
            groups += [(r, [r]) for r in runners]
        else:
            groups.append((name if sep else "-".join(runners), runners))
    config_path = Path(args.config).resolve()
    specs = [
        UnitSpec(
            name=name,
            config=config_path,
            runners=runners,
            workdir=config_path.parent,
            user=args.user,
            watchdog_s=args.watchdog_s,
            env_file=Path(args.env_file).resolve() if args.env_file else None,
        )
        for name, runners in groups
    ]
    for path in write_units(specs, Path(args.out)):
        print(f"wrote {path}")
    return 0


def _add_deploy_parser(sub) -> None:
    dep = sub.add_parser("deploy", help="write service files")
    dep_sub = dep.add_subparsers(dest="target", required=True)
    sd = dep_sub.add_parser("systemd", help="Type=notify units that run `workbench up`")
    sd.add_argument("--config", required=True)
    sd.add_argument(
        "--runners",
        action="append",
        default=None,
        metavar="[NAME=]R1,R2",
        help="the runners of one host (repeat per host); default: one unit per [[hosts]] "
        "entry, or all runners in one unit",
    )
    sd.add_argument("--per-runner", action="store_true", help="one unit per runner")
    sd.add_argument("--out", default=".", help="folder for the .service files")
    sd.add_argument("--user", default=None, help="User= of the units")
    sd.add_argument("--watchdog-s", type=int, default=30, help="WatchdogSec= of the units")
    sd.add_argument(
        "--env-file", default=None, help="EnvironmentFile= with the secrets (mode 0600)"
    )
    sd.set_defaults(func=_deploy_systemd)


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

    up = sub.add_parser("up", help="supervise every runner headless; Ctrl-C stops")
    up.add_argument("--config", required=True)
    up.add_argument(
        "--runners",
        type=lambda v: [n for n in v.split(",") if n],
        default=None,
        help="comma-separated runner names to run on this host (default: all)",
    )
    up.set_defaults(func=_up)

    rp = sub.add_parser("replay", help="replay a tick file through the pipeline")
    rp.add_argument("--config", required=True)
    rp.add_argument("--data", default=None, help="tick file; default: the config's replay path")
    rp.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible")
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
    rn.add_argument("--speed", type=float, default=None)
    rn.set_defaults(func=_replay_notebook)

    pr = sub.add_parser("promote", help="write a config from a replay that passes thresholds")
    pr.add_argument("--replay", required=True, help="a folder written by replay --out")
    pr.add_argument("--out", required=True, help="the config to write")
    pr.add_argument("--max-drawdown", type=float, default=None, help="largest drawdown allowed")
    pr.add_argument("--min-trades", type=int, default=None)
    pr.add_argument("--min-net-pnl", type=float, default=None)
    pr.add_argument("--min-win-rate", type=float, default=None)
    pr.add_argument("--min-sharpe", type=float, default=None)
    pr.add_argument(
        "--min-oos-net-pnl",
        type=float,
        default=None,
        help="walk-forward: least out-of-sample net PnL over all test windows",
    )
    pr.add_argument(
        "--min-oos-positive-windows",
        type=float,
        default=None,
        help="walk-forward: least share (0-1) of test windows with a positive PnL",
    )
    pr.set_defaults(func=_promote)

    for name, text in (
        ("halt", "stop all new orders now (the executor journals it; a restart stays halted)"),
        ("resume", "let orders out again after a halt"),
        ("state", "print the executor's trading state and positions"),
    ):
        k = sub.add_parser(name, help=text)
        k.add_argument("--config", required=True, help="the running pipeline's config")
        k.add_argument(
            "--timeout", type=float, default=3.0, help="seconds to wait for the executor"
        )
        if name == "halt":
            k.add_argument(
                "--flatten", action="store_true", help="first send orders that close every position"
            )
        k.set_defaults(func=_trading)
    _add_sweep_parser(sub)

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
    _add_keys_parser(sub)
    _add_deploy_parser(sub)
    from workbench.cli_live import add_live_parsers

    add_live_parsers(sub)
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
