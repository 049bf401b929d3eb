"""Each error class carries the exit code a runner ends with."""

from __future__ import annotations

import pytest

from workbench import exceptions as ex
from workbench.gateway import runner as gateway_runner
from workbench.messaging.binding import AddressInUse


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (ex.WorkbenchError, 1),
        (ex.ConfigurationError, 2),
        (ex.StrategyError, 3),
        (ex.TemporaryError, 75),
        (AddressInUse, 75),
        (ex.OrderRejected, 1),
        (ex.CodecError, 1),
        (ex.DataError, 1),
        (ex.GatewayStartTimeout, 1),
        (ex.FlattenIncomplete, 1),  # `workbench halt --flatten` with a position left open
    ],
)
def test_exit_code_is_a_class_attribute(cls, code):
    assert cls.exit_code == code


def test_exit_codes_match_the_named_constants():
    assert (ex.EXIT_OK, ex.EXIT_ERROR, ex.EXIT_CONFIG) == (0, 1, 2)
    assert (ex.EXIT_STRATEGY, ex.EXIT_TEMPORARY) == (3, 75)


def test_every_error_has_a_snake_case_log_event():
    classes = [c for c in vars(ex).values() if isinstance(c, type) and issubclass(c, Exception)]
    for cls in classes:
        assert cls.log_event.islower() and " " not in cls.log_event, cls


def test_gateway_start_timeout_is_a_workbench_error_still_importable_from_the_gateway():
    assert issubclass(ex.GatewayStartTimeout, ex.WorkbenchError)
    assert gateway_runner.GatewayStartTimeout is ex.GatewayStartTimeout


def test_runner_base_re_exports_the_exit_codes():
    from workbench.runner import base

    assert base.EXIT_CONFIG == ex.EXIT_CONFIG
    assert base.EXIT_TEMPORARY == ex.EXIT_TEMPORARY
