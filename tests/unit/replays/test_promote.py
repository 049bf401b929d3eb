"""Promotion writes a config only for a replay that passes every threshold."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main as cli
from workbench.config import build_config, load_config
from workbench.exceptions import ConfigurationError
from workbench.replays.promote import PromotionRefused, evaluate, promote
from workbench.replays.session import content_sha256

SUMMARY = {
    "trades": 5,
    "net_pnl": 1.5,
    "max_drawdown": -0.8,
    "win_rate": 0.6,
    "sharpe": 0.4,
    "fills_sha256": "ab" * 32,
}


@pytest.fixture
def replay_dir(tmp_path):
    d = tmp_path / "replay"
    d.mkdir()
    (d / "summary.json").write_text(json.dumps(SUMMARY))
    (d / "fills.sha256").write_text("ab" * 32 + "\n")
    config = build_config(base_dir=d).save(d / "config.toml")
    data = tmp_path / "ticks.csv"
    data.write_text("ts_ns,price\n1,100.0\n")
    run = {"data_path": str(data), "data_sha256": content_sha256(data),
           "config_sha256": content_sha256(config)}  # fmt: skip
    (d / "run.json").write_text(json.dumps(run))
    return d


@pytest.mark.parametrize("change", ["data", "config", "unrecorded"])
def test_a_replay_whose_data_or_config_changed_since_is_not_promoted(replay_dir, change):
    # The figures held were the old data's: the promoted config then traded on others.
    run = json.loads((replay_dir / "run.json").read_text())
    if change == "data":
        with open(run["data_path"], "a") as f:
            f.write("2,90.0\n")
    elif change == "config":
        with open(replay_dir / "config.toml", "a") as f:
            f.write("\n# edited\n")
    else:
        (replay_dir / "run.json").write_text(json.dumps({"data_path": run["data_path"]}))
    says = "replay again"
    with pytest.raises(ConfigurationError, match=says):
        promote(replay_dir, replay_dir.parent / "p.toml", min_trades=1)
    assert not (replay_dir.parent / "p.toml").exists()


def test_evaluate_checks_each_threshold():
    checks = {
        c.name: c.ok for c in evaluate(SUMMARY, max_drawdown=1.0, min_trades=6, min_win_rate=0.5)
    }
    assert checks == {"max_drawdown": True, "min_trades": False, "min_win_rate": True}


def test_a_replay_that_never_traded_is_not_promoted_unless_min_trades_0_says_so(
    replay_dir, tmp_path
):
    # No trade: no drawdown and no loss, so it passed --max-drawdown and --min-net-pnl.
    idle = {**SUMMARY, "trades": 0, "net_pnl": 0.0, "net_pnl_after_fees": 0.0, "max_drawdown": 0.0}
    (replay_dir / "summary.json").write_text(json.dumps(idle))
    with pytest.raises(PromotionRefused, match=r"min_trades \(trades, by default\): 0 vs limit 1"):
        promote(replay_dir, tmp_path / "p.toml", max_drawdown=0.001, min_net_pnl=0.0)
    assert not (tmp_path / "p.toml").exists()
    path = promote(replay_dir, tmp_path / "p.toml", max_drawdown=0.001, min_trades=0)
    assert load_config(path).promotion.checks == {"max_drawdown": 0.001, "min_trades": 0.0}
    checks = evaluate(SUMMARY, max_drawdown=1.0)  # a replay with trades passes the default
    assert [(c.name, c.ok) for c in checks] == [("max_drawdown", True), ("min_trades", True)]


def test_evaluate_drawdown_is_a_magnitude():
    assert not evaluate(SUMMARY, max_drawdown=0.5)[0].ok


def test_evaluate_needs_a_threshold():
    with pytest.raises(ConfigurationError, match="at least one threshold"):
        evaluate(SUMMARY)


def test_promote_writes_config_with_its_record(replay_dir, tmp_path):
    path = promote(replay_dir, tmp_path / "promoted.toml", max_drawdown=1.0, min_trades=3)
    cfg = load_config(path)
    assert cfg.promotion.fills_sha256 == "ab" * 32
    assert cfg.promotion.checks == {"max_drawdown": 1.0, "min_trades": 3.0}
    assert cfg.promotion.summary["trades"] == 5
    assert load_config(cfg.save(tmp_path / "again.toml")) == cfg.rebased(tmp_path)


def test_the_promoted_config_is_the_replays_not_the_promoting_shells(
    replay_dir, tmp_path, monkeypatch
):
    # The replay ran with its saved config; this shell's variables were not part of it.
    monkeypatch.setenv("WORKBENCH__RUN_ID", "prod")
    monkeypatch.setenv("WORKBENCH__EXECUTOR__RISK__MAX_ORDER_QTY", "1000")
    path = promote(replay_dir, tmp_path / "promoted.toml", min_trades=3)
    saved = load_config(replay_dir / "config.toml", environment=False)
    promoted = load_config(path, environment=False)
    assert promoted.run_id == saved.run_id == "default"
    assert promoted.executor.risk == saved.executor.risk


def test_promote_refuses_and_writes_nothing(replay_dir, tmp_path):
    with pytest.raises(PromotionRefused, match="min_trades"):
        promote(replay_dir, tmp_path / "promoted.toml", min_trades=10)
    assert not (tmp_path / "promoted.toml").exists()


def test_promote_rejects_a_folder_that_is_not_a_replay(tmp_path):
    with pytest.raises(ConfigurationError, match="not a saved replay"):
        promote(tmp_path, tmp_path / "p.toml", min_trades=1)


def test_promote_rejects_mismatched_hash(replay_dir, tmp_path):
    (replay_dir / "fills.sha256").write_text("cd" * 32)
    with pytest.raises(ConfigurationError, match="does not match"):
        promote(replay_dir, tmp_path / "p.toml", min_trades=1)


def test_cli_promote_exit_codes(replay_dir, tmp_path, capsys):
    out = tmp_path / "p.toml"
    assert (
        cli(["promote", "--replay", str(replay_dir), "--out", str(out), "--min-trades", "9"]) == 1
    )
    assert "min_trades: 5 vs limit 9 (FAILED)" in capsys.readouterr().err and not out.exists()
    assert (
        cli(["promote", "--replay", str(replay_dir), "--out", str(out), "--max-drawdown", "2"]) == 0
    )
    assert out.exists()


def test_cli_promote_replaces_an_existing_config_only_with_force(replay_dir, tmp_path, capsys):
    out = tmp_path / "p.toml"
    out.write_text("# the config running live\n")
    args = ["promote", "--replay", str(replay_dir), "--out", str(out), "--max-drawdown", "2"]
    assert cli(args) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "# the config running live\n"
    assert cli([*args, "--force"]) == 0
    assert "[promotion]" in out.read_text()


def test_cli_promote_to_a_folder_with_force_is_an_error_leaving_nothing(
    replay_dir, tmp_path, capsys
):
    # "[Errno 21] Is a directory", and <dir>.tmp left beside it.
    out = tmp_path / "promoted"
    out.mkdir()
    args = ["promote", "--replay", str(replay_dir), "--out", str(out), "--max-drawdown", "2"]
    assert cli([*args, "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: is a folder; save the config to a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["promoted", "replay", "ticks.csv"]
    assert list(out.iterdir()) == []


def test_evaluate_holds_the_out_of_sample_thresholds_against_pnl_after_fees():
    # Positive before fees in both windows, negative after fees in one of them.
    oos = {
        "oos_net_pnl_before_fees": 3.0,
        "oos_net_pnl_after_fees": 0.5,
        "oos_positive_windows_after_fees": 0.5,
        "failed_windows": 0,
    }
    checks = evaluate(SUMMARY, oos=oos, min_oos_net_pnl=1.0, min_oos_positive_windows=1.0)
    assert [(c.name, c.of, c.value, c.ok) for c in checks] == [
        ("min_oos_net_pnl", "oos_net_pnl_after_fees", 0.5, False),
        ("min_oos_positive_windows", "oos_positive_windows_after_fees", 0.5, False),
        ("max_oos_failed_windows", "failed_windows", 0, True),
        ("min_trades", "trades, by default", 5, True),
    ]
    assert str(checks[0]).startswith("min_oos_net_pnl (oos_net_pnl_after_fees): 0.5")


def test_an_out_of_sample_gate_fails_on_a_window_that_did_not_run():
    # 0.06 summed over the windows that ran passed min_oos_net_pnl 0 with two crashed.
    oos = {
        "oos_net_pnl_after_fees": 0.06,
        "oos_positive_windows_after_fees": 1 / 3,
        "failed_windows": 2,
    }
    checks = evaluate(SUMMARY, oos=oos, min_oos_net_pnl=0.0)
    assert [(c.name, c.ok) for c in checks] == [
        ("min_oos_net_pnl", True),
        ("max_oos_failed_windows", False),
        ("min_trades", True),
    ]
    with pytest.raises(ConfigurationError, match="failed windows"):
        evaluate(SUMMARY, oos={"oos_net_pnl_after_fees": 1.0}, min_oos_net_pnl=0.0)


def test_evaluate_refuses_a_walk_forward_report_without_pnl_after_fees():
    old = {"windows": 2, "oos_net_pnl": 3.0, "oos_positive_windows": 1.0}
    with pytest.raises(ConfigurationError, match=r"oos_net_pnl_after_fees.*run the sweep again"):
        evaluate(SUMMARY, oos=old, min_oos_net_pnl=0.0)


def test_min_net_pnl_holds_the_pnl_after_fees():
    # Profitable before fees, losing after them: not promoted.
    summary = {"net_pnl": 1.0, "net_pnl_after_fees": -0.2, "trades": 4}
    check, _ = evaluate(summary, min_net_pnl=0.0)
    assert not check.ok and check.value == -0.2
    assert str(check) == "min_net_pnl (net_pnl_after_fees): -0.2 vs limit 0.0 (FAILED)"
    assert evaluate({**summary, "net_pnl_after_fees": 0.5}, min_net_pnl=0.0)[0].ok
    with pytest.raises(ConfigurationError, match="lacks: run the replay again"):
        evaluate({"net_pnl": 1.0}, min_net_pnl=0.0)  # a summary from before the figure


def test_a_typo_in_the_shells_environment_does_not_stop_a_promotion(
    replay_dir, tmp_path, monkeypatch
):
    # Saving the promoted config checked this shell's WORKBENCH__ variables, which it ignores.
    monkeypatch.setenv("WORKBENCH__EXECUTOR_RISK__MAX_ORDER_QTY", "5")
    path = promote(replay_dir, tmp_path / "promoted.toml", min_trades=3)
    assert load_config(path, environment=False).promotion.checks == {"min_trades": 3.0}


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_figure_that_is_not_finite_passes_no_threshold(bad):
    # A qty of 1e308 made net PnL inf: min_net_pnl passed, then saving crashed.
    summary = {**SUMMARY, "net_pnl_after_fees": bad, "sharpe": bad, "max_drawdown": bad}
    checks = evaluate(summary, min_net_pnl=0.0, min_sharpe=0.0, max_drawdown=1e9, min_trades=1)
    assert {c.name: c.ok for c in checks} == {
        "max_drawdown": False, "min_trades": True, "min_net_pnl": False, "min_sharpe": False,
    }  # fmt: skip


def test_an_unknown_drawdown_passes_no_max_drawdown(replay_dir, tmp_path):
    """A drawdown that was not finite is null in summary.json: it read as 0 and passed."""
    summary = {**SUMMARY, "max_drawdown": None}
    (replay_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(PromotionRefused, match="max_drawdown: None"):
        promote(replay_dir, tmp_path / "p.toml", max_drawdown=0.5)
    assert not (tmp_path / "p.toml").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[]", "not a replay summary"),
        ('"x"', "not a replay summary"),
        ('{"trades": "5", "fills_sha256": null}', "summary.json: trades: not a number"),
        ('{"max_drawdown": "-1"}', "summary.json: max_drawdown: not a number"),
        ('{"trades": true}', "summary.json: trades: not a number"),
    ],
)
def test_a_damaged_summary_is_named_not_a_traceback(replay_dir, tmp_path, capsys, text, says):
    (replay_dir / "summary.json").write_text(text)
    argv = ["promote", "--replay", str(replay_dir), "--out", str(tmp_path / "p.toml"),
            "--min-trades", "1", "--max-drawdown", "5"]  # fmt: skip
    assert cli(argv) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "p.toml").exists()
