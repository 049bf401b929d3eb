"""Optuna search on the sweep runner: trials in flight as many as workers, told in order.

Each parameter's grid spec becomes a distribution: a range
(``START:STOP:STEP``) a stepped `FloatDistribution` (its values rounded as
the grid's, `grid_values`), a list a `CategoricalDistribution`. As many
trials as there are workers are in flight at once; each is the same
fast-replay task a grid sweep runs. Results are told to the study in trial
order, and trial ``k`` is asked once trials ``0 .. k - workers`` are told and
no more: what the sampler has seen never depends on which worker finished
first, so a seeded search on as many workers proposes the same trials every
run (told as they finished, the best differed from run to run). A slow trial
holds the next ask back; the other workers wait at most that long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from workbench.exceptions import ConfigurationError
from workbench.sweeps.engine import TaskRunner, cancelled_unless_done, task_row
from workbench.sweeps.grid import GRID_DECIMALS, ParamSpec


def distributions(specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Optuna distributions for the specs."""
    import optuna

    out: dict[str, Any] = {}
    for s in specs:
        if s.is_range and s.low is not None and s.high is not None:
            out[s.name] = optuna.distributions.FloatDistribution(s.low, s.high, step=s.step)
        else:
            out[s.name] = optuna.distributions.CategoricalDistribution(list(s.values))
    return out


def grid_values(specs: Sequence[ParamSpec], params: dict[str, Any]) -> dict[str, Any]:
    """A trial's ``params`` as the grid has them: a stepped float rounded as the grid rounds.

    Optuna's ``low + 2 * 0.1`` is 0.30000000000000004 where the grid's value is
    0.3, and a level off by that can fill on another tick.
    """
    ranged = {s.name for s in specs if s.is_range}
    return {k: round(v, GRID_DECIMALS) if k in ranged else v for k, v in params.items()}


def check_study(study: Any, metric: str, maximize: bool) -> None:
    """Refuse a study that would search the other way than the sweep ranks ``metric``.

    ``optuna.create_study()`` minimizes by default; the sweep then picked its
    best row by the highest value of trials steered towards the lowest.

    Raises:
        ConfigurationError: the study has several objectives, or its direction
            is not the sweep's.
    """
    name = getattr(study, "study_name", "?")
    directions = [getattr(d, "name", str(d)).lower() for d in study.directions]
    if len(directions) != 1:
        raise ConfigurationError(
            f"study {name!r}: {len(directions)} objectives ({', '.join(directions)}); a "
            f"sweep optimizes one, {metric!r}: create the study with direction=..., "
            "not directions=[...]"
        )
    want = "maximize" if maximize else "minimize"
    if directions[0] != want:
        raise ConfigurationError(
            f"study {name!r} is set to {directions[0]} but the sweep is set to {want} "
            f"{metric!r}: create the study with direction={want!r} "
            f"(optuna.create_study minimizes by default) or pass maximize={not maximize}"
        )


def check_search(trials: int) -> None:
    """Refuse a search that cannot run, before anything is started or removed.

    Raises:
        ConfigurationError: Optuna is not installed, or ``trials`` < 1.
    """
    try:
        import optuna  # noqa: F401
    except ImportError as e:
        raise ConfigurationError("search 'optuna' needs optuna: pip install optuna") from e
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigurationError(f"trials: must be a whole number >= 1, got {trials!r}")


def optuna_rows(
    runner: TaskRunner,
    specs: Sequence[ParamSpec],
    trials: int,
    metric: str,
    maximize: bool,
    study: Any = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run ``trials`` Optuna trials on ``runner``; one sweep row per trial, in trial order.

    A failed or metric-less run is told to the study as a failed trial; an
    infinite ratio (``sortino_annual`` with no down day) as its value.

    Raises:
        ConfigurationError: Optuna is not installed, ``trials`` < 1, or a
            ``study`` of another direction (`check_study`).
    """
    check_search(trials)
    import optuna
    from distributed import wait
    from tqdm.auto import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is not None:
        check_study(study, metric, maximize)
    else:
        direction: Literal["maximize", "minimize"] = "maximize" if maximize else "minimize"
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0))
    dists = distributions(specs)
    width = max(1, runner.workers)
    flight: list[tuple[Any, Any]] = []  # (future, trial), in trial order
    pending: dict[Any, Any] = {}  # key -> future: cancelled if the search stops early
    rows: list[dict[str, Any]] = []
    with (
        tqdm(total=trials, desc="optuna", unit="run", disable=not progress) as bar,
        cancelled_unless_done(runner.client, pending),
    ):
        while len(rows) + len(flight) < trials or flight:
            while len(rows) + len(flight) < trials and len(flight) < width:
                trial = study.ask(dists)
                fut = runner.submit((grid_values(specs, trial.params), None))
                pending[fut.key] = fut
                flight.append((fut, trial))
            fut, trial = flight.pop(0)
            wait([fut])
            del pending[fut.key]
            row = task_row(fut, grid_values(specs, trial.params), len(rows), trials)
            value = row.get(metric)
            # +inf is a ratio over a zero denominator (no down day): the best, not a failure.
            if row.get("error") or value is None or math.isnan(float(value)):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, float(value))
            rows.append(row)
            bar.update(1)
    return rows
