"""Running sweep tasks on ``dask.distributed``: the cluster, the data, the progress bar.

`cluster_client` yields a `distributed.Client`: on a new `LocalCluster` (one
single-threaded worker process per core, or ``workers``) when no scheduler
address is given, else on the scheduler at that address. `TaskRunner` puts
the config and the ticks on every worker once, as a worker plugin (also sent
to workers that join later), so each task carries only its parameters; it
collects rows as they finish with a tqdm bar.

Why a plugin and not ``scatter(broadcast=True)``: the scheduler's active
memory manager drops "surplus" replicas of scattered data, and the next task
on that worker would fetch the whole table again.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from distributed import WorkerPlugin

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError, WorkbenchError
from workbench.marketdata.table import TickTable
from workbench.sweeps.tasks import replay_row

log = structlog.get_logger()

SWITCH_INTERVAL_S = 0.05
Job = tuple[dict[str, Any], tuple[int, int] | None]
"""One task: the parameters and the row range of the data (None = all rows)."""


class SweepLost(WorkbenchError):
    """The cluster, not a combination, failed a task (the scheduler was lost): no best is chosen."""


def task_row(fut: Any, params: dict[str, Any], done: int, total: int) -> dict[str, Any]:
    """A finished task's row; released, so a worker lost later does not compute it again.

    A task's own failure is in its row (`replay_row`). One that killed every
    worker it ran on (``KilledWorker``) is that combination's failure too.
    Anything else is the cluster's: a best chosen from the runs that happened
    to finish would hide a better one that never ran.

    Raises:
        SweepLost: naming the task and the cause.
    """
    from distributed import KilledWorker

    try:
        return fut.result()
    except KilledWorker as e:
        return {**params, "error": f"KilledWorker: {e}"}
    except Exception as e:
        raise SweepLost(
            f"the sweep stopped after {done} of {total} runs: the Dask cluster lost the run "
            f"of {params} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "no best was chosen and nothing was written"
        ) from e
    finally:
        fut.release()


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
        connect_timeout_s: With a scheduler: the most time to wait for it to
            answer, and then again for ``workers`` workers (one without).

    Raises:
        ConfigurationError: ``workers`` < 1; the scheduler is unreachable, not a
            Dask scheduler, or its address is malformed; fewer than ``workers``
            workers joined in time.
    """
    from distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise ConfigurationError(f"workers: must be >= 1, got {workers}")
    if scheduler:
        try:
            check_scheduler(scheduler, connect_timeout_s)
            client = Client(scheduler, timeout=connect_timeout_s)
        except (OSError, ValueError, TypeError) as e:  # TimeoutError is an OSError
            raise ConfigurationError(f"--scheduler {scheduler}: cannot connect: {e}") from e
        try:
            try:  # none at all: the tasks would wait for ever
                client.wait_for_workers(workers or 1, timeout=connect_timeout_s)
            except TimeoutError as e:
                have = len(client.scheduler_info(n_workers=-1).get("workers", {}))
                raise ConfigurationError(
                    f"--workers {workers or 1}: the scheduler at {scheduler} has {have} "
                    f"worker(s) after {connect_timeout_s:g} s"
                ) from e
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask's statistical profiler samples each worker's task thread every 10 ms,
    # taking the GIL from pure-Python replays; nobody reads it in a sweep.
    profile_off = dask.config.set({"distributed.worker.profile.enabled": False})
    with profile_off, _workers_ignore_ctrl_c() as interrupted:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never collide with another session's 8787
            silence_logs=logging.WARNING,
        )
    if interrupted():  # Ctrl-C while the workers started: this process could not take it then
        cluster.close()
        raise KeyboardInterrupt
    chatter = logging.getLogger("distributed")
    level = chatter.level
    try:
        with Client(cluster) as client:
            try:
                yield client
            except KeyboardInterrupt:  # stopped mid-task: the shutdown's complaints are no news
                chatter.setLevel(logging.CRITICAL + 1)
                _quiet_workers(client)  # theirs too (a heartbeat that met the closed scheduler)
                raise
    finally:
        cluster.close()
        chatter.setLevel(level)


def _silence_distributed() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)


def _quiet_workers(client: Any) -> None:
    """Silence ``distributed``'s loggers in the workers and their nannies (best effort,
    2 s at most: a Ctrl-C must not wait on a stuck worker)."""

    def run() -> None:
        for nanny in (False, True):
            with contextlib.suppress(Exception):
                client.run(_silence_distributed, nanny=nanny, on_error="ignore")

    quieting = threading.Thread(target=run, name="quiet-workers", daemon=True)
    quieting.start()
    quieting.join(2.0)


@contextlib.contextmanager
def cancelled_unless_done(client: Any, pending: dict[Any, Any]) -> Iterator[None]:
    """Cancel the tasks in ``pending`` (key -> future) if the block stops early (Ctrl-C,
    a lost scheduler): none starts on a worker after its data is gone."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(pending.values()))
        raise


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Worker processes started in this block ignore SIGINT (they inherit it).

    A terminal's Ctrl-C goes to the whole process group: this process then
    closes the cluster itself, and the workers do not each print a
    KeyboardInterrupt traceback. (Only the main thread may set signal handlers.)

    This process ignores it too meanwhile, so a sentinel process started
    before, which does not, tells afterwards whether a Ctrl-C came: yields
    a callable that says so once the block is over.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    quiet = subprocess.DEVNULL
    sentinel = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)"],
        stdin=quiet, stdout=quiet, stderr=quiet,
    )  # fmt: skip
    ended = False
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield lambda: ended
    finally:
        signal.signal(signal.SIGINT, old)
        ended = sentinel.poll() is not None  # a Ctrl-C to the group ended it
        if not ended:
            sentinel.kill()
        sentinel.wait()


def check_scheduler(address: str, timeout_s: float) -> None:
    """Ask ``address`` for its identity, all within ``timeout_s``: a Dask scheduler answers.

    ``Client(address, timeout=...)`` waits forever for the handshake of a
    server that accepts the connection but never speaks Dask's protocol
    (dask/distributed#8071); this bounds the whole exchange. It runs in a
    thread of its own, so a notebook's running event loop is no obstacle.

    Raises:
        TimeoutError: no answer within ``timeout_s``.
        OSError: the connection failed or was closed.
        ValueError: ``address`` is not an address, or the answer is not a scheduler's.
    """
    import asyncio
    import concurrent.futures

    async def ask() -> Any:
        from distributed.comm import connect
        from distributed.security import Security

        comm = await connect(address, timeout=timeout_s, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run() -> Any:
        return asyncio.run(asyncio.wait_for(ask(), timeout_s))

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scheduler-check")
    try:  # wait_for bounds the thread; the margin is for a loop that cannot even cancel
        reply = pool.submit(run).result(timeout=timeout_s + 5)
    except TimeoutError as e:  # asyncio's and concurrent.futures' are this one since 3.11
        raise TimeoutError(f"no Dask scheduler answered within {timeout_s:g} s") from e
    finally:
        pool.shutdown(wait=False)
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ValueError(f"not a Dask scheduler (it answered {str(reply)[:80]!r})")


class SweepData(WorkerPlugin):  # distributed refuses duck-typed plugins
    """A Dask worker plugin holding one sweep's config and ticks on each worker."""

    def __init__(self, name: str, cfg: WorkbenchConfig, table: TickTable) -> None:
        self.name = name
        self.cfg = cfg
        self.table = table

    def setup(self, worker: Any) -> None:
        if not structlog.is_configured():  # a bare `dask worker` would print debug events
            from workbench.runner.logs import configure_logging

            configure_logging("WARNING", json=False)
        log.debug("sweep_data_received", name=self.name, ticks=len(self.table))
        gc.freeze()  # the worker's long-lived objects: out of every later collection
        # The task thread keeps the GIL for 50 ms slices, not 5 ms: on a busy machine
        # each hand-over to the worker's event loop thread can wait a whole OS time slice.
        sys.setswitchinterval(SWITCH_INTERVAL_S)

    def teardown(self, worker: Any) -> None:
        self.table = TickTable.empty()


def run_on_worker(name: str, params: dict[str, Any], rows: tuple[int, int] | None) -> dict:
    """The task: `replay_row` on this worker's copy of sweep ``name``'s data."""
    from distributed import get_worker

    data = get_worker().plugins.get(name)
    if data is None:  # the sweep stopped (Ctrl-C) and took its data back as this one began
        return {**params, "error": f"sweep {name} stopped: its data is gone from this worker"}
    if not isinstance(data, SweepData):
        raise RuntimeError(f"worker plugin {name!r} is a {type(data).__name__}, not sweep data")
    return replay_row(data.cfg, data.table, params, rows)


class TaskRunner:
    """Runs jobs of one config and one tick table on a Dask client; `close` frees the data."""

    def __init__(self, client: Any, cfg: WorkbenchConfig, table: TickTable) -> None:
        self.client = client
        self.name = f"workbench-sweep-{uuid.uuid4().hex[:12]}"
        client.register_plugin(SweepData(self.name, cfg, table), name=self.name)
        self.workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))

    def close(self) -> None:
        """Remove the data from every worker."""
        with contextlib.suppress(Exception):  # the cluster may already be gone
            self.client.unregister_worker_plugin(self.name)

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, job: Job) -> Any:
        params, rows = job
        return self.client.submit(run_on_worker, self.name, params, rows, pure=False)

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
        pending = {f.key: f for f in futures}  # read ones leave it: only these are cancelled
        rows: list[dict[str, Any] | None] = [None] * len(futures)
        with (
            tqdm(total=len(futures), desc=desc, unit="run", disable=not progress) as bar,
            cancelled_unless_done(self.client, pending),
        ):
            del futures
            for fut in as_completed(list(pending.values())):
                i = index[fut.key]
                row = task_row(fut, jobs[i][0], len(index) - len(pending), len(index))
                del pending[fut.key]
                rows[i] = row
                if row.get("error"):
                    log.warning("sweep_run_failed", params=jobs[i][0], error=row["error"])
                if on_row is not None:
                    on_row(i, row)
                bar.update(1)
        return [r for r in rows if r is not None]
