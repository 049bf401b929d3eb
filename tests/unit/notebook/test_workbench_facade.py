"""`Workbench` over a supervisor double: status rows, heartbeat views, apply, logs."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import make_config

from workbench.exceptions import ConfigurationError
from workbench.messaging.codec import Heartbeat
from workbench.notebook.workbench import STATUS_COLUMNS, Workbench
from workbench.supervisor.status import RunnerState, RunnerStatus
from workbench.telemetry import LatencyHistogram

LEVEL = {"id": "c", "symbol": "ABC", "state": "WAITING", "trigger": 99.9}
EXEC_EXTRA = {"positions": {"ABC": -1.0}, "realized_pnl": 0.75, "trading_state": "REDUCING"}


def hist(*us: float) -> dict[str, Any]:
    h = LatencyHistogram()
    for v in us:
        h.observe_us(v)
    return h.to_dict()


class Logs:
    def recent(self, runner: str | None = None) -> list[dict[str, Any]]:
        rows = [
            {"timestamp": "t1", "runner": "sr-1", "level": "info", "event": "runner_started"},
            {"timestamp": "t2", "runner": "executor", "level": "error", "event": "broker_failed"},
        ]
        return [r for r in rows if runner in (None, r["runner"])]


class Sup:
    """The parts of `Supervisor` the workbench calls."""

    def __init__(self, config: Any) -> None:
        self.logs = Logs()
        self.applied: list[Any] = []
        self.pid = 10
        self.stopped = False
        self.config = config.model_copy(deep=True)  # what runs (the workbench's may be edited)
        self.run_path = config.run_path()

    def status(self) -> list[RunnerStatus]:
        lat = {"latency": {"tick_to_order": hist(40, 400, 400, 9000)}}
        return [
            RunnerStatus("executor", "executor", RunnerState.RUNNING, pid=self.pid,
                         counters={"orders_out": 2, "fills": 2, "signals_in": 3},
                         rates={"ticks_in": 50.0}, extra={**EXEC_EXTRA, **lat}),
            RunnerStatus("sr-1", "strategy", RunnerState.FAILED, detail="boom",
                         extra={"levels": [LEVEL]}),
        ]  # fmt: skip

    def subscribe(self, callback: Any) -> Any:
        return lambda: None

    def heartbeat(self, name: str) -> Heartbeat | None:
        return Heartbeat("executor", self.pid, "running", {}, EXEC_EXTRA)

    def apply_config(self, cfg: Any) -> list[str]:
        self.applied.append(cfg)
        self.pid += 1  # the executor comes back with a new pid
        return ["executor"]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        return predicate()

    def stop(self) -> None:
        self.stopped = True

    stopping = False
    waited: tuple[float, ...] = ()

    def wait_running(self, timeout: float) -> None:
        self.waited += (timeout,)


@pytest.fixture
def wb(tmp_path) -> Workbench:
    w = Workbench(make_config(tmp_path))
    w.supervisor = Sup(w.config)  # type: ignore[assignment]
    return w


def test_status_rows_take_rates_counts_and_latency_quantiles(wb):
    ex, sr = wb.status_rows()
    assert set(ex) == set(STATUS_COLUMNS)
    assert (ex["state"], ex["ticks_per_s"], ex["signals"], ex["orders"], ex["fills"]) == (
        "running", 50.0, 3, 2, 2)  # fmt: skip
    assert (ex["p50_us"], ex["p99_us"]) == (500, 10_000)
    assert (sr["state"], sr["detail"], sr["p50_us"]) == ("failed", "boom", None)
    frame = wb.status()
    assert frame.loc["sr-1", "state"] == "failed" and frame.index.name == "runner"


def with_strategy_state(wb: Workbench, state: RunnerState) -> None:
    status = wb.supervisor.status()
    status[1] = RunnerStatus("sr-1", "strategy", state, extra={"levels": [LEVEL]})
    wb.supervisor.status = lambda: status


def test_heartbeat_views(wb):
    with_strategy_state(wb, RunnerState.RUNNING)
    assert wb.levels() == [{"strategy": "sr-1", **LEVEL}]
    assert wb.positions() == {"ABC": -1.0} and wb.pnl() == 0.75
    assert wb.trading_state() == "REDUCING"


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (RunnerState.RUNNING, True),
        (RunnerState.UNHEALTHY, True),
        (RunnerState.STARTING, False),
        (RunnerState.STOPPED, False),
        (RunnerState.FAILED, False),
    ],
)
def test_levels_come_only_from_strategies_that_run(wb, state, shown):
    # A stopped strategy's last heartbeat went on drawing an ENTERED
    # condition's levels on the chart as if they were still watched.
    with_strategy_state(wb, state)
    assert wb.levels() == ([{"strategy": "sr-1", **LEVEL}] if shown else [])


def test_not_started_reads_empty_and_commands_say_start_first(tmp_path):
    w = Workbench(make_config(tmp_path))
    assert (w.status_rows(), w.levels(), w.positions(), w.pnl(), w.trading_state()) == (
        [], [], {}, 0.0, "")  # fmt: skip
    assert w.logs().empty
    with pytest.raises(ConfigurationError, match=r"wb\.start"):
        w.restart("sr-1")


def test_a_new_dashboard_stops_the_one_before(wb):
    # Each re-run of the `wb.dashboard()` cell left one more thread redrawing.
    wb.dashboard(refresh_hz=50)
    first = wb._dashboards[0]
    wb.dashboard(refresh_hz=50)
    try:
        assert not first._thread.is_alive()
        assert len(wb._dashboards) == 1 and wb._dashboards[0]._thread.is_alive()
    finally:
        wb.stop()
    assert wb._dashboards == []


def test_apply_waits_for_the_new_pid_through_the_public_wait(wb):
    wb.config.executor.broker.params = {"slippage": 0.02}
    assert wb.apply(timeout=1) == ["executor"]
    assert wb.supervisor.applied[0].executor.broker.params == {"slippage": 0.02}
    assert wb.taps.config is wb.config


def test_a_handle_taken_from_the_config_still_edits_it_after_apply(wb):
    # apply() replaced wb.config: the second edit went to a detached object,
    # apply() found nothing changed and save_config wrote the first value.
    cfg = wb.config
    conds = wb.config.strategies[0].params["conditions"]
    conds[0]["take_profit"] = 0.3
    wb.apply(timeout=1)
    conds[0]["take_profit"] = 0.4
    wb.apply(timeout=1)
    applied = [c.strategies[0].params["conditions"][0] for c in wb.supervisor.applied]
    assert [c["take_profit"] for c in applied] == [0.3, 0.4]
    assert wb.config is cfg
    conds[0]["take_profit"] = 0.5  # what runs is the supervisor's copy, not the handle
    assert wb.supervisor.applied[1].strategies[0].params["conditions"][0]["take_profit"] == 0.4


def test_apply_before_start_keeps_the_config_a_handle_edits(tmp_path):
    import tomllib

    w = Workbench(make_config(tmp_path))
    conds = w.config.strategies[0].params["conditions"]
    conds[0]["take_profit"] = 0.3
    assert w.apply() == []
    conds[0]["take_profit"] = 0.4
    saved = tomllib.loads(w.save_config(tmp_path / "saved.toml").read_text())
    assert saved["strategies"][0]["params"]["conditions"][0]["take_profit"] == 0.4


def test_numpy_values_from_a_frame_are_applied_saved_and_started_as_python_ones(
    wb, tmp_path, monkeypatch
):
    # np.int64 qty was refused; once accepted, the config still had to be
    # written as TOML (run folder, save_config), which cannot take numpy's.
    import tomllib

    import numpy as np

    from workbench.notebook import workbench as facade

    cond = wb.config.strategies[0].params["conditions"][0]
    cond["qty"], cond["following"] = np.int64(2), np.bool_(False)
    wb.apply(timeout=1)
    applied = wb.supervisor.applied[0].strategies[0].params["conditions"][0]
    assert (type(applied["qty"]), type(applied["following"])) == (int, bool)
    saved = tomllib.loads(wb.save_config(tmp_path / "saved.toml").read_text())
    assert saved["strategies"][0]["params"]["conditions"][0]["qty"] == 2
    started: list[Any] = []
    sup, wb.supervisor = wb.supervisor, None
    sup.start = lambda wait, timeout: None
    monkeypatch.setattr(facade, "prepare_run_folder", lambda cfg: started.append(cfg))
    monkeypatch.setattr(facade, "Supervisor", lambda cfg, config_path: sup)
    wb.start()
    assert "qty = 2" in started[0].to_toml()
    assert wb.supervisor is sup
    wb.stop()


def test_apply_times_out_when_a_runner_does_not_come_back(wb):
    wb.supervisor.apply_config = lambda cfg: ["sr-1"]  # sr-1 stays failed
    with pytest.raises(TimeoutError, match="sr-1"):
        wb.apply(timeout=0.1)


def test_an_invalid_edit_restarts_nothing(wb):
    wb.config.strategies[0].params["conditions"][0]["take_profit"] = -1.0
    with pytest.raises(ConfigurationError):
        wb.apply()
    assert wb.supervisor.applied == []


def test_logs_filter_by_level(wb):
    df = wb.logs(level="error")
    assert df["event"].tolist() == ["broker_failed"]
    assert list(df.columns[:4]) == ["timestamp", "runner", "level", "event"]


def test_logs_take_the_newest_last_lines_and_none_for_zero(wb):
    # rows[-0:] is every row: last=0 gave them all.
    assert wb.logs(last=0).empty
    assert wb.logs(last=1)["event"].tolist() == ["broker_failed"]
    assert wb.logs(last=5)["event"].tolist() == ["runner_started", "broker_failed"]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"level": "warn"}, r"level: must be one of 'debug', 'info', 'warning', .*got 'warn'"),
        ({"level": 30}, "level: must be one of .*got 30"),
        ({"last": -1}, "last: must be a whole number of lines >= 0, got -1"),
        ({"last": "10"}, "last: must be a whole number of lines >= 0, got '10'"),
        ({"last": 2.5}, "last: must be a whole number of lines >= 0, got 2.5"),
        # a typo gave an empty frame, as if the runner had said nothing
        ({"runner": "sr-2"}, "runner: no runner named 'sr-2'; have executor, sr-1"),
    ],
)
def test_a_bad_logs_argument_is_an_error_naming_it_and_what_it_takes(wb, kwargs, says):
    # level="warn" raised "ValueError: 'warn' is not in list".
    with pytest.raises(ConfigurationError, match=says):
        wb.logs(**kwargs)


def test_halt_flatten_raises_naming_what_stays_open_and_carries_the_answer(tmp_path, monkeypatch):
    from workbench import FlattenIncomplete
    from workbench.notebook import control

    answer = {
        "trading_state": "HALTED",
        "positions": {"ABC": 2.0},
        "not_flattened": {"ABC": "no market price seen yet"},
    }
    monkeypatch.setattr(control, "send_command", lambda *a, **k: answer)
    w = Workbench(make_config(tmp_path))
    with pytest.raises(FlattenIncomplete, match="HALTED, but not flattened: ABC: no market") as e:
        w.halt(flatten=True)
    assert e.value.not_flattened == {"ABC": "no market price seen yet"}
    assert e.value.reply == answer
    assert w.halt() == answer  # a plain halt never flattens: nothing to report


def test_halt_flatten_returns_the_answer_when_every_position_is_closed(tmp_path, monkeypatch):
    from workbench.notebook import control

    answer = {"trading_state": "HALTED", "positions": {"ABC": 0.0}, "not_flattened": {}}
    monkeypatch.setattr(control, "send_command", lambda *a, **k: answer)
    assert Workbench(make_config(tmp_path)).halt(flatten=True) == answer


def test_a_stopped_executor_trades_in_no_state(wb):
    # Its last heartbeat said ACTIVE; the dashboard went on showing "trading ACTIVE".
    status = wb.supervisor.status()
    status[0] = RunnerStatus("executor", "executor", RunnerState.STOPPED, extra=EXEC_EXTRA)
    wb.supervisor.status = lambda: status
    assert wb.trading_state() == ""
    assert wb.positions() == {"ABC": -1.0}  # the last known, kept


def test_start_with_wait_on_a_started_workbench_waits(wb):
    assert wb.start(wait=True, timeout=7.0) is wb
    assert wb.supervisor.waited == (7.0,)


def test_a_stop_cut_short_by_ctrl_c_is_finished_by_the_next_start(wb, monkeypatch):
    # start() saw a supervisor and returned at once: "started", every runner stopped.
    from workbench.notebook import workbench as facade

    fresh = Sup(wb.config)
    fresh.start = lambda wait, timeout: None
    monkeypatch.setattr(facade, "prepare_run_folder", lambda cfg: None)
    monkeypatch.setattr(facade, "Supervisor", lambda cfg, config_path: fresh)
    sup = wb.supervisor
    calls = []

    def stop() -> None:
        calls.append(1)
        sup.stopping = True
        if len(calls) == 1:
            raise KeyboardInterrupt

    sup.stop = stop
    with pytest.raises(KeyboardInterrupt):
        wb.stop()
    assert wb.supervisor is sup  # not forgotten while its runners may still run
    wb.start()
    assert len(calls) == 2 and wb.supervisor is fresh
    wb.stop()


@pytest.mark.parametrize("timeout_s", [-1.0, 0.0, float("nan"), float("inf"), 1e300, "5", True])
def test_a_kill_switch_timeout_that_is_not_a_wait_is_refused_before_sending(wb, timeout_s):
    # -1 reached zmq's poll(-1000): with the executor down, halt() never returned;
    # "5" raised "TypeError: '<' not supported between instances of 'int' and 'str'".
    with pytest.raises(ConfigurationError, match="timeout_s must be a number of seconds > 0"):
        wb.halt(timeout_s=timeout_s)


def test_the_validated_copy_keeps_secrets_set_in_code(tmp_path, monkeypatch):
    """start() hands the supervisor a copy rebuilt from a dump, and dumps leave secrets
    out: a health token set in a cell was dropped, and /health served without it."""
    from pydantic import SecretStr

    monkeypatch.delenv("WORKBENCH__SUPERVISOR__HTTP_TOKEN", raising=False)
    cfg = make_config(tmp_path)
    cfg.supervisor.http_token = SecretStr("a-token-of-16-chars")
    cfg.gateway.exchange.api_key = SecretStr("key")
    cfg.gateway.exchange.api_secret = SecretStr("secret")
    fresh = Workbench._validate(cfg)
    assert fresh.supervisor.http_token.get_secret_value() == "a-token-of-16-chars"
    assert fresh.gateway.exchange.credentials() == (cfg.gateway.exchange.api_key,
                                                    cfg.gateway.exchange.api_secret)  # fmt: skip


@pytest.mark.parametrize("flatten", ["False", "no", 1, 0, None])
def test_a_flatten_that_is_not_a_bool_is_refused_and_nothing_sent(tmp_path, monkeypatch, flatten):
    # halt(flatten="False") and halt("no") sent a flatten: every position closed.
    from workbench.notebook import control

    sent: list[Any] = []
    monkeypatch.setattr(control, "send_command", lambda *a, **k: sent.append(a) or {})
    with pytest.raises(TypeError, match=f"flatten must be True or False, got {flatten!r}"):
        Workbench(make_config(tmp_path)).halt(flatten)
    assert sent == []


def test_save_config_to_a_folder_is_an_error_leaving_nothing(tmp_path):
    # "[Errno 21] Is a directory", and <dir>.tmp left beside it.
    out = tmp_path / "saved"
    out.mkdir()
    with pytest.raises(ConfigurationError, match="saved: is a folder; save the config to a file"):
        Workbench(make_config(tmp_path)).save_config(out)
    assert not (tmp_path / "saved.tmp").exists() and list(out.iterdir()) == []


def test_a_path_for_a_config_is_a_type_error_saying_to_use_from_config():
    # Workbench("/path.toml") was "AttributeError: 'str' object has no attribute ...".
    with pytest.raises(
        TypeError, match=r"takes a WorkbenchConfig, got str '/p\.toml'; .*from_config"
    ):
        Workbench("/p.toml")  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [None, 5])
def test_from_config_without_a_path_is_a_type_error_naming_it(path):
    with pytest.raises(TypeError, match=f"from_config\\(path\\) must be a path .*got {path}"):
        Workbench.from_config(path)  # type: ignore[arg-type]


@pytest.mark.parametrize("hz", [0, -1, float("nan"), float("inf"), 1e-300, 1000, "5", True])
def test_a_dashboard_refresh_rate_that_is_not_one_is_refused(wb, hz):
    # 0 was a ZeroDivisionError; -1 and nan were taken (a redraw loop of nonsense).
    with pytest.raises(ConfigurationError, match="refresh_hz must be a number of redraws per"):
        wb.dashboard(refresh_hz=hz)
    assert wb._dashboards == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("points", -1), ("points", "5"), ("log_lines", 0), ("log_interval_s", "x"),
     ("log_interval_s", float("nan"))],
)  # fmt: skip
def test_dashboard_options_that_are_not_numbers_in_range_are_refused_naming_them(wb, option, value):
    # points=-1 never drew a chart and logged on every redraw; log_lines=0 showed every line.
    with pytest.raises(ConfigurationError, match=f"{option} must be a number of"):
        wb.dashboard(**{option: value})
    assert wb._dashboards == []


@pytest.mark.parametrize(
    ("call", "error", "says"),
    [(lambda wb: wb.apply(timeout=0), ConfigurationError, "timeout must be a number of sec"),
     (lambda wb: wb.apply(wait="no"), TypeError, "wait must be True or False"),
     (lambda wb: wb.wait_running(timeout="5"), ConfigurationError, "timeout must be a num")],
)  # fmt: skip
def test_apply_and_wait_running_arguments_are_checked_before_anything_restarts(
    wb, call, error, says
):
    with pytest.raises(error, match=says):
        call(wb)
    assert wb.supervisor.applied == []


def test_subscribe_refuses_what_cannot_be_called(wb):
    # subscribe(5) was taken, then logged an error on every supervisor event.
    with pytest.raises(TypeError, match=r"callback must be a function .*got 5"):
        wb.subscribe(5)
    assert callable(wb.subscribe(lambda event: None))


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"wait": True, "timeout": -1}, ConfigurationError, "timeout must be a number of seconds"),
        ({"timeout": 0}, ConfigurationError, "timeout must be a number of seconds > 0, got 0"),
        ({"timeout": float("nan")}, ConfigurationError, "timeout must be a number of seconds"),
        ({"timeout": "30"}, ConfigurationError, "timeout must be a number of seconds"),
        ({"wait": "no"}, TypeError, "wait must be True or False, got 'no'"),
    ],
)
def test_start_refuses_a_timeout_that_is_not_a_wait(tmp_path, kwargs, error, says):
    w = Workbench(make_config(tmp_path))
    with pytest.raises(error, match=says):
        w.start(**kwargs)
    assert w.supervisor is None
