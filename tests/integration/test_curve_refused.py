"""A binder that refuses our CURVE key: libzmq never connects again, so we fail loudly."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import zmq
from curve_support import curve_config

from workbench.config import WorkbenchConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import TemporaryError
from workbench.messaging import codec, security
from workbench.messaging.codec import Command
from workbench.messaging.zmq_adapters import ZmqReceiver, ZmqReplier, request
from workbench.telemetry import Telemetry

pytestmark = pytest.mark.integration


def stale_for(cfg: WorkbenchConfig, name: str) -> WorkbenchConfig:
    """``cfg`` as another host has it: an old public key for ``name``."""
    stale = cfg.model_copy(deep=True)
    stale.security.public_keys = {
        **cfg.security.public_keys,
        name: zmq.curve_keypair()[0].decode(),
    }
    return stale


@contextlib.contextmanager
def contexts(*members: tuple[WorkbenchConfig, str, Telemetry]) -> Iterator[list[zmq.Context]]:
    """A context per (config, identity, telemetry), its security installed; all closed after."""
    made: list[zmq.Context] = []
    try:
        for cfg, name, telemetry in members:
            made.append(zmq.Context())
            security.install(made[-1], cfg, name, telemetry)
        yield made
    finally:
        for ctx in made:
            security.uninstall(ctx)
            ctx.destroy(linger=0)


def test_a_refused_subscriber_fails_its_runner_naming_the_socket_and_its_key(tmp_path):
    cfg, _ = curve_config(tmp_path)
    telemetry = Telemetry()
    # The gateway's host lists an old key for sr-1.
    with contexts((stale_for(cfg, "sr-1"), "gateway", Telemetry()),
                  (cfg, "sr-1", telemetry)) as (gw_ctx, sr_ctx):  # fmt: skip
        pub = gw_ctx.socket(zmq.PUB)
        pub.linger = 0
        security.secure(pub, cfg.bus.ticks_address, server=True)
        pub.bind(cfg.bus.ticks_address)
        sub = ZmqReceiver(sr_ctx, zmq.SUB, cfg.bus.ticks_address, cfg.bus, telemetry,
                          bind_it=False)  # fmt: skip
        deadline = time.monotonic() + 10
        while security.refusal(sr_ctx, "ticks") is None:
            assert time.monotonic() < deadline, "the refusal was never seen"
            time.sleep(0.05)
        with pytest.raises(security.RefusedByPeer) as e:
            security.check_peers()
        says = str(e.value)
        assert f"ticks at {cfg.bus.ticks_address}" in says
        assert cfg.security.public_keys["sr-1"] in says and "security.public_keys.sr-1" in says
        assert e.value.exit_code == 75  # restarted with backoff, connecting anew
        assert telemetry.get("curve_handshakes_refused_by_peer") >= 1
        sub.close()


def test_the_kill_switch_says_its_key_was_refused_not_that_the_executor_is_down(tmp_path):
    cfg, _ = curve_config(tmp_path)
    with contexts((stale_for(cfg, "supervisor"), "executor", Telemetry()),
                  (cfg, "supervisor", Telemetry())) as (ex_ctx, op_ctx):  # fmt: skip
        rep = ZmqReplier(ex_ctx, cfg.bus.command_address, cfg.bus, Telemetry(), "executor")
        with pytest.raises(TemporaryError, match=r"command at .* refused the CURVE handshake"):
            request(cfg.bus.command_address, Command("state", {}), timeout_ms=1_500, ctx=op_ctx)
        rep.close()


def test_the_kill_switch_cli_exits_2_when_its_key_is_refused(tmp_path, capsys):
    """A refused key is a config mismatch: 75 ("retry") made an ops script retry for ever."""
    from workbench.cli import main

    cfg, _ = curve_config(tmp_path)
    path = cfg.save(tmp_path / "pipeline.toml")
    with contexts((stale_for(cfg, "supervisor"), "executor", Telemetry())) as (ex_ctx,):
        rep = ZmqReplier(ex_ctx, cfg.bus.command_address, cfg.bus, Telemetry(), "executor")
        try:
            assert main(["state", "--config", str(path), "--timeout", "1.5"]) == 2
        finally:
            rep.close()
    assert "refused the CURVE handshake" in capsys.readouterr().err


def test_a_handshake_cut_short_is_no_refusal_and_libzmq_connects_again(tmp_path):
    # A binder killed mid-handshake (here: a listener that accepts and closes) fails
    # the handshake with no detail; libzmq connects again, so no runner may fail for it.
    cfg, _ = curve_config(tmp_path)
    addr = cfg.bus.ticks_address
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(addr.rsplit(":", 1)[1])))
    listener.listen()
    listener.settimeout(0.05)
    stop, cut = threading.Event(), []

    def accept_and_close() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
                cut.append(1)
            except OSError:
                pass

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    telemetry = Telemetry()
    with contexts((cfg, "gateway", Telemetry()), (cfg, "sr-1", telemetry)) as (gw_ctx, sr_ctx):
        sub = ZmqReceiver(sr_ctx, zmq.SUB, addr, cfg.bus, telemetry, bind_it=False)
        deadline = time.monotonic() + 5
        while len(cut) < 3:
            assert time.monotonic() < deadline, "no handshake was cut"
            time.sleep(0.05)
        stop.set()
        thread.join()
        listener.close()
        pub = gw_ctx.socket(zmq.PUB)
        pub.linger = 0
        security.secure(pub, addr, server=True)
        pub.bind(addr)
        deadline = time.monotonic() + 10
        frames = codec.encode(TickBatch("ABC", 1, [1], [1.0], [1.0]), "gateway", 1, 1, 1)
        while sub.recv(100) is None:
            assert time.monotonic() < deadline, "libzmq did not connect again"
            pub.send_multipart(frames)
        security.check_peers()  # no refusal: nothing raised
        assert security.refusal(sr_ctx, "ticks") is None
        sub.close()
