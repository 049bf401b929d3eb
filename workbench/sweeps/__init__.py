"""Parameter sweeps and walk-forward analysis: many fast replays on ``dask.distributed``.

``workbench.sweep(config, data, grid={...})`` runs every combination as a Dask
task (a local cluster by default, a scheduler address for a real one) and
returns a `SweepResult`.
"""

from workbench.sweeps.engine import SweepLost
from workbench.sweeps.grid import ParamSpec, combinations, parse_grid_args, parse_spec
from workbench.sweeps.results import SweepResult
from workbench.sweeps.sweep import sweep
from workbench.sweeps.walkforward import parse_walk_forward, windows

__all__ = [
    "ParamSpec",
    "SweepLost",
    "SweepResult",
    "combinations",
    "parse_grid_args",
    "parse_spec",
    "parse_walk_forward",
    "sweep",
    "windows",
]
