"""Optuna search on the sweep runner: trials asked in batches, told as they finish.

Each parameter's grid spec becomes a distribution: a range
(``START:STOP:STEP``) a stepped `FloatDistribution` (its values rounded as
the grid's, `grid_values`), a list a `CategoricalDistribution`. As many
trials as there are workers are in flight at once; each is the same
fast-replay task a grid sweep runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from workbench.exceptions import ConfigurationError
from workbench.sweeps.engine import TaskRunner
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
    try:
        import optuna
    except ImportError as e:
        raise ConfigurationError("search 'optuna' needs optuna: pip install optuna") from e
    from distributed import wait
    from tqdm.auto import tqdm

    if trials < 1:
        raise ConfigurationError(f"trials: must be >= 1, got {trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is not None:
        check_study(study, metric, maximize)
    else:
        direction: Literal["maximize", "minimize"] = "maximize" if maximize else "minimize"
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0))
    dists = distributions(specs)
    in_flight: dict[Any, Any] = {}  # future -> trial
    rows: list[tuple[int, dict[str, Any]]] = []
    asked = 0
    with tqdm(total=trials, desc="optuna", unit="run", disable=not progress) as bar:
        while asked < trials or in_flight:
            while asked < trials and len(in_flight) < max(1, runner.workers):
                trial = study.ask(dists)
                in_flight[runner.submit((grid_values(specs, trial.params), None))] = trial
                asked += 1
            done = wait(list(in_flight), return_when="FIRST_COMPLETED").done
            for fut in done:
                trial = in_flight.pop(fut)
                try:
                    row = fut.result()
                except Exception as e:  # the task itself could not run
                    row = {**grid_values(specs, trial.params), "error": f"{type(e).__name__}: {e}"}
                value = row.get(metric)
                # +inf is a ratio over a zero denominator (no down day): the best, not a failure.
                if row.get("error") or value is None or math.isnan(float(value)):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, float(value))
                rows.append((trial.number, row))
                bar.update(1)
    return [row for _, row in sorted(rows, key=lambda t: t[0])]
