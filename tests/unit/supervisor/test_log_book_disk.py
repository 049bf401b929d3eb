"""`LogBook` on a disk that fails: lines stay in memory, wait in a backlog, never raise at close.

``/dev/full`` answers every write with ENOSPC, without privileges: a runner's
log file made a symlink to it is a full disk for that file only. Where the
tests run as root and may mount, a tiny tmpfs is a full disk for real.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from workbench.supervisor import logs as logs_module
from workbench.supervisor.logs import LogBook

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")


def line(i: int, pad: int = 40) -> str:
    return json.dumps({"event": "x", "i": i, "pad": "y" * pad}) + "\n"


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def retry_now(monkeypatch):
    """Every add tries the file again (no wait of RETRY_S between tries)."""
    monkeypatch.setattr(logs_module, "RETRY_S", 0.0, raising=False)


@needs_dev_full
def test_a_full_disk_keeps_lines_in_memory_logs_once_and_writes_them_when_it_frees(
    tmp_path, retry_now
):
    book = LogBook(tmp_path, keep=100)
    book.path("gateway").symlink_to(DEV_FULL)
    with capture_logs() as logged:
        for i in range(5):
            with pytest.raises(OSError) as raised:
                book.add("gateway", line(i))
            assert raised.value.errno == errno.ENOSPC
        assert [e["i"] for e in book.recent("gateway")] == [0, 1, 2, 3, 4]
        assert book.backlog("gateway") == (5, 0)
        assert [e["event"] for e in logged] == ["log_write_failed"]  # once for the burst

        book.path("gateway").unlink()  # the disk frees
        book.add("gateway", line(5))
        assert book.backlog("gateway") == (0, 0)
        assert [e["event"] for e in logged] == ["log_write_failed", "log_write_recovered"]
    book.close()
    assert [r["i"] for r in rows(book.path("gateway"))] == [0, 1, 2, 3, 4, 5]


@needs_dev_full
def test_the_backlog_is_bounded_and_the_gap_is_marked_in_the_file(tmp_path, retry_now, monkeypatch):
    monkeypatch.setattr(logs_module, "BACKLOG_BYTES", 1000, raising=False)
    book = LogBook(tmp_path)
    book.path("executor").symlink_to(DEV_FULL)
    for i in range(100):
        with pytest.raises(OSError):
            book.add("executor", line(i))
    waiting, dropped = book.backlog("executor")
    assert waiting + dropped == 100 and 0 < waiting < 20
    book.path("executor").unlink()
    book.add("executor", line(100))  # it too goes through the backlog: one more dropped
    assert book.backlog("executor") == (0, dropped + 1)
    dropped += 1
    book.close()
    marker, *kept = rows(book.path("executor"))
    assert marker["event"] == "log_lines_dropped" and marker["lines"] == dropped
    assert [r["i"] for r in kept] == list(range(dropped, 101))  # the newest kept, in order


@needs_dev_full
def test_retries_wait_retry_s_and_close_never_raises(tmp_path):
    book = LogBook(tmp_path)
    book.path("sr-1").symlink_to(DEV_FULL)
    for i in range(3):
        with pytest.raises(OSError):
            book.add("sr-1", line(i))
    book.path("sr-1").unlink()
    with pytest.raises(OSError):  # the disk is not tried again before RETRY_S
        book.add("sr-1", line(3))
    book.path("sr-1").symlink_to(DEV_FULL)
    with capture_logs() as logged:
        book.close()  # still full: it says what it lost, and does not raise
    assert logged[-1]["event"] == "log_lines_lost" and logged[-1]["lines"] == 4
    assert book.recent("sr-1")[-1]["i"] == 3


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str):
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_really_full_tmpfs_leaves_no_torn_line_and_recovers(tmp_path, retry_now):
    with tiny_tmpfs(tmp_path / "disk", "64k") as disk:
        book = LogBook(disk, keep=10)
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as f:
            f.write(b"\0" * 40_000)
        failed = 0
        for i in range(400):  # ~100 bytes each: more than the room left
            try:
                book.add("executor", line(i, pad=60))
            except OSError as e:
                assert e.errno == errno.ENOSPC
                failed += 1
        assert failed > 0
        assert all("i" in r for r in rows(book.path("executor")))  # every line whole
        filler.unlink()
        book.add("executor", line(400, pad=60))
        book.close()
        written = [r["i"] for r in rows(book.path("executor"))]
        assert written == list(range(401))  # nothing dropped: the backlog held them


@needs_dev_full
def test_a_quiet_runners_backlog_is_written_once_the_disk_frees(tmp_path, retry_now):
    book = LogBook(tmp_path, keep=100)
    book.path("executor").symlink_to(DEV_FULL)
    for i in range(3):
        with pytest.raises(OSError):
            book.add("executor", line(i))
    assert book.retry_due()  # still full: kept, never raised
    assert book.backlog("executor") == (3, 0)
    book.path("executor").unlink()  # the disk frees; the executor prints nothing more
    deadline = time.monotonic() + 5
    while book.backlog("executor")[0] and time.monotonic() < deadline:
        time.sleep(0.05)  # the book's retry thread, not the supervisor's loop, writes it
    assert book.backlog("executor") == (0, 0)
    assert [r["i"] for r in rows(book.path("executor"))] == [0, 1, 2]
    assert not book.retry_due()
    book.close()


def test_a_runners_config_error_names_the_users_file_beside_the_run_copy(tmp_path):
    """Runners read the run folder's copy: 'runs/demo/config.toml: gateway...' named a
    file the user never edits."""
    import json

    from workbench.supervisor.logs import LogBook

    copy, mine = str(tmp_path / "runs/demo/config.toml"), str(tmp_path / "demo.toml")
    book = LogBook(tmp_path / "logs", copy_of=(copy, mine))
    error = f"{copy}: gateway.replay.path: bad.csv, row 2: cannot parse 'abc'"
    book.add("gateway", json.dumps({"event": "configuration_error", "error": error}))
    assert book.last_error("gateway") == (
        f"{mine} (as run: {copy}): gateway.replay.path: bad.csv, row 2: cannot parse 'abc'"
    )
    plain = LogBook(tmp_path / "logs2")  # no user's file (a config built in code)
    plain.add("gateway", json.dumps({"event": "configuration_error", "error": error}))
    assert plain.last_error("gateway") == error
    book.close()
    plain.close()


def test_forgetting_a_runner_never_waits_for_a_write_to_a_hung_disk(tmp_path):
    """`forget` runs on the supervisor's loop; it took the lock a hung write held."""
    import json
    import threading
    import time

    from workbench.supervisor.logs import LogBook

    book = LogBook(tmp_path / "logs")
    book.add("sr-x", json.dumps({"event": "hello"}))
    held, release = threading.Event(), threading.Event()

    def hung_write() -> None:  # a reader thread's write, hung on the disk
        with book._lock:
            held.set()
            release.wait(2)

    writer = threading.Thread(target=hung_write)
    writer.start()
    held.wait(5)
    t0 = time.monotonic()
    book.forget("sr-x")
    took = time.monotonic() - t0
    release.set()
    writer.join()
    assert took < 0.5
    deadline = time.monotonic() + 5
    while book.recent("sr-x") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert book.recent("sr-x") == [] and "sr-x" not in book._files
    book.close()
