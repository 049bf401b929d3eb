"""Strategy state: round trips, survives torn writes, refuses silent corruption."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from workbench.exceptions import ConfigurationError
from workbench.messaging.codec import pack
from workbench.runner.state import FileStateStore


def test_missing_state_is_none(tmp_path):
    assert FileStateStore(tmp_path).load("s") is None


def test_latest_save_wins_across_reopen(tmp_path):
    store = FileStateStore(tmp_path)
    for i in range(5):
        store.save("s", {"seq": i})
    store.close()
    assert FileStateStore(tmp_path).load("s") == {"seq": 4}


def test_saves_continue_after_reopen_without_going_back(tmp_path):
    store = FileStateStore(tmp_path)
    store.save("s", {"seq": 1})
    store.save("s", {"seq": 2})
    store.close()
    again = FileStateStore(tmp_path)
    again.save("s", {"seq": 3})
    again.close()
    assert FileStateStore(tmp_path).load("s") == {"seq": 3}


def test_a_torn_newest_save_falls_back_to_the_one_before(tmp_path):
    store = FileStateStore(tmp_path)
    store.save("s", {"seq": 1})
    store.save("s", {"seq": 2, "pad": "x" * 100})
    store.close()
    newest = tmp_path / "s.state.0"  # generation 2 went to slot 0
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    assert FileStateStore(tmp_path).load("s") == {"seq": 1}


def test_a_damaged_generation_never_makes_the_older_snapshot_pass_for_the_newest(tmp_path):
    store = FileStateStore(tmp_path)
    store.save("s", {"seq": 1})  # slot 1
    store.save("s", {"seq": 2})  # slot 0: the newest
    store.close()
    older = tmp_path / "s.state.1"
    data = bytearray(older.read_bytes())
    data[4 + 7] ^= 0x10  # generation 1 reads as 17: above the newest's 2
    older.write_bytes(bytes(data))
    assert FileStateStore(tmp_path).load("s") == {"seq": 2}  # seqs 2 were never reused


def test_slots_of_the_first_format_still_load(tmp_path):
    payload = pack({"seq": 7})  # WBS1: the checksum covers the payload alone
    record = struct.pack(">4sQII", b"WBS1", 3, len(payload), zlib.crc32(payload)) + payload
    (tmp_path / "s.state.1").write_bytes(record)
    store = FileStateStore(tmp_path)
    assert store.load("s") == {"seq": 7}
    store.save("s", {"seq": 8})  # generation 4, in the current format
    store.close()
    assert FileStateStore(tmp_path).load("s") == {"seq": 8}
    # Both slots: the build before, which reads only WBS1, would otherwise load the
    # older slot as the newest (a review helper's case) and re-use sent seqs.
    assert {p.read_bytes()[:4] for p in tmp_path.glob("s.state.*")} == {b"WBS2"}


def test_a_shorter_save_over_a_longer_one_reads_back_exactly(tmp_path):
    store = FileStateStore(tmp_path)
    store.save("s", {"big": "x" * 500})
    store.save("s", {"n": 0})
    store.save("s", {"small": 1})  # overwrites the big record's slot in place
    store.close()
    assert FileStateStore(tmp_path).load("s") == {"small": 1}


def test_both_slots_corrupt_is_an_error_not_a_fresh_start(tmp_path):
    store = FileStateStore(tmp_path)
    store.save("s", {"seq": 1})
    store.save("s", {"seq": 2})
    store.close()
    for p in tmp_path.glob("s.state.*"):
        p.write_bytes(b"garbage" * 5)
    with pytest.raises(ConfigurationError, match="no intact state"):
        FileStateStore(tmp_path).load("s")


def test_a_synced_store_has_each_save_on_disk_before_it_returns(tmp_path, monkeypatch):
    """With ``sync`` (a real venue's orders), each save's slot file is fdatasync'ed."""
    synced: list[str] = []
    fdatasync, fsync = os.fdatasync, os.fsync

    def record(real):
        def call(fd: int) -> None:
            synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
            real(fd)

        return call

    monkeypatch.setattr(os, "fdatasync", record(fdatasync))
    monkeypatch.setattr(os, "fsync", record(fsync))  # the folder: the new files' names
    plain = FileStateStore(tmp_path / "plain")
    plain.save("s", {"seq": 1})
    assert synced == []
    store = FileStateStore(tmp_path / "synced", sync=True)
    store.save("s", {"seq": 1})
    store.save("s", {"seq": 2})
    assert synced == ["synced", tmp_path.name, "s.state.1", "s.state.0"]  # folder, parent
    store.close()
    assert FileStateStore(tmp_path / "synced").load("s") == {"seq": 2}


@pytest.mark.parametrize("cut", [3, 20, 4096])
def test_a_first_save_cut_short_is_no_state_not_an_error(tmp_path, cut):
    """Killed in its first save (slot 0 still empty): no save finished, so a fresh start."""
    FileStateStore(tmp_path).save("s", {"seq": 1, "pad": "x" * 10_000})  # generation 1: slot 1
    first = tmp_path / "s.state.1"
    first.write_bytes(first.read_bytes()[:cut])
    store = FileStateStore(tmp_path)
    assert store.load("s") is None
    store.save("s", {"seq": 7})
    store.close()
    assert FileStateStore(tmp_path).load("s") == {"seq": 7}


def test_a_damaged_later_save_with_an_empty_slot_is_still_an_error(tmp_path):
    """Only generation 1 can be cut short beside an empty slot; anything else is damage."""
    store = FileStateStore(tmp_path)
    for i in range(3):  # generation 3 in slot 1
        store.save("s", {"seq": i, "pad": "x" * 10_000})
    store.close()
    (tmp_path / "s.state.0").write_bytes(b"")
    newest = tmp_path / "s.state.1"
    newest.write_bytes(newest.read_bytes()[:4096])
    with pytest.raises(ConfigurationError, match="no intact state"):
        FileStateStore(tmp_path).load("s")
