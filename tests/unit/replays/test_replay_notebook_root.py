"""Where the replay notebook is looked for: the checkout, not any folder that looks like one."""

from __future__ import annotations

import pytest
from helpers import ROOT

from workbench.exceptions import ConfigurationError
from workbench.replays import notebook
from workbench.replays.notebook import project_root


def test_a_project_with_configs_and_notebooks_but_no_replay_notebook_is_passed_over(
    tmp_path, monkeypatch
):
    # It was taken for the checkout: replay-notebook then failed on a missing
    # notebooks/03_replay.ipynb inside any such project of the user's.
    (tmp_path / "configs").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "mine.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path / "notebooks")
    assert project_root() == ROOT


def test_a_checkout_found_from_the_current_folder_comes_first(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "03_replay.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path / "notebooks")
    assert project_root() == tmp_path


def test_no_checkout_anywhere_is_an_error_naming_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(notebook, "__file__", str(tmp_path / "pkg" / "replays" / "notebook.py"))
    with pytest.raises(ConfigurationError, match=r"03_replay\.ipynb") as e:
        project_root()
    assert str(tmp_path) in str(e.value)
