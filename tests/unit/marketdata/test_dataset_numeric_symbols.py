"""A recording of symbols that look like numbers (HK/JP stock codes) keeps their names.

pyarrow.dataset inferred the ``symbol=0700`` partition as the integer 700:
the ticks replayed as '700' and '5', and filtering by symbol raised
ArrowNotImplementedError. Both readers take partition values as text now.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from workbench.domain.model import TickBatch
from workbench.marketdata import load_ticks
from workbench.marketdata.dataset import load_dataset
from workbench.marketdata.recorder import TickRecorder

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SYMBOLS = ["0700", "0005", "7203", "-1"]  # all int-like: pyarrow inferred int32


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    root = tmp_path / "ticks"
    rec = TickRecorder(root)
    for k, symbol in enumerate(SYMBOLS):
        rec.write(TickBatch(symbol, 1 + 2 * k, [T0 + k, T0 + 10 + k], [1.0 + k, 2.0], [1.0, 1.0]))
    rec.close()
    return root


@pytest.mark.parametrize("lite", [False, True])
def test_numeric_looking_symbols_keep_their_names(recorded, lite):
    with capture_logs() as logs:
        table = load_dataset(recorded, lite=lite)
    assert list(table.symbol) == SYMBOLS * 2
    assert table.price.tolist() == [1.0 + k for k in range(len(SYMBOLS))] + [2.0] * len(SYMBOLS)
    assert not [e for e in logs if e["event"] == "dataset_read_with_pyarrow"]  # lite stays lite


@pytest.mark.parametrize("symbol", ["0700", "0005", "-1"])
@pytest.mark.parametrize("lite", [False, True])
def test_a_numeric_looking_symbol_filters_its_own_ticks(recorded, symbol, lite):
    table = load_dataset(recorded, symbol=symbol, lite=lite)
    assert list(table.symbol) == [symbol, symbol]
    k = SYMBOLS.index(symbol)
    assert table.ts_ns.tolist() == [T0 + k, T0 + 10 + k]
    assert list(load_ticks(recorded, symbol=symbol).symbol) == [symbol, symbol]
