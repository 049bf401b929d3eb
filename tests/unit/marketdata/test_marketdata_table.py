"""TickTable: columns and batching."""

import math
import random

import pytest

from workbench.marketdata import TickTable


def table_of(symbols: str) -> TickTable:
    """One row per character of ``symbols``; row k has ts k and price k + 0.5."""
    n = len(symbols)
    return TickTable(list(symbols), list(range(n)), [k + 0.5 for k in range(n)], [1.0] * n)


def test_len_is_the_row_count() -> None:
    assert len(table_of("AAB")) == 3
    assert len(TickTable.empty()) == 0


def test_columns_of_different_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        TickTable(["A"], [1, 2], [1.0], [1.0])


def test_batches_are_cut_at_batch_size() -> None:
    batches = list(table_of("A" * 10).batches(4))

    assert [len(b) for b in batches] == [4, 4, 2]
    assert [b.first_seq for b in batches] == [1, 5, 9]
    assert batches[2].ts_ns == [8, 9]


def test_batches_are_cut_where_the_symbol_changes() -> None:
    batches = list(table_of("AAABBA").batches(2))

    assert [(b.symbol, len(b)) for b in batches] == [("A", 2), ("A", 1), ("B", 2), ("A", 1)]
    assert [b.first_seq for b in batches] == [1, 3, 4, 6]


def test_first_seq_offsets_every_seq() -> None:
    batches = list(table_of("AB").batches(10, first_seq=100))

    assert [b.tick(0).seq for b in batches] == [100, 101]


def test_batches_preserve_order_and_contiguous_seqs_on_random_tables() -> None:
    rng = random.Random(7)
    for _ in range(50):
        symbols = "".join(rng.choice("XYZ") * rng.randint(1, 9) for _ in range(rng.randint(0, 12)))
        table = table_of(symbols)
        size = rng.randint(1, 7)
        batches = list(table.batches(size, first_seq=5))

        ticks = [t for b in batches for t in b.ticks()]
        assert [t.seq for t in ticks] == list(range(5, 5 + len(table)))
        assert [t.symbol for t in ticks] == table.symbol
        assert [t.ts_ns for t in ticks] == table.ts_ns
        assert [t.price for t in ticks] == table.price
        assert all(1 <= len(b) <= size for b in batches)
        expected = sum(math.ceil((stop - start) / size) for _, start, stop in table.symbol_runs())
        assert len(batches) == expected


def test_batches_copy_the_columns() -> None:
    table = table_of("AA")
    batch = next(table.batches(10))
    batch.price[0] = -1.0

    assert table.price[0] == 0.5


def test_empty_table_has_no_batches() -> None:
    assert list(TickTable.empty().batches(10)) == []


def test_batch_size_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        list(table_of("A").batches(0))


def test_symbol_runs() -> None:
    assert table_of("AABA").symbol_runs() == [("A", 0, 2), ("B", 2, 3), ("A", 3, 4)]


def test_notes_do_not_affect_equality() -> None:
    a, b = table_of("AB"), table_of("AB")
    b.notes = ["something was repaired"]

    assert a == b
