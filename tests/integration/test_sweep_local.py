"""Sweeps on a local Dask cluster: results, failures, best, heatmap, walk-forward, Optuna, CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench import replay
from workbench.cli import main
from workbench.config import load_config
from workbench.replays.session import load_replay_ticks, prepare_config
from workbench.sweeps import sweep
from workbench.sweeps.tasks import METRICS, replay_row

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo.toml"


def test_every_combination_is_a_row_and_a_bad_one_does_not_stop_the_rest(client, tmp_path):
    grid = {"turning_point": [0.05, -1.0], "take_profit": "0.1:0.2:0.1"}
    r = sweep(CONFIG, grid=grid, client=client, progress=False, out=tmp_path)
    assert len(r.frame) == 4
    assert list(r.frame.columns[:2]) == ["turning_point", "take_profit"]
    assert set(METRICS) <= set(r.frame.columns)
    bad = r.failures
    assert list(bad["turning_point"]) == [-1.0, -1.0]
    assert bad["error"].str.contains("turning_point").all()
    good = r.frame[r.frame["error"].isna()]
    assert len(good) == 2 and good["fills_sha256"].notna().all()
    saved = pd.read_parquet(tmp_path / "results.parquet")
    assert len(saved) == 4 and saved["error"].notna().sum() == 2


def test_best_row_heatmap_and_saved_best_replay(client, tmp_path):
    grid = {"turning_point": [0.02, 0.05, 0.1], "take_profit": [0.1, 0.2, 0.3]}
    r = sweep(CONFIG, grid=grid, client=client, metric="net_pnl", progress=False, out=tmp_path)
    best = r.best()
    assert best["net_pnl"] == r.frame["net_pnl"].max()
    fig = r.heatmap("turning_point", "take_profit")
    z = fig.data[0].z
    assert len(z) == 3 and len(z[0]) == 3 and max(max(row) for row in z) == best["net_pnl"]
    assert json.loads((tmp_path / "best.json").read_text())["params"] == r.best_params()
    assert (tmp_path / "heatmap.html").exists()
    saved = json.loads((tmp_path / "best" / "summary.json").read_text())
    assert saved["fills_sha256"] == best["fills_sha256"]
    worst = r.best(maximize=False)
    assert worst["net_pnl"] == r.frame["net_pnl"].min()


def test_walk_forward_scores_train_winners_on_the_next_window(client, days_data, tmp_path):
    grid = {"turning_point": [0.02, 0.05], "take_profit": [0.1, 0.3]}
    r = sweep(
        CONFIG,
        days_data,
        grid=grid,
        client=client,
        walk_forward="train=3d,test=1d",
        progress=False,
        out=tmp_path,
    )
    wf = r.walk_forward
    assert len(wf) == 5  # day 3..7 are test days
    for _, w in wf.iterrows():
        assert w["test_start"] > w["train_end"]
        assert (w["test_end"] - w["test_start"]) < pd.Timedelta(days=1)
        # The out-of-sample figure is a fresh fast replay of the chosen parameters on the test rows.
        params = {"turning_point": w["turning_point"], "take_profit": w["take_profit"]}
        assert w["oos_net_pnl"] is not None and w["is_net_pnl"] is not None
        assert params in [
            {"turning_point": a, "take_profit": b} for a in (0.02, 0.05) for b in (0.1, 0.3)
        ]
    oos = json.loads((tmp_path / "best" / "walk_forward.json").read_text())
    assert oos["windows"] == 5
    assert oos["oos_net_pnl_after_fees"] == pytest.approx(wf["oos_net_pnl_after_fees"].sum())


def test_a_window_without_a_choice_stays_in_the_report_and_counts_as_failed(client, tmp_path):
    # Windows where no train run has a sharpe vanished: "4 windows, 50% positive"
    # where 2 of 7 were; and promote's out-of-sample gate passed on what was left.
    grid = {"turning_point": [0.02, 0.05], "take_profit": [0.1, 0.2]}
    r = sweep(CONFIG, grid=grid, client=client, metric="sharpe",
              walk_forward="train=0.3,test=0.1", progress=False, out=tmp_path)  # fmt: skip
    wf = r.walk_forward
    assert list(wf["window"]) == list(range(7))
    skipped = wf["oos_error"].fillna("").str.startswith("skipped: no train run has a sharpe")
    assert 0 < skipped.sum() < 7 and wf.loc[skipped, "turning_point"].isna().all()
    oos = json.loads((tmp_path / "best" / "walk_forward.json").read_text())
    assert (oos["windows"], oos["failed_windows"]) == (7, int(skipped.sum()))
    positive = (pd.to_numeric(wf["oos_net_pnl_after_fees"]) > 0).sum()
    assert oos["oos_positive_windows_after_fees"] == pytest.approx(positive / 7)
    argv = ["promote", "--replay", str(tmp_path / "best"), "--out", str(tmp_path / "p.toml")]
    assert main([*argv, "--min-oos-net-pnl", "-1000"]) == 1
    assert not (tmp_path / "p.toml").exists()


def test_walk_forward_picks_the_in_sample_best(client, tmp_path):
    grid = {"turning_point": [0.02, 0.05, 0.1]}
    r = sweep(CONFIG, grid=grid, client=client, walk_forward="train=0.6,test=0.4", progress=False)
    (w,) = r.walk_forward.itertuples()

    cfg = prepare_config(load_config(CONFIG))
    table = load_replay_ticks(cfg)
    train = [replay_row(cfg, table, {"turning_point": v}, (0, 3000)) for v in (0.02, 0.05, 0.1)]
    best = max(train, key=lambda row: row["net_pnl"])
    assert w.turning_point == best["turning_point"] and w.is_net_pnl == best["net_pnl"]
    test = replay_row(cfg, table, {"turning_point": w.turning_point}, (3000, 5000))
    assert w.oos_net_pnl == test["net_pnl"]


def test_optuna_search_runs_its_trials_on_the_same_runner(client):
    grid = {"turning_point": "0.02:0.1:0.02", "take_profit": [0.1, 0.2, 0.3]}
    r = sweep(CONFIG, grid=grid, client=client, search="optuna", trials=6, progress=False)
    assert len(r.frame) == 6 and r.frame["error"].isna().all()
    for _, row in r.frame.iterrows():
        single = replay(
            CONFIG,
            mode="fast",
            progress=False,
            condition_overrides={
                "turning_point": row["turning_point"],
                "take_profit": row["take_profit"],
            },
        )
        assert row["fills_sha256"] == single.summary["fills_sha256"]


def test_cli_sweep_starts_a_local_cluster_and_writes_results(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "sweep",
            "--config",
            str(CONFIG),
            "--grid",
            "turning_point=0.02,0.05",
            "--grid",
            "take_profit=0.1:0.2:0.1",
            "--workers",
            "2",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "sweep: 4 runs on 2 workers" in text and "best by net_pnl" in text
    assert len(pd.read_parquet(out / "results.parquet")) == 4


def test_cli_sweep_names_a_bad_grid(capsys):
    rc = main(["sweep", "--config", str(CONFIG), "--grid", "turning_point=x", "--out", "/tmp/x"])
    assert rc == 2
    assert "--grid turning_point=x: 'x' is not a number" in capsys.readouterr().err


def test_promote_requires_the_out_of_sample_threshold(client, days_data, tmp_path, capsys):
    sweep(
        CONFIG,
        days_data,
        grid={"turning_point": [0.02, 0.05]},
        client=client,
        walk_forward="train=3d,test=1d",
        progress=False,
        out=tmp_path / "sw",
    )
    oos = json.loads((tmp_path / "sw" / "walk_forward.json").read_text())
    args = ["promote", "--replay", str(tmp_path / "sw" / "best"), "--out", str(tmp_path / "p.toml")]
    assert main([*args, "--min-oos-net-pnl", str(oos["oos_net_pnl_after_fees"] + 1)]) == 1
    assert "min_oos_net_pnl" in capsys.readouterr().err and not (tmp_path / "p.toml").exists()
    assert main([*args, "--min-oos-net-pnl", str(oos["oos_net_pnl_after_fees"] - 1)]) == 0
    assert (tmp_path / "p.toml").exists()
    # Other parameters replayed over best/ since: the report judged the sweep's, not these.
    other = {"turning_point": 0.01, "take_profit": 5.0}
    replay(CONFIG, days_data, mode="fast", out=tmp_path / "sw" / "best",
           condition_overrides=other, progress=False)  # fmt: skip
    capsys.readouterr()
    assert main([*args, "--force", "--min-oos-net-pnl=-1e9"]) == 2
    assert "is not this replay's walk-forward report" in capsys.readouterr().err


def test_promote_without_walk_forward_refuses_an_oos_threshold(tmp_path, capsys):
    replay(CONFIG, mode="fast", out=tmp_path / "r", progress=False)
    rc = main(
        [
            "promote",
            "--replay",
            str(tmp_path / "r"),
            "--out",
            str(tmp_path / "p.toml"),
            "--min-oos-net-pnl",
            "0",
        ]
    )
    assert rc == 2 and "walk_forward.json" in capsys.readouterr().err


def test_cli_optuna_search(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([
        "sweep", "--config", str(CONFIG), "--grid", "turning_point=0.02:0.1:0.02",
        "--search", "optuna", "--trials", "4", "--workers", "1", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 4 and set(frame["turning_point"]) <= {0.02, 0.04, 0.06, 0.08, 0.1}


def test_an_unreachable_scheduler_is_a_configuration_error():
    import socket

    from workbench.exceptions import ConfigurationError
    from workbench.sweeps.engine import cluster_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with (
        pytest.raises(
            ConfigurationError, match=f"scheduler tcp://127.0.0.1:{port}: cannot connect"
        ),
        cluster_client(f"tcp://127.0.0.1:{port}", connect_timeout_s=2),
    ):
        pass


def test_cli_sweep_whose_metric_no_run_has_says_so_without_a_traceback(tmp_path, capsys):
    # The sample covers under 2 days: no annualised Sharpe ratio (README's example).
    out = tmp_path / "out"
    rc = main([
        "sweep", "--config", str(CONFIG), "--grid", "turning_point=0.05,0.1",
        "--metric", "sharpe_annual", "--workers", "1", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err
    assert "no combination succeeded with a value for 'sharpe_annual'" in err
    assert (out / "results.parquet").exists()


def test_ctrl_c_ends_a_cli_sweep_with_130_one_line_and_no_process_left(tmp_path):
    import os
    import signal
    import threading
    import time

    proc = _start_sweep(tmp_path / "o")
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while "run/s" not in "".join(err) and time.monotonic() < deadline:
            time.sleep(0.05)  # its progress bar: the cluster runs replays
        assert "run/s" in "".join(err), "".join(err)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
        rc = proc.wait(60)
        reader.join(10)
        _wait_all_gone(proc.pid)  # the Dask workers were in its session
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = "".join(err)
    assert rc == 130 and "workbench sweep: interrupted" in text, text
    assert "Traceback" not in text, text


def test_ctrl_c_while_the_cluster_starts_ends_the_sweep_too(tmp_path):
    """The workers must start ignoring SIGINT, and so did this process meanwhile: a Ctrl-C
    then was lost and the sweep ran to its end. Sent while the cluster starts (its first
    worker process just spawned), it ends the sweep with 130 all the same."""
    import os
    import signal
    import time

    proc = _start_sweep(tmp_path / "o")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _worker_spawned(proc.pid):
            time.sleep(0.01)
        assert _worker_spawned(proc.pid), "the cluster never started"
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(60)
        err = proc.stderr.read()
        _wait_all_gone(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert rc == 130 and "workbench sweep: interrupted" in err, err
    assert "Traceback" not in err and "run/s" not in err, err


def _start_sweep(out: Path) -> subprocess.Popen[str]:
    """A CLI sweep in its own session, started as a terminal's foreground job is.

    Its SIGINT is at its default, whatever this process inherited: a shell
    without job control (``make test &`` in a script) starts background jobs
    with SIGINT ignored, their children inherit that, and Python then never
    raises KeyboardInterrupt. A handler set here is reset to the default in the
    child (only an ignored signal stays ignored across exec).
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "sweep", "--config", str(CONFIG),
             "--grid", "turning_point=0.01:0.5:0.001", "--workers", "1", "--out", str(out)],
            stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, before)


def _worker_spawned(pid: int) -> bool:
    """Whether ``pid`` has a child spawned by multiprocessing (a Dask worker, starting)."""
    from pathlib import Path

    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmd:
            return True
    return False


def _wait_all_gone(session: int, timeout_s: float = 15) -> None:
    """Wait until no process of ``session`` (a process group) is left; fail if one is."""
    import os
    import time

    gone_by = time.monotonic() + timeout_s
    while time.monotonic() < gone_by:
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("processes of the interrupted sweep are still running")


def test_a_ctrl_c_silences_the_workers_and_nannies_before_the_cluster_closes():
    """A worker whose heartbeat met the closing scheduler printed a traceback after the
    user's Ctrl-C (their loggers are theirs: silencing this process's did not reach them)."""
    import logging

    from workbench.sweeps.engine import _quiet_workers, cluster_client

    with cluster_client(None, workers=1) as client:
        _quiet_workers(client)
        level = logging.CRITICAL + 1

        def distributed_level() -> int:
            return logging.getLogger("distributed").level

        assert set(client.run(distributed_level).values()) == {level}
        assert set(client.run(distributed_level, nanny=True).values()) == {level}
