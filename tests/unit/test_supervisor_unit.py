"""Supervisor logic that needs no processes."""

from __future__ import annotations

from workbench.config import build_config
from workbench.messaging.codec import Envelope, Heartbeat
from workbench.supervisor import Supervisor


def test_end_of_stream_is_seen_in_the_executors_last_heartbeat(tmp_path):
    sup = Supervisor(build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path))
    sup._watchers["executor"].pid = 123
    summary = {
        "signals": 2,
        "orders": 2,
        "fills": 2,
        "realized_pnl": 0.5,
        "positions": {},
        "ticks": {"sr-1": 9},
    }
    hb = Heartbeat("executor", 123, "finished", {}, {"eos_summary": summary})
    sup._on_heartbeat(Envelope("hb", "executor", 1, 5, 777, hb))
    assert sup.eos_reached.is_set()
    assert sup.eos_summary == {**summary, "eos_ns": 777}


def test_heartbeats_from_a_replaced_process_are_ignored(tmp_path):
    sup = Supervisor(build_config({"runtime": {"run_dir": str(tmp_path)}}, base_dir=tmp_path))
    sup._watchers["gateway"].pid = 1
    sup._on_heartbeat(Envelope("hb", "gateway", 1, 1, 1, Heartbeat("gateway", 2, "running")))
    assert sup._watchers["gateway"].hb.heartbeat is None
