"""Papermill sees every parameter of every parameterized notebook.

Papermill infers parameters line by line and skips any line with more than
one ``=``, so a comment like ``# 0 = as fast as possible`` hides its
parameter: ``--help-notebook`` omits it and ``-p`` warns "Passed unknown
parameter" (while still applying it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from papermill.inspection import inspect_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def parameters_cell(nb) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)


PARAMETERIZED = [p for p in NOTEBOOKS if parameters_cell(nbformat.read(p, as_version=4))]


def test_the_replay_and_sweep_notebooks_are_parameterized():
    names = {p.name for p in PARAMETERIZED}
    assert {"03_replay.ipynb", "04_sweep.ipynb"} <= names


@pytest.mark.parametrize("path", PARAMETERIZED, ids=lambda p: p.name)
def test_papermill_infers_every_assigned_name(path: Path):
    nb = nbformat.read(path, as_version=4)
    cell = parameters_cell(nb)
    assigned = [
        t.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    ]
    inferred = list(inspect_notebook(str(path)))
    assert inferred == assigned
    assert {"speed", "turning_point"} <= set(inferred) or path.name != "03_replay.ipynb"
