"""The operations commands: the kill switch, CURVE keys and service files."""

from __future__ import annotations

import argparse
import sys

from workbench.cli import EXIT_USAGE, _load, _seconds
from workbench.exceptions import EXIT_ERROR, ConfigurationError


def _trading(args: argparse.Namespace) -> int:
    """halt / resume / state: one request to the running executor's command socket.

    ``halt --flatten`` exits 1 (`EXIT_ERROR`) when a position stays open,
    naming each symbol and why on stderr; the executor is HALTED all the same.
    No executor answered, or it refused: 75, nothing was done; an executor of another run
    answered (a shared command address) or refused our CURVE key (a retry cannot help): 2.
    """
    from workbench.config.loading import COMMAND_FIELDS, load_command_config, load_config
    from workbench.exceptions import TemporaryError
    from workbench.messaging.security import RefusedByPeer
    from workbench.notebook.control import not_flattened, send_command

    try:
        cfg = load_config(args.config)
    except ConfigurationError as first:
        for p in first.problems:
            print(p, file=sys.stderr)
        try:  # a typo elsewhere must not stop a halt: whom to ask is enough
            cfg = load_command_config(args.config)
        except ConfigurationError as e:
            for p in e.problems:
                if p not in first.problems:  # a file that does not read says so once
                    print(p, file=sys.stderr)
            return EXIT_USAGE
        print(f"(the config does not load; using its {', '.join(COMMAND_FIELDS)}, runner ids only)",
              file=sys.stderr)  # fmt: skip
    flatten = getattr(args, "flatten", False)
    try:
        cmd_args = {"flatten": True} if flatten else {}
        reply = send_command(cfg, args.command, cmd_args, timeout_s=args.timeout)
    except (TemporaryError, ConfigurationError) as e:  # not done: 75 (2 for a bad argument)
        late = args.command == "halt" and "no answer" in str(e)  # it may be served later
        done = "; the halt may still take effect: check `workbench state`" if late else ""
        print(f"error: {e}{done or '; nothing was done'}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, RefusedByPeer) else e.exit_code  # keys, not luck
    print(
        f"{reply.get('run_id') or cfg.run_id}: trading state {reply['trading_state']}"
        + (f" ({reply['reason']})" if reply.get("reason") else "")
        + f"  positions {reply.get('positions', {})}"
    )
    left = not_flattened(reply) if flatten else {}
    for sym, why in sorted(left.items()):
        print(f"not flattened: {sym}: {why}", file=sys.stderr)
    if left:
        state = reply["trading_state"]
        print(f"error: {len(left)} position(s) still open; trading state {state}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _add_trading_parsers(sub) -> None:
    for name, text in (
        ("halt", "stop all new orders now (the executor journals it; a restart stays halted)"),
        ("resume", "let orders out again after a halt"),
        ("reduce", "only orders that shrink a position; resting ones that would grow it cancelled"),
        ("state", "print the executor's trading state and positions"),
    ):
        k = sub.add_parser(name, help=text)
        k.add_argument("--config", required=True, help="the running pipeline's config")
        k.add_argument(
            "--timeout",
            type=_seconds,
            default=None,
            help="seconds to wait for the executor (default 3"
            + ("; 10 with --flatten)" if name == "halt" else ")"),
        )
        if name == "halt":
            k.add_argument(
                "--flatten",
                action="store_true",
                help="then send orders closing every position; exit 1 naming any left open",
            )
        k.set_defaults(func=_trading)


def _keys_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.messaging.curve_keys import config_lines, generate_keys
    from workbench.messaging.security import pipeline_members

    if args.config:
        cfg = _load(args.config)
        if cfg is None:
            return EXIT_USAGE
        members = pipeline_members(cfg)
        if also := [n for n in args.names or [] if n in members]:
            said = ", ".join(map(repr, also))
            print(f"error: --names: {said} is the config's already (--config writes a pair "
                  "per runner and the supervisor)", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        names = [*members, *(args.names or ["tap"])]
    else:
        names = args.names or ["gateway", "executor", "sr-1", "supervisor", "tap"]
    # Absolute: a config reads a relative keys_dir from its own folder, not the shell's.
    folder = Path(args.dir).absolute()
    try:
        publics = generate_keys(folder, names, force=args.force)
    except (FileExistsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"# wrote {len(publics)} key pairs to {folder} (secret files mode 0600)")
    print(config_lines(publics, str(folder)), end="")
    return 0


def _watchdog_s(text: str) -> int:
    """WatchdogSec=: whole seconds >= 1 (systemd reads 0 as off, and a negative is invalid)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds >= 1")
    return value


def _key_names(value: str) -> list[str]:
    """Names of key pairs: each a plain file name (``<name>.key`` goes in the folder)."""
    from workbench.config.model import plain_name

    names = value.split(",")
    bad = [n for n in names if not plain_name(n)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(repr, bad))}: a name must be a plain file name"
            " (not empty, no '/', no leading '.', no spaces)"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # a,a wrote one pair, then found its secret file: "exists; pass --force"
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, repeated))} given twice")
    return names


def _add_keys_parser(sub) -> None:
    keys = sub.add_parser("keys", help="CURVE key pairs for the bus")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    gen = keys_sub.add_parser("generate", help="write key pairs, print the [security] lines")
    gen.add_argument("dir", help="folder for <name>.key and <name>.key_secret (made 0700)")
    gen.add_argument("--config", default=None, help="one pair per runner of this config")
    gen.add_argument("--names", type=_key_names, default=None, help="comma-separated names")
    gen.add_argument("--force", action="store_true", help="replace existing secret files")
    gen.set_defaults(func=_keys_generate)


# -- deploy (systemd) ------------------------------------------------------------------


def _deploy_systemd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.exceptions import ConfigurationError
    from workbench.supervisor.hosts import find_host
    from workbench.supervisor.systemd import UNIT_NAME, UnitSpec, unit_problems, write_units

    cfg = _load(args.config)
    if cfg is None:
        return EXIT_USAGE
    known = [cfg.executor.id, cfg.gateway.id, *(s.id for s in cfg.strategies)]
    if args.per_runner:  # each unit's `up` would take the same run (its lock, its telemetry)
        print(
            "error: --per-runner: units of one config on one machine are one run, which one "
            "`up` supervises; to run each runner apart, give each its host in [[hosts]]",
            file=sys.stderr,
        )
        return EXIT_USAGE
    problems = unit_problems(cfg)
    if problems:
        print("\n".join(problems), file=sys.stderr)
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
        name = name if sep else "-".join(runners)
        try:
            find_host(cfg, runners)  # with [[hosts]], `up --runners` must name one host's
        except ConfigurationError as e:
            print(f"--runners {item}: {e}", file=sys.stderr)
            return EXIT_USAGE
        if not UNIT_NAME.fullmatch(name):
            print(f"--runners {item}: {name!r} is no unit name: use [A-Za-z0-9_.:-], "
                  "not starting with '.'", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        groups.append((name, runners))
    if len(groups) > 1 and not cfg.hosts:  # as --per-runner: the second `up` finds it taken
        print(
            "error: --runners given for several units but the config has no [[hosts]]: units "
            "of one config on one machine are one run, which one `up` supervises; give each "
            "group its host in [[hosts]]",
            file=sys.stderr,
        )
        return EXIT_USAGE
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
            stop_grace_s=cfg.supervisor.stop_grace_s,
        )
        for name, runners in groups
    ]
    try:
        paths = write_units(specs, Path(args.out), force=args.force)
    except ValueError as e:  # a line a unit cannot hold, or a unit edited by hand: nothing written
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for path in paths:
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
    sd.add_argument("--per-runner", action="store_true", help="refused: use [[hosts]]")
    sd.add_argument("--out", default=".", help="folder for the .service files")
    sd.add_argument("--user", default=None, help="User= of the units")
    sd.add_argument(
        "--watchdog-s", type=_watchdog_s, default=30, help="WatchdogSec= of the units (>= 1)"
    )
    sd.add_argument(
        "--env-file", default=None, help="EnvironmentFile= with the secrets (mode 0600)"
    )
    sd.add_argument("--force", action="store_true", help="replace unit files that differ")
    sd.set_defaults(func=_deploy_systemd)


def add_ops_parsers(sub) -> None:
    """Add the kill switch, keys and deploy to the subcommands."""
    _add_trading_parsers(sub)
    _add_keys_parser(sub)
    _add_deploy_parser(sub)
