"""The papermill replay notebook: golden results in CI, the CLI shortcut, papermill itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from workbench.cli import main as cli
from workbench.replays.notebook import run_replay_notebook

GOLDEN = ROOT / "tests" / "golden" / "demo"


def test_replay_notebook_on_committed_data_matches_golden_files(tmp_path):
    nb = run_replay_notebook(tmp_path, {})  # the defaults: configs/demo.toml on data/ticks
    assert nb.exists()
    assert (tmp_path / "summary.json").read_text() == (GOLDEN / "summary.json").read_text()
    assert (tmp_path / "fills.sha256").read_text() == (GOLDEN / "fills.sha256").read_text()
    assert json.loads((tmp_path / "run.json").read_text())["mode"] == "wire"
    for name in ("fills.parquet", "trades.parquet", "equity.parquet", "report.html", "config.toml"):
        assert (tmp_path / name).exists(), name


def test_papermill_command_line_with_a_parameter(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "notebooks/03_replay.ipynb",
            str(tmp_path / "out.ipynb"),
            "-p",
            "turning_point",
            "0.1",
            "-p",
            "mode",
            "fast",
            "-p",
            "out_dir",
            str(tmp_path / "res"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = json.loads((tmp_path / "res" / "run.json").read_text())
    assert run["condition_overrides"] == {"turning_point": 0.1}
    assert json.loads((tmp_path / "res" / "summary.json").read_text())["ticks"] == 5000


def test_replay_notebook_shortcut(tmp_path, capsys):
    rc = cli(
        ["replay-notebook", "--out", str(tmp_path), "-p", "mode", "fast", "-p", "stop_loss", "0.3"]
    )
    assert rc == 0
    assert "executed notebook" in capsys.readouterr().out
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["mode"] == "fast" and run["condition_overrides"] == {"stop_loss": 0.3}


def test_replay_notebook_failure_is_reported(tmp_path, capsys):
    bad = ["-p", "mode", "fast", "-p", "take_profit", "-1.0"]  # refused inside the kernel
    assert cli(["replay-notebook", "--out", str(tmp_path), *bad]) == 1
    assert "replay notebook failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("mode", "fastt", "parameter mode: 'fastt' is not 'wire' or 'fast'"),
        ("speed", "-1", "parameter speed: -1 is not 0 (as fast as possible) or a multiple"),
        ("speed", "inf", "parameter speed: 'inf' is not 0"),
        ("speed", "True", "parameter speed: True is not 0"),
        ("config_path", "nope.toml", "parameter config_path: 'nope.toml': no such file"),
        ("data_path", "nope.csv", "parameter data_path: 'nope.csv': no such file"),
    ],
)
def test_a_parameter_the_cli_has_an_option_for_is_checked_before_the_kernel_starts(
    tmp_path, capsys, name, value, says
):
    # -p mode fastt failed inside the kernel after ~8 s (exit 1), where
    # --mode fastt was refused at once (exit 2).
    assert cli(["replay-notebook", "--out", str(tmp_path), "-p", name, value]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "03_replay.ipynb").exists()


def test_a_misspelt_parameter_is_refused_naming_the_notebooks_parameters(tmp_path, capsys):
    # papermill only warns; the replay then ran its default (a wire replay), exit 0.
    assert cli(["replay-notebook", "--out", str(tmp_path), "-p", "mdoe", "fast"]) == 2
    err = capsys.readouterr().err
    assert "has no parameter 'mdoe'" in err and "mode" in err
    assert not (tmp_path / "03_replay.ipynb").exists()


def test_replay_notebook_of_a_config_replays_that_configs_data(tmp_path):
    # It replayed the sample file whatever the config said: 5000 ticks, not the config's.
    data = tmp_path / "other.csv"
    assert cli(["data", "synth", "--symbol", "ABC", "--ticks", "700", "--out", str(data)]) == 0
    text = (ROOT / "configs" / "demo.toml").read_text()
    text = text.replace('path = "../data/ticks/synth-ABC-5000.csv"', f'path = "{data}"')
    (tmp_path / "other.toml").write_text(text)
    out = tmp_path / "res"
    args = ["replay-notebook", "--out", str(out), "--config", str(tmp_path / "other.toml")]
    assert cli([*args, "-p", "mode", "fast"]) == 0
    assert json.loads((out / "summary.json").read_text())["ticks"] == 700


@pytest.mark.parametrize(("option", "parameter"), [("--config", "config_path"), ("--mode", "mode")])
def test_a_parameter_given_both_as_p_and_as_its_option_is_refused(
    tmp_path, capsys, option, parameter
):
    # --config won silently over -p config_path: the replay ran another config.
    value = {"--config": str(ROOT / "configs" / "demo.toml"), "--mode": "fast"}[option]
    args = ["replay-notebook", "--out", str(tmp_path), "-p", parameter, "'fast'", option, value]
    assert cli(args) == 2
    assert f"-p {parameter} and {option} both given" in capsys.readouterr().err
    assert not (tmp_path / "03_replay.ipynb").exists()
