"""A gateway whose live feed went stale: unhealthy, one alert per episode, still restartable."""

from __future__ import annotations

import signal

from supervisor_fakes import Rig

from workbench.supervisor.status import RunnerState


def _beat(r: Rig, stale: bool) -> None:
    r.beat(
        extra={"feed_stale": stale, "feed_age_s": 3.2 if stale else 0.01}
        | ({"feed_stale_symbols": ["EUR/JPY"]} if stale else {})
    )


def _alerts(r: Rig) -> list[dict]:
    return [d for k, d in r.events if k == "alert"]


def test_stale_feed_makes_the_gateway_unhealthy_with_one_alert_until_ticks_return():
    r = Rig("gateway", "gateway")
    r.running()
    _beat(r, stale=False)
    assert r.w.state is RunnerState.RUNNING and _alerts(r) == []
    _beat(r, stale=True)
    _beat(r, stale=True)
    assert r.w.state is RunnerState.UNHEALTHY and "feed silent" in r.w.detail
    assert _alerts(r) == [{"reason": "feed_stale", "silent_s": 3.2, "symbols": ["EUR/JPY"]}]
    _beat(r, stale=False)
    assert r.w.state is RunnerState.RUNNING
    _beat(r, stale=True)
    assert len(_alerts(r)) == 2  # a new episode, a new alert


def test_a_gateway_unhealthy_for_its_feed_that_stops_heartbeating_is_restarted():
    r = Rig("gateway", "gateway", heartbeat_timeout_s=0.1, hung_restart_after_s=0.1)
    r.running()
    _beat(r, stale=True)
    assert r.w.state is RunnerState.UNHEALTHY
    r.clock.advance(1.0)  # heartbeats stopped a second ago
    r.w.tick()
    r.clock.advance(0.2)
    r.w.tick()
    assert signal.SIGTERM in r.proc.signals and "hung" in r.kinds()


def test_feed_health_of_a_strategy_heartbeat_is_not_read():
    r = Rig()
    r.running()
    _beat(r, stale=True)
    assert r.w.state is RunnerState.RUNNING and _alerts(r) == []


def test_a_late_beat_while_the_feed_is_stale_leaves_no_unhealthy_time_behind():
    # The stale-feed path kept the late beat's time: heartbeats came back, the detail still
    # said "heartbeat 2.5 s old", and the next late beat, minutes on, was a hang at once.
    r = Rig("gateway", "gateway", heartbeat_timeout_s=2.0, hung_restart_after_s=30.0)
    r.running()
    _beat(r, stale=True)
    r.proc.exits_on_term = False
    r.clock.advance(2.5)
    r.w.tick()  # one late beat during the outage
    assert r.w.unhealthy_since is not None
    _beat(r, stale=True)  # beats again: not hung, its feed still silent
    assert r.w.unhealthy_since is None and r.w.detail == "feed silent 3.2 s: EUR/JPY"
    r.clock.advance(100)
    _beat(r, stale=True)
    r.clock.advance(2.5)
    r.w.tick()  # late again, much later: unhealthy, with the whole wait before a restart
    r.clock.advance(1.0)
    r.w.tick()
    assert r.proc.signals == [] and "hung" not in r.kinds()
    r.clock.advance(30.0)
    r.w.tick()
    assert signal.SIGTERM in r.proc.signals and "hung" in r.kinds()


def _stale(r: Rig, age: float, *symbols: str) -> None:
    r.beat(extra={"feed_stale": True, "feed_age_s": age, "feed_stale_symbols": list(symbols)})


def test_the_detail_follows_the_silence_and_each_symbol_newly_silent_is_alerted():
    # The detail kept its first age, and a second symbol going silent raised nothing.
    r = Rig("gateway", "gateway")
    r.running()
    _stale(r, 3.2, "EUR/JPY")
    states = r.kinds().count("state")
    _stale(r, 6.4, "EUR/JPY")
    assert r.w.detail == "feed silent 6.4 s: EUR/JPY"
    assert r.kinds().count("state") == states  # the age alone: no state event per heartbeat
    _stale(r, 7.0, "EUR/JPY", "BTC/USDT")
    assert r.w.detail == "feed silent 7.0 s: EUR/JPY, BTC/USDT"
    _stale(r, 8.0, "BTC/USDT")  # EUR/JPY ticks again: nothing new is silent
    _stale(r, 9.0, "BTC/USDT", "EUR/JPY")  # silent again in the same episode: alerted before
    assert _alerts(r) == [
        {"reason": "feed_stale", "silent_s": 3.2, "symbols": ["EUR/JPY"]},
        {"reason": "feed_stale", "silent_s": 7.0, "symbols": ["BTC/USDT"]},
    ]
    assert r.w.status().health()["detail"] == "feed silent 9.0 s: BTC/USDT, EUR/JPY"
    _beat(r, stale=False)
    assert r.w.state is RunnerState.RUNNING
    _stale(r, 3.0, "BTC/USDT")
    assert _alerts(r)[-1] == {"reason": "feed_stale", "silent_s": 3.0, "symbols": ["BTC/USDT"]}


def test_a_stale_beat_from_an_older_gateway_naming_no_symbol_alerts_once():
    r = Rig("gateway", "gateway")
    r.running()
    _stale(r, 3.2)
    _stale(r, 4.0)
    assert _alerts(r) == [{"reason": "feed_stale", "silent_s": 3.2, "symbols": []}]
    assert r.w.state is RunnerState.UNHEALTHY and r.w.detail == "feed silent 4.0 s"
