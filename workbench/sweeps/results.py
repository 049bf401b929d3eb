"""`SweepResult`: the table of a sweep, its best row, heatmap and walk-forward report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.exceptions import ConfigurationError
from workbench.replays.stats import json_ready
from workbench.sweeps.tasks import METRICS

WALK_FORWARD_STATS = (
    "net_pnl_after_fees",
    "net_pnl",
    "fees",
    "trades",
    "win_rate",
    "max_drawdown",
    "total_return",
    "sharpe",
)
"""Statistics the walk-forward report shows in-sample (``is_``) and out-of-sample (``oos_``).

``net_pnl`` is before fees; ``net_pnl_after_fees`` is what the totals and the
promotion gate use."""

SWEEP_OUTPUTS = (
    "results.parquet",
    "best.json",
    "heatmap.html",
    "walk_forward.parquet",
    "walk_forward.json",
    "best",
)
"""Every file and folder a sweep writes to its ``out`` folder (``best`` is a saved replay)."""


def existing_outputs(out_dir: str | Path) -> list[str]:
    """The names of `SWEEP_OUTPUTS` already in ``out_dir`` (empty if it does not exist)."""
    out = Path(out_dir)
    return [name for name in SWEEP_OUTPUTS if (out / name).exists() or (out / name).is_symlink()]


def clear_outputs(out_dir: str | Path) -> list[str]:
    """Remove exactly the `SWEEP_OUTPUTS` in ``out_dir``, nothing else; return their names."""
    import shutil

    out = Path(out_dir)
    found = existing_outputs(out)
    for name in found:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return found


DRAWDOWN_METRICS = ("max_drawdown", "max_drawdown_pct", "max_daily_drawdown_pct")
"""Falls, all <= 0 (0 = none): higher is better, so none of them may be minimized."""


def check_metric(metric: str, maximize: bool = True) -> str:
    """``metric`` if a sweep can rank by it in that direction.

    Raises:
        ConfigurationError: no such statistic, or a drawdown to minimize (that
            would pick the deepest fall).
    """
    if metric not in METRICS:
        raise ConfigurationError(
            f"metric: no statistic {metric!r}; choose from {', '.join(METRICS)}"
        )
    if not maximize and metric in DRAWDOWN_METRICS:
        raise ConfigurationError(
            f"metric {metric!r} is <= 0 (0 = no drawdown), so higher is better: minimizing "
            "it would pick the deepest drawdown; rank by it without --minimize (maximize=True)"
        )
    return metric


def best_index(frame: pd.DataFrame, metric: str, maximize: bool = True) -> Any | None:
    """Index of the best successful row by ``metric`` (None if none succeeded); ties: first.

    A ratio over a zero denominator (``sharpe`` of equal trades, ``sortino_annual``
    with no down day, ``calmar`` with no drawdown) is ``+inf`` for a positive
    numerator and ranks above every finite value (``-inf`` below); a null
    ratio (too few trades or days, or zero over zero) is left out.
    """
    ok = frame[frame["error"].isna()] if "error" in frame else frame
    values = pd.to_numeric(ok[metric], errors="coerce").dropna()
    if values.empty:
        return None
    return values.idxmax() if maximize else values.idxmin()


@dataclass(eq=False)
class SweepResult:
    """What a sweep produced.

    Attributes:
        frame: one row per combination: parameters, every statistic of
            `workbench.sweeps.tasks.METRICS`, ``fills_sha256``, ``elapsed_s``,
            ``cpu_s`` (the task thread's CPU time), ``pid`` (the worker
            process) and ``error``.
        params: the swept parameter names, in grid order.
        metric: the statistic `best` ranks by; ``maximize`` its direction.
        walk_forward: per window: its row and time ranges, the parameters
            chosen in-sample, and ``is_<stat>`` against ``oos_<stat>``
            (see `WALK_FORWARD_STATS`); None without walk-forward.
        run: facts of the run (workers, elapsed seconds, scheduler).
    """

    frame: pd.DataFrame
    params: list[str]
    metric: str = "net_pnl_after_fees"
    maximize: bool = True
    walk_forward: pd.DataFrame | None = None
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> pd.DataFrame:
        """The combinations that failed, with their error."""
        return self.frame[self.frame["error"].notna()][[*self.params, "error"]]

    def best(self, metric: str | None = None, maximize: bool | None = None) -> pd.Series:
        """The best successful row by ``metric`` (default: the sweep's).

        Args:
            metric: The statistic to rank by.
            maximize: Its direction; default: the sweep's for the sweep's own
                metric, higher for any other.

        Raises:
            ConfigurationError: unknown metric, a drawdown to minimize, or
                every combination failed.
        """
        metric = metric or self.metric
        maximize = self._maximize(metric, maximize)
        i = best_index(self.frame, check_metric(metric, maximize), maximize)
        if i is None:
            raise ConfigurationError(f"no combination succeeded with a value for {metric!r}")
        return self.frame.loc[i]

    def _maximize(self, metric: str, maximize: bool | None = None) -> bool:
        """The direction for ``metric``: as given, else the sweep's for its own, else higher."""
        if maximize is not None:
            return maximize
        return self.maximize if metric == self.metric else True

    def best_params(self, metric: str | None = None) -> dict[str, Any]:
        """The parameters of `best`, as plain Python values."""
        row = self.best(metric)
        return {p: _plain(row[p]) for p in self.params}

    def oos_summary(self) -> dict[str, Any]:
        """Out-of-sample totals over every walk-forward window (empty without walk-forward).

        The PnL figures that count are after fees: ``oos_net_pnl_after_fees``
        (summed over the test windows) and ``oos_positive_windows_after_fees``
        (the share of test windows whose PnL after fees is > 0); the
        ``*_before_fees`` sums and ``oos_fees`` are there to compare.
        ``failed_windows`` counts the test windows that failed or were skipped
        (no train run to choose by): they add nothing to the sums and count
        as not positive. Train windows overlap and are longer than the test
        windows, so the ``is_*`` sums are not comparable with the ``oos_*``
        ones; ``is_net_pnl_after_fees_scaled`` is: each train window's PnL
        times its test window's rows over its own.
        """
        wf = self.walk_forward
        if wf is None or wf.empty:
            return {}

        def col(name: str) -> pd.Series:
            if name not in wf:  # a report written before the column
                return pd.Series(np.nan, index=wf.index)
            return pd.to_numeric(wf[name], errors="coerce")

        pnl = col("oos_net_pnl_after_fees")
        return {
            "windows": len(wf),
            "failed_windows": int(wf["oos_error"].notna().sum()),
            "oos_net_pnl_after_fees": float(pnl.sum()),
            "oos_positive_windows_after_fees": float((pnl > 0).mean()),
            "oos_net_pnl_before_fees": float(col("oos_net_pnl").sum()),
            "oos_fees": float(col("oos_fees").sum()),
            "oos_trades": int(col("oos_trades").fillna(0).sum()),
            "is_net_pnl_after_fees": float(col("is_net_pnl_after_fees").sum()),
            "is_net_pnl_after_fees_scaled": float(
                (col("is_net_pnl_after_fees") * col("test_rows") / col("train_rows")).sum()
            ),
            "is_net_pnl_before_fees": float(col("is_net_pnl").sum()),
            "spec": self.run.get("walk_forward", ""),
        }

    def heatmap(
        self, x: str | None = None, y: str | None = None, metric: str | None = None
    ) -> go.Figure:
        """``metric`` over two parameters (default: the first two); others at their best.

        Raises:
            ConfigurationError: fewer than two parameters, or a name not swept.
        """
        metric = check_metric(metric or self.metric)
        if x is None or y is None:
            if len(self.params) < 2:
                raise ConfigurationError("heatmap: needs two swept parameters")
            others = [p for p in self.params if p not in (x, y)]  # the one given keeps its axis
            x, y = x or others.pop(0), y or others.pop(0)
        for name in (x, y):
            if name not in self.params:
                raise ConfigurationError(f"heatmap: {name!r} was not swept ({self.params})")
        if x == y:
            raise ConfigurationError(f"heatmap: x and y are both {x!r}; choose two parameters")
        ok = self.frame[self.frame["error"].isna()].copy()
        ok[metric] = pd.to_numeric(ok[metric], errors="coerce")
        agg = "max" if self._maximize(metric) else "min"
        grid = ok.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)
        z = grid.to_numpy(dtype=float)
        # plotly draws an infinite cell blank, as if nothing ran there: an unbounded ratio
        # (often the best) takes the finite extreme's colour and says what it is on hover.
        finite = z[np.isfinite(z)]
        hi, lo = (float(finite.max()), float(finite.min())) if finite.size else (0.0, 0.0)
        shown = np.where(np.isposinf(z), hi, np.where(np.isneginf(z), lo, z))
        labels = [["+inf" if v == np.inf else "-inf" if v == -np.inf else f"{v:.6g}" for v in row]
                  for row in z]  # fmt: skip
        fig = go.Figure(
            go.Heatmap(
                z=shown,
                customdata=labels,
                x=[str(v) for v in grid.columns],
                y=[str(v) for v in grid.index],
                colorbar={"title": metric},
                hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{customdata}}<extra></extra>",
            )
        )
        others = [p for p in self.params if p not in (x, y)]
        note = f" ({agg} over {', '.join(others)})" if others else ""
        fig.update_layout(title=f"{metric} by {x} and {y}{note}", xaxis_title=x, yaxis_title=y)
        return fig

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``results.parquet``, ``best.json``, ``heatmap.html`` (two or more
        parameters) and, after walk-forward, ``walk_forward.parquet`` and
        ``walk_forward.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"results.parquet": out / "results.parquet"}
        self.frame.to_parquet(paths["results.parquet"], index=False)
        best: dict[str, Any] = {"metric": self.metric, "maximize": self.maximize}
        try:
            row = self.best()
            best.update(params=self.best_params(), value=_plain(row[self.metric]))
        except ConfigurationError as e:
            best.update(params=None, error=str(e))
        paths["best.json"] = out / "best.json"
        paths["best.json"].write_text(_json(best))
        if len(self.params) >= 2 and self.frame["error"].isna().any():
            paths["heatmap.html"] = out / "heatmap.html"
            self.heatmap().write_html(paths["heatmap.html"], include_plotlyjs=True)
        if self.walk_forward is not None:
            paths["walk_forward.parquet"] = out / "walk_forward.parquet"
            self.walk_forward.to_parquet(paths["walk_forward.parquet"], index=False)
            paths["walk_forward.json"] = out / "walk_forward.json"
            paths["walk_forward.json"].write_text(_json(self.oos_summary()))
        return paths

    def _repr_html_(self) -> str:
        return self.frame.to_html(max_rows=30)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _json(obj: dict) -> str:
    # Strict JSON: a best value of +inf (a ratio over zero spread) is written as "+inf".
    return (
        json.dumps(json_ready(obj), sort_keys=True, indent=2, default=str, allow_nan=False) + "\n"
    )
