"""Replay sessions: history through the real runners (wire) or in-process (fast).

`replay` reads as its steps: prepare the config, load the ticks, run them
through the pipeline in the chosen mode, build the result, save it. Both modes
use the same `Strategy` objects, the same simulator (on the same recorded ticks) and the same
`Executor` accounting, so they give identical fills. Tests prove it.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from workbench.config import BUS_STREAMS, WorkbenchConfig, build_config, load_config
from workbench.domain.condition_spec import plain
from workbench.domain.model import Fill, Signal
from workbench.exceptions import ConfigurationError, WorkbenchError
from workbench.gateway.feeds import load_replay_ticks
from workbench.marketdata import TickTable

if TYPE_CHECKING:  # imported when called: report pulls in plotly's figures
    from workbench.replays.report import ReplayResult

log = structlog.get_logger()

Mode = Literal["wire", "fast"]
CONDITION_FIELDS = ("turning_point", "take_profit", "stop_loss", "qty", "following", "rearm")


class ReplayFailed(WorkbenchError):
    """A wire replay did not reach end-of-stream (a runner failed or it timed out)."""


def prepare_config(
    config: WorkbenchConfig | str | Path,
    data: str | Path | None = None,
    *,
    speed: float | None = None,
    condition_overrides: dict[str, Any] | None = None,
    environment: bool = True,
) -> WorkbenchConfig:
    """The config a replay runs: replay feed on ``data``, overrides applied.

    Bus, runtime and run id are left as the user has them; `replay` runs on a
    private bus in a temporary folder, so a replay never collides with a live
    session.

    Args:
        condition_overrides: Condition fields (``turning_point``, ``take_profit``,
            ``stop_loss``, ...) set on every condition of every strategy.
        environment: Apply this process's ``WORKBENCH__`` variables; False for
            a config whose environment was applied where it was made (a sweep
            task on a Dask worker).
    """
    cfg = load_config(config, environment=environment) if isinstance(config, str | Path) else config
    data_dict = cfg.model_dump()
    data_dict["gateway"]["feed"] = "replay"
    if data is not None:
        data_dict["gateway"]["replay"]["path"] = str(Path(data).expanduser().resolve())
    else:
        data_dict["gateway"]["replay"]["path"] = str(cfg.resolve(cfg.gateway.replay.path))
    if speed is not None:
        data_dict["gateway"]["replay"]["speed"] = speed
    for key, value in plain(condition_overrides or {}).items():  # numpy's from a sweep frame
        if value is None:
            continue
        if key not in CONDITION_FIELDS:
            raise ConfigurationError(
                f"cannot override condition field {key!r}; "
                f"choose from {', '.join(CONDITION_FIELDS)}"
            )
        for s in data_dict["strategies"]:
            for cond in s["params"].get("conditions", []):
                cond[key] = value
    return build_config(
        data_dict, base_dir=cfg.base_dir, source=cfg.source, environment=environment
    )


def private_run_config(cfg: WorkbenchConfig, run_dir: Path, bus_dir: Path) -> WorkbenchConfig:
    """``cfg`` on an ipc bus in ``bus_dir`` and a run folder of its own, with a fresh run id."""
    data = cfg.model_dump()
    for name in BUS_STREAMS:
        data["bus"][f"{name}_address"] = f"ipc://{bus_dir}/{name}"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    data["run_id"] = f"replay-{stamp}-{uuid.uuid4().hex[:6]}"
    data["runtime"]["run_dir"] = str(run_dir)
    data["runtime"]["state_dir"] = ""
    data["runtime"]["heartbeat_interval_s"] = min(cfg.runtime.heartbeat_interval_s, 0.1)
    data["executor"]["journal_path"] = ""
    data["executor"]["exit_on_eos"] = True
    data["supervisor"]["http_port"] = 0
    return build_config(data, base_dir=cfg.base_dir, source=cfg.source)


def run_fast(cfg: WorkbenchConfig, table: TickTable) -> tuple[list[Fill], list[dict], int]:
    """Every strategy and the configured simulator in this process, no sockets.

    The simulator matches orders against ``table`` exactly as the wire
    replay's executor does against the same file. Each tick batch's signals
    go to the executor together (one journal commit pair per batch).

    Returns:
        Fills, orders (journal rows) and the number of signals.

    Raises:
        ConfigurationError: the configured broker cannot run on recorded ticks.
    """
    from workbench.container import in_process_executor
    from workbench.domain.orders import OrderEvent
    from workbench.execution.tape import MarketTape
    from workbench.strategies.base import check_seqs, load_strategy, on_batch
    from workbench.strategies.outcomes import OutcomeQueue, deliver, run_batch, wants_outcomes

    strategies = [load_strategy(s.class_path, s.id, s.params) for s in cfg.strategies]
    # Strategies with outcome hooks hear them as in a wire replay (outcomes.py).
    queues = {s.strategy_id: OutcomeQueue() for s in strategies if wants_outcomes(s)}
    arrived: dict[str, list[OrderEvent]] = {sid: [] for sid in queues}

    def publish(e: object) -> None:
        if isinstance(e, OrderEvent) and e.strategy_id in arrived:
            arrived[e.strategy_id].append(e)

    last = {s.strategy_id: 0 for s in strategies}  # seqs run 1, 2, 3... as the host checks

    def send(sigs: list[Signal]) -> None:
        for sid in dict.fromkeys(s.strategy_id for s in sigs):
            last[sid] = check_seqs(sid, [s for s in sigs if s.strategy_id == sid], last[sid])
        executor.on_signals(sigs)

    def send_and_wait(sigs: list, tick_seq: int) -> list[OrderEvent]:
        send(sigs)
        got = arrived[sigs[0].strategy_id]
        out, got[:] = list(got), []
        return out

    # The wire replay's executor wiring, in-process: simulator on these ticks,
    # journal in memory, events to `publish` (or nowhere) instead of a socket.
    executor = in_process_executor(
        cfg, lambda: MarketTape.from_table(table), publish if queues else None
    )
    journal = executor.journal
    signals = 0
    for batch in table.batches(cfg.gateway.replay.batch_size, first_seq=1):
        out = []
        for strategy in strategies:
            q = queues.get(strategy.strategy_id)
            if q is not None:
                signals += len(run_batch(strategy, batch, q, send_and_wait))
            else:
                out.extend(on_batch(strategy, batch))
        if out:
            signals += len(out)
            send(out)
    for sid, q in queues.items():
        strategy = next(s for s in strategies if s.strategy_id == sid)
        for e in q.due():
            deliver(strategy, e)
    fills, orders = journal.fills(), journal.orders()
    journal.close()
    return fills, orders, signals


def run_wire(
    cfg: WorkbenchConfig, total_ticks: int, *, progress: bool = True, timeout_s: float = 600.0
) -> tuple[list[Fill], list[dict], int, dict[str, Any]]:
    """The real runners under a supervisor until end-of-stream reaches the executor.

    ``timeout_s`` is the whole run's limit: a paced replay's caller adds the
    time its pacing takes by design (`replay` does).

    Returns:
        Fills, orders, number of signals, and the executor's end-of-stream summary.

    Raises:
        ReplayFailed: a runner failed, or no end-of-stream within ``timeout_s``.
    """
    from tqdm.auto import tqdm

    from workbench.execution.journal import Journal
    from workbench.supervisor import Supervisor

    sup = Supervisor(cfg)
    bar = tqdm(total=total_ticks, unit="tick", desc="replay", disable=not progress, leave=True)
    try:
        sup.start()
        deadline = time.monotonic() + timeout_s
        while not sup.eos_reached.wait(0.1):
            hb = sup.heartbeat(cfg.gateway.id)
            if hb is not None:
                bar.update(max(0, int(hb.extra.get("ticks_total", 0)) - bar.n))
            if sup.any_failed():
                failed = {
                    s["runner"]: " ".join(
                        filter(None, (s["detail"], sup.logs.last_error(s["runner"])))
                    )
                    for s in sup.status()
                    if s["state"] == "failed"
                }
                raise ReplayFailed(
                    f"replay stopped: runners failed: {failed}; logs in {sup.logs.folder}"
                )
            if time.monotonic() > deadline:
                raise ReplayFailed(
                    f"no end-of-stream after {timeout_s} s; logs in {sup.logs.folder}"
                )
        bar.update(total_ticks - bar.n)
        summary = dict(sup.eos_summary or {})
    finally:
        bar.close()
        sup.stop()
    journal = Journal(cfg.journal_path())
    try:
        fills, orders = journal.fills(), journal.orders()
        signals = journal.count("signals")
    finally:
        journal.close()
    return fills, orders, signals, summary


def check_symbols(cfg: WorkbenchConfig, table: TickTable) -> None:
    """Refuse data in which no condition of the config has a symbol (a replay would be empty).

    Strategies without ``conditions`` (or conditions without a symbol) have
    nothing to check.

    Raises:
        ConfigurationError: naming the config's symbols and the data's.
    """
    import numpy as np

    wanted = {
        str(c["symbol"])
        for s in cfg.strategies
        for c in s.params.get("conditions", None) or []
        if isinstance(c, dict) and c.get("symbol")
    }
    have = {table.symbol.names[i] for i in np.unique(table.symbol.codes)}
    if wanted and not wanted & have:
        shown = sorted(have)[:10]
        more = f" and {len(have) - len(shown)} more" if len(have) > len(shown) else ""
        raise ConfigurationError(
            f"{cfg.source}: no condition symbol of the config "
            f"({', '.join(sorted(wanted))}) is in the data {cfg.gateway.replay.path} "
            f"(its symbols: {', '.join(shown) or 'none'}{more}): every replay of it would "
            "trade nothing; set the conditions' symbol (or gateway.replay.symbol for a file "
            "without a symbol column)"
        )


def output_folder(out: str | Path) -> Path:
    """``out`` resolved, once it is known that a folder can be there (before any work).

    Raises:
        ConfigurationError: ``out``, or a folder above it, is a file; or the
            nearest existing folder above it cannot be written.
    """
    import os

    out_dir = Path(out).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigurationError(f"out {out_dir} is a file, not a folder")
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigurationError(f"out {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(f"out {out_dir}: cannot write in {existing}")
    return out_dir


def replay(
    config: WorkbenchConfig | str | Path,
    data: str | Path | None = None,
    *,
    speed: float = 0.0,
    mode: Mode = "wire",
    out: str | Path | None = None,
    condition_overrides: dict[str, Any] | None = None,
    progress: bool = True,
    timeout_s: float = 600.0,
) -> ReplayResult:
    """Replay a tick file and return a `ReplayResult` (saved to ``out`` if given).

    Args:
        config: A config object or a TOML path.
        data: The tick file (CSV or Parquet); default: the config's replay path.
        speed: 0 = as fast as the pipeline allows; X = X times real time (wire only).
        mode: ``"wire"`` (real runner processes) or ``"fast"`` (one process, no sockets).
        out: Folder for Parquet files, ``summary.json``, ``fills.sha256``,
            ``report.html`` and the replayed ``config.toml``.
        condition_overrides: Fields set on every condition (see `prepare_config`).
        progress: Show a tqdm progress bar (wire mode).
        timeout_s: A wire replay fails without end-of-stream this long after
            its start, beyond what its pacing takes (the data's span / ``speed``).

    Raises:
        ConfigurationError: bad config, overrides or mode; ``out`` cannot be a folder;
            the data holds none of the conditions' symbols.
        DataError: the tick file cannot be read as configured.
        ReplayFailed: a wire replay did not complete.
    """
    from workbench.replays.report import build_result

    if not structlog.is_configured():
        from workbench.runner.logs import configure_logging

        configure_logging("WARNING", json=False)
    if mode not in ("wire", "fast"):
        raise ConfigurationError(f"No replay mode named {mode!r}; use 'wire' or 'fast'")
    cfg = prepare_config(config, data, speed=speed, condition_overrides=condition_overrides)
    out_dir = output_folder(out) if out is not None else None
    table = load_replay_ticks(cfg)
    check_symbols(cfg, table)  # none of its symbols: 0 signals, and exit 0
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    if mode == "fast":
        fills, orders, signals = run_fast(cfg, table)
        run_id = ""
    else:
        run_dir = out_dir / "runs" if out_dir else Path(tempfile.mkdtemp(prefix="wb-replay-"))
        try:
            # A short folder: ipc paths are limited to about 100 bytes.
            with tempfile.TemporaryDirectory(prefix="wb-") as bus_dir:
                wire_cfg = private_run_config(cfg, run_dir, Path(bus_dir))
                fills, orders, signals, _ = run_wire(
                    wire_cfg,
                    len(table),
                    progress=progress,
                    timeout_s=timeout_s + table.span_s / (cfg.gateway.replay.speed or math.inf),
                )
        except ReplayFailed:
            raise  # its run folder stays: the error points at its logs
        except BaseException:  # interrupted (Ctrl-C, SIGTERM), or a bad config: nothing to read
            if out_dir is None:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        run_id = wire_cfg.run_id
        if out_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    run = {
        "mode": mode,
        "speed": speed,
        "elapsed_s": round(elapsed, 3),
        "ticks_per_s": round(len(table) / elapsed) if elapsed > 0 else None,
        "data_path": str(cfg.resolve(cfg.gateway.replay.path)),
        "config_source": cfg.source,
        "run_id": run_id,
        "started_at": started,
        "condition_overrides": {
            k: v for k, v in (condition_overrides or {}).items() if v is not None
        },
    }
    result = build_result(
        fills, orders, table, signals=signals, run=run, capital=cfg.report.capital
    )
    result.config = cfg
    log.info(
        "replay_done", mode=mode, ticks=len(table), fills=len(fills), elapsed_s=run["elapsed_s"]
    )
    if out_dir is not None:  # what promotion checks is still what ran: hashes of both
        result.run["data_sha256"] = content_sha256(cfg.resolve(cfg.gateway.replay.path))
        result.run["config_sha256"] = content_sha256(cfg.save(out_dir / "config.toml"))
        result.save(out_dir)
    return result


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (names and bytes, in name order)."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f"{f.relative_to(path)}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def replayed_config(out_dir: str | Path) -> WorkbenchConfig:
    """The config a saved replay ran (its ``config.toml``)."""
    return load_config(Path(out_dir) / "config.toml")
