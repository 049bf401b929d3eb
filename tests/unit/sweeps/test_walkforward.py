"""Walk-forward windows by time and by row share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import free_port

from workbench.exceptions import ConfigurationError
from workbench.sweeps.sweep import sweep
from workbench.sweeps.walkforward import Window, parse_walk_forward, windows

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9
CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo.toml"


def test_time_windows_roll_by_the_test_length():
    ts = np.arange(0, 8 * DAY, HOUR, dtype=np.int64)  # 8 days, hourly
    w = windows(parse_walk_forward("train=5d,test=1d"), ts)
    assert [x.train for x in w] == [(0, 120), (24, 144), (48, 168)]
    assert [x.test for x in w] == [(120, 144), (144, 168), (168, 192)]


def test_last_time_window_may_be_short():
    ts = np.arange(0, 6 * DAY + 6 * HOUR, HOUR, dtype=np.int64)
    w = windows(parse_walk_forward("train=5d,test=1d"), ts)
    assert w[-1].test == (144, 150)


def test_time_boundaries_are_exact_to_the_nanosecond_at_real_timestamps():
    # t0 + k * test in floats is off by up to 256 ns near 1.7e18: the tick 1 ns
    # before a boundary went to the test window.
    t0, s = 1_704_153_600_000_000_000, 10**9
    ts = np.array([t0, t0 + s - 1, t0 + s, t0 + 2 * s - 1, t0 + 2 * s, t0 + 3 * s - 1])
    w = windows(parse_walk_forward("train=1s,test=1s"), ts)
    assert [(x.train, x.test) for x in w] == [((0, 2), (2, 4)), ((2, 4), (4, 6))]


def test_row_share_windows():
    w = windows(parse_walk_forward("train=0.5,test=0.25"), np.arange(100))
    assert w == [Window(0, (0, 50), (50, 75)), Window(1, (25, 75), (75, 100))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train=5d", "give both train= and test="),
        ("train=5d,test=0.1", "must both be durations or both shares"),
        ("train=5x,test=1d", "train='5x' is neither a duration"),
        ("train=0.8,test=0.5", "train \\+ test must be <= 1"),
        ("size=5d,test=1d", "expected train=LEN,test=LEN, got 'size=5d'"),
        ("train=100s,test=100s,train=300s", "train= given twice"),
        ("", "expected train=LEN,test=LEN, got ''"),
        # 0 ns: a ZeroDivisionError when the windows were made.
        ("train=1d,test=0.0000000001s", "test=0.0000000001s rounds to 0 ns"),
        ("train=0.0000000004s,test=1d", "train=0.0000000004s rounds to 0 ns"),
    ],
)
def test_bad_specs_are_named(text, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_walk_forward(text)


def test_a_length_of_one_nanosecond_is_kept():
    assert parse_walk_forward("train=0.000000001s,test=1d").train == 1


def test_no_window_fits_short_data():
    with pytest.raises(ConfigurationError, match="no train window"):
        windows(parse_walk_forward("train=5d,test=1d"), np.arange(0, DAY, HOUR))


def test_ticks_out_of_time_order_are_refused():
    with pytest.raises(ConfigurationError, match="row 2 goes back"):
        windows(parse_walk_forward("train=0.5,test=0.5"), np.array([1, 3, 2, 4]))


def test_more_windows_than_the_cap_are_refused_before_any_is_made():
    ts = np.arange(0, 8 * DAY, HOUR, dtype=np.int64)
    many = r"'train=1d,test=1s': 601,201 windows over the 192 ticks"
    with pytest.raises(ConfigurationError, match=many):
        windows(parse_walk_forward("train=1d,test=1s"), ts)
    with pytest.raises(ConfigurationError, match="50,000 windows over the 200,000 ticks"):
        windows(parse_walk_forward("train=0.5,test=0.00001"), np.arange(200_000))
    assert len(windows(parse_walk_forward("train=1d,test=1h"), ts)) == 168  # fine


def test_a_refused_walk_forward_changes_nothing_in_out_even_with_force(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "results.parquet").write_bytes(b"the last sweep's")  # --force would remove it
    with pytest.raises(ConfigurationError, match="no train window"):
        sweep(CONFIG, walk_forward="train=30d,test=1d", grid={"turning_point": [0.05]},
              out=out, force=True)  # fmt: skip
    grid = {"turning_point": "0.01:2.01:0.01"}  # 201 combinations
    with pytest.raises(ConfigurationError, match=r"4,999 windows x 201 combinations = 1,004,799"):
        sweep(CONFIG, walk_forward="train=0.0002,test=0.0002", grid=grid, out=out, force=True)
    with pytest.raises(ConfigurationError):  # refused at the cluster step: nobody listens
        sweep(CONFIG, grid={"turning_point": [0.05]}, out=out, force=True,
              scheduler=f"tcp://127.0.0.1:{free_port()}", connect_timeout_s=2.0)  # fmt: skip
    assert (out / "results.parquet").read_bytes() == b"the last sweep's"
