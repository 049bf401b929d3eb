"""A disk that cannot take the runners' logs: the runners keep running, the kill switch answers.

Each runner's log file is made a symlink to ``/dev/full`` (every write: ENOSPC,
no privileges needed), and the executor prints ~250 KB a second. Before the
fix the supervisor's reader thread died on the first failed write, the
executor blocked on its full stdout pipe, ``workbench halt`` got no answer
and the supervisor restarted the executor as hung; ``stop()`` raised.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import ROOT, make_config, wait_until
from helpers import run_cli as cli
from prometheus_client.parser import text_string_to_metric_families

from workbench.supervisor import Supervisor

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here"),
]

CHATTY = ROOT / "tests" / "fixtures" / "chatty_runner"
LINES_S = 500  # of ~500 bytes: a 64 KB pipe is full within a second
DRAINED = 2_000  # lines: ~1 MB, far past what a pipe nobody reads holds


def chatter(sup: Supervisor) -> int:
    """The highest ``n`` of the executor's chatter the supervisor has read (-1: none)."""
    return max((e["n"] for e in sup.logs.recent("executor") if e.get("event") == "chatter"),
               default=-1)  # fmt: skip


def metric(sup: Supervisor, name: str, runner: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{sup.health_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and s.labels.get("runner") == runner:
                return s.value
    raise AssertionError(f"no {name} for {runner} in /metrics")


def test_a_full_log_disk_neither_blocks_the_executor_nor_silences_the_kill_switch(tmp_path):
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 200.0}},
        supervisor={"heartbeat_timeout_s": 2.0, "hung_restart_after_s": 1.0},
    )
    path = cfg.save(tmp_path / "live.toml")
    logs = cfg.run_path() / "logs"
    logs.mkdir(parents=True)
    for runner in ("executor", "gateway"):
        (logs / f"{runner}.jsonl").symlink_to("/dev/full")
    env = {
        "PYTHONPATH": os.pathsep.join([str(CHATTY), os.environ.get("PYTHONPATH", "")]),
        "WORKBENCH_TEST_CHATTY": "executor",
        "WORKBENCH_TEST_CHATTY_LINES_S": str(LINES_S),
        "WORKBENCH_TEST_CHATTY_GO": str(tmp_path / "go"),
    }
    sup = Supervisor(cfg, env=env)
    try:
        sup.start(wait=True, timeout=60)
        executor = next(s for s in sup.status() if s.runner == "executor")
        (tmp_path / "go").touch()  # the chatter starts once the pipeline runs
        sup.wait_for(lambda: chatter(sup) >= DRAINED, 3 * DRAINED / LINES_S)

        # The kill switch answers: the executor is not stuck on a full pipe.
        halted = cli("halt", "--config", str(path))
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert "trading state HALTED" in halted.stdout
        state = cli("state", "--config", str(path))
        assert "trading state HALTED" in state.stdout, state.stdout + state.stderr

        # Its output was read all along, and it never looked hung.
        assert chatter(sup) >= DRAINED
        now = next(s for s in sup.status() if s.runner == "executor")
        assert (now.pid, now.restarts, now.state.value) == (executor.pid, 0, "running")
        assert not [e for e in sup.events if e.kind == "hung"]

        # Visible: one alert per runner for the whole run of failures, and a count.
        alerts = [(e.runner, e.data["reason"]) for e in sup.events if e.kind == "alert"]
        assert alerts.count(("executor", "log_write_failed")) == 1, alerts
        assert now.log_write_errors >= DRAINED
        assert metric(sup, "workbench_runner_log_write_errors_total", "executor") >= DRAINED

        # Room again (for the executor's file): the lines kept in memory go to disk.
        (logs / "executor.jsonl").unlink()
        wait_until(lambda: (logs / "executor.jsonl").is_file(), 10, "the executor's log again")
        wait_until(
            lambda: '"chatter"' in (logs / "executor.jsonl").read_text(), 10, "chatter on disk"
        )
        first = (logs / "executor.jsonl").read_text().splitlines()[0]
        assert '"log_lines_dropped"' in first or '"chatter"' in first
    finally:
        sup.stop()  # the gateway's file still fails: stopping must not raise
