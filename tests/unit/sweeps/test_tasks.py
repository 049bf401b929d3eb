"""A sweep task runs the config the client shipped, whatever the worker's environment holds."""

from __future__ import annotations

from pathlib import Path

from workbench.replays.session import load_replay_ticks, prepare_config
from workbench.sweeps.tasks import replay_row

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo.toml"
FEES = ("WORKBENCH__EXECUTOR__BROKER__PARAMS", '{"fee_bps": 50}')
PARAMS = {"turning_point": 0.02, "take_profit": 0.1}


def test_a_workers_workbench_variables_do_not_change_the_config_it_runs(monkeypatch):
    monkeypatch.delenv(FEES[0], raising=False)
    shipped = prepare_config(CONFIG)  # the client: no fees in its environment
    table = load_replay_ticks(shipped)
    client_row = replay_row(shipped, table, PARAMS)
    assert client_row["error"] is None and client_row["fills"] > 0
    assert client_row["fees"] == 0.0

    monkeypatch.setenv(*FEES)  # the worker's environment: pydantic merged it into broker.params
    assert prepare_config(shipped).executor.broker.params["fee_bps"] == 50  # as it would apply
    worker_row = replay_row(shipped, table, PARAMS)
    assert worker_row["error"] is None
    assert worker_row["fees"] == 0.0
    assert worker_row["fills_sha256"] == client_row["fills_sha256"]
    assert worker_row["net_pnl_after_fees"] == client_row["net_pnl_after_fees"]
