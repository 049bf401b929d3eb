"""Running the parameterized replay notebook with papermill."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from workbench.exceptions import ConfigurationError

NOTEBOOK = Path("notebooks") / "03_replay.ipynb"


def project_root() -> Path:
    """The workbench checkout: the folder holding ``configs/`` and `NOTEBOOK`.

    Looks upward from the current directory first, then beside the installed
    package, so notebooks work whether started from the repo root, from
    ``notebooks/`` or by papermill. A project of the user's own with
    ``configs/`` and ``notebooks/`` but not the replay notebook is not taken
    for it.

    Raises:
        ConfigurationError: no checkout found.
    """
    here = Path.cwd().resolve()
    pkg = Path(__file__).resolve().parents[2]
    for folder in [here, *here.parents, pkg]:
        if (folder / "configs").is_dir() and (folder / NOTEBOOK).is_file():
            return folder
    raise ConfigurationError(
        f"cannot find the workbench checkout (a folder with configs/ and {NOTEBOOK}) "
        f"in {here}, its parents or {pkg}"
    )


def run_replay_notebook(out_dir: str | Path, parameters: dict[str, Any]) -> Path:
    """Execute ``notebooks/03_replay.ipynb`` into ``out_dir`` with ``parameters``.

    The results are saved beside the executed notebook.

    Returns:
        The executed notebook's path.

    Raises:
        ConfigurationError: a parameter the notebook does not have (papermill
            only warns, and the replay would run without it), or a ``mode``,
            ``speed``, ``config_path`` or ``data_path`` it cannot run with
            (found here, not seconds later inside the kernel).
    """
    import papermill

    root = project_root()
    notebook = root / NOTEBOOK
    known = set(papermill.inspect_notebook(str(notebook)))
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ConfigurationError(
            f"{notebook.name} has no parameter {', '.join(map(repr, unknown))}; "
            f"it has {', '.join(sorted(known))}"
        )
    problem = _parameter_problem(root, parameters)
    if problem:
        raise ConfigurationError(f"{notebook.name} parameter {problem}")
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = {"out_dir": str(out), **parameters}
    executed = out / "03_replay.ipynb"
    papermill.execute_notebook(
        str(notebook),
        str(executed),
        parameters=params,
        cwd=str(root / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    return executed


def _parameter_problem(root: Path, parameters: dict[str, Any]) -> str:
    """What is wrong with the parameters the CLI has options for ('' when nothing).

    Paths are read as the notebook reads them: relative ones from ``root``.
    """
    mode = parameters.get("mode", "wire")
    if mode not in ("wire", "fast"):
        return f"mode: {mode!r} is not 'wire' or 'fast'"
    speed = parameters.get("speed", 0.0)
    number = isinstance(speed, int | float) and not isinstance(speed, bool)
    if not number or not (speed >= 0 and math.isfinite(speed)):
        return f"speed: {speed!r} is not 0 (as fast as possible) or a multiple of real time > 0"
    for name in ("config_path", "data_path"):
        if name not in parameters or (name == "data_path" and not parameters[name]):
            continue  # data_path None: the config's replay data
        path = parameters[name]
        if not isinstance(path, str) or not (root / path).exists():
            return f"{name}: {path!r}: no such file (a relative path is read from {root})"
    return ""
