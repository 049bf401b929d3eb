"""``workbench up`` as a real process: replay summary, exit codes, no orphans after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ROOT, assert_binds, free_port, make_config, pid_alive, tcp_bus, wait_until
from pipeline_support import COND_B, COND_S, EXPECTED_PNL, write_ticks

pytestmark = pytest.mark.integration


def up(config_path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def test_up_replay_exits_0_with_summary(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data)}},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
        executor={"broker": {"slippage": 0.01}},
    )
    p = up(cfg.save(tmp_path / "c.toml"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "health http://127.0.0.1:" in out
    assert f"ticks {3011}  signals 4  orders 4  fills 4  realized PnL {EXPECTED_PNL:.4f}" in out
    assert "ticks/s" in out


# Runs the CLI with every optional extra's modules made unimportable, as after
# `pip install -e .` (what `make demo` installs): the extras' packages named in
# pyproject.toml, and what only they bring (IPython, Jupyter's formats).
CORE_ONLY = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Extras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (an optional extra)", name=name)
        return None
sys.meta_path.insert(0, Extras())
from workbench.cli import main
sys.exit(main(sys.argv[2:]))
"""
MODULE_OF = {"empyrical-reloaded": "empyrical", "pytest-timeout": "pytest_timeout"}


def extras_only_modules() -> set[str]:
    """Top-level modules of the packages pyproject lists only as optional extras."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}

    core = names(project["dependencies"])
    extras = set().union(*(names(v) for v in project["optional-dependencies"].values()))
    pkgs = extras - core - {"workbench"}
    return {MODULE_OF.get(p, p.replace("-", "_")) for p in pkgs} | {
        "IPython", "jupyter_client", "nbformat", "nbclient",
    }  # fmt: skip


def test_up_runs_the_demo_on_the_core_dependencies_alone(tmp_path):
    blocked = extras_only_modules()
    assert {"ipywidgets", "papermill", "ccxt", "optuna"} <= blocked
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"path": str(data)}},
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
    )
    argv = ["up", "--config", str(cfg.save(tmp_path / "c.toml"))]
    p = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, ",".join(sorted(blocked)), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "signals 4  orders 4  fills 4" in p.stdout


def test_up_exits_2_when_a_runner_fails_on_its_config(tmp_path):
    """Exit 1 made systemd's Restart=on-failure start it again and again: a config error
    is 2, which the generated unit does not restart (RestartPreventExitStatus)."""
    cfg = make_config(tmp_path, strategies=[{"id": "x", "class_path": "nope:Nope", "params": {}}])
    p = up(cfg.save(tmp_path / "c.toml"))
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "runner x failed: configuration error" in err
    # ... and what the runner said is wrong, not only "see the logs"
    assert "nope:Nope" in err.split("runner x failed", 1)[1], err


def test_up_rejects_a_bad_config_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[supervisor]\nhttp_host = '0.0.0.0'\n")
    p = up(bad)
    try:
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:  # it started instead of refusing: leave nothing behind
            p.kill()  # its runners exit with it (parent-death signal)
            p.wait(10)
    assert p.returncode == 2 and "supervisor.http_host" in err and str(bad) in err


def test_sigkill_of_the_supervisor_leaves_no_runner_and_frees_ports(tmp_path):
    bus = tcp_bus()
    port = free_port()
    cfg = make_config(tmp_path, bus=bus, supervisor={"http_port": port})
    p = up(cfg.save(tmp_path / "c.toml"))
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    runners = json.loads(r.read())["runners"]
                    pids = [v["pid"] for v in runners.values()]
                    break
            except OSError:
                time.sleep(0.1)
        assert len(pids) == 3 and all(pids), "supervisor never became healthy"
        p.kill()  # SIGKILL: no handler, no cleanup, no goodbye
        p.wait(5)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 2.0 and any(pid_alive(x) for x in pids):
            time.sleep(0.05)
        assert not [x for x in pids if pid_alive(x)], "runners outlived the supervisor by 2 s"
        for address in bus.values():
            assert_binds(address, killed_at + 2.5)  # 2 s to exit, then kernel TCP teardown
    finally:
        if p.poll() is None:
            p.kill()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_paused_runner_left_by_a_sigkilled_supervisor_is_ended_by_the_next_up(tmp_path):
    # Paused, it never saw the parent-death signal: it kept the ticks port,
    # and every later `up` exited 75 "in use" with no supervisor running.
    port = free_port()
    cfg = make_config(tmp_path, supervisor={"http_port": port})
    path = cfg.save(tmp_path / "c.toml")

    def runner_pids() -> dict[str, int]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                runners = json.loads(r.read())["runners"]
        except OSError:
            return {}
        return {k: v["pid"] for k, v in runners.items() if v["state"] == "running"}

    first, second, paused = up(path), None, 0
    try:
        wait_until(lambda: len(runner_pids()) == 3, 30, "the first run's runners")
        paused = runner_pids()["gateway"]
        os.kill(paused, signal.SIGSTOP)
        first.kill()
        first.wait(5)
        time.sleep(2.5)  # past the 2 s the others take to go
        assert pid_alive(paused)  # still there, paused, holding its port
        second = up(path)
        wait_until(lambda: len(runner_pids()) == 3, 30, "the second run's runners")
        assert not pid_alive(paused) and runner_pids()["gateway"] != paused
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.communicate(timeout=30)
        if paused and pid_alive(paused):
            os.kill(paused, signal.SIGKILL)


def test_a_replay_file_that_cannot_be_read_fails_at_once_naming_the_field(tmp_path):
    # It was a crash: the gateway was restarted 5 times on the same missing file.
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(tmp_path, gateway={"feed": "replay", "replay": {"path": str(data)}})
    path = cfg.save(tmp_path / "c.toml")
    data.unlink()
    p = up(path)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2  # a config error: not to be restarted
    assert "runner gateway failed: configuration error" in err, err
    assert "gateway.replay.path" in err and "No such file" in err
    assert "restarts" not in err


@pytest.mark.parametrize(
    ("field", "kind", "scheme"),
    [
        ("telemetry", "SUB", "tcp"),  # another run's supervisor: a traceback and exit 1 before
        ("command", "REP", "tcp"),  # another run's executor (demo.toml and paper.toml share
        # it): its executor was restarted on the busy port forever
        ("signals", "PULL", "ipc"),  # another run's executor: its signals path was taken over
    ],
)
def test_up_beside_a_run_holding_an_address_exits_75_naming_it(tmp_path, field, kind, scheme):
    import zmq

    address = f"tcp://127.0.0.1:{free_port()}" if scheme == "tcp" else f"ipc://{tmp_path / 'held'}"
    cfg = make_config(tmp_path, bus={f"{field}_address": address})
    ctx = zmq.Context()
    squatter = ctx.socket(getattr(zmq, kind))
    squatter.bind(address)
    p = up(cfg.save(tmp_path / "c.toml"))
    try:
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        ctx.destroy(linger=0)
    assert p.returncode == 75, err
    assert f"{address} (bus.{field}_address) is in use" in err and "Traceback" not in err
    assert not cfg.run_path().exists()  # the running run's folder is left alone


def test_a_second_up_on_a_running_replay_leaves_its_folder_alone(tmp_path):
    # It moved the running replay's folder aside, then failed on the busy port.
    data = write_ticks(tmp_path / "ticks.csv")
    bus = {"telemetry_address": f"tcp://127.0.0.1:{free_port()}"}
    cfg = make_config(
        tmp_path, bus=bus, gateway={"feed": "replay", "replay": {"path": str(data), "speed": 0.2}}
    )
    path = cfg.save(tmp_path / "c.toml")
    first = up(path)
    try:
        wait_until(lambda: (cfg.run_path() / "logs" / "gateway.jsonl").exists(), 30, "run 1")
        second = up(path)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 75 and "is up already" in err, err
        assert [p.name for p in cfg.run_path().parent.iterdir() if p.suffix != ".lock"] == [
            cfg.run_path().name
        ]
    finally:
        first.terminate()
        first.communicate(timeout=60)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_replay_stopped_before_its_end_exits_nonzero_saying_so(tmp_path, sig, code):
    # It exited 0 without a word: CI took it for a finished replay.
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path, gateway={"feed": "replay", "replay": {"path": str(data), "speed": 0.2}}
    )
    p = up(cfg.save(tmp_path / "c.toml"))
    try:
        wait_until(lambda: (cfg.run_path() / "logs" / "gateway.jsonl").exists(), 30, "the run")
        p.send_signal(sig)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == code, err
    assert f"interrupted before the end of the stream ({sig.name})" in err


def test_a_live_run_with_a_tick_limit_stopped_by_ctrl_c_exits_0(tmp_path):
    cfg = make_config(tmp_path, gateway={"simulated": {"rate_per_s": 200.0, "max_ticks": 10**6}})
    p = up(cfg.save(tmp_path / "c.toml"))
    try:
        wait_until(lambda: (cfg.run_path() / "logs" / "executor.jsonl").exists(), 30, "the run")
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and "interrupted" not in err, err


HOLD_LOCK = """
import sys, time
from pathlib import Path
from workbench.supervisor.run_folder import lock_run
lock_run(Path(sys.argv[1]), "r")
print("held", flush=True)
time.sleep(60)
"""


def test_an_up_whose_run_another_process_prepares_exits_75_and_touches_nothing(tmp_path):
    # Two `up` started at once both passed the busy-port check (nothing was bound
    # yet), then shared one run folder: the second moved the first's aside.
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(tmp_path, gateway={"feed": "replay", "replay": {"path": str(data)}})
    cfg.run_path().mkdir(parents=True)
    (cfg.run_path() / "journal.sqlite").write_text("the first up's")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(cfg.run_path())],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = up(cfg.save(tmp_path / "c.toml"))
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 75, err
        assert f"run {cfg.run_id!r} is up already: process {holder.pid} holds" in err
        assert (cfg.run_path() / "journal.sqlite").read_text() == "the first up's"
    finally:
        holder.kill()
        holder.wait()
    # The holder died: the lock went with it, and the next `up` runs.
    third = up(cfg.save(tmp_path / "c.toml"))
    _out, err = third.communicate(timeout=60)
    assert third.returncode == 0, err


def test_a_run_folder_that_cannot_be_written_is_exit_2_naming_run_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a run_dir inside a file: not a folder, even for root
    cfg = make_config(tmp_path, runtime={"run_dir": str(blocker / "runs")})
    p = up(cfg.save(tmp_path / "c.toml"))
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2, err
    assert "runtime.run_dir: cannot prepare the run folder" in err and "Traceback" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_disk_under_the_run_folder_is_exit_75_not_a_config_error(tmp_path):
    """A full disk exited 2, a config error, which the systemd unit never restarts: the
    pipeline stayed down after the space was freed."""
    cfg = make_config(tmp_path)
    run_path = cfg.run_path()
    run_path.mkdir(parents=True)
    (run_path / "config.toml.tmp").symlink_to("/dev/full")  # every write: ENOSPC
    p = up(cfg.save(tmp_path / "c.toml"))
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    assert "runtime.run_dir: cannot prepare the run folder" in err and "free some space" in err


def test_up_with_no_runner_named_is_a_usage_error(tmp_path):
    path = make_config(tmp_path).save(tmp_path / "c.toml")
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "up", "--config", str(path), "--runners", ","],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and "name at least one runner" in p.stderr


def test_up_whose_health_port_is_taken_exits_75_and_touches_nothing(tmp_path):
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    try:
        cfg = make_config(tmp_path, supervisor={"http_port": port})
        p = up(cfg.save(tmp_path / "c.toml"))
        _out, err = p.communicate(timeout=60)
    finally:
        squatter.close()
    assert p.returncode == 75, err
    assert f"supervisor.http_port {port} is in use" in err and "Traceback" not in err
    assert not cfg.run_path().exists()


def test_a_supervisor_whose_health_port_is_taken_starts_no_runner(tmp_path):
    import socket

    from workbench.exceptions import TemporaryError
    from workbench.supervisor import Supervisor

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    cfg = make_config(tmp_path, supervisor={"http_port": squatter.getsockname()[1]})
    sup = Supervisor(cfg)  # a notebook's path: no probe before it
    try:
        with pytest.raises(TemporaryError, match=r"supervisor.http_host/http_port .* in use"):
            sup.start()
        assert all(s.pid is None for s in sup.status())  # nothing was started
    finally:
        sup.stop()
        squatter.close()


def test_up_on_a_health_address_of_another_host_is_exit_2_naming_it(tmp_path):
    cfg = make_config(tmp_path, supervisor={"http_host": "192.0.2.1"})  # TEST-NET-1: not ours
    token = {"WORKBENCH__SUPERVISOR__HTTP_TOKEN": "t" * 32}  # a secret: never in the file
    p = up(cfg.save(tmp_path / "c.toml"), env={**os.environ, **token})
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2, err
    assert "supervisor.http_host/http_port (192.0.2.1:" in err and "Traceback" not in err
