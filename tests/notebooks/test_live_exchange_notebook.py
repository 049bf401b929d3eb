"""notebooks/05_live_exchange.ipynb under nbval, on the local Binance server.

The notebook loads ``configs/paper_exchange.toml`` unchanged; the sandbox's
environment moves its bus and run folder, and points ``gateway.exchange`` at
the server (its URLs, its USD/JPY market) the way a user would point it at a
private gateway.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from nb_sandbox import ROOT, Sandbox, make_sandbox
from test_notebooks import run_nbval

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.binance_server.server import BinanceServer

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange_sandbox() -> Iterator[tuple[Sandbox, BinanceServer]]:
    with make_sandbox() as box, BinanceServer() as server:
        box.env.update(
            {
                "WORKBENCH__GATEWAY__EXCHANGE__REST_URL": server.rest_url,
                "WORKBENCH__GATEWAY__EXCHANGE__WS_URL": server.ws_url,
                "WORKBENCH__GATEWAY__EXCHANGE__WS_API_URL": server.ws_api_url,
                "WORKBENCH__GATEWAY__EXCHANGE__SYMBOLS": json.dumps(["USD/JPY"]),
            }
        )
        yield box, server


def test_live_exchange_notebook_runs_a_paper_session_on_the_local_exchange(
    exchange_sandbox: tuple[Sandbox, BinanceServer],
) -> None:
    box, server = exchange_sandbox
    result = run_nbval(ROOT / "notebooks" / "05_live_exchange.ipynb", box)
    leftovers = box.reap(grace_s=5.0)
    assert result.returncode == 0, f"nbval failed:\n{result.stdout[-6000:]}"
    assert "passed" in result.stdout
    assert not leftovers, f"processes still running: {leftovers}"
    assert server.requests["ws SUBSCRIBE"] >= 2  # the probe, then the gateway
    runs = list((box.folder / "runs").glob("*/ticks"))
    assert runs, "no recording under the sandbox's run folder"
