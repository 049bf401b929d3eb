"""The run folder step: done by whoever starts a supervisor, before it starts.

``runs/<run_id>/`` records what ran: ``config.toml`` (every runner reads it),
logs, journal, strategy state. A replay is a session, so an earlier replay's
folder is moved aside first; a live run resumes from what its folder holds,
unless a replay left it (then it is moved aside too).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import structlog

from workbench.config import WorkbenchConfig
from workbench.supervisor.hosts import host_config

log = structlog.get_logger()

CONFIG_FILE = "config.toml"


def archive_previous_run(run_path: Path) -> Path | None:
    """Move an earlier run's folder aside, so a replay starts from nothing.

    A replay is a session: its journal and strategy state must not carry over
    from the last one (a live run, by contrast, resumes from them).

    Returns:
        Where the earlier run went, or None if there was none.
    """
    if not run_path.exists() or not any(run_path.iterdir()):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run_path.stat().st_mtime))
    dest = run_path.with_name(f"{run_path.name}.{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = run_path.with_name(f"{run_path.name}.{stamp}.{n}")
    run_path.rename(dest)
    log.info("previous_run_archived", path=str(dest))
    return dest


def prepare_run_folder(config: WorkbenchConfig, runners: list[str] | None = None) -> Path:
    """Archive an earlier replay's folder and write this host's ``config.toml``.

    Args:
        config: What will run.
        runners: This host's runners (``workbench up --runners``), or None for all.

    Returns:
        The path of the written ``config.toml``; pass it to `Supervisor`.

    Raises:
        ConfigurationError: ``runners`` matches none of the config's ``[[hosts]]``.
    """
    config = host_config(config, runners)
    run_path = config.run_path()
    if config.gateway.feed == "replay" or held_a_replay(run_path):
        # A live run resumes only a live run: a replay's journal (its
        # end-of-stream, its positions) would end it at once or trade on them.
        archive_previous_run(run_path)
    return config.save(run_path / CONFIG_FILE)


def held_a_replay(run_path: Path) -> bool:
    """Whether the run folder's ``config.toml`` is a replay's (promotion keeps the run_id)."""
    try:
        with open(run_path / CONFIG_FILE, "rb") as f:
            saved = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return (saved.get("gateway") or {}).get("feed", "simulated") == "replay"
