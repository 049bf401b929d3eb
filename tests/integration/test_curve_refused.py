"""A binder that refuses our CURVE key: libzmq never connects again, so we fail loudly."""

from __future__ import annotations

import time

import pytest
import zmq
from curve_support import curve_config

from workbench.exceptions import TemporaryError
from workbench.messaging import security
from workbench.messaging.codec import Command
from workbench.messaging.zmq_adapters import ZmqReceiver, ZmqReplier, request
from workbench.telemetry import Telemetry

pytestmark = pytest.mark.integration


def test_a_refused_subscriber_fails_its_runner_naming_the_socket_and_its_key(tmp_path):
    cfg, _ = curve_config(tmp_path)
    stale = cfg.model_copy(deep=True)  # the gateway's host lists an old key for sr-1
    stale.security.public_keys = {
        **cfg.security.public_keys,
        "sr-1": zmq.curve_keypair()[0].decode(),
    }
    gw_ctx, sr_ctx = zmq.Context(), zmq.Context()
    security.install(gw_ctx, stale, "gateway", Telemetry())
    telemetry = Telemetry()
    security.install(sr_ctx, cfg, "sr-1", telemetry)
    try:
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
    finally:
        for ctx in (gw_ctx, sr_ctx):
            security.uninstall(ctx)
            ctx.destroy(linger=0)


def test_the_kill_switch_says_its_key_was_refused_not_that_the_executor_is_down(tmp_path):
    cfg, _ = curve_config(tmp_path)
    stale = cfg.model_copy(deep=True)
    stale.security.public_keys = {
        **cfg.security.public_keys,
        "supervisor": zmq.curve_keypair()[0].decode(),
    }
    ex_ctx, op_ctx = zmq.Context(), zmq.Context()
    security.install(ex_ctx, stale, "executor", Telemetry())
    security.install(op_ctx, cfg, "supervisor", Telemetry())
    try:
        rep = ZmqReplier(ex_ctx, cfg.bus.command_address, cfg.bus, Telemetry(), "executor")
        with pytest.raises(TemporaryError, match=r"command at .* refused the CURVE handshake"):
            request(cfg.bus.command_address, Command("state", {}), timeout_ms=1_500, ctx=op_ctx)
        rep.close()
    finally:
        for ctx in (ex_ctx, op_ctx):
            security.uninstall(ctx)
            ctx.destroy(linger=0)
