"""Opening a journal: one executor process per journal, and errors that name the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT, wait_until

from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.execution.journal import Journal

HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.execution.journal import Journal
    j = Journal(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    j.close()
    """
)


def holding(path) -> subprocess.Popen:
    """Another process with ``path`` open as its journal (it closes it on a line of stdin)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert holder.stdout is not None
    if holder.stdout.readline() != "open\n":
        holder.kill()
        raise AssertionError(f"the holder did not open {path}")
    return holder


def test_a_journal_another_process_holds_is_refused_naming_it_until_that_one_exits(tmp_path):
    # Nothing stopped two executors writing one journal, each trusting positions the other moved.
    path = tmp_path / "journal.sqlite"
    holder = holding(path)
    try:
        with pytest.raises(TemporaryError, match=rf"journal {path} is in use .*pid {holder.pid}"):
            Journal(path)
    finally:
        holder.communicate("\n", timeout=30)
    j = Journal(path)  # free again once it is gone
    j.close()


def test_a_holder_killed_leaves_the_journal_free(tmp_path):
    path = tmp_path / "journal.sqlite"
    holder = holding(path)
    holder.kill()
    holder.wait(30)
    wait_until(lambda: _opens(path), 5, "the journal free after its holder's SIGKILL")


def _opens(path) -> bool:
    try:
        Journal(path).close()
    except TemporaryError:
        return False
    return True


def test_a_file_that_is_not_a_journal_is_a_config_error_naming_it(tmp_path):
    # It crashed the executor with DatabaseError('file is not a database'), exit 1, restarted.
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not SQLite at all, " * 100)
    with pytest.raises(ConfigurationError, match=rf"journal {path}: file is not a database"):
        Journal(path)
    Journal(tmp_path / "other.sqlite").close()  # nothing of the failed one is left held


def test_a_journal_folder_that_cannot_be_made_is_a_config_error_naming_it(tmp_path):
    (tmp_path / "taken").write_text("a file")
    path = tmp_path / "taken" / "journal.sqlite"
    with pytest.raises(ConfigurationError, match=rf"journal {path}: cannot open it"):
        Journal(path)


TRY_OPEN = textwrap.dedent(
    """
    import sys
    from workbench.exceptions import TemporaryError
    from workbench.execution.journal import Journal
    try:
        Journal(sys.argv[1]).close()
    except TemporaryError:
        print("refused")
    else:
        print("opened")
    """
)


def test_closing_a_second_journal_of_the_same_file_keeps_the_process_lock(tmp_path):
    # lockf locks are the process's: closing either descriptor dropped the lock while the
    # first journal (the executor's) was still open, and another process opened it.
    path = tmp_path / "journal.sqlite"
    first, second = Journal(path), Journal(path)
    second.close()

    def other() -> str:
        out = subprocess.run(
            [sys.executable, "-c", TRY_OPEN, str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout.strip()

    assert other() == "refused"
    first.close()
    assert other() == "opened"


def test_a_read_only_journal_is_named_a_permissions_problem_not_damaged(tmp_path):
    # "attempt to write a readonly database" (a journal restored as root) was called damaged:
    # the operator was told to move aside a good journal holding open orders and positions.
    import sqlite3

    from workbench.execution.journal_schema import _open_error

    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as e:
        ro.execute("CREATE TABLE t (a)")
    ro.close()
    error = _open_error(str(path), e.value)
    assert isinstance(error, ConfigurationError)
    assert "check its and its folder's owner and mode" in str(error)
    assert "damaged" not in str(error)
