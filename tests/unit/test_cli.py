"""The command line: runner entry, data synth, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("price", ["inf", "nan", "0", "-1"])
def test_data_synth_refuses_a_start_price_that_is_not_one(tmp_path, capsys, price):
    # inf ended in an OverflowError traceback.
    args = ["data", "synth", "--symbol", "A", "--ticks", "5", f"--start-price={price}"]
    with pytest.raises(SystemExit) as e:
        cli([*args, "--out", str(tmp_path / "s.csv")])
    assert e.value.code == 2 and f"{price!r} is not a price > 0" in capsys.readouterr().err


@pytest.mark.parametrize("price", ["1e307", "1e300"])
def test_data_synth_refuses_a_start_price_too_big_for_its_tick_grid(tmp_path, capsys, price):
    # 1e307 ended in an OverflowError traceback (1e307 / 0.01 is inf).
    args = ["data", "synth", "--symbol", "A", "--ticks", "5", f"--start-price={price}"]
    assert cli([*args, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --start-price: must be a finite price > 0 and below 9.0072e+13")
    assert not (tmp_path / "s.csv").exists()


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


@pytest.mark.parametrize(
    ("args", "says"),
    [
        # Was "could not convert string to float: 'abc'": no field, no flag.
        (["--set", "turning_point=abc"], "--set turning_point=abc: turning_point takes a number"),
        # Was blamed on the config file ("demo.toml: gateway.replay.speed").
        (["--speed", "-1"], "argument --speed: '-1': 0 (as fast as possible)"),
        (["--speed", "inf"], "argument --speed: 'inf'"),
    ],
)
def test_a_bad_replay_argument_is_named_as_given(capsys, args, says):
    try:
        rc = cli(["replay", "--config", str(ROOT / "configs/demo.toml"), "--mode", "fast", *args])
    except SystemExit as e:  # argparse exits itself
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert says in err and "demo.toml" not in err


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


def test_building_the_parser_imports_no_research_stack():
    """Every command builds the whole parser, the kill switch too: it must start fast."""
    import subprocess
    import sys

    probe = (
        "import sys; from workbench.cli import build_parser; build_parser(); "
        "print([m for m in ('pandas', 'plotly', 'dask', 'pyarrow', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sweep_with_an_unknown_metric_exits_2_naming_the_choices(tmp_path, capsys):
    config = Path(__file__).parents[2] / "configs" / "demo.toml"
    args = ["sweep", "--config", str(config), "--grid", "take_profit=0.1,0.2"]
    assert cli([*args, "--metric", "nope", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "--metric 'nope'" in err and "net_pnl" in err and not (tmp_path / "s").exists()


def test_a_fast_replay_whose_strategy_raises_exits_3_naming_it(tmp_path, capsys, monkeypatch):
    (tmp_path / "boom_strategy.py").write_text(
        "from workbench.strategies.support_resistance import SupportResistance\n\n"
        "class Boom(SupportResistance):\n"
        "    def on_batch(self, batch, origin_ns=0):\n"
        "        raise ZeroDivisionError('bad arithmetic')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = (ROOT / "configs/demo.toml").read_text()
    config = tmp_path / "boom.toml"
    config.write_text(
        text.replace(
            "workbench.strategies.support_resistance:SupportResistance", "boom_strategy:Boom"
        ).replace("../data/", f"{ROOT}/data/")
    )
    rc = cli(["replay", "--config", str(config), "--mode", "fast", "--quiet"])
    assert rc == 3  # a traceback and 1 before
    err = capsys.readouterr().err
    assert "strategy 'sr-1' raised ZeroDivisionError: bad arithmetic" in err


# -- halt --flatten ----------------------------------------------------------------

HALTED = {"run_id": "test", "trading_state": "HALTED", "reason": "flatten requested"}


@pytest.fixture
def answered(tmp_path, monkeypatch):
    """A config file, and the executor's answer `send_command` returns (set ``answer``)."""
    from helpers import make_config

    from workbench.notebook import control

    sent: dict = {"answer": {}}

    def send(cfg, name, args=None, *, timeout_s=3.0):
        sent["command"] = (name, args)
        return sent["answer"]

    monkeypatch.setattr(control, "send_command", send)
    sent["path"] = str(make_config(tmp_path).save(tmp_path / "paper.toml"))
    return sent


def test_halt_flatten_exits_1_naming_each_position_left_open(answered, capsys):
    answered["answer"] = {
        **HALTED,
        "positions": {"ABC": 2.0, "XYZ": 0.0},
        "not_flattened": {"ABC": "no market price seen yet: no closing order sent"},
    }
    assert cli(["halt", "--flatten", "--config", answered["path"]]) == 1
    assert answered["command"] == ("halt", {"flatten": True})
    out, err = capsys.readouterr()
    assert "trading state HALTED (flatten requested)" in out  # halted all the same
    assert "not flattened: ABC: no market price seen yet: no closing order sent" in err
    assert "XYZ" not in err


def test_halt_flatten_exits_0_when_every_position_is_closed(answered, capsys):
    answered["answer"] = {**HALTED, "positions": {"ABC": 0.0}, "not_flattened": {}}
    assert cli(["halt", "--flatten", "--config", answered["path"]]) == 0
    assert capsys.readouterr().err == ""


def test_halt_flatten_to_an_executor_that_does_not_say_names_the_open_positions(answered, capsys):
    answered["answer"] = {**HALTED, "positions": {"ABC": 2.0, "XYZ": 0.0}}  # an older executor
    assert cli(["halt", "--flatten", "--config", answered["path"]]) == 1
    err = capsys.readouterr().err
    assert "not flattened: ABC: still open" in err and "XYZ" not in err


def test_a_plain_halt_with_positions_open_exits_0(answered):
    answered["answer"] = {**HALTED, "reason": "halt", "positions": {"ABC": 2.0}}
    assert cli(["halt", "--config", answered["path"]]) == 0
    assert answered["command"] == ("halt", {})


def test_diff_limit_below_1_is_a_usage_error(tmp_path, capsys):
    """``--limit 0`` said "no differences" for runs that differ."""
    with pytest.raises(SystemExit) as e:
        cli(["diff", str(tmp_path), str(tmp_path), "--limit", "0"])
    assert e.value.code == 2 and "--limit: must be a whole number >= 1" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_an_error_without_a_traceback(tmp_path, capsys):
    taken = tmp_path / "a-file"
    taken.write_text("x")
    rc = cli(["deploy", "systemd", "--config", "configs/demo.toml", "--out", str(taken)])
    err = capsys.readouterr().err
    assert rc == 1 and "workbench deploy:" in err and str(taken) in err
    assert "Traceback" not in err and taken.read_text() == "x"


def test_replay_notebook_paths_are_from_this_shells_folder(tmp_path, monkeypatch, capsys):
    """The notebook read a relative --config from the project's root: another file."""
    from workbench.replays import notebook

    got: dict = {}
    monkeypatch.setattr(
        notebook, "run_replay_notebook", lambda out, p: got.update(p) or Path(out) / "nb.ipynb"
    )
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert cli(["replay-notebook", "--config", "configs/demo.toml", "--out", "o"]) == 0
    assert got["config_path"] == str(tmp_path / "configs" / "demo.toml")
    assert cli(["replay-notebook", "--config", "nope.toml", "--out", "o"]) == 2
    assert "--config nope.toml: no such file" in capsys.readouterr().err
    # A parameter out_dir went over --out, and the results were elsewhere than said.
    got.clear()
    assert cli(["replay-notebook", "--out", "o", "-p", "out_dir", "x"]) == 2
    assert "give the results folder as --out" in capsys.readouterr().err and not got


def test_diff_of_a_folder_whose_journal_is_no_database_is_a_usage_error(tmp_path, capsys):
    """Exit 1 says the runs differ: a broken journal must not pass for that."""
    (tmp_path / "journal.sqlite").write_text("not a database")
    assert cli(["diff", str(tmp_path), str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["config", "check"], ["up", "--config"], ["state", "--config"]])
def test_a_config_file_that_is_not_utf8_is_named_once_without_a_traceback(tmp_path, capsys, argv):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('run_id = "café"\n'.encode("latin-1"))
    assert cli([*argv, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"{bad}: not UTF-8 text (byte 13: b'\\xe9')") == 1, err
    assert "Traceback" not in err


def test_up_with_an_unknown_runner_leaves_the_previous_run_folder_alone(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'run_id = "t"\n[runtime]\nrun_dir = "{tmp_path / "runs"}"\n')
    previous = tmp_path / "runs" / "t"
    previous.mkdir(parents=True)
    (previous / "journal.sqlite").write_bytes(b"kept")
    assert cli(["up", "--config", str(config), "--runners", "nope"]) == 2
    assert "no runner named nope (the config has executor, gateway" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["t"]  # not archived


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["record", "--config", "c.toml", "--seconds", "-1"],
            "'-1' is not a number of seconds >= 0",
        ),
        (["record", "--config", "c.toml", "--seconds", "nan"], "'nan' is not a number of seconds"),
        (["deploy", "systemd", "--config", "c.toml", "--watchdog-s", "-5"], "'-5' is not a whole"),
        (["deploy", "systemd", "--config", "c.toml", "--watchdog-s", "0"], "seconds >= 1"),
        (["keys", "generate", "k", "--names", "ok,../x"], "'../x': a name must be a plain file"),
        (["keys", "generate", "k", "--names", ".hidden"], "'.hidden': a name must be a plain"),
        # a,a wrote one pair, then said "a.key_secret exists; pass --force".
        (["keys", "generate", "k", "--names", "a,b,a"], "argument --names: 'a' given twice"),
        (["promote", "--replay", "r", "--out", "o", "--min-win-rate", "nan"], "'nan' is not a"),
        (["promote", "--replay", "r", "--out", "o", "--max-drawdown", "inf"], "'inf' is not a"),
    ],
)
def test_an_operations_argument_out_of_range_is_a_usage_error_naming_it(
    tmp_path, monkeypatch, capsys, argv, says
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written (no key pair outside the folder)


@pytest.mark.parametrize("command", ["replay", "sweep"])
@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_an_out_folder_that_cannot_be_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys, command, where
):
    import importlib

    def must_not_load(cfg):
        raise AssertionError("the data was loaded before --out was checked")

    for module in ("workbench.replays.session", "workbench.sweeps.sweep"):
        monkeypatch.setattr(importlib.import_module(module), "load_replay_ticks", must_not_load)
    (tmp_path / "a-file").write_text("x")
    argv = [command, "--config", "configs/demo.toml", "--out", str(tmp_path / where)]
    argv += ["--mode", "fast"] if command == "replay" else ["--grid", "take_profit=0.1,0.2"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a-file'} is a file, not a folder" in err and "Traceback" not in err
    assert (tmp_path / "a-file").read_text() == "x"


def test_run_role_help_is_the_runners_own(capsys):
    # It printed `workbench run`'s help, without --config and --id.
    with pytest.raises(SystemExit) as e:
        cli(["run", "strategy", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--config CONFIG" in out and "--id ID" in out
