"""What every runner's ``main`` shares: args, config, container, run, exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import structlog

from workbench.config import WorkbenchConfig, load_config
from workbench.container import Container
from workbench.exceptions import EXIT_ERROR, EXIT_OK, ConfigurationError, WorkbenchError
from workbench.messaging import codec
from workbench.runner.base import Runner, StartupBeats
from workbench.runner.logs import configure_logging
from workbench.runner.parent_link import (
    GATE_ENV,
    die_with_parent,
    install_stop_handlers,
    wait_at_gate,
)


def parse_args(role: str, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``--config FILE`` (and ``--id`` for a strategy)."""
    p = argparse.ArgumentParser(prog=f"runners.{role}", description=f"The {role} runner.")
    p.add_argument("--config", required=True, help="TOML config file")
    if role == "strategy":
        p.add_argument("--id", default=None, help="strategy id (needed with several)")
    return p.parse_args(argv)


def run_role(
    role: str,
    argv: list[str] | None,
    runner_id: Callable[[WorkbenchConfig, argparse.Namespace], str],
    build: Callable[[Container], Runner],
) -> int:
    """Load config, build the runner from the container, run it, always clean up."""
    args = parse_args(role, argv)
    try:
        cfg = load_config(args.config)
        rid = runner_id(cfg, args)
    except ConfigurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    configure_logging(
        cfg.runtime.log_level, json=True, runner=rid, run_id=cfg.run_id, pid=os.getpid()
    )
    log = structlog.get_logger()
    die_with_parent()
    if os.environ.get(GATE_ENV) == "stdin" and not wait_at_gate():
        log.info("gate_closed_before_start")
        return EXIT_OK
    container = Container(config=cfg, runner_id=rid, strategy_id=getattr(args, "id", None) or rid)
    runner: Runner | None = None
    try:
        codec.self_check()
        container.init_resources()
        beats = StartupBeats(role, container.heartbeats(), cfg.runtime.heartbeat_interval_s)
        try:
            runner = build(container)
        finally:
            beats.stop()
        install_stop_handlers(runner.stop)
        return runner.run()
    except WorkbenchError as e:
        log.error(e.log_event, error=str(e), exc_info=e.log_traceback)
        return e.exit_code
    except Exception as e:
        log.error("runner_crashed", error=repr(e), exc_info=True)
        return EXIT_ERROR
    finally:
        container.shutdown_resources()
