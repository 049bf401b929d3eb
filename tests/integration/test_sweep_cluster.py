"""A sweep on a real Dask cluster: `dask scheduler` and two `dask worker` processes on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port

from workbench import replay
from workbench.sweeps import SweepLost, sweep

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo.toml"
GRID = {"turning_point": [0.02, 0.05, 0.1], "take_profit": "0.1:0.3:0.1"}


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group, then SIGKILL whatever is left after 10 s."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """The address of a scheduler with two single-threaded workers; all stopped after."""
    with running_cluster(tmp_path) as (address, _):
        yield address


@contextlib.contextmanager
def running_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A scheduler's address and its processes (the scheduler first); all stopped after."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    dask = [sys.executable, "-m", "dask"]
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = (tmp_path / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*dask, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
            )
        )

    try:
        start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
        )
        for i in range(2):
            start(
                f"worker-{i}",
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--local-directory",
                str(tmp_path / f"w{i}"),
                "--name",
                f"w{i}",
            )
        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        stop(procs)
    for p in procs:
        assert p.poll() is not None


def test_sweep_on_a_scheduler_matches_single_fast_replays(dask_cluster, tmp_path):
    result = sweep(
        CONFIG, grid=GRID, scheduler=dask_cluster, workers=2, progress=False, out=tmp_path / "sweep"
    )
    frame = result.frame
    assert len(frame) == 9
    assert frame["error"].isna().all()
    assert result.run["workers"] == 2
    assert frame["pid"].nunique() == 2  # both workers ran tasks
    assert os.getpid() not in set(frame["pid"])
    for _, row in frame.iterrows():
        params = {"turning_point": row["turning_point"], "take_profit": row["take_profit"]}
        single = replay(CONFIG, mode="fast", condition_overrides=params, progress=False)
        assert row["fills_sha256"] == single.summary["fills_sha256"], params
        for stat in ("net_pnl", "trades", "fills", "max_drawdown", "signals"):
            assert row[stat] == single.summary[stat], (params, stat)
        assert row["sharpe_annual"] == single.performance["sharpe_annual"]
    assert (tmp_path / "sweep" / "results.parquet").exists()


def test_data_is_put_on_every_worker_once(dask_cluster):
    from distributed import Client

    from workbench.config import load_config
    from workbench.replays.session import load_replay_ticks, prepare_config
    from workbench.sweeps.engine import TaskRunner

    cfg = prepare_config(load_config(CONFIG))

    def table_id(dask_worker, name):
        return id(dask_worker.plugins[name].table)

    with Client(dask_cluster) as client, TaskRunner(client, cfg, load_replay_ticks(cfg)) as runner:
        before = client.run(table_id, name=runner.name)
        assert len(before) == 2
        rows = runner.run([({"turning_point": 0.05}, None)] * 8, progress=False)
        assert all(r["error"] is None for r in rows)
        assert len({r["pid"] for r in rows}) == 2
        # The same object on each worker: tasks read it; nothing sent it again.
        assert client.run(table_id, name=runner.name) == before
        runner.close()
        assert client.run(
            lambda dask_worker, name: name in dask_worker.plugins, name=runner.name
        ) == dict.fromkeys(before, False)


def test_a_scheduler_lost_mid_sweep_stops_it_with_no_best(tmp_path):
    # The lost runs were taken for failed combinations: the best of whatever had finished
    # was chosen, best/ written for promote, and the CLI exited 0 (a review helper's repro).
    from distributed import Client

    out = tmp_path / "sweep"
    grid = {"turning_point": "0.01:0.5:0.01", "take_profit": [0.1, 0.2]}  # 100 runs
    with running_cluster(tmp_path) as (address, procs):
        done = threading.Event()

        def kill_after_the_first_runs() -> None:
            with Client(address, timeout=10) as watcher:
                while not done.wait(0.02):
                    finished = watcher.run_on_scheduler(
                        lambda dask_scheduler: sum(
                            ts.state == "memory" for ts in dask_scheduler.tasks.values()
                        )
                    )
                    if finished >= 2:
                        os.killpg(procs[0].pid, signal.SIGKILL)
                        return

        killer = threading.Thread(target=kill_after_the_first_runs, daemon=True)
        killer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(SweepLost, match=r"the sweep stopped after \d+ of 100 runs"):
                sweep(CONFIG, grid=grid, scheduler=address, workers=2, connect_timeout_s=2,
                      progress=False, out=out)  # fmt: skip
        finally:
            done.set()
            killer.join(10)
        elapsed = time.monotonic() - t0
    assert procs[0].returncode == -signal.SIGKILL  # it was lost mid-sweep, not before
    assert not (out / "best").exists() and not (out / "results.parquet").exists()
    assert elapsed < 60
