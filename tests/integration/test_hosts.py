"""One pipeline, two supervisors with their own runners (two "hosts" on loopback), CURVE on."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request

import pytest
from curve_support import curve_config, free_port
from pipeline_support import COND_B, COND_S, expected_fills, write_ticks

from workbench.exceptions import ConfigurationError
from workbench.supervisor import Supervisor

pytestmark = pytest.mark.integration


def health(sup: Supervisor) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{sup.health_url}/health", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def two_host_config(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")
    cfg, _ = curve_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}],
        # Real time (3 s of ticks): long enough to look at /health while it runs.
        gateway={"feed": "replay", "replay": {"path": str(data), "batch_size": 7, "speed": 1.0}},
        executor={"broker": {"slippage": 0.01}},
        hosts=[
            {
                "name": "exchange",
                "runners": ["gateway", "executor"],
                "telemetry_address": f"tcp://127.0.0.1:{free_port()}",
            },
            {
                "name": "compute",
                "runners": ["sr"],
                "telemetry_address": f"tcp://127.0.0.1:{free_port()}",
            },
        ],
    )
    per_host = []
    for name in ("exchange", "compute"):
        c = cfg.model_copy(deep=True)
        c.runtime.run_dir = str(tmp_path / name / "runs")  # each host has its own disk
        per_host.append(c)
    return per_host


def test_two_hosts_run_one_pipeline_in_order_and_see_each_others_heartbeats(tmp_path):
    cfg_a, cfg_b = two_host_config(tmp_path)
    compute = Supervisor(cfg_b, runners=["sr"])
    exchange = Supervisor(cfg_a, runners=["gateway", "executor"])
    assert compute.runner_names == ["sr"]
    assert exchange.runner_names == ["executor", "gateway"]
    at_release: dict = {}

    def on_event(ev) -> None:
        if ev.kind == "state" and ev.data.get("detail") == "released":
            at_release.update(compute.remote_status())

    compute.subscribe(on_event)
    try:
        compute.start()
        time.sleep(2.0)
        # The connector waits at its gate: its binders are on the other host, not up yet.
        st = compute.status()[0]
        assert st["state"] == "starting" and st["detail"] == "gated", st
        code, body = health(compute)
        assert code == 503
        assert body["remote"]["gateway"] == {
            "role": "gateway",
            "state": "unseen",
            "heartbeat_age_s": None,
            "stale": True,
        }
        exchange.start()
        seen_running = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not exchange.eos_reached.is_set():
            code, body = health(compute)
            if seen_running is None and code == 200:
                seen_running = body
            time.sleep(0.05)
        assert exchange.eos_reached.is_set(), (exchange.status(), compute.status())
        # Released only once both remote binders had sent fresh heartbeats.
        assert set(at_release) == {"gateway", "executor"}, at_release
        assert not any(r["stale"] for r in at_release.values()), at_release
        assert seen_running is not None, "compute never saw its pipeline healthy"
        assert seen_running["runners"]["sr"]["state"] == "running"
        for name in ("gateway", "executor"):
            remote = seen_running["remote"][name]
            assert remote["stale"] is False and 0 <= remote["heartbeat_age_s"] < 2, remote
        assert "remote" not in health(exchange)[1] or set(health(exchange)[1]["remote"]) == {"sr"}
    finally:
        exchange.stop()
        compute.stop()
    with sqlite3.connect(cfg_a.journal_path()) as db:
        fills = db.execute(
            "SELECT fill_id, side, qty, round(price, 8), ts_ns FROM fills ORDER BY ts_ns, fill_id"
        ).fetchall()
    assert [tuple(f) for f in fills] == sorted(expected_fills("sr", "sr"), key=lambda f: f[4])
    # Each host ran (and logged) only its own runners.
    assert sorted(p.name for p in (compute.run_path / "logs").iterdir()) == ["sr.jsonl"]
    assert sorted(p.name for p in (exchange.run_path / "logs").iterdir()) == [
        "executor.jsonl",
        "gateway.jsonl",
    ]


def test_runners_that_match_no_host_are_refused_naming_the_hosts(tmp_path):
    cfg_a, _ = two_host_config(tmp_path)
    with pytest.raises(ConfigurationError, match="no host runs exactly gateway"):
        Supervisor(cfg_a, runners=["gateway"])
