"""A gateway whose feed went stale: unhealthy, one alert per episode, and still restartable."""

from __future__ import annotations

import time

from workbench.config import build_config
from workbench.messaging.codec import Envelope, Heartbeat
from workbench.supervisor import RunnerState, Supervisor


class _Proc:
    """Stands in for the runner process: alive until terminated."""

    gated = False

    def __init__(self) -> None:
        self.terminated = False

    def poll(self) -> int | None:
        return None

    def terminate(self) -> None:
        self.terminated = True

    def send_signal(self, sig: int) -> None:
        pass


def _hb(sup: Supervisor, stale: bool) -> None:
    extra = {"feed_stale": stale, "feed_age_s": 3.2 if stale else 0.01}
    hb = Heartbeat("gateway", 1, "running", {}, extra)
    sup._on_heartbeat(Envelope("hb", "gateway", 1, 1, 1, hb))


def _alerts(sup: Supervisor) -> list[dict]:
    return [e.data for e in sup.events if e.kind == "alert"]


def test_stale_feed_makes_the_gateway_unhealthy_with_one_alert_until_ticks_return(tmp_path):
    cfg = build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path)
    sup = Supervisor(cfg)
    slot = sup._slots["gateway"]
    slot.pid, slot.proc, slot.state = 1, _Proc(), RunnerState.RUNNING
    _hb(sup, stale=False)
    assert slot.state is RunnerState.RUNNING and _alerts(sup) == []
    _hb(sup, stale=True)
    _hb(sup, stale=True)
    assert slot.state is RunnerState.UNHEALTHY and "feed silent" in slot.detail
    assert _alerts(sup) == [{"reason": "feed_stale", "silent_s": 3.2}]
    _hb(sup, stale=False)
    assert slot.state is RunnerState.RUNNING
    _hb(sup, stale=True)
    assert len(_alerts(sup)) == 2  # a new episode, a new alert


def test_a_gateway_unhealthy_for_its_feed_that_stops_heartbeating_is_restarted(tmp_path):
    cfg = build_config(
        {
            "runtime": {"run_dir": str(tmp_path)},
            "supervisor": {"heartbeat_timeout_s": 0.1, "hung_restart_after_s": 0.1},
        },
        base_dir=tmp_path,
    )
    sup = Supervisor(cfg)
    slot = sup._slots["gateway"]
    slot.pid, slot.proc, slot.state = 1, _Proc(), RunnerState.RUNNING
    _hb(sup, stale=True)
    assert slot.state is RunnerState.UNHEALTHY
    now = time.monotonic() + 1.0  # heartbeats stopped a second ago
    sup._check(slot, now)
    sup._check(slot, now + 0.2)
    assert slot.proc.terminated and slot.restart_after_exit
