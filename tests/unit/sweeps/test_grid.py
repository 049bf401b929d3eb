"""Grid specs: lists, inclusive ranges, and errors that name the argument."""

from __future__ import annotations

import math

import pytest

from workbench.exceptions import ConfigurationError
from workbench.sweeps.grid import ParamSpec, as_specs, combinations, parse_grid_args


def test_list_and_inclusive_range():
    tp, tk = parse_grid_args(["turning_point=0.02,0.05,0.1", "take_profit=0.1:0.5:0.1"])
    assert tp.values == (0.02, 0.05, 0.1) and not tp.is_range
    assert tk.values == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert (tk.low, tk.high, tk.step) == (0.1, 0.5, 0.1)


def test_combinations_vary_the_last_parameter_fastest():
    specs = as_specs({"turning_point": [1, 2], "rearm": "true,false"})
    assert combinations(specs) == [
        {"turning_point": 1.0, "rearm": True},
        {"turning_point": 1.0, "rearm": False},
        {"turning_point": 2.0, "rearm": True},
        {"turning_point": 2.0, "rearm": False},
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("turning_point", "--grid turning_point: expected NAME=VALUES"),
        ("lookback=1,2", "--grid lookback=1,2: cannot sweep 'lookback'; choose from"),
        ("take_profit=0.1,abc", "--grid take_profit=0.1,abc: 'abc' is not a number"),
        ("take_profit=0.5:0.1:0.1", "STOP 0.1 is below START 0.5"),
        ("take_profit=0.1:0.5:0", "the step must be > 0"),
        ("take_profit=0.1:0.5", "a range is START:STOP:STEP"),
        ("take_profit=", "no values"),
        ("take_profit=nan", "not a finite number"),
        ("take_profit=0:1e300:1e-300", "inf values; at most 100000"),
        ("take_profit=0:1:0.000001", "1e\\+06 values; at most 100000"),
        ("take_profit=0:1:0.00001", "100001 values; at most 100000"),
        ("take_profit=0:1e-13:1e-14", "the step 1e-14 is finer than the 1e-12"),
        # Mixed values ran the whole sweep, then failed writing results.parquet.
        ("turning_point=true,0.1", "turning_point takes a number, not true or false; got True"),
        ("following=true,1", "following takes true or false; got 1.0"),
        ("rearm=0:1:1", "rearm takes true or false; got 0.0"),
        ("take_profit=1_0", "'1_0' is not a number"),
        ("turning_point=false:true:0.5", "a range is of numbers"),
    ],
)
def test_bad_grid_arguments_name_what_and_where(arg, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        parse_grid_args([arg])


def test_a_parameter_given_twice_is_an_error():
    with pytest.raises(ConfigurationError, match="given twice: take_profit"):
        parse_grid_args(["take_profit=1", "take_profit=2"])


def test_specs_given_as_objects_are_checked_too():
    from workbench.sweeps.grid import ParamSpec

    with pytest.raises(ConfigurationError, match=r"following takes true or false; got 1\.0"):
        as_specs([ParamSpec("following", (1.0, 0.0))])


def test_one_value_is_a_list_of_one_and_a_non_value_names_its_parameter():
    # A scalar raised TypeError: 'float' object is not iterable.
    tp, tk, follow = as_specs({"turning_point": 0.05, "take_profit": [0.1, 0.3], "following": True})
    assert (tp.values, tk.values, follow.values) == ((0.05,), (0.1, 0.3), (True,))
    with pytest.raises(ConfigurationError, match="grid turning_point: 'None' is not a number"):
        as_specs({"turning_point": None})
    with pytest.raises(ConfigurationError, match="grid take_profit: give a list of values, not a"):
        as_specs({"take_profit": {0.1: 1}})  # its keys were taken as the values


@pytest.mark.parametrize(
    ("values", "says"),
    [((), "no values"), ((math.nan, 0.05), "nan is not a finite number"),
     ((math.inf,), "inf is not a finite number"), (("0.05",), "'0.05' is not a finite number")],
)  # fmt: skip
def test_specs_given_as_objects_are_checked_as_strings_and_lists_are(values, says):
    # An empty spec ran a sweep of 0 runs; nan failed at run time, as a row.
    with pytest.raises(ConfigurationError, match=f"grid turning_point: {says}"):
        as_specs([ParamSpec("turning_point", values)])


def test_numpy_numbers_in_spec_objects_are_taken_as_the_mapping_takes_them():
    import numpy as np

    from_object = as_specs([ParamSpec("turning_point", (np.int64(1), np.float32(0.2)))])
    from_mapping = as_specs({"turning_point": [np.int64(1), np.float32(0.2)]})
    assert from_object[0].values == from_mapping[0].values == (1.0, 0.2)
    assert as_specs([ParamSpec("rearm", (np.bool_(True),))])[0].values == (True,)
