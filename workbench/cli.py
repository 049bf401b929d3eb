"""The ``workbench`` command line.

workbench config check FILE        validate a config; exit 2 listing each problem
workbench config show FILE         print the effective config (file + env) as TOML
workbench up --config FILE         supervise the pipeline headless (--runners: one host's)
workbench run ROLE --config FILE   run one runner in the foreground
workbench halt|resume|reduce|state --config FILE   the kill switch of a running pipeline;
                                   halt --flatten exits 1 naming each position left open
workbench replay --config FILE     replay a tick file (wire or fast) into a report
workbench replay-notebook ...      the replay notebook run by papermill
workbench promote ...              write a config when a replay passes the thresholds
workbench data synth ...           write deterministic synthetic ticks
workbench keys generate DIR        write CURVE key pairs, print the config lines
workbench deploy systemd ...       write systemd units that run `workbench up`
workbench sweep --config FILE ...  fast replays over a parameter grid on Dask
workbench record --config FILE     record the live feed to a Parquet dataset
workbench diff RUN_A RUN_B         first differences in signals and fills; exit 1 if any"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from workbench.exceptions import EXIT_CONFIG, EXIT_ERROR, EXIT_TEMPORARY, ConfigurationError

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


def _runner_names(value: str) -> list[str]:
    """``--runners``: at least one name (an empty list supervised nothing, forever)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one runner, e.g. gateway,executor")
    return names


def _up(args: argparse.Namespace) -> int:
    import time

    from workbench.exceptions import TemporaryError
    from workbench.runner.logs import configure_logging
    from workbench.supervisor import Supervisor, prepare_run_folder

    cfg = _load(args.config)
    if cfg is None or _exposure_refused(cfg):
        return EXIT_USAGE
    configure_logging(cfg.runtime.log_level, json=False, runner="supervisor", run_id=cfg.run_id)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    from workbench.config import BUS_BINDERS
    from workbench.messaging.binding import address_in_use
    from workbench.supervisor.hosts import host_config
    from workbench.supervisor.run_folder import lock_run, reap_orphans
    from workbench.supervisor.stages import runner_specs

    try:
        # Before the run folder is touched: another run up on this config's
        # supervisor address (a second `up`, a notebook) keeps its folder.
        runner_specs(cfg, args.runners)  # names none that does not exist
        run_path = host_config(cfg, args.runners).run_path()
        try:
            lock_run(run_path, cfg.run_id)
            reap_orphans(run_path)  # runners a SIGKILLed supervisor left hold its ports
        except TemporaryError as e:  # another `up` (or notebook) runs it
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code
        except OSError:
            pass  # an unwritable run_dir: named when the run folder is prepared below
        bus = host_config(cfg, args.runners).bus
        here = set(args.runners or [cfg.gateway.id, cfg.executor.id])
        runner_of = {"executor": cfg.executor.id, "gateway": cfg.gateway.id}
        for field, role in BUS_BINDERS.items():  # this host's supervisor, and runners here
            if role != "supervisor" and runner_of[role] not in here:
                continue
            address = getattr(bus, f"{field}_address")
            if address_in_use(address):
                print(
                    f"error: {address} (bus.{field}_address) is in use: is run "
                    f"{cfg.run_id!r} or another on these ports up already?",
                    file=sys.stderr,
                )
                return EXIT_TEMPORARY
        sc = cfg.supervisor
        if sc.http_port and address_in_use(f"tcp://{sc.http_host}:{sc.http_port}"):
            print(f"error: supervisor.http_port {sc.http_port} is in use", file=sys.stderr)
            return EXIT_TEMPORARY
    except ConfigurationError as e:
        print(f"{cfg.source}: --runners: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config_path = prepare_run_folder(cfg, args.runners)  # or another `up` runs it: 75
    except (ConfigurationError, TemporaryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        sup = Supervisor(cfg, runners=args.runners, config_path=config_path)
    except ConfigurationError as e:
        print(f"{cfg.source}: --runners: {e}", file=sys.stderr)
        return EXIT_USAGE
    from workbench.supervisor.systemd import SupervisorNotifier

    systemd = SupervisorNotifier()
    t0 = time.monotonic()
    try:
        sup.start()
    except (TemporaryError, ConfigurationError) as e:  # its ports busy, or not this host's
        sup.stop()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"run {cfg.run_id}: health {sup.health_url}/health  metrics {sup.health_url}/metrics")
    print(f"logs {sup.logs.folder}/<runner>.jsonl")
    ends = cfg.gateway.feed == "replay" or cfg.gateway.simulated.max_ticks > 0
    failed = cut_short = False
    try:
        while not stop.wait(0.1):
            systemd.tick(sup)
            if sup.any_failed():
                failed = True
                break
            if ends and sup.eos_reached.is_set():
                _let_the_executor_finish(sup)
                break
        replay = cfg.gateway.feed == "replay"  # a live feed stopped is a live run ended
        cut_short = replay and stop.is_set() and not sup.eos_reached.is_set()
    finally:
        systemd.stopping()
        sup.stop()
    elapsed = time.monotonic() - t0
    if sup.loop_error is not None:  # it stopped every runner: say why
        print(f"supervisor failed: {sup.loop_error!r}", file=sys.stderr)
    for s in sup.status():
        if s.state == "failed":
            said = sup.logs.last_error(s.runner)  # what is wrong, not only "see the logs"
            print(f"runner {s.runner} failed: {s.detail}" + (f"\n  {said}" if said else ""),
                  file=sys.stderr)  # fmt: skip
    if sup.eos_summary is not None:
        _print_summary(sup, elapsed)
    if cut_short and not failed:  # a CI job must not take it for a finished replay
        print(f"interrupted before the end of the stream ({signal.Signals(received[0]).name})",
              file=sys.stderr)  # fmt: skip
        return 128 + received[0]
    if failed and any(s.state == "failed" and s.exit_code == EXIT_CONFIG for s in sup.status()):
        return EXIT_CONFIG  # a runner's config error: a service manager must not restart it
    return 1 if failed else 0


def _let_the_executor_finish(sup) -> None:
    """After end-of-stream the executor stays a few ack intervals, repeating its
    acks, then exits by itself: wait for that (bounded) before stopping the rest,
    so a strategy on another host hears its last acks and finishes too."""
    from workbench.execution.runner import FINISH_LINGER_ACKS

    ex = sup.config.executor
    if not ex.exit_on_eos or ex.id not in sup.runner_names:
        return
    sup.wait_for(
        lambda: next(s for s in sup.status() if s.runner == ex.id).pid is None,
        FINISH_LINGER_ACKS * ex.ack_interval_s + 2.0,
    )


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


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    import importlib

    module = importlib.import_module(f"runners.{args.role}")
    return module.main(rest)


def finite_arg(text: str, *, zero: bool, says: str) -> float:
    """An argparse number: finite and > 0 (or >= 0 with ``zero``); else ``says`` names it.

    Raises:
        argparse.ArgumentTypeError: ``{text!r}{says}``.
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ((value > 0 or (zero and value == 0)) and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}{says}")
    return value


def _seconds(text: str) -> float:
    """A wait in seconds: finite and > 0 (a negative one waited forever)."""
    return finite_arg(text, zero=False, says=" is not a number of seconds > 0")


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
        type=_runner_names,
        default=None,
        help="comma-separated runner names to run on this host (default: all)",
    )
    up.set_defaults(func=_up)

    # No -h of its own: `workbench run strategy --help` is the runner's (--config, --id).
    run = sub.add_parser("run", help="run one runner in the foreground", add_help=False)
    run.add_argument("role", choices=["gateway", "strategy", "executor"])
    run.set_defaults(func=None)

    from workbench.cli_live import add_live_parsers
    from workbench.cli_ops import add_ops_parsers
    from workbench.cli_research import add_research_parsers

    add_research_parsers(sub)
    add_ops_parsers(sub)
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
    import sqlite3

    # SIGTERM unwinds like Ctrl-C (`up` and `record` install their own stops).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return args.func(args)
    except Terminated:
        print(f"workbench {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:  # Ctrl-C: what the command started is closed on the way out
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, sqlite3.DatabaseError) as e:  # a path that is not what was expected
        print(f"workbench {args.command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds as Ctrl-C does, so what a command started is closed on the way out."""


def _terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup short
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
