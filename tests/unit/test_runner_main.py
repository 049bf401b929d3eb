"""runners._main maps how a runner ended to its exit code and last log event."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from runners import _main
from workbench import exceptions as ex

CONFIG = """\
[[strategies]]
id = "s1"
class_path = "workbench.strategies.support_resistance:SupportResistance"
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    # configure_logging is process-wide; the test keeps structlog as capture_logs set it.
    monkeypatch.setattr(_main, "configure_logging", lambda *a, **k: None)
    monkeypatch.delenv(_main.GATE_ENV, raising=False)
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    yield path
    structlog.reset_defaults()


def _run(config_file, error: BaseException) -> tuple[int, list[dict]]:
    def build(_container):
        raise error

    with capture_logs() as logs:
        rc = _main.run_role("executor", ["--config", str(config_file)], lambda c, a: "x", build)
    return rc, logs


@pytest.mark.parametrize(
    ("error", "code", "event"),
    [
        (ex.ConfigurationError("bad field"), 2, "configuration_error"),
        (ex.StrategyError("bug"), 3, "strategy_error"),
        (ex.TemporaryError("port busy"), 75, "temporary_error"),
        (ex.GatewayStartTimeout("nobody came"), 1, "runner_crashed"),
        (ex.DataError("unreadable", path="t.csv"), 1, "runner_crashed"),
        (RuntimeError("boom"), 1, "runner_crashed"),
    ],
)
def test_an_error_ends_the_runner_with_its_exit_code_and_event(config_file, error, code, event):
    rc, logs = _run(config_file, error)
    assert rc == code
    assert logs[-1]["event"] == event
    assert str(error) in logs[-1]["error"]


def test_a_configuration_error_logs_no_traceback(config_file):
    _, logs = _run(config_file, ex.ConfigurationError("bad field"))
    assert not logs[-1].get("exc_info")


def test_a_strategy_error_logs_its_traceback(config_file):
    _, logs = _run(config_file, ex.StrategyError("bug"))
    assert logs[-1]["exc_info"] is True


def test_a_config_that_does_not_load_exits_2_before_logging(tmp_path, capsys):
    rc = _main.run_role("executor", ["--config", str(tmp_path / "nope.toml")], None, None)
    assert rc == 2
    assert "error:" in capsys.readouterr().err
