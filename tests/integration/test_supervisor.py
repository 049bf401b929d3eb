"""The supervisor with real runner processes: restarts, hangs, crash loops, health, logs."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import make_config, pid_exists, wait_until
from prometheus_client.parser import text_string_to_metric_families

from workbench.supervisor import RunnerState, Supervisor

pytestmark = pytest.mark.integration

FAST = {
    "heartbeat_timeout_s": 1.0,
    "hung_restart_after_s": 0.5,
    "stop_grace_s": 1.5,
    "restart_backoff_initial_s": 0.05,
    "restart_backoff_jitter": 0.0,
}


def live_config(tmp_path: Path, **supervisor):
    return make_config(
        tmp_path,
        runtime={"heartbeat_interval_s": 0.2},
        supervisor={**FAST, **supervisor},
        gateway={"simulated": {"rate_per_s": 200.0}},
    )


@pytest.fixture
def supervisor_factory():
    made: list[Supervisor] = []

    def make(cfg, **kw) -> Supervisor:
        sup = Supervisor(cfg, **kw)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop()


def state(sup: Supervisor, name: str) -> dict:
    return next(s for s in sup.status() if s["runner"] == name)


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_binders_start_before_connectors_and_all_reach_running(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    started = {e.runner: e.ts_ns for e in sup.events if e.kind == "started"}
    details = [(e.runner, e.data["detail"]) for e in sup.events if e.kind == "state"]
    assert ("sr-1", "gated") in details  # spawned early, so imports overlap...
    released = next(e.ts_ns for e in sup.events if e.data.get("detail") == "released")
    assert released > started["executor"] and released > started["gateway"]  # ...connects late
    assert started["sr-1"] > released
    connected = [e for e in sup.logs.recent("sr-1") if e.get("event") == "runner_started"]
    assert connected and {s["state"] for s in sup.status()} == {"running"}


def test_sigkilled_runner_is_restarted_and_healthy_again(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    old = state(sup, "sr-1")["pid"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: state(sup, "sr-1")["restarts"] == 1, 10, "restart")
    sup.wait_running(15)
    new = state(sup, "sr-1")
    assert new["pid"] != old and new["state"] == "running"
    assert any(e.kind == "exited" and e.data["exit_code"] == -signal.SIGKILL for e in sup.events)


def test_sigstopped_runner_turns_unhealthy_then_is_killed_and_restarted(
    tmp_path, supervisor_factory
):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    old = state(sup, "gateway")["pid"]
    os.kill(old, signal.SIGSTOP)
    try:
        wait_until(lambda: state(sup, "gateway")["state"] == "unhealthy", 10, "unhealthy")
        wait_until(lambda: state(sup, "gateway")["restarts"] == 1, 15, "restart of the hung runner")
        sup.wait_running(15)
    finally:
        if pid_exists(old):
            os.kill(old, signal.SIGKILL)
    assert not pid_exists(old)
    assert state(sup, "gateway")["pid"] != old
    assert any(e.kind == "hung" and e.runner == "gateway" for e in sup.events)


CRASHER = """
class Crasher:
    def __init__(self, strategy_id, **params):
        raise RuntimeError("boom at start-up")
"""


def test_crash_looping_runner_backs_off_then_fails_with_alert(tmp_path, supervisor_factory):
    (tmp_path / "crashing_strategy.py").write_text(CRASHER)
    cfg = make_config(
        tmp_path,
        supervisor={**FAST, "max_restarts": 3, "restart_backoff_initial_s": 0.1},
        strategies=[{"id": "bad", "class_path": "crashing_strategy:Crasher", "params": {}}],
    )
    sup = supervisor_factory(cfg, runners=["bad"], env={"PYTHONPATH": str(tmp_path)})
    alerts = []
    sup.subscribe(lambda e: alerts.append(e) if e.kind == "alert" else None)
    sup.start()
    wait_until(lambda: state(sup, "bad")["state"] == "failed", 30, "failed")
    delays = [e.data["delay_s"] for e in sup.events if e.kind == "restarting"]
    assert delays == pytest.approx([0.1, 0.2, 0.4])
    assert state(sup, "bad")["restarts"] == 3
    assert alerts and alerts[-1].data["reason"] == "runner_failed"
    logs = sup.logs.recent("bad")
    assert any(e.get("event") == "runner_crashed" and "boom" in e.get("error", "") for e in logs)


def test_unlimited_restarts_never_give_up(tmp_path, supervisor_factory):
    (tmp_path / "crashing_strategy.py").write_text(CRASHER)
    cfg = make_config(
        tmp_path,
        supervisor={
            **FAST,
            "max_restarts": 1,
            "unlimited_restarts": True,
            "restart_backoff_initial_s": 0.01,
            "restart_backoff_max_s": 0.05,
        },
        strategies=[{"id": "bad", "class_path": "crashing_strategy:Crasher", "params": {}}],
    )
    sup = supervisor_factory(cfg, runners=["bad"], env={"PYTHONPATH": str(tmp_path)})
    sup.start()
    wait_until(lambda: state(sup, "bad")["restarts"] >= 4, 40, "several restarts")
    assert state(sup, "bad")["state"] != "failed"


def test_stopping_a_runner_on_purpose_never_restarts_it(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    sup.stop_runner("sr-1")
    time.sleep(1.0)
    s = state(sup, "sr-1")
    assert (s["state"], s["restarts"], s["pid"]) == ("stopped", 0, None)
    sup.start_runner("sr-1")
    sup.wait_running(15)


def test_a_runner_stopped_on_purpose_stays_stopped_when_its_config_is_applied(
    tmp_path, supervisor_factory
):
    """`apply_config` started it again: a strategy pulled from the market, re-tuned and
    applied, was trading again. It now reads the new config when started."""
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    sup.stop_runner("sr-1")
    new = sup.config.model_copy(deep=True)
    new.strategies[0].params = {"conditions": []}
    assert sup.apply_config(new) == []
    time.sleep(1.0)
    s = state(sup, "sr-1")
    assert (s["state"], s["pid"]) == ("stopped", None)
    assert "conditions = []" in sup.config_path.read_text()


def test_strategies_applied_in_and_out_leave_no_log_file_open(tmp_path, supervisor_factory):
    """Each strategy an `apply` removed kept its log file open and its 500 recent lines in
    the supervisor for the rest of the session: a notebook trying variants leaked both."""
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    base = sup.config.model_copy(deep=True)

    def log_fds() -> set[str]:
        fd_dir = Path(f"/proc/{os.getpid()}/fd")
        names = set()
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(sup.logs.folder)):
                names.add(Path(target).name)
        return names

    for i in range(2):
        new = base.model_copy(deep=True)
        extra = new.strategies[0].model_copy(deep=True)
        extra.id = f"sr-x{i}"
        new.strategies.append(extra)
        assert f"sr-x{i}" in sup.apply_config(new)
        wait_until(lambda i=i: f"sr-x{i}.jsonl" in log_fds(), 20, f"sr-x{i} logging")
        sup.apply_config(base)
        wait_until(lambda i=i: f"sr-x{i}.jsonl" not in log_fds(), 20, f"sr-x{i} log closed")
        assert all(s["runner"] != f"sr-x{i}" for s in sup.status())
        assert sup.logs.recent(f"sr-x{i}") == []
    assert (sup.logs.folder / "sr-x0.jsonl").exists()  # the file stays, for reading


def test_a_stopping_supervisor_refuses_commands_and_a_stopped_one_a_new_start(
    tmp_path, supervisor_factory
):
    """A runner started while the others were being stopped ran on, watched by nothing; a
    second `start` gave a health URL over a pipeline that was not running."""
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    sup.stop_runner("sr-1")
    stopper = threading.Thread(target=sup.stop)
    stopper.start()
    wait_until(lambda: sup.stopping, 5, "stopping")
    time.sleep(0.1)  # the loop has left: it is stopping the runners
    with pytest.raises(RuntimeError, match="the supervisor is stopping"):
        sup.start_runner("sr-1")
    stopper.join(30)
    # A thread made now usually gets the dead loop thread's ident (a dashboard button's
    # worker): taken for the owner, it started the runner itself.
    late: list[BaseException] = []

    def click() -> None:
        try:
            sup.start_runner("sr-1")
        except BaseException as e:
            late.append(e)

    worker = threading.Thread(target=click)
    worker.start()
    worker.join(15)
    assert [type(e) for e in late] == [RuntimeError]
    assert {s["state"] for s in sup.status()} == {"stopped"}
    assert all(s["pid"] is None for s in sup.status())
    with pytest.raises(RuntimeError, match="create a new one"):
        sup.start()


def test_wait_running_says_at_once_why_a_runner_failed(tmp_path, supervisor_factory):
    """It waited out the whole timeout, then named the state without the reason."""
    (tmp_path / "crashing_strategy.py").write_text(CRASHER)
    cfg = make_config(
        tmp_path,
        supervisor={**FAST, "max_restarts": 1},
        strategies=[{"id": "bad", "class_path": "crashing_strategy:Crasher", "params": {}}],
    )
    sup = supervisor_factory(cfg, runners=["bad"], env={"PYTHONPATH": str(tmp_path)})
    sup.start()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as e:
        sup.wait_running(60)
    assert time.monotonic() - t0 < 30
    assert "runners failed" in str(e.value) and "1 restarts in" in str(e.value)
    assert "boom" in str(e.value)  # the runner's own last error


def test_restart_runner_replaces_the_process(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    old = state(sup, "executor")["pid"]
    sup.restart_runner("executor")
    wait_until(lambda: state(sup, "executor")["pid"] not in (None, old), 10, "new pid")
    sup.wait_running(15)
    assert not pid_exists(old)


def test_health_flips_to_503_and_back_and_metrics_parse(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    code, body = http_get(sup.health_url + "/health")
    assert code == 200 and json.loads(body)["runners"]["gateway"]["state"] == "running"
    sup.stop_runner("gateway")
    code, body = http_get(sup.health_url + "/health")
    assert code == 503 and json.loads(body)["runners"]["gateway"]["state"] == "stopped"
    sup.start_runner("gateway")
    sup.wait_running(15)
    wait_until(lambda: http_get(sup.health_url + "/health")[0] == 200, 5, "200 again")
    time.sleep(0.5)  # a few heartbeats with counters
    code, body = http_get(sup.health_url + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert code == 200
    assert "workbench_runner_up" in families and "workbench_runner_restarts" in families
    ticks = [s for s in families["workbench_ticks_out"].samples if s.labels["runner"] == "gateway"]
    assert ticks and ticks[0].value > 0
    # Declared at 0 by every receiving socket, so increase() sees the first bad frame.
    bad = {s.labels["runner"]: s.value for s in families["workbench_bad_frames"].samples}
    assert bad["sr-1"] == 0 and bad["executor"] == 0


def test_health_says_so_while_a_subscriber_stalls_the_supervisor_loop(
    tmp_path, supervisor_factory, monkeypatch
):
    """A slow event callback froze the loop: a SIGKILLed gateway stayed "running", 200."""
    from workbench.supervisor import http

    monkeypatch.setattr(http, "LOOP_STALL_S", 1.0)
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    release = threading.Event()
    sup.subscribe(lambda ev: ev.kind == "exited" and release.wait(20))
    try:
        os.kill(state(sup, "gateway")["pid"], signal.SIGKILL)
        wait_until(lambda: http_get(sup.health_url + "/health")[0] == 503, 10, "503")
        body = json.loads(http_get(sup.health_url + "/health")[1])
        assert body["supervisor"]["loop"] == "stalled", body
    finally:
        release.set()
    wait_until(lambda: http_get(sup.health_url + "/health")[0] == 200, 20, "200 again")
    assert "supervisor" not in json.loads(http_get(sup.health_url + "/health")[1])


def test_runners_loading_a_big_replay_file_are_not_taken_for_hung(tmp_path, supervisor_factory):
    """The gateway and the simulator's tape load the file before the runner's loop: no
    heartbeat for longer than start_timeout_s, killed as hung until the run failed."""
    from workbench.marketdata import synth_ticks, write_ticks

    data = write_ticks(synth_ticks("ABC", 1_500_000, 3), tmp_path / "big.csv")  # ~3 s to load
    cfg = make_config(
        tmp_path,
        supervisor={**FAST, "start_timeout_s": 2.0},
        gateway={"feed": "replay", "replay": {"path": str(data), "speed": 1.0}},
    )
    sup = supervisor_factory(cfg)
    sup.start(wait=True, timeout=60)
    assert all(s["restarts"] == 0 for s in sup.status()), (sup.status(), list(sup.events))
    assert not [e for e in sup.events if e.kind == "hung"]


def test_runner_output_is_captured_to_files_and_memory_even_when_not_json(
    tmp_path, supervisor_factory
):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    sup.logs.add("gateway", "plain text, not json\n")
    sup.stop()
    path = sup.logs.path("gateway")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert path == tmp_path / "runs" / "test" / "logs" / "gateway.jsonl"
    assert any(e.get("event") == "runner_started" for e in lines)
    assert any(
        e.get("event") == "raw_output" and e["line"] == "plain text, not json" for e in lines
    )
    assert sup.logs.recent("gateway")[-1]["event"] in (
        "runner_stopped",
        "raw_output",
        "stop_requested",
    )


def test_stop_leaves_no_runner_and_no_zombie(tmp_path, supervisor_factory):
    sup = supervisor_factory(live_config(tmp_path))
    sup.start(wait=True, timeout=30)
    pids = [s["pid"] for s in sup.status()]
    sup.stop()
    for pid in pids:
        assert not pid_exists(pid)  # reaped: a zombie would still answer kill(pid, 0)
    assert {s["state"] for s in sup.status()} == {"stopped"}


def test_configuration_error_fails_at_once_without_restarts(tmp_path, supervisor_factory):
    cfg = make_config(
        tmp_path,
        supervisor=FAST,
        strategies=[{"id": "x", "class_path": "no.such.module:Thing", "params": {}}],
    )
    sup = supervisor_factory(cfg, runners=["x"])
    sup.start()
    wait_until(lambda: state(sup, "x")["state"] == RunnerState.FAILED, 20, "failed")
    assert state(sup, "x")["restarts"] == 0 and state(sup, "x")["exit_code"] == 2


def test_a_supervisor_that_cannot_bind_fails_at_start_not_silently(tmp_path):
    import socket

    from workbench.messaging.binding import AddressInUse

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        cfg = make_config(
            tmp_path,
            bus={
                "telemetry_address": f"tcp://127.0.0.1:{port}",
                "bind_retry_attempts": 2,
                "bind_retry_max_wait_ms": 20,
            },
        )
        sup = Supervisor(cfg)
        with pytest.raises(AddressInUse):
            sup.start()
        assert sup.any_failed()
        sup.stop()  # lets the run go
    finally:
        holder.close()


def test_a_notebook_start_that_failed_can_be_retried_and_leaves_the_run_unlocked(tmp_path):
    """A failed `Workbench.start` kept its supervisor: a retry then did nothing, said it
    started, and the run stayed locked against `workbench up`."""
    import socket

    from helpers import free_port

    from workbench.notebook.workbench import Workbench
    from workbench.supervisor.run_folder import _LOCKS

    port = free_port()
    cfg = make_config(tmp_path, supervisor={"http_port": port})
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    wb = Workbench(cfg)
    try:
        with pytest.raises(Exception, match="Address already in use"):
            wb.start()
        locked = {Path(k).resolve() for k in _LOCKS}
        assert wb.supervisor is None and cfg.run_path().resolve() not in locked  # nothing kept
        holder.close()
        wb.start(wait=True, timeout=30)
        states = {s.runner: s.state for s in wb.supervisor.status()}
        assert set(states.values()) == {RunnerState.RUNNING}, states
    finally:
        holder.close()
        wb.stop()


def test_a_notebook_start_whose_run_folder_cannot_be_made_leaves_no_tap_and_no_lock(tmp_path):
    from workbench.exceptions import ConfigurationError
    from workbench.notebook.workbench import Workbench
    from workbench.supervisor.run_folder import holds_run

    cfg = make_config(tmp_path)
    cfg.run_path().parent.mkdir(parents=True, exist_ok=True)
    cfg.run_path().write_text("not a folder")  # its config cannot be written there
    wb = Workbench(cfg)
    try:
        with pytest.raises(ConfigurationError, match=r"runtime\.run_dir"):
            wb.start()
        assert wb.supervisor is None and not holds_run(cfg.run_path())
        assert wb.taps._thread is None  # the taps stopped too
    finally:
        wb.stop()


def test_a_second_notebook_session_of_a_running_run_is_refused_and_touches_nothing(tmp_path):
    """Re-running the start cell: the second start archived the running folder,
    rewrote its config and, failing, let the run lock go."""
    import subprocess
    import sys

    from workbench.exceptions import TemporaryError
    from workbench.notebook.workbench import Workbench
    from workbench.supervisor.run_folder import holds_run

    cfg = make_config(tmp_path)
    first, second = Workbench(cfg), Workbench(cfg.model_copy(deep=True))
    try:
        first.start(wait=True, timeout=30)
        saved = (cfg.run_path() / "config.toml").read_bytes()
        second.config.supervisor.stop_grace_s = 2.5  # would show in a rewritten config.toml
        t0 = time.monotonic()
        with pytest.raises(TemporaryError, match="up already in this kernel"):
            second.start(wait=True, timeout=30)
        assert time.monotonic() - t0 < 5  # at once, not after the bind retries
        assert second.supervisor is None
        assert [p.name for p in cfg.run_path().parent.iterdir() if p.is_dir()] == ["test"]
        assert (cfg.run_path() / "config.toml").read_bytes() == saved
        assert holds_run(cfg.run_path())  # still the first session's
        probe = (
            "import sys; from pathlib import Path\n"
            "from workbench.supervisor.run_folder import lock_run\n"
            "lock_run(Path(sys.argv[1]), 'test')"
        )
        other = subprocess.run([sys.executable, "-c", probe, str(cfg.run_path())],
                               capture_output=True, text=True)  # fmt: skip
        assert other.returncode != 0 and "is up already" in other.stderr
        states = {s.runner: s.state for s in first.supervisor.status()}
        assert set(states.values()) == {RunnerState.RUNNING}, states
        first.stop()
        second.start(wait=True, timeout=30)  # once the first stopped, the second may
    finally:
        second.stop()
        first.stop()
