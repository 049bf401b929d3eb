"""systemd: notify datagrams on a real unix socket, units that verify, log rotation."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from workbench.cli import main
from workbench.supervisor.logs import LogBook
from workbench.supervisor.systemd import Notifier

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze not installed")


@pytest.fixture
def notify_socket(tmp_path):
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield path, sock
    finally:
        sock.close()


def test_notifier_sends_ready_watchdog_and_stopping_datagrams(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
    assert n.enabled and n.watchdog_interval_s == 2.0
    assert n.ready("running a, b")
    assert n.watchdog()
    assert n.stopping()
    n.close()
    ready = sock.recv(4096).decode().split("\n")
    assert ready[0] == "READY=1" and "STATUS=running a, b" in ready
    assert f"MAINPID={os.getpid()}" in ready
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sock.recv(4096).startswith(b"STOPPING=1")


def test_a_receiver_that_stopped_reading_costs_pings_never_a_stuck_sender(notify_socket):
    # A unix datagram queue holds net.unix.max_dgram_qlen (10) messages: a blocking
    # sendto then waited for ever, and `up` hung at stop with its loop in it.
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": str(path)})
    sent: list[bool] = []
    pings = threading.Thread(target=lambda: sent.extend(n.watchdog() for _ in range(2_000)))
    pings.daemon = True  # nobody reads: a blocking sender would hang here, not the suite
    pings.start()
    pings.join(10)
    assert not pings.is_alive(), "sd_notify blocked on a full socket"
    assert sent[0] and not sent[-1]
    sock.recv(4096)  # the receiver reads again: pings go again
    assert n.watchdog()
    n.close()


def test_notifier_speaks_the_abstract_namespace():
    name = f"wb-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.status("hello")
        assert sock.recv(100) == b"STATUS=hello"
        n.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and n.watchdog_interval_s is None


def test_a_watchdog_meant_for_another_pid_is_ignored():
    n = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s is None


def _units(tmp_path, *extra, toml: str = ""):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + '[[strategies]]\nid = "sr-1"\n[[strategies]]\nid = "sr-2"\n')
    out = tmp_path / "units"
    rc = main(["deploy", "systemd", "--config", str(cfg), "--out", str(out), *extra])
    return rc, out


def test_deploy_writes_one_notify_unit_per_host(tmp_path):
    rc, out = _units(tmp_path, "--runners", "exchange=gateway,executor,sr-1,sr-2")
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["workbench-exchange.service"]
    text = (out / "workbench-exchange.service").read_text()
    assert "Type=notify" in text and "WatchdogSec=30" in text
    assert f"up --config {tmp_path / 'c.toml'} --runners gateway,executor,sr-1,sr-2" in text
    # Its own /tmp would hide ipc sockets there from `workbench halt` in a shell, and
    # empty a run folder there (the journal) when the service stops.
    assert "PrivateTmp" not in text and "ProtectSystem=full" in text


def test_units_give_up_on_config_errors_and_on_endless_failures(tmp_path):
    """A pipeline that could never start was restarted every 3-30 s for ever, live gateway
    and executor included; a stop grace over 30 s was cut short by SIGKILL."""
    rc, out = _units(tmp_path, toml="[supervisor]\nstop_grace_s = 45\n")
    text = (out / "workbench-executor-gateway-sr-1-sr-2.service").read_text()
    assert rc == 0 and "RestartPreventExitStatus=2" in text
    unit, service = text.split("[Service]")
    assert "StartLimitIntervalSec=600" in unit and "StartLimitBurst=10" in unit
    assert "TimeoutStopSec=60" in service


def test_several_units_of_one_config_need_hosts(tmp_path, capsys):
    """Two units without [[hosts]]: the second `up` found the run taken and exited 75, for
    ever; the strategy never traded."""
    rc, out = _units(tmp_path, "--runners", "gateway,executor", "--runners", "sr-1,sr-2")
    assert rc == 2 and "[[hosts]]" in capsys.readouterr().err and not out.exists()


def test_deploy_per_runner_and_unknown_runner(tmp_path, capsys):
    # Four units of one run: the second `up` found the run up already, and so on.
    rc, out = _units(tmp_path, "--per-runner")
    assert rc == 2 and "[[hosts]]" in capsys.readouterr().err and not out.exists()
    rc, _ = _units(tmp_path, "--runners", "gateway,nope")
    assert rc == 2 and "no runner named nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        # The newline wrote a line of its own: root ran /bin/touch before `up`.
        ("--user", "root\nExecStartPre=/bin/touch /tmp/pwned", "User='root\\nExecStartPre"),
        ("--user", "a%i", "User='a%i': not a plain user name"),  # %i: a specifier
        ("--user", "", "User='': not a plain user name"),
        ("--user", "-root", "User='-root': not a plain user name"),
        ("--env-file", "/tmp/x\ny", "EnvironmentFile='/tmp/x\\ny': a unit file line cannot"),
    ],
)
def test_a_user_or_env_file_a_unit_line_cannot_hold_is_refused_writing_nothing(
    tmp_path, capsys, option, value, says
):
    # The env file's newline was a ValueError traceback.
    rc, out = _units(tmp_path, f"{option}={value}")
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {says}") and not out.exists()


@pytest.mark.parametrize("user", ["workbench", "www-data", "svc_trader", "a.b", "1000"])
def test_a_plain_user_name_is_written_as_user(tmp_path, user):
    rc, out = _units(tmp_path, "--user", user)
    assert rc == 0
    (unit,) = out.iterdir()
    assert f"\nUser={user}\n" in unit.read_text()


@pytest.mark.parametrize("name", ["my host", ".hidden", "../../escaped", "a/b"])
def test_a_unit_name_systemd_would_refuse_is_refused(tmp_path, capsys, name):
    rc, out = _units(tmp_path, "--runners", f"{name}=gateway,executor,sr-1,sr-2")
    assert rc == 2 and "is no unit name" in capsys.readouterr().err and not out.exists()


def test_with_hosts_each_unit_must_run_one_hosts_runners(tmp_path, capsys):
    # The unit was written; its `up --runners gateway` then exited 2 on every start.
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[strategies]]\nid = "sr-1"\n'
        '[[hosts]]\nname = "a"\nrunners = ["gateway", "executor"]\n'
        'telemetry_address = "tcp://a:5800"\n'
        '[[hosts]]\nname = "b"\nrunners = ["sr-1"]\ntelemetry_address = "tcp://b:5800"\n'
    )
    args = ["deploy", "systemd", "--config", str(cfg), "--out", str(tmp_path / "u")]
    assert main([*args, "--runners", "x=gateway"]) == 2
    assert "no host runs exactly gateway" in capsys.readouterr().err
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [
        "workbench-a.service", "workbench-b.service",
    ]  # fmt: skip


def test_a_percent_in_a_path_is_not_a_specifier(tmp_path):
    folder = tmp_path / "100%d"  # %d would be systemd's credentials folder
    folder.mkdir()
    rc, out = _units(folder, "--env-file", str(folder / "s.env"))
    assert rc == 0
    (unit,) = out.iterdir()
    text = unit.read_text()
    assert "100%%d/c.toml" in text and f"WorkingDirectory={tmp_path}/100%%d" in text
    assert "EnvironmentFile=" in text and "100%%d/s.env" in text
    if analyze:
        r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_run_folder_protect_system_makes_read_only_is_refused(tmp_path, capsys):
    # /etc/workbench/pipeline.toml with the default run_dir "../runs": /etc/runs.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[runtime]\nrun_dir = "/etc/workbench-runs"\n')
    rc = main(["deploy", "systemd", "--config", str(cfg), "--out", str(tmp_path / "u")])
    err = capsys.readouterr().err
    assert rc == 2 and "runtime.run_dir: /etc/workbench-runs is under /etc" in err
    assert "ProtectSystem=full" in err and not (tmp_path / "u").exists()


@needs_analyze
def test_units_pass_systemd_analyze_verify(tmp_path):
    rc, out = _units(tmp_path, "--runners", "gateway,executor", "--env-file", "/dev/null")
    assert rc == 0
    for unit in out.iterdir():
        r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    # The check has teeth here: a broken unit fails it.
    bad = out / "workbench-bad.service"
    bad.write_text("[Service]\nType=notify\nExecStart=relative/path\n")
    r = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0


def test_log_files_rotate_by_size_and_keep_only_the_newest(tmp_path):
    book = LogBook(tmp_path, keep=10, max_bytes=1000, backups=2)
    for i in range(100):
        book.add("gateway", json.dumps({"event": "x", "i": i, "pad": "y" * 40}))
    book.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["gateway.jsonl", "gateway.jsonl.1", "gateway.jsonl.2"]
    for f in files:
        assert (tmp_path / f).stat().st_size <= 1000 + 100

    def rows(name):
        return [json.loads(x)["i"] for x in (tmp_path / name).read_text().splitlines()]

    newest, older, oldest = rows("gateway.jsonl"), rows("gateway.jsonl.1"), rows("gateway.jsonl.2")
    assert (newest or older)[-1] == 99
    assert max(oldest) < min(older) and max(older) < min(newest or [100])
    assert min(oldest) > 0  # the first lines went with the rotated file that fell off
    assert book.recent("gateway")[-1]["i"] == 99


def test_deploy_defaults_to_one_unit_per_configured_host(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[hosts]]\nname = "exchange"\nrunners = ["gateway", "executor"]\n'
        'telemetry_address = "tcp://10.0.0.1:5705"\n'
        '[[hosts]]\nname = "compute"\nrunners = ["sr-1"]\n'
        'telemetry_address = "tcp://10.0.0.2:5705"\n'
    )
    out = tmp_path / "units"
    assert main(["deploy", "systemd", "--config", str(cfg), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "workbench-compute.service",
        "workbench-exchange.service",
    ]
    assert "--runners sr-1" in (out / "workbench-compute.service").read_text()


def test_a_recorder_folder_protect_system_makes_read_only_is_refused(tmp_path, capsys):
    # The gateway crashed on it (exit 1, not 2): restarted until the unit failed.
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[runtime]\nrun_dir = "{tmp_path}/runs"\n'
        '[recorder]\nenabled = true\npath = "/etc/workbench/ticks"\n'
    )
    rc = main(["deploy", "systemd", "--config", str(cfg), "--out", str(tmp_path / "u")])
    err = capsys.readouterr().err
    assert rc == 2 and "recorder.path: /etc/workbench/ticks is under /etc" in err, err
    assert not (tmp_path / "u").exists()


def test_a_unit_file_edited_by_hand_is_not_replaced_without_force(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[runtime]\nrun_dir = "{tmp_path}/runs"\n')
    argv = ["deploy", "systemd", "--config", str(cfg), "--out", str(tmp_path / "u")]
    assert main(argv) == 0
    assert main(argv) == 0  # the same again: nothing lost, written again
    [unit] = (tmp_path / "u").glob("*.service")
    unit.write_text(unit.read_text() + "# my edits\n")
    capsys.readouterr()
    assert main(argv) == 2
    assert "exists with other contents" in capsys.readouterr().err
    assert unit.read_text().endswith("# my edits\n")
    assert main([*argv, "--force"]) == 0 and "# my edits" not in unit.read_text()


class GatedSupervisor:
    """What `SupervisorNotifier.tick` reads of a supervisor whose strategy waits at its gate."""

    runner_names = ["sr-1"]
    health_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.loop_beat = time.monotonic()
        self.running = False

    def all_running(self) -> bool:
        return self.running

    def status(self) -> list:
        from workbench.supervisor.status import RunnerState, RunnerStatus

        state = RunnerState.RUNNING if self.running else RunnerState.STARTING
        return [RunnerStatus("sr-1", "strategy", state)]


def test_before_ready_a_live_loop_extends_the_start_timeout_naming_whom_it_waits_for(
    notify_socket,
):
    # A host's strategies wait for another host's gateway and executor: without READY the
    # unit was killed at TimeoutStartSec (90 s) and started again, for as long as they were down.
    from workbench.supervisor import systemd

    path, sock = notify_socket
    sock.settimeout(0.2)
    link = systemd.SupervisorNotifier(Notifier({"NOTIFY_SOCKET": str(path)}))
    sup = GatedSupervisor()
    link.tick(sup)
    first = sock.recv(4096).decode().split("\n")
    assert first == ["EXTEND_TIMEOUT_USEC=15000000", "STATUS=starting; waiting for sr-1"]
    link.tick(sup)  # not again before EXTEND_S
    with pytest.raises(TimeoutError):
        sock.recv(4096)
    link._next_extend = 0.0  # due again
    sup.loop_beat = time.monotonic() - 60  # but the loop hung: no more extensions
    link.tick(sup)
    with pytest.raises(TimeoutError):
        sock.recv(4096)
    sup.loop_beat, sup.running = time.monotonic(), True
    link.tick(sup)
    assert sock.recv(4096).startswith(b"READY=1")
