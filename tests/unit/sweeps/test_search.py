"""An Optuna study given to a sweep must search the way the sweep ranks."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from workbench.exceptions import ConfigurationError
from workbench.sweeps.sweep import sweep

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo.toml"
# Nothing listens here: a sweep that got past its checks fails to connect, and says so.
NO_SCHEDULER = {"scheduler": "tcp://127.0.0.1:1", "connect_timeout_s": 0.5}


def _sweep(study: optuna.Study, **kw) -> None:
    sweep(CONFIG, grid={"turning_point": [0.02, 0.05]}, study=study, trials=2,
          progress=False, **NO_SCHEDULER, **kw)  # fmt: skip


def test_a_study_minimizing_while_the_sweep_maximizes_is_refused_before_any_cluster():
    # optuna.create_study() minimizes: its trials steered to the lowest PnL while
    # the sweep's best row was the highest.
    with pytest.raises(ConfigurationError, match="is set to minimize but the sweep is set to"):
        _sweep(optuna.create_study())
    with pytest.raises(ConfigurationError, match="direction='minimize'"):
        _sweep(optuna.create_study(direction="maximize"), maximize=False)


def test_a_study_of_several_objectives_is_refused():
    study = optuna.create_study(directions=["maximize", "maximize"])
    with pytest.raises(ConfigurationError, match="2 objectives"):
        _sweep(study)


def test_a_study_in_the_sweeps_direction_passes_the_check():
    for study, kw in (
        (optuna.create_study(direction="maximize"), {}),
        (optuna.create_study(direction="minimize"), {"maximize": False}),
    ):
        with pytest.raises(ConfigurationError, match="cannot connect"):
            _sweep(study, **kw)


class _FixedRows:
    """A runner whose every task, on a real in-process Dask client, returns ``row``."""

    workers = 1

    def __init__(self, client, row: dict) -> None:
        self.client, self.row = client, row

    def submit(self, job):
        return self.client.submit(dict, {**job[0], **self.row}, pure=False)


def test_an_infinite_ratio_is_told_to_the_study_as_its_value_not_as_a_failure():
    # No down day: Sortino +inf, the best a trial can do; it was told as a failed trial.
    from distributed import Client

    from workbench.sweeps.grid import as_specs
    from workbench.sweeps.search import optuna_rows

    study = optuna.create_study(direction="maximize")
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        runner = _FixedRows(c, {"sortino_annual": math.inf, "error": None})
        specs = as_specs({"turning_point": [0.02, 0.05]})
        rows = optuna_rows(runner, specs, 2, "sortino_annual", True, study, progress=False)
    assert [r["sortino_annual"] for r in rows] == [math.inf, math.inf]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.best_value == math.inf


def test_optuna_runs_a_stepped_range_on_the_grids_own_values():
    # Optuna's 0.1 + 2 * 0.1 is 0.30000000000000004: the trial ran another level than the
    # grid's 0.3 (other fills on some data) and its row matched no grid row.
    from distributed import Client

    from workbench.sweeps.grid import as_specs
    from workbench.sweeps.search import optuna_rows

    specs = as_specs({"take_profit": "0.1:0.5:0.1"})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        runner = _FixedRows(c, {"net_pnl_after_fees": 1.0, "error": None})
        rows = optuna_rows(runner, specs, 12, "net_pnl_after_fees", True, study, progress=False)
    ran = {r["take_profit"] for r in rows}
    assert ran <= set(specs[0].values) and 0.3 in ran


def _scored(params: dict, delay: float) -> dict:
    import time

    time.sleep(delay)
    score = -abs(params["turning_point"] - 0.07) - abs(params["take_profit"] - 0.3)
    return {**params, "net_pnl": score, "error": None}


class _Timed:
    """Two workers' worth of tasks on a real in-process Dask client, each ``delay`` long."""

    workers = 2

    def __init__(self, client, delays) -> None:
        self.client, self.delays = client, iter(delays)

    def submit(self, job):
        return self.client.submit(_scored, job[0], next(self.delays), pure=False)


def test_a_seeded_search_proposes_the_same_trials_whichever_worker_finishes_first():
    # Told as they finished, what the sampler had seen at each ask depended on timing: the
    # same seeded search proposed other trials, and chose another best, from run to run.
    from distributed import Client

    from workbench.sweeps.grid import as_specs
    from workbench.sweeps.search import optuna_rows

    specs = as_specs({"turning_point": "0.01:0.2:0.01", "take_profit": "0.1:0.5:0.05"})
    runs = []
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as c:
        for first_slow in (True, False):  # odd or even trials take 30 ms longer
            delays = [0.03 if (k % 2 == 0) == first_slow else 0.0 for k in range(24)]
            rows = optuna_rows(_Timed(c, delays), specs, 24, "net_pnl", True, progress=False)
            runs.append([(r["turning_point"], r["take_profit"]) for r in rows])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("trials", [0, -3])
def test_a_search_that_cannot_run_is_refused_before_force_removes_the_last_results(
    tmp_path, trials
):
    # --force emptied the folder, then --trials 0 was refused: the earlier sweep was gone.
    out = tmp_path / "sweep"
    (out / "best").mkdir(parents=True)
    (out / "results.parquet").write_bytes(b"an earlier sweep's")
    with pytest.raises(
        ConfigurationError, match=f"trials: must be a whole number >= 1, got {trials}"
    ):
        sweep(CONFIG, grid={"turning_point": [0.02, 0.05]}, search="optuna", trials=trials,
              out=out, force=True, progress=False, **NO_SCHEDULER)  # fmt: skip
    assert (out / "results.parquet").read_bytes() == b"an earlier sweep's"
    assert (out / "best").is_dir()
