"""A market entry the risk limits refuse is not followed by an exit that opens a position,
and fast and wire replay refuse alike (the exit waits for its entry in a batch)."""

from __future__ import annotations

import pytest
from helpers import make_config
from test_parity import dataset

from workbench.replays import replay

pytestmark = pytest.mark.integration


def test_the_exit_of_a_refused_market_entry_is_refused_in_fast_and_wire_replay(tmp_path):
    data, conds = dataset("sample")
    risk = {"max_order_qty": 1e6, "max_position_qty": 1e6, "max_orders_per_s": 0.03}
    cfg = make_config(
        tmp_path,
        strategies=[{"id": "sr", "params": {"conditions": conds}}],  # market entries
        executor={"risk": risk},
        gateway={"replay": {"batch_size": 333}},
    )
    fast = replay(cfg, data, mode="fast", out=tmp_path / "fast")
    wire = replay(cfg, data, mode="wire", out=tmp_path / "wire", progress=False)
    assert wire.orders.equals(fast.orders)
    assert wire.fills.equals(fast.fills)
    o = fast.orders.set_index("signal_id")
    assert o.loc["sr:5", "reason"] == "sr over max_orders_per_s 0.03"  # the entry
    assert (o.loc["sr:6", "status"], o.loc["sr:6", "reason"]) == (
        "REJECTED",
        "closes sr:5, which holds nothing (REJECTED with 0 filled, 0 exited)",
    )  # its exit: it filled, opening a short, before exits named their entry
