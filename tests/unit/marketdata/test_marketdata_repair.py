"""load_ticks(repair=True): fixes what it can and notes every change."""

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from workbench.exceptions import DataError
from workbench.marketdata import load_ticks


def write(tmp_path: Path, text: str, name: str = "abc-ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_clean_file_has_no_notes(tmp_path: Path) -> None:
    table = load_ticks(write(tmp_path, "ts_ns,price\n1,1.0\n1,1.0\n"), repair=True)

    assert len(table) == 2
    assert table.notes == []


def test_unsorted_rows_are_stable_sorted_and_noted(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n5,1.0\n3,2.0\n5,3.0\n3,4.0\n9,5.0\n")

    table = load_ticks(path, repair=True)

    assert table.ts_ns.tolist() == [3, 3, 5, 5, 9]
    assert table.price.tolist() == [2.0, 4.0, 1.0, 3.0, 5.0]  # ties keep file order
    [note] = table.notes
    assert "went backwards at 2 place(s), first at row 2" in note
    assert "4 row(s) moved" in note


def test_bad_rows_are_removed_and_each_named(tmp_path: Path) -> None:
    text = (
        "timestamp,bid,ask\n"
        "2020-01-01T00:00:00Z,1.1,1.2\n"
        "2020-01-01T00:00:01Z,nan,1.2\n"
        "not a time,1.1,1.2\n"
        "2020-01-01T00:00:03Z,1.3,1.2\n"
        "2020-01-01T00:00:04Z,1.1,1.2\n"
        "2020-01-01T00:00:05Z,1.1,1.2,extra\n"
        "2020-01-01T00:00:06Z,0,1.2\n"
    )

    table = load_ticks(write(tmp_path, text), repair=True)

    assert len(table) == 2
    assert table.ts_ns[1] - table.ts_ns[0] == 4_000_000_000
    assert table.notes == [
        "removed 2 rows (NaN, infinite or non-positive price in column 'bid'): rows 2, 7; "
        "first: row 2: bid must be a finite number > 0, got nan",
        "removed row 3 (unparseable timestamp in column 'timestamp'): "
        "cannot parse 'not a time' as an ISO-8601 timestamp",
        "removed row 4 (crossed quote (bid > ask) in column 'bid'): "
        "crossed quote: bid 1.3 > ask 1.2",
        "removed row 6 (wrong number of fields): "
        "expected 3 fields, found 4: '2020-01-01T00:00:05Z,1.1,1.2,extra'",
    ]


def test_a_row_with_several_problems_is_counted_once(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price,size\n1,1.0,1\nx,-1,-1\n")

    table = load_ticks(path, repair=True)

    assert len(table) == 1
    assert table.notes == [
        "removed row 2 (unparseable timestamp in column 'ts_ns'): "
        "cannot parse 'x' as an integer of nanoseconds"
    ]


def test_many_removals_are_summarised_with_a_count(tmp_path: Path) -> None:
    rows = [f"{k},{1.0 if k % 2 else -1.0}\n" for k in range(1, 61)]
    path = write(tmp_path, "ts_ns,price\n" + "".join(rows))

    table = load_ticks(path, repair=True)

    assert len(table) == 30
    [note] = table.notes
    assert note.startswith("removed 30 rows (NaN, infinite or non-positive price")
    assert "rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 and 20 more" in note


def test_removal_and_sort_notes_use_file_rows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("workbench.marketdata.loaders.CHUNK_ROWS", 3)
    path = write(tmp_path, "ts_ns,price\n1,1.0\n2,bad\n4,1.0\n\n3,1.0\n5,1.0\n")

    table = load_ticks(path, repair=True)

    assert table.ts_ns.tolist() == [1, 3, 4, 5]
    assert table.notes[0].startswith("removed row 2 ")
    assert "first at row 5: 1970-01-01T00:00:00.000000003Z (3) comes after" in table.notes[1]
    assert "on row 3" in table.notes[1]


def test_repairs_are_logged(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n2,1.0\n1,1.0\n")

    with capture_logs() as logs:
        table = load_ticks(path, repair=True)

    repaired = [e for e in logs if e["event"] == "ticks_repaired"]
    assert [e["note"] for e in repaired] == table.notes
    assert repaired[0]["log_level"] == "warning"


def test_all_rows_invalid_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,-1\n2,nan\n")

    with pytest.raises(DataError, match=r"no data rows \(all 2 were removed as invalid\)"):
        load_ticks(path, repair=True)


def test_repair_keeps_duplicates_and_order_of_valid_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ns,price\n1,1.0\n1,1.0\n2,x\n2,1.0\n2,1.0\n")

    table = load_ticks(path, repair=True)

    assert table.ts_ns.tolist() == [1, 1, 2, 2]
    assert len(table.notes) == 1
