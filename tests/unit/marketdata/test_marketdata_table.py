"""TickTable: columns and batching."""

import math
import pickle
import random
from itertools import groupby

import numpy as np
import pytest

from workbench.marketdata import TickTable
from workbench.marketdata.table import SymbolColumn


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
        assert [t.ts_ns for t in ticks] == table.ts_ns.tolist()
        assert [t.price for t in ticks] == table.price.tolist()
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


def test_columns_are_numpy_arrays_and_symbols_are_codes() -> None:
    table = table_of("AABA")

    assert table.ts_ns.dtype == np.int64
    assert table.price.dtype == np.float64 and table.size.dtype == np.float64
    assert table.symbol.names == ["A", "B"]
    assert table.symbol.codes.tolist() == [0, 0, 1, 0]


def test_batches_hold_plain_python_values_for_the_wire() -> None:
    batch = next(table_of("AB").batches(10))

    assert type(batch.ts_ns[0]) is int and type(batch.price[0]) is float
    assert type(batch.size[0]) is float and type(batch.symbol) is str


def test_symbol_column_behaves_like_a_list_of_str() -> None:
    rng = random.Random(3)
    for _ in range(30):
        values = [rng.choice("XYZ") for _ in range(rng.randint(0, 40))]
        col = SymbolColumn.of(values)

        assert len(col) == len(values) and list(col) == values and col == values
        assert [col[i] for i in range(len(values))] == values
        assert col[2:7] == values[2:7]
        assert all(col.count(s) == values.count(s) for s in "XYZW")
        assert np.asarray(col).tolist() == values
        k = rng.randint(0, len(values))
        parts = [SymbolColumn.of(values[:k]), SymbolColumn.of(values[k:]), SymbolColumn.of([])]
        assert SymbolColumn.concat(parts) == values
        expected, start = [], 0
        for sym, group in groupby(values):
            stop = start + len(list(group))
            expected.append((sym, start, stop))
            start = stop
        assert col.runs() == expected


def test_tables_differ_when_any_column_differs() -> None:
    base = table_of("AB")

    assert base != TickTable(["A", "A"], [0, 1], [0.5, 1.5], [1.0, 1.0])
    assert base != TickTable(["A", "B"], [0, 2], [0.5, 1.5], [1.0, 1.0])
    assert base != TickTable(["A", "B"], [0, 1], [0.5, 1.25], [1.0, 1.0])
    assert base != TickTable(["A", "B"], [0, 1], [0.5, 1.5], [1.0, 2.0])


def test_rows_take_and_pickle_keep_the_rows() -> None:
    table = table_of("AABBA")

    assert table.rows(1, 4) == TickTable(["A", "B", "B"], [1, 2, 3], [1.5, 2.5, 3.5], [1.0] * 3)
    taken = table.take(np.array([4, 0]))
    assert (taken.symbol.tolist(), taken.ts_ns.tolist()) == (["A", "A"], [4, 0])
    assert pickle.loads(pickle.dumps(table)) == table
