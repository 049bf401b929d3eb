"""A notebook's sessions of one run: re-run cells, a double Ctrl-C, edits not applied.

Real supervisors and runner processes in this process, as a kernel runs them.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from helpers import make_config, wait_until

from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.notebook.kernel import STARTED
from workbench.notebook.workbench import Workbench
from workbench.supervisor import RunnerState, Supervisor
from workbench.supervisor.run_folder import holds_run

pytestmark = pytest.mark.integration


def config(tmp_path: Path, name: str = "a"):
    return make_config(
        tmp_path / name,
        runtime={"heartbeat_interval_s": 0.2},
        gateway={"simulated": {"rate_per_s": 200.0}},
    )


def all_running(wb: Workbench) -> bool:
    return {s.state for s in wb.supervisor.status()} == {RunnerState.RUNNING}


def test_a_re_run_start_cell_names_the_running_workbench_which_can_still_be_stopped(tmp_path):
    # The first Workbench, rebound by the re-run cell, was collected: its runners ran on
    # with nothing that could stop them, and the run could not start again in the kernel.
    cfg = config(tmp_path)
    wb = Workbench(cfg).start(wait=True, timeout=30)
    pids = {s.pid for s in wb.supervisor.status()}
    del wb
    gc.collect()
    wb = Workbench(cfg.model_copy(deep=True))
    try:
        with pytest.raises(TemporaryError, match=r"Workbench\.running\('test'\) gets it back"):
            wb.start()
        first = Workbench.running("test")
        assert {s.pid for s in first.supervisor.status()} == pids  # still alive, and reachable
        first.stop()
        assert not STARTED and not holds_run(cfg.run_path())
        wb.start(wait=True, timeout=30)
        assert Workbench.running("test") is wb
    finally:
        wb.stop()
    with pytest.raises(ConfigurationError, match="no Workbench of this kernel runs 'test'"):
        Workbench.running("test")


def test_a_second_ctrl_c_during_a_start_leaves_a_stop_that_the_next_start_finishes(
    tmp_path, monkeypatch
):
    # Ctrl-C in the start's wait, and again while its clean-up stopped the health server:
    # the supervisor was dropped with the run still claimed, and every later start failed.
    cfg = config(tmp_path)
    real_start, interrupts = Supervisor.start, []

    def start_then_ctrl_c(self, *a, **kw):
        real_start(self, *a, **kw)
        http, real_http_stop = self._http, self._http.stop

        def second_ctrl_c() -> None:
            http.stop = real_http_stop  # once
            interrupts.append(2)
            raise KeyboardInterrupt

        http.stop = second_ctrl_c
        interrupts.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(Supervisor, "start", start_then_ctrl_c)
    wb = Workbench(cfg)
    try:
        with pytest.raises(KeyboardInterrupt):
            wb.start(wait=True)
        assert interrupts == [1, 2]
        assert wb.supervisor is not None and wb.supervisor.stopping  # kept: cut short
        monkeypatch.setattr(Supervisor, "start", real_start)
        wb.start(wait=True, timeout=30)  # finishes the stop, then starts anew
        assert all_running(wb)
    finally:
        wb.stop()
    assert not STARTED and not holds_run(cfg.run_path())


def test_the_kill_switch_and_readouts_follow_what_runs_not_edits_not_applied(tmp_path):
    # Editing run_id for a promoted file made halt() reach the executor as another run's
    # command (refused); an edited executor.id made pnl() and the dashboard raise.
    wb = Workbench(config(tmp_path)).start(wait=True, timeout=30)
    try:
        wb.config.run_id = "tuned"
        wb.config.executor.id = "exec-2"
        assert wb.halt()["trading_state"] == "HALTED"
        wait_until(lambda: wb.trading_state() == "HALTED", 10, "the halt in a heartbeat")
        assert wb.pnl() == 0.0 and isinstance(wb.positions(), dict)
        assert wb.resume()["trading_state"] == "ACTIVE"
        wb.config.run_id = "test"
        with pytest.raises(ConfigurationError, match=r"executor\.id changed: stop and start"):
            wb.apply()  # it restarted nothing and left a watcher no heartbeat reaches
    finally:
        wb.stop()


def test_taps_listen_on_the_bus_of_the_config_started_not_the_first_one(tmp_path):
    wb = Workbench(config(tmp_path, "a"))
    try:
        wb.start(wait=True, timeout=30)
        wb.stop()
        wb.config = config(tmp_path, "b")  # its own run folder and bus addresses
        wb.start(wait=True, timeout=30)
        seen = len(wb.ticks)
        wait_until(lambda: len(wb.ticks) > seen + 20, 10, "ticks on the second config's bus")
    finally:
        wb.stop()
