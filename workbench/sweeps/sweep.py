"""`sweep`: many fast replays of one strategy over a parameter grid, on Dask.

`sweep` reads as its steps: validate the grid, prepare the config and load
the ticks once, start (or join) a cluster and put the data on every worker,
run every combination (and, with walk-forward, every train window, then the
chosen parameters on each test window), collect a `SweepResult`, save it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import structlog

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError
from workbench.replays.session import (
    check_symbols,
    load_replay_ticks,
    output_folder,
    prepare_config,
)
from workbench.sweeps import grid as _grid
from workbench.sweeps.engine import Job, TaskRunner, cluster_client
from workbench.sweeps.results import (
    WALK_FORWARD_STATS,
    SweepResult,
    best_index,
    check_metric,
    clear_outputs,
    existing_outputs,
)
from workbench.sweeps.walkforward import MAX_TRAIN_RUNS, Window, parse_walk_forward, windows

log = structlog.get_logger()

Search = Literal["grid", "optuna"]


def sweep(
    config: WorkbenchConfig | str | Path,
    data: str | Path | None = None,
    *,
    grid: Mapping[str, Any] | Sequence[_grid.ParamSpec] | None = None,
    search: Search = "grid",
    study: Any = None,
    trials: int = 32,
    metric: str = "net_pnl_after_fees",
    maximize: bool = True,
    walk_forward: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    connect_timeout_s: float = 30.0,
    client: Any = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> SweepResult:
    """Fast-replay every combination of ``grid`` (or Optuna trials) on Dask workers.

    Args:
        config: A config object or a TOML path.
        data: The tick file; default: the config's replay path.
        grid: ``{name: [values] | value | "a,b,c" | "start:stop:step"}`` over
            condition fields (see `workbench.sweeps.grid`).
        search: ``"grid"`` (every combination) or ``"optuna"`` (``trials``
            trials of a TPE search over the grid's values and ranges).
        study: An ``optuna.Study`` to continue (implies ``search="optuna"``),
            of one objective in the sweep's direction (``direction="maximize"``
            unless ``maximize=False``; Optuna's default is to minimize).
            Optuna does not combine with ``walk_forward``: its trials would see
            the test windows.
        metric: The statistic that picks the best row (and the Optuna objective);
            by default PnL after fees, what the walk-forward totals and the gate count.
        walk_forward: ``"train=5d,test=1d"`` or ``"train=0.5,test=0.1"``; see
            `workbench.sweeps.walkforward`.
        scheduler: Address of a running Dask scheduler; None starts a local
            cluster with ``workers`` processes (default: one per core).
        connect_timeout_s: With ``scheduler``: the most seconds to wait for it
            to answer, and then for ``workers`` workers.
        client: An existing ``distributed.Client`` to use instead.
        out: Folder for ``results.parquet``, ``best.json``, ``heatmap.html``,
            the walk-forward report, and ``best/``: a saved fast replay of the
            best parameters on all the data, ready for ``workbench promote``.
            A folder that already holds any of these is refused unless ``force``;
            no ``best/`` is written when no run has a best.
        force: Replace an earlier sweep's results in ``out``: remove exactly the
            files and folders a sweep writes (`SWEEP_OUTPUTS`) before running.
        progress: Show a tqdm bar counting finished runs.

    Raises:
        ConfigurationError: a bad grid, metric, walk-forward spec, search or
            scheduler, a study of another direction or of several objectives,
            data without any symbol of the config's conditions,
            Optuna with walk-forward, ``out`` cannot be a folder, or
            it holds an earlier sweep's results without ``force``.
        DataError: the tick file cannot be read.
    """
    from workbench.replays.session import replay

    if not structlog.is_configured():
        from workbench.runner.logs import configure_logging

        configure_logging("WARNING", json=False)
    check_metric(metric, maximize)
    if study is not None:
        from workbench.sweeps.search import check_study

        check_study(study, metric, maximize)
        search = "optuna"
    if search not in ("grid", "optuna"):
        raise ConfigurationError(f"No search named {search!r}; use 'grid' or 'optuna'")
    if search == "optuna" and walk_forward:
        raise ConfigurationError(
            "--search optuna (search='optuna' or a study) cannot be combined with "
            "--walk-forward (walk_forward=...): the search would choose its candidates on "
            "every row, the test windows too (look-ahead); use --search grid with --walk-forward"
        )
    if search == "optuna":  # before --force removes anything, and before a cluster starts
        from workbench.sweeps.search import check_search

        check_search(trials)
    specs = _grid.as_specs(grid or {})
    combos = _grid.combinations(specs) if search == "grid" else []
    wf_spec = parse_walk_forward(walk_forward) if walk_forward is not None else None
    cfg = prepare_config(config, data)
    out_dir = _check_out(out, force)  # before the data loads; nothing is removed yet
    table = load_replay_ticks(cfg)
    wins = windows(wf_spec, np.asarray(table.ts_ns, dtype=np.int64)) if wf_spec else []
    if len(wins) * len(combos) > MAX_TRAIN_RUNS:
        raise ConfigurationError(
            f"walk-forward {walk_forward!r}: {len(wins):,} windows x {len(combos):,} "
            f"combinations = {len(wins) * len(combos):,} train replays; at most "
            f"{MAX_TRAIN_RUNS:,}: use longer windows or fewer combinations"
        )
    check_symbols(cfg, table)
    names = [s.name for s in specs]
    t0 = time.perf_counter()
    with (
        _client(client, scheduler, workers, connect_timeout_s) as c,
        TaskRunner(c, cfg, table) as runner,
    ):
        _clear_out(out_dir)  # every check passed and the cluster answered: --force acts now
        if search == "optuna":
            from workbench.sweeps.search import optuna_rows

            rows = optuna_rows(runner, specs, trials, metric, maximize, study, progress)
        else:
            rows = runner.run([(p, None) for p in combos], progress=progress)
        wf = _walk_forward(runner, wins, rows, names, metric, maximize, progress, table)
        workers_seen = runner.workers
    frame = _frame(rows, names)
    result = SweepResult(
        frame=frame,
        params=names,
        metric=metric,
        maximize=maximize,
        walk_forward=wf,
        run={
            "search": search,
            "runs": len(frame),
            "failed": int(frame["error"].notna().sum()),
            "workers": workers_seen,
            "scheduler": scheduler or ("<client>" if client is not None else "<local>"),
            "elapsed_s": round(time.perf_counter() - t0, 3),
            "walk_forward": walk_forward or "",
            "data_path": str(cfg.resolve(cfg.gateway.replay.path)),
        },
    )
    log.info("sweep_done", runs=len(frame), failed=result.run["failed"], s=result.run["elapsed_s"])
    if out_dir is not None:
        result.save(out_dir)
        if best_index(frame, metric, maximize) is not None:
            replay(cfg, mode="fast", out=out_dir / "best", condition_overrides=result.best_params())
            if wf is not None:  # with the hash of the replay it judges (promote checks it)
                report = json.loads((out_dir / "walk_forward.json").read_text())
                report["fills_sha256"] = (out_dir / "best" / "fills.sha256").read_text().strip()
                (out_dir / "best" / "walk_forward.json").write_text(json.dumps(report, indent=2))
    return result


def _check_out(out: str | Path | None, force: bool) -> Path | None:
    """The resolved ``out`` folder; refused if it holds a sweep's results and not ``force``."""
    if out is None:
        return None
    out_dir = output_folder(out)
    found = existing_outputs(out_dir)
    if found and not force:
        raise ConfigurationError(
            f"out {out_dir} already holds a sweep's results ({', '.join(found)}); "
            "pass --force (force=True) to replace them, or choose another folder"
        )
    return out_dir


def _clear_out(out_dir: Path | None) -> None:
    """Remove an earlier sweep's results from ``out_dir`` (`_check_out` allowed it)."""
    if out_dir is not None and existing_outputs(out_dir):
        log.info("sweep_out_cleared", out=str(out_dir), removed=clear_outputs(out_dir))


def _client(client: Any, scheduler: str | None, workers: int | None, timeout_s: float):
    import contextlib

    if client is not None:
        return contextlib.nullcontext(client)
    return cluster_client(scheduler, workers, connect_timeout_s=timeout_s)


def _frame(rows: list[dict[str, Any]], names: list[str]) -> pd.DataFrame:
    from workbench.sweeps.tasks import METRICS

    cols = [*names, *METRICS, "fills_sha256", "elapsed_s", "cpu_s", "pid", "error"]
    frame = pd.DataFrame(rows).reindex(columns=cols)
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame


def _walk_forward(
    runner: TaskRunner,
    wins: list[Window],
    rows: list[dict[str, Any]],
    names: list[str],
    metric: str,
    maximize: bool,
    progress: bool,
    table: Any,
) -> pd.DataFrame | None:
    """Best parameters per train window (same combinations as the sweep), scored on its test."""
    if not wins:
        return None
    # Every combination, even one that failed on all the data: where it failed
    # is the future of a train window, which must not choose by it.
    combos = [{n: r[n] for n in names} for r in rows]
    train_jobs: list[Job] = [(p, w.train) for w in wins for p in combos]
    train_rows = runner.run(train_jobs, progress=progress, desc="walk-forward train")
    chosen: list[tuple[Window, dict[str, Any]]] = []
    for k, w in enumerate(wins):
        part = pd.DataFrame(train_rows[k * len(combos) : (k + 1) * len(combos)])
        i = best_index(
            part.reindex(columns=[*part.columns.drop(metric, errors="ignore"), metric]),
            metric,
            maximize,
        )
        if i is None:  # no choice: the window is in the report, as not traded
            ok = "error" not in part or bool(part["error"].isna().any())
            why = f"no train run has a {metric}" if ok else "no train run succeeded"
            log.warning("walk_forward_window_skipped", window=w.index, reason=why)
            chosen.append((w, {"skipped": f"skipped: {why}"}))
            continue
        chosen.append((w, part.loc[i].to_dict()))
    ran = [(w, is_row) for w, is_row in chosen if "skipped" not in is_row]
    test_rows = iter(
        runner.run(
            [({n: is_row[n] for n in names}, w.test) for w, is_row in ran],
            progress=progress,
            desc="walk-forward test",
        )
    )
    ts = table.ts_ns
    report = []
    for w, is_row in chosen:
        oos = {"error": is_row["skipped"]} if "skipped" in is_row else next(test_rows)
        entry: dict[str, Any] = {
            "window": w.index,
            "train_start": _utc(ts[w.train[0]]),
            "train_end": _utc(ts[w.train[1] - 1]),
            "test_start": _utc(ts[w.test[0]]),
            "test_end": _utc(ts[w.test[1] - 1]),
            "train_rows": w.train[1] - w.train[0],
            "test_rows": w.test[1] - w.test[0],
        }
        entry.update({n: is_row.get(n) for n in names})
        for s in WALK_FORWARD_STATS:
            entry[f"is_{s}"] = is_row.get(s)
            entry[f"oos_{s}"] = oos.get(s)
        entry["oos_error"] = oos.get("error")
        report.append(entry)
    return pd.DataFrame(report)


def _utc(ts_ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ts_ns), unit="ns", tz="UTC")
