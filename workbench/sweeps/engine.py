"""Running sweep tasks on ``dask.distributed``: the cluster, the data, the progress bar.

`cluster_client` yields a `distributed.Client`: on a new `LocalCluster` (one
single-threaded worker process per core, or ``workers``) when no scheduler
address is given, else on the scheduler at that address. `TaskRunner` puts
the config and the ticks on every worker once (``scatter(broadcast=True)``),
so each task carries only its parameters, and collects rows as they finish
with a tqdm bar.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError
from workbench.marketdata.table import TickTable
from workbench.sweeps.tasks import replay_row

log = structlog.get_logger()

Job = tuple[dict[str, Any], tuple[int, int] | None]
"""One task: the parameters and the row range of the data (None = all rows)."""


@contextlib.contextmanager
def cluster_client(
    scheduler: str | None = None, workers: int | None = None, *, connect_timeout_s: float = 30.0
) -> Iterator[Any]:
    """A Dask client on a new local cluster, or on the scheduler at ``scheduler``.

    Args:
        scheduler: ``tcp://host:port`` of a running ``dask scheduler``; None
            starts a `LocalCluster` for the duration of the block.
        workers: Local cluster: how many worker processes (default: one per
            core). With a scheduler: wait until that many workers joined.

    Raises:
        ConfigurationError: ``workers`` < 1, or the scheduler is unreachable.
    """
    from distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise ConfigurationError(f"workers: must be >= 1, got {workers}")
    if scheduler:
        try:
            client = Client(scheduler, timeout=connect_timeout_s)
        except OSError as e:
            raise ConfigurationError(f"scheduler {scheduler}: cannot connect: {e}") from e
        try:
            if workers:
                client.wait_for_workers(workers, timeout=connect_timeout_s)
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.WARNING,
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


class TaskRunner:
    """Runs jobs of one config and one tick table on a Dask client."""

    def __init__(self, client: Any, cfg: WorkbenchConfig, table: TickTable) -> None:
        self.client = client
        # Broadcast: a replica on every worker, so no task ever moves the data.
        self._cfg = client.scatter(cfg, broadcast=True, hash=False)
        self._table = client.scatter(table, broadcast=True, hash=False)
        self.workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))

    @property
    def data_key(self) -> str:
        """The Dask key of the scattered tick table."""
        return self._table.key

    def submit(self, job: Job) -> Any:
        params, rows = job
        return self.client.submit(replay_row, self._cfg, self._table, params, rows, pure=False)

    def run(
        self,
        jobs: Sequence[Job],
        *,
        progress: bool = True,
        desc: str = "sweep",
        on_row: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every job's row, in job order; ``on_row(index, row)`` as each one finishes."""
        from distributed import as_completed
        from tqdm.auto import tqdm

        futures = [self.submit(j) for j in jobs]
        index = {f.key: i for i, f in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(futures)
        with tqdm(total=len(futures), desc=desc, unit="run", disable=not progress) as bar:
            for fut in as_completed(futures):
                i = index[fut.key]
                try:
                    row = fut.result()
                except Exception as e:  # a worker died or the task could not run at all
                    row = {**jobs[i][0], "error": f"{type(e).__name__}: {e}"}
                rows[i] = row
                if row.get("error"):
                    log.warning("sweep_run_failed", params=jobs[i][0], error=row["error"])
                if on_row is not None:
                    on_row(i, row)
                bar.update(1)
        return [r for r in rows if r is not None]
