"""synth_ticks: deterministic, on the tick grid, and lively around the start price."""

import collections
import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from workbench.domain.condition import Condition, ConditionEventKind, ConditionSpec
from workbench.domain.model import Side
from workbench.marketdata import (
    DEFAULT_START_TS_NS,
    generate_samples,
    load_ticks,
    synth_ticks,
    write_ticks,
)

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "ticks"


def test_same_seed_gives_the_same_table_and_csv_bytes(tmp_path: Path) -> None:
    a = write_ticks(synth_ticks("ABC", 2_000, 42), tmp_path / "a.csv")
    b = write_ticks(synth_ticks("ABC", 2_000, 42), tmp_path / "b.csv")

    assert synth_ticks("ABC", 2_000, 42) == synth_ticks("ABC", 2_000, 42)
    assert a.read_bytes() == b.read_bytes()


def test_different_seeds_give_different_walks() -> None:
    assert synth_ticks("ABC", 500, 1).price.tolist() != synth_ticks("ABC", 500, 2).price.tolist()


def test_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    table = synth_ticks("ABC", 3_000, 5, start_price=1.2345, tick_size=0.0001)

    for suffix in (".csv", ".parquet"):
        assert load_ticks(write_ticks(table, tmp_path / f"t{suffix}")) == table


def test_defaults_start_at_start_price_and_2024_01_02() -> None:
    table = synth_ticks("ABC", 10, 3)
    start = datetime(2024, 1, 2, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)

    assert start // timedelta(microseconds=1) * 1000 == DEFAULT_START_TS_NS
    assert DEFAULT_START_TS_NS <= table.ts_ns[0] < DEFAULT_START_TS_NS + 50_000_000
    assert table.price[0] == 100.0
    assert table.symbol == ["ABC"] * 10


@pytest.mark.parametrize(
    ("start_price", "tick_size", "volatility"),
    [(100.0, 0.01, 0.5), (1.1, 0.00005, 1.0), (4200.0, 0.25, 3.0), (0.05, 0.01, 2.0)],
)
def test_prices_sit_on_the_tick_grid_and_stay_positive(
    start_price: float, tick_size: float, volatility: float
) -> None:
    table = synth_ticks(
        "X", 20_000, 9, start_price=start_price, tick_size=tick_size, volatility=volatility
    )

    assert min(table.price.tolist()) > 0
    for p in set(table.price.tolist()):
        ticks = p / tick_size
        assert math.isclose(ticks, round(ticks), abs_tol=1e-6)
        assert repr(p) == repr(round(p, 10))  # no 100.01000000000001 artefacts


def test_timestamps_strictly_increase_around_the_interval() -> None:
    table = synth_ticks("X", 5_000, 4, interval_ns=1_000)
    gaps = [b - a for a, b in pairwise(table.ts_ns.tolist())]

    assert min(gaps) > 0
    assert 999 <= sum(gaps) / len(gaps) <= 1_001


def test_sizes_are_positive_lots() -> None:
    sizes = set(synth_ticks("X", 5_000, 4).size.tolist())

    assert sizes <= {1.0, 2.0, 3.0, 5.0, 10.0, 25.0}
    assert len(sizes) > 3


def cycles(prices: list[float], side: Side, trigger: float) -> collections.Counter:
    spec = ConditionSpec("c", "ABC", side, trigger, 0.02, 0.05, 0.05, rearm=True)
    condition = Condition(spec)
    seen: collections.Counter = collections.Counter()
    for price in prices:
        event = condition.on_price(price)
        if event is not None:
            seen[event.kind] += 1
            if event.kind is ConditionEventKind.EXITED:
                seen[event.reason] += 1
    return seen


@pytest.mark.parametrize("seed", [42, 1, 2, 3])
def test_conditions_a_few_ticks_from_start_enter_and_exit_repeatedly(seed: int) -> None:
    prices = synth_ticks("ABC", 5_000, seed).price.tolist()
    support = cycles(prices, Side.BUY, 99.95)
    resistance = cycles(prices, Side.SELL, 100.05)

    for seen in (support, resistance):
        assert 3 <= seen[ConditionEventKind.ENTERED] <= 100
        assert seen[ConditionEventKind.EXITED] >= seen[ConditionEventKind.ENTERED] - 1
    exits = support + resistance
    assert exits["take_profit"] > 0
    assert exits["stop_loss"] > 0


def test_long_walks_keep_returning_to_the_start_price() -> None:
    prices = synth_ticks("ABC", 200_000, 11).price.tolist()
    tail = prices[-20_000:]

    assert min(tail) <= 100.0 <= max(tail)
    assert max(prices) - min(prices) < 300 * 0.01 * 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"symbol": ""}, "symbol"),
        ({"n": -1}, "n"),
        ({"tick_size": 0.0}, "tick_size"),
        ({"volatility": math.nan}, "volatility"),
        ({"interval_ns": 0}, "interval_ns"),
        ({"start_price": 0.02}, "start_price"),
        # 1e307 / 0.01 is inf: an OverflowError, as inf was; nan a ValueError naming nothing.
        ({"start_price": 1e307}, "start_price"),
        ({"start_price": math.inf}, "start_price"),
        ({"start_price": math.nan}, "start_price"),
        ({"start_price": 1e300}, "start_price"),  # a float grid that cannot step one tick
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict, name: str) -> None:
    args = {"symbol": "X", "n": 10, "seed": 1} | kwargs

    with pytest.raises(ValueError, match=f"^{name}:"):
        synth_ticks(**args)


def test_zero_ticks_is_an_empty_table() -> None:
    assert len(synth_ticks("X", 0, 1)) == 0


def test_generate_samples_writes_csv_and_parquet(tmp_path: Path) -> None:
    csv_path, parquet_path = generate_samples(tmp_path)

    assert (csv_path.name, parquet_path.name) == ("synth-ABC-5000.csv", "synth-ABC-5000.parquet")
    table = load_ticks(csv_path)
    assert len(table) == 5_000
    assert table == load_ticks(parquet_path) == synth_ticks("ABC", 5_000, 42)
    assert csv_path.stat().st_size < 300_000
    assert parquet_path.stat().st_size < 300_000


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="data/ticks is not in this checkout")
def test_shipped_samples_are_what_generate_samples_makes(tmp_path: Path) -> None:
    csv_path, parquet_path = generate_samples(tmp_path)

    assert (SAMPLES / csv_path.name).read_bytes() == csv_path.read_bytes()
    assert load_ticks(SAMPLES / parquet_path.name) == load_ticks(parquet_path)


@pytest.mark.parametrize("symbol", [" ABC", "ABC ", "\tABC"])
def test_a_symbol_with_spaces_around_it_is_refused_not_written_for_the_loader_to_refuse(symbol):
    with pytest.raises(ValueError, match=r"symbol: .* has spaces around it"):
        synth_ticks(symbol, 10, 1)
