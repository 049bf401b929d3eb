"""`RunnerWatcher`: one runner's lifecycle, driven with fake processes and a fake clock."""

from __future__ import annotations

import errno
import signal

import pytest
from supervisor_fakes import Rig

from workbench.messaging.codec import Heartbeat
from workbench.runner.base import EXIT_CONFIG
from workbench.supervisor.status import RunnerState
from workbench.supervisor.watcher import Intent


def test_spawn_then_first_heartbeat_makes_it_running():
    r = Rig()
    r.w.request_start()
    assert (r.w.state, r.w.detail, r.w.pid) == (RunnerState.STARTING, "spawned", 100)
    r.clock.advance(0.3)
    assert r.beat()
    assert r.w.state is RunnerState.RUNNING
    assert ("started", {"pid": 100, "seconds": 0.3}) in r.events


def test_a_gated_runner_waits_for_release_and_has_no_start_timeout():
    r = Rig(start_timeout_s=1.0)
    r.w.intent = Intent.RUN
    r.w.spawn(gated=True)
    assert r.w.detail == "gated"
    r.clock.advance(5)
    r.w.tick()
    assert r.w.state is RunnerState.STARTING and r.proc.signals == []
    r.w.release()
    assert r.proc.released and r.w.detail == "released"
    r.clock.advance(1.5)
    r.w.tick()  # now the start timeout counts: no heartbeat -> hung -> terminated
    assert signal.SIGTERM in r.proc.signals and "hung" in r.kinds()


def test_heartbeats_of_another_pid_are_ignored():
    r = Rig()
    r.w.request_start()
    hb = Heartbeat("strategy", 999, "running")
    assert not r.w.on_heartbeat(hb)
    assert r.w.state is RunnerState.STARTING and r.w.hb.heartbeat is None


def test_a_crash_restarts_after_the_backoff():
    r = Rig()
    r.running()
    r.proc.rc = 1
    r.w.tick()
    assert r.w.state is RunnerState.STARTING and r.w.detail.startswith("restart in 0.10 s")
    assert ("restarting", {"delay_s": 0.1, "attempt": 1, "reason": "exit code 1"}) in r.events
    r.clock.advance(0.05)
    r.w.tick()
    assert len(r.procs) == 1  # not yet
    r.clock.advance(0.06)
    r.w.tick()
    assert len(r.procs) == 2 and r.w.restarts == 1 and r.w.exit_code is None


def test_the_budget_spent_means_failed():
    r = Rig(max_restarts=2, restart_window_s=60)
    r.running()
    for _ in range(2):
        r.proc.rc = 1
        r.w.tick()
        r.clock.advance(1)
        r.w.tick()
    r.proc.rc = 1
    r.w.tick()
    assert r.w.state is RunnerState.FAILED and "2 restarts in 60 s" in r.w.detail
    assert ("alert", {"reason": "runner_failed", "detail": r.w.detail}) in r.events
    r.clock.advance(100)
    r.w.tick()
    assert len(r.procs) == 3  # it stays down


def test_a_configuration_error_fails_at_once():
    r = Rig()
    r.running()
    r.proc.rc = EXIT_CONFIG
    r.w.tick()
    assert r.w.state is RunnerState.FAILED and "configuration error" in r.w.detail


def test_a_finished_replay_stops_without_restart():
    r = Rig()
    r.running()
    r.beat("finished")
    r.proc.rc = 0
    r.w.tick()
    assert (r.w.state, r.w.detail, r.w.intent) == (RunnerState.STOPPED, "finished", Intent.STOP)


def test_stale_heartbeat_makes_it_unhealthy_then_hung_restarts_it():
    r = Rig(heartbeat_timeout_s=2.0, hung_restart_after_s=1.0)
    r.running()
    r.proc.exits_on_term = False
    r.clock.advance(2.5)
    r.w.tick()
    assert r.w.state is RunnerState.UNHEALTHY
    r.clock.advance(0.5)
    r.w.tick()
    assert r.proc.signals == []  # not hung yet
    r.clock.advance(0.6)
    r.w.tick()
    assert r.proc.signals == [signal.SIGTERM, signal.SIGCONT]
    r.proc.rc = -15
    r.w.tick()
    assert "restart in" in r.w.detail and "(hung)" in r.w.detail


def test_a_hung_runner_woken_to_die_stays_unhealthy_until_it_exits():
    # The SIGCONT wakes it: its last heartbeat made /health say "running" for a second.
    r = Rig(heartbeat_timeout_s=2.0, hung_restart_after_s=1.0)
    r.running()
    r.proc.exits_on_term = False
    r.clock.advance(2.5)
    r.w.tick()
    r.clock.advance(1.1)
    r.w.tick()
    assert r.proc.signals == [signal.SIGTERM, signal.SIGCONT]
    r.beat()
    assert r.w.state is RunnerState.UNHEALTHY and r.w.status().state == "unhealthy"


def test_a_heartbeat_brings_an_unhealthy_runner_back():
    r = Rig(heartbeat_timeout_s=2.0)
    r.running()
    r.clock.advance(3)
    r.w.tick()
    assert r.w.state is RunnerState.UNHEALTHY
    r.beat()
    assert r.w.state is RunnerState.RUNNING and r.w.unhealthy_since is None


def test_stop_kills_after_the_grace_and_stays_stopped():
    r = Rig(stop_grace_s=3.0)
    r.running()
    r.proc.exits_on_term = False
    r.w.request_stop()
    r.clock.advance(2)
    r.w.tick()
    assert signal.SIGKILL not in r.proc.signals
    r.clock.advance(1.5)
    r.w.tick()
    assert signal.SIGKILL in r.proc.signals
    r.w.tick()
    assert (r.w.state, r.w.proc) == (RunnerState.STOPPED, None)
    r.clock.advance(100)
    r.w.tick()
    assert len(r.procs) == 1


def test_restart_respawns_at_once_without_spending_the_budget():
    r = Rig()
    r.running()
    r.w.request_restart()
    r.w.tick()
    assert len(r.procs) == 2 and r.w.restarts == 1 and not r.w.restart_times
    assert r.w.state is RunnerState.STARTING


def test_start_during_a_stop_starts_it_again_once_gone():
    r = Rig()
    r.running()
    r.proc.exits_on_term = False
    r.w.request_stop()
    r.w.request_start()
    r.proc.rc = 0
    r.w.tick()
    assert len(r.procs) == 2 and r.w.intent is Intent.RUN


def test_remove_forgets_it_after_exit():
    r = Rig()
    r.running()
    r.proc.exits_on_term = False
    assert not r.w.request_remove()
    assert not r.w.removed
    r.proc.rc = 0
    r.w.tick()
    assert r.w.removed and len(r.procs) == 1


def test_orders_in_doubt_alert_once_per_process():
    r = Rig()
    r.w.role = "executor"
    r.running()
    r.beat(extra={"orders_in_doubt": ["o-1"]})
    r.beat(extra={"orders_in_doubt": ["o-1"]})
    alerts = [d for k, d in r.events if k == "alert"]
    assert alerts == [{"reason": "orders_in_doubt", "order_ids": ["o-1"]}]


def test_rates_come_from_two_heartbeats():
    r = Rig()
    r.w.request_start()
    r.w.on_heartbeat(Heartbeat("strategy", 100, "running", {"ticks_in": 10}))
    r.clock.advance(2)
    r.w.on_heartbeat(Heartbeat("strategy", 100, "running", {"ticks_in": 30}))
    s = r.w.status()
    assert s.rates == {"ticks_in": 10.0} and s.counters == {"ticks_in": 30}
    assert s.heartbeat_age_s == 0.0 and s.pid == 100
    r.w.request_stop()  # a stopped gateway showed ~50 ticks/s in the dashboard
    r.w.tick()
    s = r.w.status()
    assert (s.state, s.rates, s.counters) == (RunnerState.STOPPED, {}, {"ticks_in": 30})


def test_a_shutdown_while_a_restart_waits_leaves_it_stopped_not_starting():
    """A runner between crash and respawn kept its state through the supervisor's stop."""
    r = Rig()
    r.running()
    r.proc.rc = 1
    r.w.tick()
    assert r.w.state is RunnerState.STARTING and r.w.proc is None
    r.w.begin_shutdown()
    r.w.finish_shutdown(r.clock.now + 0.1)
    r.clock.advance(5)
    r.w.tick()
    assert (r.w.state, r.w.proc, len(r.procs)) == (RunnerState.STOPPED, None, 1)


def test_shutdown_waits_then_kills():
    r = Rig()
    r.running()
    r.proc.exits_on_term = False
    r.w.begin_shutdown()
    r.w.finish_shutdown(r.clock.now + 0.1)
    assert signal.SIGKILL in r.procs[0].signals
    assert (r.w.state, r.w.proc, r.w.exit_code) == (RunnerState.STOPPED, None, -9)


@pytest.mark.parametrize("rc", [1, -9])
def test_status_keeps_the_exit_code_while_waiting_to_restart(rc):
    r = Rig()
    r.running()
    r.proc.rc = rc
    r.w.tick()
    s = r.w.status()
    assert (s.exit_code, s.pid, s.heartbeat_age_s) == (rc, None, None)


def test_a_spawn_that_fails_with_oserror_is_a_failed_start_retried_after_the_backoff():
    r = Rig()
    r.spawn_errors = [OSError(errno.EMFILE, "Too many open files")]
    r.w.request_start()  # raised out of the supervisor's loop before, ending every runner
    assert r.procs == [] and r.w.proc is None
    assert r.w.state is RunnerState.STARTING
    assert r.w.detail == "restart in 0.10 s (spawn failed: [Errno 24] Too many open files)"
    reason = "spawn failed: [Errno 24] Too many open files"
    assert ("restarting", {"delay_s": 0.1, "attempt": 1, "reason": reason}) in r.events
    r.clock.advance(0.11)
    r.w.tick()
    assert len(r.procs) == 1 and r.w.state is RunnerState.STARTING and r.w.detail == "spawned"
    r.beat()
    assert r.w.state is RunnerState.RUNNING and r.w.restarts == 1


def test_spawns_that_keep_failing_spend_the_restart_budget_then_fail_with_an_alert():
    r = Rig(max_restarts=2, restart_window_s=60)
    r.spawn_errors = [OSError(errno.EMFILE, "Too many open files")] * 3
    r.w.intent = Intent.RUN
    r.w.spawn(gated=True)  # a gated first spawn fails the same way
    for _ in range(2):
        r.clock.advance(1)
        r.w.tick()
    assert r.w.state is RunnerState.FAILED and r.procs == []
    assert "last: spawn failed: [Errno 24]" in r.w.detail
    assert ("alert", {"reason": "runner_failed", "detail": r.w.detail}) in r.events


def test_a_restart_whose_spawn_fails_is_retried_too():
    r = Rig()
    r.running()
    r.spawn_errors = [OSError(errno.ENOMEM, "Cannot allocate memory")]
    r.w.request_restart()  # terminated, exits at once; the new spawn fails
    r.w.tick()
    assert r.w.proc is None and "spawn failed: [Errno 12]" in r.w.detail
    r.clock.advance(1)
    r.w.tick()
    assert len(r.procs) == 2 and r.w.proc is r.proc


def test_a_gated_runner_whose_first_spawn_failed_is_respawned_at_its_gate_until_released():
    r = Rig()
    r.spawn_errors = [OSError(errno.EMFILE, "Too many open files")]
    r.w.intent = Intent.RUN
    r.w.spawn(gated=True)  # stage 1, while stage 0 starts: fails
    r.clock.advance(1)
    r.w.tick()  # the retry, stage 0 still starting
    assert len(r.procs) == 1 and r.proc.gated and r.w.detail == "gated"
    r.w.release()  # stage 1 starts
    assert r.proc.released and r.w.detail == "released"
    r.beat()
    r.proc.rc = 1  # a later crash: its stage has long started, no gate now
    r.w.tick()
    r.clock.advance(1)
    r.w.tick()
    assert len(r.procs) == 2 and not r.proc.gated


def test_a_restarted_runner_has_no_uptime_until_its_first_heartbeat():
    r = Rig()
    r.running()
    r.clock.advance(30)
    assert r.w.status().uptime_s == 30
    r.proc.rc = 1
    r.w.tick()
    r.clock.advance(0.2)
    r.w.tick()  # respawned: the new process has not beaten yet
    assert len(r.procs) == 2 and r.w.status().uptime_s == 0.0
    r.clock.advance(0.5)
    r.beat()
    r.clock.advance(2)
    assert r.w.status().uptime_s == 2


def test_a_runner_that_hangs_at_start_up_is_failed_and_its_backoff_grows():
    # Each attempt takes start_timeout_s (15 s), so at most four restarts fit in the
    # 60 s window: with the defaults it was restarted for ever, never failed, and its
    # backoff stayed at 0.4 s (a review helper's repro: 9 restarts in 140 s, still starting).
    r = Rig(start_timeout_s=15.0, restart_window_s=60.0, max_restarts=5,
            restart_backoff_initial_s=0.05, restart_backoff_max_s=10.0,
            restart_backoff_jitter=0.0)  # fmt: skip
    r.w.request_start()
    delays = []
    for _ in range(10):
        r.clock.advance(15.1)
        r.w.tick()  # no heartbeat: hung, terminated
        r.proc.rc = -15
        r.w.tick()
        if r.w.state is RunnerState.FAILED:
            break
        delays.append(r.w.next_start_at - r.clock.now)
        r.clock.advance(delays[-1])
        r.w.tick()  # respawned
    assert r.w.state is RunnerState.FAILED
    assert r.w.detail.startswith("5 restarts in a row, none up 60 s; last: hung")
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])


def test_a_run_that_stayed_up_a_window_forgives_the_restarts_before_it():
    r = Rig(restart_window_s=60.0, max_restarts=2, restart_backoff_jitter=0.0)
    r.running()
    for _ in range(2):  # two quick crashes: the budget's two
        r.proc.rc = 1
        r.w.tick()
        r.clock.advance(1)
        r.w.tick()
        r.beat()
    r.clock.advance(61)  # then up a whole window
    r.beat()
    r.proc.rc = 1
    r.w.tick()
    assert r.w.state is RunnerState.STARTING and r.w.restart_streak == 1


def test_a_restart_on_purpose_after_a_long_run_forgives_the_crashes_before_it():
    # The streak was only cleared when a long-lived process crashed: one restarted by apply
    # or restart_runner carried it, and two quick crashes then failed a runner up for hours.
    r = Rig(restart_window_s=60.0, max_restarts=3, restart_backoff_jitter=0.0)
    r.running()
    for _ in range(2):  # two quick crashes
        r.proc.rc = 1
        r.w.tick()
        r.clock.advance(1)
        r.w.tick()
        r.beat()
    r.clock.advance(3 * 3600)  # then up three hours, and restarted on purpose
    r.beat()
    r.w.request_restart()
    r.w.tick()
    assert r.w.restart_streak == 0
    r.beat()
    for _ in range(2):
        r.clock.advance(10)
        r.proc.rc = 1
        r.w.tick()
        assert r.w.state is RunnerState.STARTING
        r.clock.advance(1)
        r.w.tick()
        r.beat()
    assert r.w.state is RunnerState.RUNNING and r.w.restart_streak == 2


def test_a_runner_still_being_built_stays_starting_while_it_beats():
    # A gateway loading an 8-million-row file sent nothing for 15 s and was killed as hung.
    r = Rig(start_timeout_s=1.0)
    r.w.request_start()
    for _ in range(5):
        r.clock.advance(0.8)
        assert r.beat(state="starting")
        r.w.tick()
    assert r.w.state is RunnerState.STARTING and r.proc.signals == []
    r.beat()
    assert r.w.state is RunnerState.RUNNING and "started" in r.kinds()


def test_a_runner_whose_starting_beats_stop_is_hung():
    r = Rig(start_timeout_s=1.0)
    r.w.request_start()
    r.clock.advance(0.8)
    r.beat(state="starting")
    r.clock.advance(1.1)
    r.w.tick()
    assert signal.SIGTERM in r.proc.signals and "hung" in r.kinds()


def test_a_remote_binder_still_being_built_does_not_release_this_hosts_connectors():
    from workbench.supervisor.hosts import RemoteRunners

    remote = RemoteRunners({"gateway": "gateway", "executor": "executor"}, timeout_s=2.0)
    remote.on_heartbeat("executor", Heartbeat("executor", 7, "running"), now=1.0)
    remote.on_heartbeat("gateway", Heartbeat("gateway", 8, "starting"), now=1.0)
    assert not remote.binders_ready(now=1.5)
    remote.on_heartbeat("gateway", Heartbeat("gateway", 8, "running"), now=2.0)
    assert remote.binders_ready(now=2.5)


def test_a_runner_whose_build_never_ends_is_hung_at_the_build_timeout_whatever_it_beats():
    # Its beats come from a thread: a build stuck for good (a lock, a hung connect) beat on,
    # and it stayed starting for ever: no hung event, no restart, no alert.
    r = Rig(start_timeout_s=1.0, build_timeout_s=5.0)
    r.w.request_start()
    for _ in range(6):
        r.clock.advance(0.9)
        r.beat(state="starting")
        r.w.tick()
    assert signal.SIGTERM in r.proc.signals and "hung" in r.kinds()
