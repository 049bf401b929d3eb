"""Staged start, the command queue and the event hub of the supervisor."""

from __future__ import annotations

import threading

import pytest
from supervisor_fakes import Rig

from workbench.config import build_config
from workbench.exceptions import ConfigurationError
from workbench.supervisor.commands import CommandQueue
from workbench.supervisor.events import EventHub
from workbench.supervisor.stages import launch_new, next_stage, runner_specs
from workbench.supervisor.watcher import Intent


def test_runner_specs_bind_first_and_check_names(tmp_path):
    cfg = build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path)
    specs = runner_specs(cfg)
    assert [(n, r, st) for n, r, st, _ in specs] == [
        (cfg.executor.id, "executor", 0), (cfg.gateway.id, "gateway", 0),
        *((s.id, "strategy", 1) for s in cfg.strategies),
    ]  # fmt: skip
    assert [s[0] for s in runner_specs(cfg, [cfg.gateway.id])] == [cfg.gateway.id]
    with pytest.raises(ConfigurationError, match="nope"):
        runner_specs(cfg, ["nope"])


def test_later_stages_start_gated_and_move_on_once_the_binders_run():
    binder, connector = Rig(), Rig()
    binder.w.stage, connector.w.stage = 0, 1
    watchers = [binder.w, connector.w]
    for w in watchers:
        w.intent = Intent.RUN
    launch_new(watchers, 0)
    assert not binder.proc.gated and connector.proc.gated
    assert next_stage(watchers, 0, remote_ok=True) == 0  # the binder is still starting
    binder.beat()
    assert next_stage(watchers, 0, remote_ok=False) == 0  # remote binders not seen yet
    assert next_stage(watchers, 0, remote_ok=True) == 1
    assert next_stage(watchers, 1, remote_ok=True) == 1  # no later stage
    launch_new(watchers, 1)
    assert len(binder.procs) == len(connector.procs) == 1  # launched once only


def test_commands_run_on_the_owner_thread():
    q = CommandQueue()
    assert q.call(threading.get_ident) == threading.get_ident()  # no owner yet: at once
    done = threading.Event()
    ran_on: list[int] = []

    def owner() -> None:
        q.owner = threading.current_thread()
        while not done.is_set():
            q.run_pending()
            done.wait(0.005)

    t = threading.Thread(target=owner)
    t.start()
    try:
        while q.owner is None:
            pass
        assert q.call(lambda: ran_on.append(threading.get_ident()) or 7) == 7
        assert ran_on == [q.owner.ident]
        with pytest.raises(ZeroDivisionError):
            q.call(lambda: 1 / 0)
    finally:
        done.set()
        t.join()


def test_a_closed_queue_refuses_even_the_owners_thread():
    """Checked after the owner shortcut, a closed queue ran the command of any thread with
    the owner's ident, and Linux gives a dead thread's ident to the next one: a dashboard
    worker started after the loop died started a runner nothing watched."""
    q = CommandQueue()
    q.owner = threading.current_thread()  # as if this thread's ident were the dead loop's
    q.close("the supervisor is stopping")
    ran: list[int] = []
    with pytest.raises(RuntimeError, match="stopping"):
        q.call(lambda: ran.append(1))
    assert ran == []


def test_event_hub_keeps_events_and_survives_a_failing_subscriber():
    hub = EventHub()
    seen = []
    hub.subscribe(lambda ev: 1 / 0)
    unsubscribe = hub.subscribe(seen.append)
    hub.emit("state", "sr-1", state="running")
    unsubscribe()
    hub.emit("exited", "sr-1")
    assert [e.kind for e in hub.recent] == ["state", "exited"]
    assert [(e.kind, e.data) for e in seen] == [("state", {"state": "running"})]
