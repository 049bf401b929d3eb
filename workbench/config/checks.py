"""``workbench config check``: what a runner would refuse at start, found before anything starts.

Field validation happens when a config loads; these checks look outside it (files,
folders, keys, classes, the exchange library), so a runner is not started,
crashed with a configuration error and restarted five times to say the same.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from workbench.config.addresses import is_loopback, tcp_host
from workbench.config.loading import _at, exposure_problems, live_risk_problems
from workbench.config.model import WorkbenchConfig
from workbench.config.sections import BUS_BINDERS
from workbench.exceptions import ConfigurationError


def check_config(cfg: WorkbenchConfig) -> list[str]:
    """Deeper checks than field validation: files exist, strategies build, keys match.

    Returns:
        One message per problem, each naming the file and the field.
    """
    from workbench.strategies.base import load_strategy

    problems: list[str] = []
    src = functools.partial(_at, cfg)
    data = cfg.resolve(cfg.gateway.replay.path)
    if cfg.gateway.feed == "replay" and not data.is_file():
        if not data.is_dir():
            problems.append(f"{src('gateway.replay.path')}: file not found: {data}")
        elif not any(data.rglob("*.parquet")):  # a recorded dataset folder replays too
            problems.append(f"{src('gateway.replay.path')}: {data} holds no recorded dataset")
    problems += live_risk_problems(cfg)
    problems += exposure_problems(cfg)
    try:  # `up` writes it to the run folder (a None in params crashed it there)
        cfg.to_toml()
    except ConfigurationError as e:
        problems.append(f"{cfg.source or '<config>'}: {e}")
    # A runner would crash on them, be restarted five times, and name neither.
    journal, state = cfg.journal_path(), cfg.state_path()
    if journal.is_dir():
        problems.append(f"{src('executor.journal_path')}: {journal} is a folder, not a file")
    if state.exists() and not state.is_dir():
        problems.append(f"{src('runtime.state_dir')}: {state} is a file, not a folder")
    problems += _folder_problems(cfg)
    known = {s.id for s in cfg.strategies}
    for sid in cfg.gateway.replay.subscribers or []:
        if sid not in known:
            problems.append(f"{src('gateway.replay.subscribers')}: no strategy {sid!r}")
    for i, s in enumerate(cfg.strategies):
        try:
            load_strategy(s.class_path, s.id, s.params)
        except ConfigurationError as e:
            problems.append(f"{src(f'strategies[{i}]')} ({s.id}): {e}")
    from workbench.execution.broker import ReplayableBroker, load_broker, replay_refusal

    try:
        broker = load_broker(cfg.executor.broker.class_path, cfg.executor.broker.params)
    except ConfigurationError as e:
        problems.append(f"{src('executor.broker')}: {e}")
    else:
        if cfg.gateway.feed == "replay" and not isinstance(broker, ReplayableBroker):
            problems.append(f"{src('executor.broker.class_path')}: {replay_refusal(cfg)}")
    return problems + _feed_problems(cfg) + _key_problems(cfg) + _loopback_problems(cfg)


def _loopback_problems(cfg: WorkbenchConfig) -> list[str]:
    """With ``[[hosts]]`` on several machines, a bus address on loopback reaches one only.

    The kill switch's ``command_address`` left at its default listened on the
    exchange host's loopback: ``workbench halt`` from another host found nothing.
    """
    addresses = [h.telemetry_address for h in cfg.hosts]
    machines = {tcp_host(a) for a in addresses} - {None}
    if len(machines) < 2 or any(is_loopback(a) for a in addresses):
        return []
    return [
        f"{_at(cfg, f'bus.{name}_address')}: {address} is loopback, but [[hosts]] are on "
        "several machines: the others cannot reach it; give the binding host's address"
        for name in BUS_BINDERS
        if name != "telemetry"  # each host's own: [[hosts]] telemetry_address
        and is_loopback(address := getattr(cfg.bus, f"{name}_address"))
    ]


def _folder_problems(cfg: WorkbenchConfig) -> list[str]:
    """The run folder (every runner writes there first) and a live recorder's must be creatable."""
    folders = [("runtime.run_dir", "the run folder", cfg.run_path())]
    if cfg.recorder.enabled and cfg.gateway.feed != "replay":
        folders.append(("recorder.path", "the recorder's folder", cfg.recorder_path()))
    problems = []
    for field, what, path in folders:
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None or (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
            continue
        why = "is a file" if not existing.is_dir() else "is not writable"
        problems.append(f"{_at(cfg, field)}: cannot create {what} {path}: {existing} {why}")
    return problems


def _feed_problems(cfg: WorkbenchConfig) -> list[str]:
    """An exchange feed must publish something, from an exchange ccxt has."""
    if cfg.gateway.feed != "exchange":
        return []
    ex = cfg.gateway.exchange
    problems = []
    if not (ex.trades or ex.bids_asks):
        problems.append(
            f"{_at(cfg, 'gateway.exchange.trades')}: trades and bids_asks are both false: "
            "the feed would publish nothing"
        )
    try:
        from workbench.exchanges.connect import ccxtpro
    except ConfigurationError as e:  # the extra is not installed
        return [*problems, f"{cfg.source or '<config>'}: {e}"]
    if getattr(ccxtpro, ex.exchange, None) is None:
        problems.append(
            f"{_at(cfg, 'gateway.exchange.exchange')}: ccxt has no WebSocket exchange "
            f"{ex.exchange!r} (see ccxt.pro.exchanges)"
        )
    return problems


def _key_problems(cfg: WorkbenchConfig) -> list[str]:
    """With CURVE on, each secret key this host holds must load and match its public key.

    A member whose secret is neither in the environment nor in ``keys_dir`` is
    not a problem here: on several hosts each holds only its own runners' keys.
    """
    sec = cfg.security
    if not sec.curve:
        return []
    from workbench.messaging.security import load_identity, pipeline_members, secret_env_name

    members = pipeline_members(cfg)
    keys: Path | None = cfg.resolve(sec.keys_dir) if sec.keys_dir else None
    from_env = [m for m in members if os.environ.get(secret_env_name(m))]
    if keys is not None and not keys.is_dir() and len(from_env) < len(members):
        return [f"{_at(cfg, 'security.keys_dir')}: {keys} is not a folder"]
    try:
        files = set(os.listdir(keys)) if keys is not None and keys.is_dir() else set()
    except OSError as e:  # a keys folder of another user (0700): run the check as it
        return [f"{_at(cfg, 'security.keys_dir')}: cannot read {keys}: {e.strerror}"]
    problems = []
    for name in members:
        if name in from_env or f"{name}.key_secret" in files:  # public keys are checked at load
            try:
                load_identity(cfg, name)
            except ConfigurationError as e:
                problems.append(str(e))
    return problems
