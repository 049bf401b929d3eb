"""Record the ticks a live gateway publishes to a Parquet dataset.

The dataset is partitioned by symbol and UTC date (hive style,
``symbol=BTC%2FUSDT/date=2026-01-31/part-<ns>-<pid>-0.parquet``, via
``pyarrow.dataset``). Rows are buffered and written as new files every
``roll_every_s`` seconds or ``max_rows_per_file`` rows, so a crash loses at
most the part still open: each file is written under a dot name, which both
dataset readers skip, synced, and only then renamed to its ``part-*.parquet``
name, so a crash while writing leaves no torn part in the dataset. A recorder
that starts finishes what a dead one left (its pid is in the dot name): a
complete file is renamed into place (the crash came between the two), a torn
one removed. Columns:
``ts_ns`` (the exchange's time), ``price``, ``size``, ``recv_ns`` (local
receive time), ``seq`` (the gateway's tick seq); the symbol and date are only
in the path. Files are ZSTD-compressed, which the
replay gateway's numpy-only reader (`parquet_lite`) reads without pyarrow.
`workbench.marketdata.dataset.load_dataset` (and `load_ticks` on the folder)
reads it back as one time-ordered table.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import structlog

from workbench.config import WorkbenchConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import ConfigurationError
from workbench.runner.parent_link import process_alive, try_lock
from workbench.telemetry import Telemetry

log = structlog.get_logger(__name__)
COUNTERS = ("ticks_recorded", "record_write_failures", "ticks_record_dropped")
"""In the gateway's heartbeats (and /metrics) while it records."""
RETRY_FIRST_S = 1.0
"""After a failed write, the first pause before the next try (then twice as long each time)."""
BUFFER_LIMIT_FILES = 10
"""Rows kept while writes fail: this many files' worth (``max_rows`` each), then the oldest go."""
_DAY_NS = 86_400 * 10**9
_EPOCH = date(1970, 1, 1)
PARTITIONING = pa.schema([("symbol", pa.string()), ("date", pa.string())])
SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("recv_ns", pa.int64()),
        ("seq", pa.int64()),
        ("symbol", pa.string()),
        ("date", pa.string()),
    ]
)


class TickRecorder:
    """Buffers ticks and writes them out as closed Parquet files now and then."""

    def __init__(
        self,
        root: str | Path,
        roll_every_s: float = 120.0,
        max_rows: int = 100_000,
        telemetry: Telemetry | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.roll_every_s = roll_every_s
        self.max_rows = max_rows
        self.rows_written = 0
        self.files_written = 0
        self.write_failures = 0
        self.rows_dropped = 0
        self._telemetry = telemetry or Telemetry()
        self._telemetry.declare(*COUNTERS)
        self._cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
        self._opened = time.monotonic()
        self._retry_at = 0.0  # after a failed write: not again before (monotonic)
        self._retry_s = RETRY_FIRST_S
        _finish_parts_of_dead_writers(self.root)
        self._lock_fd: int | None = _hold_writer_lock(self.root)
        atexit.register(self.close)

    def write(self, batch: TickBatch, recv_ns: list[int] | None = None) -> None:
        """Buffer one batch (``recv_ns`` per tick; now when not given)."""
        n = len(batch)
        c = self._cols
        c["ts_ns"] += batch.ts_ns
        c["price"] += batch.price
        c["size"] += batch.size
        c["recv_ns"] += recv_ns if recv_ns is not None else [time.time_ns()] * n
        c["seq"] += range(batch.first_seq, batch.first_seq + n)
        c["symbol"] += [batch.symbol] * n
        c["date"] += [_date(ts) for ts in batch.ts_ns]
        if len(c["ts_ns"]) >= self.max_rows and time.monotonic() >= self._retry_at:
            self.flush()

    def maybe_flush(self) -> None:
        """Close the open part when it is ``roll_every_s`` old, or try a failed write again."""
        now = time.monotonic()
        due = now - self._opened >= self.roll_every_s or self._retry_at > 0
        if due and now >= self._retry_at:
            self.flush()

    def flush(self) -> bool:
        """Write the buffered rows as new files, one per symbol and date; False if that failed.

        A failed write (a full disk, a lost mount) keeps the rows and is tried
        again after a growing pause, up to ``roll_every_s``: what the gateway
        publishes is never held up by its recording. Rows beyond
        `BUFFER_LIMIT_FILES` files' worth are dropped oldest first, counted
        (``ticks_record_dropped``) and logged.
        """
        self._opened = time.monotonic()
        if not self._cols["ts_ns"]:
            return True
        table = pa.table(self._cols, schema=SCHEMA)
        written: list[str] = []
        name = f".part-{time.time_ns()}-{os.getpid()}"
        try:
            ds.write_dataset(
                table,
                self.root,
                format="parquet",
                partitioning=ds.partitioning(PARTITIONING, flavor="hive"),
                # readers skip dot names; the pid tells a later recorder whether its writer died
                basename_template=name + "-{i}.parquet",
                existing_data_behavior="overwrite_or_ignore",
                file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
                file_visitor=lambda file: written.append(file.path),
            )
        except (OSError, pa.ArrowException) as e:
            self._failed(e, name)
            return False
        self._cols = {name: [] for name in SCHEMA.names}
        self._retry_at, self._retry_s = 0.0, RETRY_FIRST_S
        for path in written:
            try:
                _publish(Path(path))
            except OSError as e:  # complete and synced or not: the next recorder decides
                log.error("recorder_part_unpublished", path=path, error=str(e))
        self.rows_written += len(table)
        self.files_written += 1
        self._telemetry.inc("ticks_recorded", len(table))
        log.info("ticks_recorded", path=str(self.root), rows=len(table))
        return True

    def _failed(self, e: Exception, name: str) -> None:
        """Keep the rows for the next try; the parts this try began go (they would be twice)."""
        for part in self.root.rglob(f"{name}-*.parquet"):
            with contextlib.suppress(OSError):
                part.unlink()
        self.write_failures += 1
        self._telemetry.inc("record_write_failures")
        self._retry_at = time.monotonic() + self._retry_s
        self._retry_s = min(2 * self._retry_s, max(self.roll_every_s, RETRY_FIRST_S))
        excess = len(self._cols["ts_ns"]) - BUFFER_LIMIT_FILES * self.max_rows
        if excess > 0:
            for col in self._cols.values():
                del col[:excess]
            self.rows_dropped += excess
            self._telemetry.inc("ticks_record_dropped", excess)
        log.error("recorder_write_failed", path=str(self.root), error=str(e),
                  buffered=len(self._cols["ts_ns"]), dropped=max(0, excess),
                  retry_in_s=round(self._retry_at - time.monotonic(), 1))  # fmt: skip

    def close(self) -> None:
        """Write what is buffered (once more, whatever the retry pause); safe to call twice."""
        if not self.flush() and (lost := len(self._cols["ts_ns"])):
            log.error("recorder_rows_lost", path=str(self.root), rows=lost)
            self.rows_dropped += lost
            self._telemetry.inc("ticks_record_dropped", lost)
            self._cols = {name: [] for name in SCHEMA.names}
        if self._lock_fd is not None:  # this writer is done: its parts are anyone's now
            _OPEN_ROOTS.discard(self.root.resolve())
            with contextlib.suppress(OSError):
                _writer_lock(self.root, os.getpid()).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        atexit.unregister(self.close)


_OPEN_ROOTS: set[Path] = set()
"""Dataset folders a recorder of this process writes into now."""


def _writer_lock(root: Path, pid: int) -> Path:
    return root / f".recorder-{pid}.lock"  # a dot name: the readers skip it


def _hold_writer_lock(root: Path) -> int:
    """Lock this process's writer file in ``root`` for as long as it records (``lockf``).

    It goes with the process, even by SIGKILL: a later recorder tells a dead
    writer's parts by it, not by its pid alone (a pid in use again after a
    reboot, by anything, hid a finished part for ever).
    """
    fd = try_lock(_writer_lock(root, os.getpid()))
    if fd is None:  # our pid's: only this process can hold it
        raise RuntimeError(f"{_writer_lock(root, os.getpid())}: held by another process")
    _OPEN_ROOTS.add(root.resolve())
    return fd


def _writer_alive(root: Path, pid: int) -> bool:
    """Is the recorder of ``pid`` that wrote into ``root`` still at it?"""
    if pid == os.getpid():
        return root.resolve() in _OPEN_ROOTS  # else: an earlier process of this pid
    lock = _writer_lock(root, pid)
    try:
        fd = try_lock(lock, create=False)
    except FileNotFoundError:  # an older recorder (no lock files), or one that closed
        return process_alive(pid)
    if fd is None:
        return True  # held: its writer lives
    os.close(fd)
    with contextlib.suppress(OSError):
        lock.unlink()  # a dead writer's
    return False


def _finish_parts_of_dead_writers(root: Path) -> None:
    """Rename into place each complete dot part a dead recorder left; remove torn ones."""
    import pyarrow.parquet as pq

    for temp in sorted(root.rglob(".part-*.parquet")):
        fields = temp.name.split("-")  # .part, ns, pid, i.parquet (older: no pid)
        pid = int(fields[2]) if len(fields) == 4 and fields[2].isdigit() else 0
        if pid and _writer_alive(root, pid):
            continue  # its writer may still be at it
        try:
            rows = pq.read_metadata(temp).num_rows
        except Exception:  # torn: the crash came while it was written
            rows = -1
        try:
            if rows > 0:
                _publish(temp)
                log.warning("recorder_part_recovered", path=str(temp), rows=rows)
            else:
                temp.unlink()
                log.warning("recorder_part_removed", path=str(temp), reason="torn or empty")
        except OSError as e:  # read-only: the readers skip it all the same
            log.warning("recorder_part_left", path=str(temp), error=str(e))


def _publish(temp: Path) -> None:
    """Sync the written file ``temp`` (``.part-...``) and rename it to its part name."""
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, temp.with_name(temp.name[1:]))
    fd = os.open(temp.parent, os.O_RDONLY)  # the rename itself, on disk
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _date(ts_ns: int) -> str:
    """The UTC date of ``ts_ns``, in integers (float seconds round 23:59:59.9999999 up)."""
    return _day(ts_ns // _DAY_NS)


@lru_cache(maxsize=64)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat()


def make_recorder(
    cfg: WorkbenchConfig, root: Path | None = None, telemetry: Telemetry | None = None
) -> TickRecorder:
    """The recorder ``cfg.recorder`` describes, into ``root`` (default: its path or the run's).

    Raises:
        ConfigurationError: the folder cannot be created, naming ``recorder.path``.
    """
    rc = cfg.recorder
    root = root or cfg.recorder_path()
    try:
        return TickRecorder(root, rc.roll_every_s, rc.max_rows_per_file, telemetry)
    except OSError as e:
        raise ConfigurationError(
            f"{cfg.source}: recorder.path: cannot create {root}: {e.strerror or e}"
        ) from e


class RecordingFeed:
    """A `Feed` that hands out another feed's batches and records each one."""

    def __init__(self, feed: Any, recorder: TickRecorder) -> None:
        self.feed = feed
        self.recorder = recorder

    def poll(self, max_ticks: int) -> list[TickBatch]:
        batches = self.feed.poll(max_ticks)
        recv = getattr(self.feed, "last_recv_ns", None)
        for i, b in enumerate(batches):
            self.recorder.write(b, recv[i] if recv is not None and i < len(recv) else None)
        self.recorder.maybe_flush()
        return batches

    def seconds_to_next(self) -> float:
        return self.feed.seconds_to_next()

    @property
    def exhausted(self) -> bool:
        return self.feed.exhausted

    @property
    def total(self) -> int:
        return self.feed.total

    def health(self) -> dict[str, Any]:
        inner = getattr(self.feed, "health", None)
        out = dict(inner()) if inner is not None else {}
        out["recorded_rows"] = self.recorder.rows_written
        return out

    def close(self) -> None:
        self.recorder.close()
        inner = getattr(self.feed, "close", None)
        if inner is not None:
            inner()
