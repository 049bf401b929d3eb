"""A recorder that dies while it writes a part loses that part only.

Each flush wrote straight to its final ``part-*.parquet`` name, so a crash
mid-write left a torn file there and neither reader could load the dataset
at all. Now a part is written under a dot name (both readers skip it),
synced, and renamed into place.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from workbench.domain.model import TickBatch
from workbench.marketdata import load_ticks
from workbench.marketdata import recorder as recorder_mod
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.recorder import TickRecorder, _date

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


class Killed(BaseException):
    """The process dies here (nothing after it runs)."""


@pytest.mark.parametrize("keep", [0, 4, 100])  # bytes on disk when it died; 4: 'PAR1' only
def test_a_crash_while_a_part_is_written_keeps_every_closed_part(tmp_path, monkeypatch, keep):
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    rec.write(TickBatch("BTC/USDT", 1, [T0, T0 + 1], [100.0, 101.0], [1.0, 1.0]))
    rec.write(TickBatch("ETH/USDT", 3, [T0 + 2], [50.0], [2.0]))
    rec.flush()
    write_dataset = recorder_mod.ds.write_dataset

    def dies_while_writing(*args, **kwargs):
        before = set(root.rglob("*"))
        write_dataset(*args, **kwargs)
        for file in set(root.rglob("*")) - before:  # what it was writing, torn
            if file.is_file():
                file.write_bytes(file.read_bytes()[:keep])
        raise Killed

    monkeypatch.setattr(recorder_mod.ds, "write_dataset", dies_while_writing)
    rec.write(TickBatch("BTC/USDT", 4, [T0 + 3, T0 + 4], [102.0, 103.0], [1.0, 1.0]))
    with pytest.raises(Killed):
        rec.flush()
    monkeypatch.undo()
    for table in (load_ticks(root), load_dataset(root, lite=True)):
        assert table.price.tolist() == [100.0, 101.0, 50.0]
    # A later recording into the same folder adds to it; the torn leftover stays out.
    atexit.unregister(rec.close)  # the process died: what it held is gone
    rec = TickRecorder(root)
    rec.write(TickBatch("BTC/USDT", 6, [T0 + 5], [104.0], [1.0]))
    rec.close()
    for table in (load_ticks(root), load_dataset(root, lite=True)):
        assert table.price.tolist() == [100.0, 101.0, 50.0, 104.0]


def test_a_flush_leaves_only_complete_part_files(tmp_path):
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    rec.write(TickBatch("BTC/USDT", 1, [T0, T0 + 86_400 * 10**9], [100.0, 101.0], [1.0, 1.0]))
    rec.close()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert len(files) == 2
    assert all(f.split("/")[-1].startswith("part-") for f in files)
    assert all((root / f).read_bytes()[-4:] == b"PAR1" for f in files)


@pytest.mark.parametrize(
    ("ts_ns", "day"),
    [
        (T0 - 1, "2025-12-31"),  # 23:59:59.999999999: a float second rounds it to the next day
        (T0 - 100, "2025-12-31"),
        (T0, "2026-01-01"),
        (0, "1970-01-01"),
        (2**63 - 1, "2262-04-11"),
    ],
)
def test_a_tick_is_filed_under_its_own_utc_date(ts_ns, day):
    assert _date(ts_ns) == day


def test_the_last_nanosecond_of_a_day_is_recorded_under_that_day(tmp_path):
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    rec.write(TickBatch("ABC", 1, [T0 - 1], [1.0], [1.0]))
    rec.close()
    [part] = root.rglob("part-*.parquet")
    assert part.parent.name == "date=2025-12-31"


def dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_recorder_finishes_the_parts_a_dead_one_left(tmp_path, monkeypatch):
    """A kill between a part's write and its rename lost its rows, and the dot files stayed
    for ever; a torn one stayed too. The next recorder renames the complete, drops the torn."""
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    monkeypatch.setattr(recorder_mod, "_publish", lambda temp: (_ for _ in ()).throw(Killed()))
    rec.write(TickBatch("BTC/USDT", 1, [T0, T0 + 1], [100.0, 101.0], [1.0, 1.0]))
    with pytest.raises(Killed):
        rec.flush()  # written whole, killed before the rename
    monkeypatch.undo()
    [complete] = root.rglob(".part-*.parquet")
    pid = dead_pid()
    ns, _, i = complete.name.split("-")[1:]
    complete = complete.rename(complete.with_name(f".part-{ns}-{pid}-{i}"))
    torn = complete.with_name(f".part-{int(ns) + 1}-{pid}-0.parquet")
    torn.write_bytes(complete.read_bytes()[:100])
    alive = complete.with_name(f".part-{int(ns) + 2}-{os.getppid()}-0.parquet")
    alive.write_bytes(b"a live writer's, mid-write")
    TickRecorder(root).close()
    assert sorted(p.name for p in complete.parent.iterdir()) == sorted(
        [alive.name, complete.name[1:]]
    )
    for table in (load_ticks(root), load_dataset(root, lite=True)):
        assert table.price.tolist() == [100.0, 101.0]


WRITER = """
import sys, time
from pathlib import Path
from workbench.marketdata.recorder import TickRecorder
import os
root = Path(sys.argv[1])
rec = TickRecorder(root)
part = root / f".part-{time.time_ns()}-{os.getpid()}-0.parquet"
part.write_bytes(b"being written")
print(part, flush=True)
sys.stdin.readline()
"""


def test_a_finished_part_whose_writers_pid_is_in_use_again_is_published(tmp_path):
    # Only the pid told a dead writer: after a reboot pid 1 (or the new recorder itself)
    # has it, and the part stayed hidden for ever.
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    rec.write(TickBatch("BTC/USDT", 1, [T0], [100.0], [1.0]))
    rec.close()
    [done] = root.rglob("part-*.parquet")
    ns = done.name.split("-")[1]
    for n, pid in enumerate((1, os.getpid())):  # init, and this very process
        copy = done.with_name(f".part-{int(ns) + 1 + n}-{pid}-0.parquet")
        copy.write_bytes(done.read_bytes())
        (root / f".recorder-{pid}.lock").touch()  # left by its writer, no longer locked
    TickRecorder(root).close()
    assert not list(root.rglob(".part-*")) and len(load_dataset(root)) == 3


def test_a_live_writers_part_in_another_process_is_left_alone_until_it_dies(tmp_path):
    root = tmp_path / "ticks"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        part = Path(writer.stdout.readline().strip())
        TickRecorder(root).close()
        assert part.exists()  # its writer holds its lock: mid-write, not torn
    finally:
        writer.kill()
        writer.wait(30)
    TickRecorder(root).close()
    assert not part.exists()  # dead now: a torn part, removed
