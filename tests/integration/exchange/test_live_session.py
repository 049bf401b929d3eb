"""A paper session on real prices from the local Binance server, recorded, replayed, diffed.

The session starts from a config as a notebook does (`Workbench`), on the
exchange feed with the simulated broker. It checks that the stale-feed alert
reaches the supervisor, that replaying the recording through the same config
reproduces the journal's signals and fills (`workbench diff` agrees), and that
the API key and secret planted in the environment appear nowhere.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SYMBOL
from fixtures.binance_server.server import BinanceServer
from helpers import make_config, wait_until

from workbench import Workbench, diff_runs, load_ticks, replay
from workbench.cli import main as cli_main

pytestmark = pytest.mark.integration

PLANTED_KEY = "PLANTEDkey4f1b9c0d7e2a"
PLANTED_SECRET = "PLANTEDsecret8a3c5e7f9b1d"
CONDITIONS = [
    {"id": "buy-dip", "symbol": SYMBOL, "side": "BUY", "trigger_price": 86.80,
     "turning_point": 0.003, "take_profit": 0.004, "stop_loss": 0.004,
     "following": True, "rearm": True},
    {"id": "sell-rip", "symbol": SYMBOL, "side": "SELL", "trigger_price": 86.70,
     "turning_point": 0.003, "take_profit": 0.004, "stop_loss": 0.004,
     "following": True, "rearm": True},
]  # fmt: skip


def live_config(tmp_path: Path, server: BinanceServer, run_id: str = "live"):
    return make_config(
        tmp_path,
        run_id=run_id,
        gateway={
            "feed": "exchange",
            "exchange": {
                "exchange": "binance", "symbols": [SYMBOL], "stale_after_s": 1.5,
                "rest_url": server.rest_url, "ws_url": server.ws_url,
                "ws_api_url": server.ws_api_url, "reconnect_initial_s": 0.05,
                "reconnect_max_s": 0.5,
            },
        },
        strategies=[{"id": "sr-1", "params": {"conditions": CONDITIONS}}],
        executor={"exit_on_eos": False, "risk": {"max_order_qty": 100, "max_position_qty": 1e6}},
        recorder={"enabled": True, "roll_every_s": 0.5},
    )  # fmt: skip


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:  # 503 while a runner is unhealthy
        return e.read().decode()


def test_paper_session_on_exchange_prices_alerts_when_stale_replays_and_leaks_no_secret(
    tmp_path: Path, server: BinanceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY", PLANTED_KEY)
    monkeypatch.setenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET", PLANTED_SECRET)
    cfg = live_config(tmp_path, server)
    assert cfg.gateway.exchange.api_key.get_secret_value() == PLANTED_KEY
    server.pause_market()  # nothing streams before the strategy listens
    seen: list[str] = []
    wb = Workbench(cfg)
    try:
        wb.start()
        # The gateway may already be unhealthy (no trades yet): wait for the others.
        wait_until(
            lambda: (
                {r: st for r, st in wb.status()["state"].items() if st != "running"}.keys()
                <= {"gateway"}
                and wb.status().loc["gateway", "state"] in ("running", "unhealthy")
            ),
            60,
            "strategy and executor running",
        )
        time.sleep(0.5)
        server.pause_market(False)
        wait_until(lambda: len(wb.signals.frame()) >= 10, 20, "signals on exchange prices")
        wait_until(lambda: len(wb.fills.frame()) >= 10, 10, "paper fills")

        # The market goes quiet: the gateway turns unhealthy and alerts.
        def stale_alerts() -> int:
            return sum(
                e.kind == "alert" and e.data.get("reason") == "feed_stale"
                for e in wb.supervisor_events
            )

        before = stale_alerts()  # (startup may have been slow enough for one already)
        server.pause_market()
        wait_until(lambda: stale_alerts() > before, 10, "a feed_stale alert")
        wait_until(
            lambda: wb.status().loc["gateway", "state"] == "unhealthy", 5, "gateway unhealthy"
        )
        health = _get(wb.supervisor.health_url + "/health")
        assert json.loads(health)["runners"]["gateway"]["state"] == "unhealthy"
        seen += [health, _get(wb.supervisor.health_url + "/metrics")]
        seen += [wb.status().to_string(), wb.logs(last=2000).to_string()]
        seen += [wb.events.frame().to_string(), repr(wb.supervisor_events), repr(wb.config)]
        # Stop the gateway first so the strategy processes every recorded tick.
        wb.stop_runner("gateway")
        wait_until(lambda: wb.status().loc["gateway", "state"] == "stopped", 10, "gateway stop")
        time.sleep(1.0)
    finally:
        wb.stop()
    run = cfg.run_path()
    ticks = load_ticks(run / "ticks")
    assert len(ticks) >= 20 and set(ticks.symbol) == {SYMBOL}
    assert ticks.ts_ns.tolist() == sorted(ticks.ts_ns.tolist())
    streamed = server.call(lambda: {t["T"] * 1_000_000: float(t["p"]) for t in server.streamed})
    assert all(
        streamed[ts] == pytest.approx(p) for ts, p in zip(ticks.ts_ns, ticks.price, strict=True)
    )

    # Replaying the recording through the same config reproduces the live run.
    monkeypatch.delenv("WORKBENCH__GATEWAY__EXCHANGE__API_KEY")
    monkeypatch.delenv("WORKBENCH__GATEWAY__EXCHANGE__API_SECRET")
    rcfg = live_config(tmp_path, server, run_id="replayed")
    rcfg.gateway.feed = "replay"
    out = tmp_path / "replayed-out"
    result = replay(rcfg, data=run / "ticks", mode="fast", out=out, progress=False)
    assert len(result.orders) >= 10  # as many as live had (the diff compares them all)
    diff = diff_runs(run, out)
    assert diff.empty, diff.to_string()
    assert cli_main(["diff", str(run), str(out)]) == 0

    # The planted secret is nowhere: logs, run folder (config.toml, journal, ticks), health...
    files = [p for p in run.rglob("*") if p.is_file()]
    assert run / "config.toml" in files and any(p.suffix == ".jsonl" for p in files)
    for p in files:
        data = p.read_bytes()
        assert PLANTED_KEY.encode() not in data and PLANTED_SECRET.encode() not in data, p
    for text in seen:
        assert PLANTED_KEY not in text and PLANTED_SECRET not in text


def test_diff_reports_the_first_differences_and_exits_1(tmp_path: Path, capsys) -> None:
    data = Path(__file__).resolve().parents[3] / "data" / "ticks" / "synth-ABC-5000.csv"
    cfg = make_config(tmp_path, gateway={"feed": "replay"})
    a = replay(cfg, data=data, mode="fast", out=tmp_path / "a", progress=False)
    cfg.strategies[0].params["conditions"][0]["take_profit"] = 0.3
    replay(cfg, data=data, mode="fast", out=tmp_path / "b", progress=False)
    diff = diff_runs(tmp_path / "a", tmp_path / "b")
    assert not diff.empty and list(diff.columns) == [
        "kind",
        "signal_id",
        "field",
        "a",
        "b",
        "ts_ns",
    ]
    assert diff["ts_ns"].is_monotonic_increasing
    assert len(a.orders) > 0
    assert cli_main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "first difference" in capsys.readouterr().out
    assert cli_main(["diff", str(tmp_path / "a"), str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
