"""A runner that cannot be spawned (too many open files): retried, the others run on.

Before, the OSError from spawning ended the supervisor's loop
(``supervisor_loop_crashed``), which stopped every runner.
"""

from __future__ import annotations

import errno
import subprocess

import pytest
from helpers import make_config, wait_until

from workbench.supervisor import Supervisor, child_process

pytestmark = pytest.mark.integration


def test_a_runner_whose_spawn_fails_is_retried_while_the_others_keep_running(tmp_path, monkeypatch):
    real_popen = subprocess.Popen
    refused: list[list[str]] = []

    def popen(argv, *args, **kwargs):
        if "runners.strategy" in argv and len(refused) < 2:
            refused.append(argv)
            raise OSError(errno.EMFILE, "Too many open files")
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(child_process.subprocess, "Popen", popen)
    cfg = make_config(
        tmp_path,
        gateway={"simulated": {"rate_per_s": 200.0}},
        supervisor={"restart_backoff_initial_s": 0.2, "restart_backoff_jitter": 0.0},
    )
    sup = Supervisor(cfg)
    try:
        sup.start()
        wait_until(
            lambda: {s.runner for s in sup.status() if s.is_running} >= {"executor", "gateway"},
            30,
            "executor and gateway running",
        )
        binders = {s.runner: s.pid for s in sup.status() if s.runner != "sr-1"}
        sup.wait_running(30)  # sr-1 too, at its third try
        assert len(refused) == 2
        assert not sup.any_failed()
        reasons = [e.data["reason"] for e in sup.events if e.kind == "restarting"]
        assert reasons == ["spawn failed: [Errno 24] Too many open files"] * 2
        now = {s.runner: s for s in sup.status()}
        assert {r: now[r].pid for r in binders} == binders  # never restarted
        assert now["executor"].restarts == now["gateway"].restarts == 0
        assert now["sr-1"].restarts == 2
        counters = sup.heartbeat("executor").counters  # the strategy's signals reach it
        wait_until(
            lambda: (
                sup.heartbeat("executor").counters.get("signals_in", 0)
                > counters.get("signals_in", 0)
            ),
            30,
            "signals from sr-1 at the executor",
        )
    finally:
        sup.stop()
