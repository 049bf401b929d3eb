"""Fixtures the sweep tests share: a local Dask cluster and eight days of ticks."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.marketdata import synth_ticks, write_ticks


@pytest.fixture(scope="module")
def client():
    """A client of a real two-worker `LocalCluster`, closed after the module."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def days_data(tmp_path_factory) -> Path:
    """Eight days of ticks, one every 2 minutes."""
    path = tmp_path_factory.mktemp("data") / "ABC-8d.parquet"
    return write_ticks(synth_ticks("ABC", 5760, 11, interval_ns=120 * 10**9), path)
