"""The command line: runner entry, data synth, replay."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


def test_run_role_with_a_missing_config_exits_2(tmp_path, capsys):
    assert cli(["run", "gateway", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_data_synth_reproduces_the_committed_sample(tmp_path):
    out = tmp_path / "s.csv"
    assert (
        cli(
            [
                "data",
                "synth",
                "--symbol",
                "ABC",
                "--ticks",
                "5000",
                "--seed",
                "42",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes() == (ROOT / "data/ticks/synth-ABC-5000.csv").read_bytes()


def test_replay_fast_writes_results(tmp_path, capsys):
    rc = cli(
        [
            "replay",
            "--config",
            str(ROOT / "configs/demo.toml"),
            "--mode",
            "fast",
            "--out",
            str(tmp_path),
            "--set",
            "take_profit=0.25",
            "--quiet",
        ]
    )
    assert rc == 0
    assert "fast replay: ticks 5000" in capsys.readouterr().out
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["condition_overrides"] == {"take_profit": 0.25}


def test_replay_with_a_bad_override_exits_2(capsys):
    assert (
        cli(
            [
                "replay",
                "--config",
                str(ROOT / "configs/demo.toml"),
                "--mode",
                "fast",
                "--set",
                "colour=1",
                "--quiet",
            ]
        )
        == 2
    )
    assert "cannot override condition field 'colour'" in capsys.readouterr().err


def test_replay_of_a_missing_file_exits_2(tmp_path, capsys):
    assert (
        cli(
            [
                "replay",
                "--config",
                str(ROOT / "configs/demo.toml"),
                "--data",
                str(tmp_path / "none.csv"),
                "--mode",
                "fast",
                "--quiet",
            ]
        )
        == 2
    )
    assert "none.csv" in capsys.readouterr().err


def test_a_replay_result_carries_the_config_that_ran():
    from workbench.config import WorkbenchConfig
    from workbench.replays.session import replay

    result = replay(ROOT / "configs/demo.toml", mode="fast", progress=False)
    assert isinstance(result.config, WorkbenchConfig)
    assert result.config.source.endswith("demo.toml")
