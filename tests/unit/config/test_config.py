"""Typed config: TOML, environment overrides, errors that name field and file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.cli import main as cli
from workbench.config import build_config, check_config, load_config
from workbench.exceptions import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["paper.toml", "demo.toml"])
def test_shipped_configs_load_and_pass_checks(name):
    cfg = load_config(ROOT / "configs" / name)
    assert check_config(cfg) == []


def test_shipped_configs_pick_their_feeds():
    assert load_config(ROOT / "configs/paper.toml").gateway.feed == "simulated"
    assert load_config(ROOT / "configs/demo.toml").gateway.feed == "replay"


def test_empty_file_gives_the_embedded_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg == build_config()


def test_toml_values_are_read(tmp_path):
    cfg = load_config(write(tmp_path, '[gateway]\nfeed = "replay"\n[bus]\nlinger_ms = 5\n'))
    assert cfg.gateway.feed == "replay" and cfg.bus.linger_ms == 5


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH__GATEWAY__FEED", "simulated")
    monkeypatch.setenv("WORKBENCH__BUS__LINGER_MS", "7")
    cfg = load_config(write(tmp_path, '[gateway]\nfeed = "replay"\n'))
    assert cfg.gateway.feed == "simulated" and cfg.bus.linger_ms == 7


def test_build_config_without_the_environment_builds_the_dict_alone(monkeypatch):
    # A sweep's config rebuilt on a Dask worker: the worker's variables are not the client's.
    monkeypatch.setenv("WORKBENCH__EXECUTOR__BROKER__PARAMS", '{"fee_bps": 50}')
    monkeypatch.setenv("WORKBENCH__NO_SUCH_SECTION", "1")
    data = {"executor": {"broker": {"params": {"slippage": 0.01}}}}
    assert build_config(data, environment=False).executor.broker.params == {"slippage": 0.01}
    with pytest.raises(ConfigurationError, match="WORKBENCH__NO_SUCH_SECTION"):
        build_config(data)


def test_a_relative_path_from_the_environment_is_relative_to_the_working_folder(
    tmp_path, monkeypatch
):
    # It resolved against the config's folder: a path typed in the shell missed.
    (tmp_path / "conf").mkdir()
    (tmp_path / "shell").mkdir()
    monkeypatch.chdir(tmp_path / "shell")
    monkeypatch.setenv("WORKBENCH__GATEWAY__REPLAY__PATH", "mine.csv")
    monkeypatch.setenv("WORKBENCH__RUNTIME__RUN_DIR", "~/runs")
    text = '[gateway.replay]\npath = "file.csv"\n[executor]\njournal_path = "j.sqlite"\n'
    cfg = load_config(write(tmp_path / "conf", text))
    assert cfg.resolve(cfg.gateway.replay.path) == tmp_path / "shell" / "mine.csv"
    assert cfg.resolve(cfg.runtime.run_dir) == Path.home() / "runs"
    assert cfg.resolve(cfg.executor.journal_path) == tmp_path / "conf" / "j.sqlite"  # the file's
    rebuilt = build_config(cfg.rebased(tmp_path).model_dump(), base_dir=tmp_path)
    assert rebuilt.resolve(rebuilt.gateway.replay.path) == tmp_path / "shell" / "mine.csv"
    # A path given in code outranks the environment, and stays relative to base_dir.
    coded = build_config({"gateway": {"replay": {"path": "x.csv"}}}, base_dir=tmp_path / "conf")
    assert coded.resolve(coded.gateway.replay.path) == tmp_path / "conf" / "x.csv"


def test_error_names_file_and_field(tmp_path):
    p = write(tmp_path, "[bus]\nlinger_ms = -1\n")
    with pytest.raises(ConfigurationError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "bus.linger_ms" in str(e.value)


def test_unknown_field_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigurationError, match=r"gateway\.feeed: unknown field"):
        load_config(write(tmp_path, '[gateway]\nfeeed = "replay"\n'))


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    p = write(tmp_path, '[bus]\nlinger_ms = -1\nticks_address = "http://x"\n')
    with pytest.raises(ConfigurationError) as e:
        load_config(p)
    assert len(e.value.problems) == 2


def test_bad_toml_syntax_names_file_and_line(tmp_path):
    p = write(tmp_path, "[bus\n")
    with pytest.raises(ConfigurationError, match=r"c\.toml: invalid TOML.*line 1"):
        load_config(p)


def test_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_duplicate_strategy_ids_are_rejected(tmp_path):
    text = '[[strategies]]\nid = "a"\n[[strategies]]\nid = "a"\n'
    with pytest.raises(ConfigurationError, match=r"strategies: .*repeated: a"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize("runner", ["executor", "gateway"])
def test_a_strategy_may_not_take_the_executors_or_gateways_id(tmp_path, runner):
    text = f'[{runner}]\nid = "main"\n[[strategies]]\nid = "main"\n'
    with pytest.raises(
        ConfigurationError, match=rf"strategies\[0\]\.id: 'main' is the id of the {runner}"
    ):
        load_config(write(tmp_path, text))


def test_the_gap_timeout_must_leave_room_for_resends(tmp_path):
    text = "[executor]\nsignal_gap_timeout_s = 1.5\n[runtime]\nsignal_resend_after_s = 1.0\n"
    with pytest.raises(ConfigurationError, match=r"signal_gap_timeout_s \(1.5\) must be at least"):
        load_config(write(tmp_path, text))


def test_bus_addresses_must_differ(tmp_path):
    text = '[bus]\nticks_address = "ipc:///tmp/x"\nsignals_address = "ipc:///tmp/x"\n'
    with pytest.raises(ConfigurationError, match="must all differ"):
        load_config(write(tmp_path, text))


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    cfg = load_config(write(tmp_path, '[gateway.replay]\npath = "ticks.csv"\n'))
    assert cfg.resolve(cfg.gateway.replay.path) == tmp_path / "ticks.csv"


def test_save_then_load_gives_an_equal_config(tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.toml")
    cfg.strategies[0].params["conditions"][0]["turning_point"] = 0.07
    saved = cfg.save(tmp_path / "sub" / "promoted.toml")
    again = load_config(saved)
    assert again.resolve(again.gateway.replay.path) == cfg.resolve(cfg.gateway.replay.path)
    assert again.model_dump(exclude={"gateway", "runtime"}) == cfg.model_dump(
        exclude={"gateway", "runtime"}
    )
    assert again.rebased(cfg.base_dir) == cfg


def test_saving_to_a_folder_is_an_error_naming_it_and_leaves_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigurationError, match=r"out: is a folder; save the config to a file"):
        build_config().save(tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no out.tmp


def test_a_save_that_fails_midway_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        build_config().save(tmp_path / "c.toml")
    assert list(tmp_path.iterdir()) == []


def test_check_reports_missing_replay_file_and_bad_strategy_params(tmp_path):
    text = (
        '[gateway]\nfeed = "replay"\n[gateway.replay]\npath = "missing.csv"\n'
        '[[strategies]]\nid = "s"\n[strategies.params]\nconditions = [{id = "c"}]\n'
    )
    cfg = load_config(write(tmp_path, text))
    problems = check_config(cfg)
    assert any("gateway.replay.path" in p and "missing.csv" in p for p in problems)
    assert any("strategies[0]" in p for p in problems)


def test_check_takes_a_recorded_dataset_folder_as_replay_data(tmp_path):
    # `replay` and `up` replay a folder `workbench record` wrote; the check refused it.
    text = '[gateway]\nfeed = "replay"\n[gateway.replay]\npath = "ds"\n'
    (tmp_path / "ds" / "symbol=ABC").mkdir(parents=True)
    cfg = load_config(write(tmp_path, text))
    assert check_config(cfg) == [f"{cfg.source}: gateway.replay.path: {tmp_path / 'ds'} holds no "
                                 "recorded dataset"]  # fmt: skip
    (tmp_path / "ds" / "symbol=ABC" / "date=2024-01-02.parquet").write_bytes(b"")
    assert check_config(cfg) == []


def test_cli_config_check_exits_2_listing_problems(tmp_path, capsys):
    p = write(tmp_path, "[bus]\nlinger_ms = -1\n[gateway]\nfeed = 3\n")
    assert cli(["config", "check", str(p)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any("bus.linger_ms" in line and str(p) in line for line in err)
    assert any("gateway.feed" in line for line in err)


def test_cli_config_check_ok(capsys):
    assert cli(["config", "check", str(ROOT / "configs" / "paper.toml")]) == 0
    assert "ok" in capsys.readouterr().out


def test_editing_a_built_config_never_changes_the_callers_data():
    conditions = [
        {
            "id": "c",
            "symbol": "X",
            "side": "BUY",
            "trigger_price": 1.0,
            "turning_point": 0.1,
            "take_profit": 0.1,
            "stop_loss": 0.1,
        }
    ]
    cfg = build_config({"strategies": [{"id": "s", "params": {"conditions": conditions}}]})
    cfg.strategies[0].params["conditions"][0]["qty"] = 3.0
    assert "qty" not in conditions[0]


def test_a_live_feed_without_order_and_position_limits_fails_the_check(tmp_path):
    from workbench.config import check_config

    cfg = build_config({"gateway": {"feed": "simulated"}}, base_dir=tmp_path)
    problems = check_config(cfg)
    assert any("executor.risk.max_order_qty: must be set" in p for p in problems)
    assert any("executor.risk.max_position_qty: must be set" in p for p in problems)
    limited = build_config(
        {"executor": {"risk": {"max_order_qty": 1, "max_position_qty": 2}}}, base_dir=tmp_path
    )
    assert not [p for p in check_config(limited) if "executor.risk" in p]


def test_a_replay_needs_no_limits(tmp_path):
    from workbench.config import live_risk_problems

    assert (
        live_risk_problems(build_config({"gateway": {"feed": "replay"}}, base_dir=tmp_path)) == []
    )


@pytest.mark.parametrize("value", [0, -5, 1_001, 2.5])
def test_market_snapshot_interval_is_validated(tmp_path, value):
    p = write(tmp_path, f"[gateway]\nmarket_snapshot_interval_ms = {value}\n")
    with pytest.raises(ConfigurationError, match=r"gateway\.market_snapshot_interval_ms"):
        load_config(p)


def test_market_snapshots_must_come_faster_than_market_data_goes_stale(tmp_path):
    slow = {"gateway": {"market_snapshot_interval_ms": 500}}
    stale = {"executor": {"risk": {"stale_market_data_s": 0.5}}}
    with pytest.raises(ConfigurationError, match=r"market_snapshot_interval_ms \(500\).*stale"):
        build_config(slow | stale, base_dir=tmp_path)
    ok = build_config({"gateway": {"market_snapshot_interval_ms": 499}} | stale)
    assert ok.snapshot_interval_ms() == 499
    replay = build_config(
        {"gateway": {"feed": "replay", "market_snapshot_interval_ms": 500}} | stale
    )
    assert replay.snapshot_interval_ms() == 0  # a replay's executor has no market socket
    assert build_config().gateway.market_snapshot_interval_ms == 10


@pytest.mark.parametrize(
    ("risk", "field"),
    [
        ("max_position_qty_by_symbol = { ABC = nan }", r"max_position_qty_by_symbol\.ABC"),
        ("max_position_qty_by_symbol = { ABC = -1 }", r"max_position_qty_by_symbol\.ABC"),
        ("max_order_qty = inf", r"executor\.risk\.max_order_qty"),
        ("max_daily_loss = inf", r"executor\.risk\.max_daily_loss"),
    ],
)
def test_a_risk_limit_that_limits_nothing_is_a_configuration_error(tmp_path, risk, field):
    # A NaN limit compares False, so it turned its limit off; infinity passed the
    # live check ("must be set") while limiting nothing.
    with pytest.raises(ConfigurationError, match=field):
        load_config(write(tmp_path, f"[executor.risk]\n{risk}\n"))


def test_a_live_config_may_not_turn_a_symbols_position_limit_off(tmp_path):
    text = (
        '[gateway]\nfeed = "simulated"\n[executor.risk]\nmax_order_qty = 1\n'
        "max_position_qty = 2\nmax_position_qty_by_symbol = { ABC = 0, XYZ = 1 }\n"
    )
    problems = check_config(load_config(write(tmp_path, text)))
    assert [p for p in problems if "by_symbol" in p] == [
        f"{tmp_path / 'c.toml'}: executor.risk.max_position_qty_by_symbol.ABC: 0 turns "
        "the position limit off for ABC; when gateway.feed is 'simulated' every symbol needs one"
    ]


def test_a_lower_case_variable_is_named_as_it_was_set(tmp_path, monkeypatch):
    # pydantic-settings reads it; the error blamed the file.
    monkeypatch.setenv("workbench__bus__linger_ms", "-5")
    path = write(tmp_path, "")
    with pytest.raises(ConfigurationError) as e:
        load_config(path)
    assert e.value.problems == [
        f"{path} (environment workbench__bus__linger_ms): bus.linger_ms: "
        "Input should be greater than or equal to 0 (got '-5')"
    ]


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH__EXECUTOR__RISK__MAX_ORDER_QTY", "nan")
    path = write(tmp_path, "[executor.risk]\nmax_position_qty = -1\n")
    with pytest.raises(ConfigurationError) as e:
        load_config(path)
    assert sorted(e.value.problems) == sorted(
        [
            f"{path} (environment WORKBENCH__EXECUTOR__RISK__MAX_ORDER_QTY): "
            "executor.risk.max_order_qty: Input should be a finite number (got 'nan')",
            f"{path}: executor.risk.max_position_qty: "
            "Input should be greater than or equal to 0 (got -1)",
        ]
    )


def test_checks_after_loading_name_the_variable_that_set_the_value(tmp_path, monkeypatch):
    """Each blamed the file: 'paper.toml: executor.risk.max_order_qty: must be set', while
    the file set 10 and a variable set 0; likewise a section a variable below it broke."""
    live = '[gateway]\nfeed = "simulated"\n[executor.risk]\nmax_order_qty = 10\n'
    path = write(tmp_path, live + "max_position_qty = 10\n")
    monkeypatch.setenv("WORKBENCH__EXECUTOR__RISK__MAX_ORDER_QTY", "0")
    monkeypatch.setenv("WORKBENCH__GATEWAY__REPLAY__PATH", str(tmp_path / "none.csv"))
    monkeypatch.setenv("WORKBENCH__GATEWAY__FEED", "replay")
    problems = check_config(load_config(path))
    var = "(environment WORKBENCH__GATEWAY__REPLAY__PATH)"
    assert f"{path} {var}: gateway.replay.path: file not found: {tmp_path / 'none.csv'}" in (
        problems
    )
    monkeypatch.setenv("WORKBENCH__GATEWAY__FEED", "simulated")
    (problem,) = [p for p in check_config(load_config(path)) if "max_order_qty" in p]
    assert problem.startswith(
        f"{path} (environment WORKBENCH__EXECUTOR__RISK__MAX_ORDER_QTY): "
        "executor.risk.max_order_qty: must be set"
    )
    # Read without the environment (a run's saved config), the file is to blame.
    (problem,) = check_config(load_config(write(tmp_path, live), environment=False))
    assert problem.startswith(f"{tmp_path / 'c.toml'}: executor.risk.max_position_qty")
    monkeypatch.setenv("WORKBENCH__EXECUTOR__RISKS__MAX_ORDER_QTY", "5")  # a typo'd section
    with pytest.raises(ConfigurationError) as e:
        load_config(path)
    assert f"{path} (environment WORKBENCH__EXECUTOR__RISKS__MAX_ORDER_QTY): executor.risks" in (
        str(e.value)
    )


def test_an_exchange_setting_of_infinity_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match=r"gateway\.exchange\.stale_after_s"):
        load_config(write(tmp_path, "[gateway.exchange]\nstale_after_s = inf\n"))


@pytest.mark.parametrize("token", ["", "   ", "short-but-real"])
def test_an_empty_or_short_token_is_an_error_never_no_token(tmp_path, monkeypatch, token):
    # An empty line in an EnvironmentFile served health and metrics to the network
    # without asking for a token at all.
    monkeypatch.setenv("WORKBENCH__SUPERVISOR__HTTP_TOKEN", token)
    monkeypatch.setenv("WORKBENCH__SUPERVISOR__HTTP_HOST", "0.0.0.0")
    with pytest.raises(ConfigurationError) as e:
        load_config(write(tmp_path, ""))
    assert "environment WORKBENCH__SUPERVISOR__HTTP_TOKEN" in str(e.value)
    assert "supervisor.http_token" in str(e.value) and "16 characters" in str(e.value)
    if token.strip():
        assert token not in str(e.value)  # a secret is never echoed


@pytest.mark.parametrize(
    "name", ["WORKBENCH__EXECUTOR_RISK__MAX_ORDER_QTY", "WORKBENCH__RUNID", "workbench__execrisk"]
)
def test_a_variable_that_sets_no_field_is_an_error_not_ignored(tmp_path, monkeypatch, name):
    # A tightened limit with one '_' too few was dropped unseen: "config check: ok".
    monkeypatch.setenv(name, "1")
    with pytest.raises(
        ConfigurationError, match=rf"\(environment {name}\): .* is no config section"
    ):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigurationError, match=name):
        build_config()


@pytest.mark.parametrize(
    "name, value",
    [("WORKBENCH__STRATEGIES", "["), ("WORKBENCH__GATEWAY__SIMULATED__SYMBOLS", "ABC")],
)
def test_a_list_variable_that_is_not_json_names_the_variable(
    tmp_path, monkeypatch, capsys, name, value
):
    monkeypatch.setenv(name, value)
    assert cli(["config", "check", str(write(tmp_path, ""))]) == 2
    err = capsys.readouterr().err
    assert f"environment {name}" in err and "must be JSON" in err


@pytest.mark.parametrize("run_id", [".", "..", ".hidden"])
def test_a_run_id_that_is_no_plain_folder_name_is_refused(run_id):
    """ "." is run_dir itself: a new run moved the whole folder aside, other runs' journals too."""
    with pytest.raises(ConfigurationError, match=r"run_id: .*not start with '\.'"):
        build_config({"run_id": run_id})


@pytest.mark.parametrize(
    ("risk", "field"),
    [
        ({"max_daily_loss": False}, "executor.risk.max_daily_loss"),
        ({"max_order_qty": True}, "executor.risk.max_order_qty"),
        ({"max_position_qty_by_symbol": {"ABC": True}}, "executor.risk.max_position_qty_by_symbol"),
    ],
)
def test_true_or_false_for_a_limit_is_refused_not_read_as_1_or_0(risk, field):
    """``max_daily_loss = false`` read as 0: the loss halt off, and `config check` said ok."""
    with pytest.raises(ConfigurationError, match=f"{field}.*must be (a number|numbers)"):
        build_config({"executor": {"risk": risk}})


def test_true_or_false_for_an_exchange_number_is_refused_too():
    with pytest.raises(ConfigurationError, match=r"stale_after_s.*must be a number"):
        build_config({"gateway": {"feed": "exchange", "exchange": {"stale_after_s": True}}})


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("inproc://sig", "tcp:// or ipc://"),
        ("tcp://127.0.0.1", "tcp://HOST:PORT"),
        ("tcp://", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1:99999", "port 99999 is not 1-65535"),
        ("ipc://", "needs a path"),
        ("ipc:///" + "x" * 107, "at most 107"),
        ("ipc://@bus", "absolute path"),  # abstract: no permissions keep others out
        ("ipc://bus/signals", "absolute path"),  # read from each process's own folder
        ("tcp://*:5891", "tcp://HOST:PORT"),
        ("tcp://[::1]:5891", "tcp://HOST:PORT"),
        ("tcp://0.0.0.0:5891", "cannot be connected to"),
        ("tcp://0:5891", "is 0.0.0.0"),  # every interface, as the resolver reads it
        ("tcp://0x0:5891", "is 0.0.0.0"),
        ("tcp://000.0.0.0:5891", "is 0.0.0.0"),
    ],
)
def test_a_bus_address_no_runner_could_use_is_refused_naming_it(address, says):
    """inproc:// never reaches another process: a wire replay re-sent its signals for ever."""
    with pytest.raises(ConfigurationError, match=f"bus.signals_address.*{re.escape(says)}"):
        build_config({"bus": {"signals_address": address}})


@pytest.mark.parametrize(
    "other", ["tcp://localhost:6901", "tcp://127.0.0.1:6901", "tcp://127.1:6901"]
)
def test_two_bus_addresses_naming_one_endpoint_are_refused(other):
    bus = {"ticks_address": "tcp://127.0.0.1:6901", "signals_address": other}
    with pytest.raises(ConfigurationError, match="bus addresses must all differ"):
        build_config({"bus": bus})


def test_two_hosts_of_one_name_are_refused():
    hosts = [
        {"name": "a", "runners": ["gateway"], "telemetry_address": "tcp://127.0.0.1:7001"},
        {"name": "a", "runners": ["executor"], "telemetry_address": "tcp://127.0.0.1:7002"},
    ]
    with pytest.raises(ConfigurationError, match="hosts: names must differ"):
        build_config({"hosts": hosts})


@pytest.mark.parametrize(
    ("section", "rid", "says"),
    [
        ("executor", "", "must be non-empty"),
        ("gateway", ".gw", "not start with '.'"),
        ("strategies", "a b", "spaces"),
        ("strategies", "supervisor", "reserved"),
        ("strategies", "tap-1", "reserved"),
    ],
)
def test_a_runner_id_that_names_no_plain_file_or_a_reserved_key_is_refused(section, rid, says):
    """A strategy named "supervisor" would hold the key allowed to send kill-switch commands."""
    data = {"strategies": [{"id": rid}]} if section == "strategies" else {section: {"id": rid}}
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        build_config(data)


def test_the_kill_switch_config_of_a_broken_file_keeps_the_runners_ids_and_keys(tmp_path):
    """With CURVE on the keys are checked against the runners' ids: defaults failed it."""
    from workbench.config.loading import load_command_config
    from workbench.messaging.curve_keys import generate_keys

    names = ["gw", "exec-1", "mom-1", "supervisor"]
    keys = generate_keys(tmp_path / "keys", names)
    lines = ['run_id = "live"', "[security]", "curve = true", 'keys_dir = "keys"',
             "[security.public_keys]", *(f'"{n}" = "{k}"' for n, k in keys.items()),
             "[gateway]", 'id = "gw"', "[executor]", 'id = "exec-1"',
             "[executor.risk]", "max_order_qtyy = 1",  # the typo
             "[[strategies]]", 'id = "mom-1"']  # fmt: skip
    path = tmp_path / "live.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match="max_order_qtyy"):
        load_config(path)
    cfg = load_command_config(path)
    assert (cfg.run_id, cfg.gateway.id, cfg.executor.id) == ("live", "gw", "exec-1")
    assert [s.id for s in cfg.strategies] == ["mom-1"] and cfg.security.curve


def test_the_kill_switch_config_takes_the_environment_over_the_file(tmp_path, monkeypatch):
    """The file's command address won: a halt meant for another pipeline went to this one."""
    from workbench.config.loading import load_command_config

    path = tmp_path / "c.toml"
    path.write_text('run_id = "r"\n[bus]\ncommand_address = "tcp://127.0.0.1:5706"\n[x]\n')
    monkeypatch.setenv("WORKBENCH__BUS__COMMAND_ADDRESS", "tcp://127.0.0.1:5999")
    monkeypatch.setenv("WORKBENCH__RUN_ID", "other")
    cfg = load_command_config(path)
    assert (cfg.bus.command_address, cfg.run_id) == ("tcp://127.0.0.1:5999", "other")
    monkeypatch.setenv("WORKBENCH__BUS__COMMAND_ADDRESS", "bogus")  # not the file's instead
    with pytest.raises(ConfigurationError, match="WORKBENCH__BUS__COMMAND_ADDRESS"):
        load_command_config(path)
    # A section as JSON overrides its fields, the file's others stay (as load_config reads it).
    monkeypatch.delenv("WORKBENCH__BUS__COMMAND_ADDRESS")
    path.write_text(
        'run_id = "r"\n[bus]\nticks_address = "tcp://127.0.0.1:6801"\n'
        'command_address = "tcp://127.0.0.1:5706"\n[x]\n'
    )
    monkeypatch.setenv("WORKBENCH__BUS", '{"command_address": "tcp://127.0.0.1:5999"}')
    cfg = load_command_config(path)
    assert cfg.bus.command_address == "tcp://127.0.0.1:5999"
    assert cfg.bus.ticks_address == "tcp://127.0.0.1:6801"
    whole = path.with_name("whole.toml")
    whole.write_text(path.read_text().replace("[x]\n", ""))
    assert load_config(whole).bus == cfg.bus  # the same reading


def test_a_hosts_telemetry_address_that_is_a_bus_address_is_refused():
    hosts = [
        {"name": "a", "runners": ["gateway"], "telemetry_address": "tcp://localhost:5701"},
        {"name": "b", "runners": ["sr-1", "executor"], "telemetry_address": "tcp://b:5800"},
    ]
    with pytest.raises(ConfigurationError, match=r"hosts\[0\].telemetry_address: .* bus address"):
        build_config({"hosts": hosts})


def test_a_runner_on_no_host_is_refused():
    # Both hosts came up and waited for it for ever: no unit started it.
    hosts = [
        {"name": "a", "runners": ["gateway"], "telemetry_address": "tcp://a:5800"},
        {"name": "b", "runners": ["sr-1"], "telemetry_address": "tcp://b:5800"},
    ]
    with pytest.raises(ConfigurationError, match="hosts: executor is on no host"):
        build_config({"hosts": hosts})


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [("executor", "journal_path", "/tmp/j.sqlite"), ("runtime", "state_dir", "/tmp/state")],
)
def test_a_replay_with_a_fixed_journal_or_state_path_is_refused(section, field, value):
    # The second replay resumed the first's journal and skipped its signal ids as seen.
    replay = {"feed": "replay", "replay": {"path": "ticks.csv"}}
    with pytest.raises(ConfigurationError, match=f"{section}.{field}: .* each replay starts"):
        build_config({"gateway": replay, section: {field: value}})
    assert build_config({section: {field: value}})  # live: where the journal lives is yours
    ended = {"simulated": {"max_ticks": 100}}  # a run that ends: its end of stream stayed
    with pytest.raises(ConfigurationError, match=f"{section}.{field}: .* max_ticks starts"):
        build_config({"gateway": ended, section: {field: value}})


def test_config_check_names_a_journal_folder_and_a_state_file(tmp_path):
    """Each passed config check; the runner then crashed five times, naming neither."""
    (tmp_path / "j").mkdir()
    (tmp_path / "s").write_text("")
    cfg = build_config(
        {"executor": {"journal_path": "j"}, "runtime": {"state_dir": "s"}}, base_dir=tmp_path
    )
    problems = "\n".join(check_config(cfg))
    assert f"executor.journal_path: {tmp_path / 'j'} is a folder" in problems
    assert f"runtime.state_dir: {tmp_path / 's'} is a file" in problems


def test_a_heartbeat_timeout_not_above_the_interval_is_refused_at_load(tmp_path):
    """Every load path: `workbench up` never ran `check_config`, and killed healthy runners
    as hung, one after another, until their budgets were spent."""
    path = tmp_path / "hb.toml"
    path.write_text("[runtime]\nheartbeat_interval_s = 4.0\n")
    with pytest.raises(ConfigurationError) as e:
        load_config(path)
    assert "supervisor.heartbeat_timeout_s (2) must exceed runtime.heartbeat_interval_s (4)" in (
        str(e.value)
    )


@pytest.mark.parametrize("line", ['gateway = "simulated"', "gateway = 5", 'executor = "x"'])
def test_a_section_that_is_no_table_is_named_and_the_kill_switch_still_loads(tmp_path, line):
    """The secrets check walked into it: an AttributeError traceback, and no halt at all."""
    from workbench.config.loading import load_command_config

    path = tmp_path / "typo.toml"
    path.write_text(f'run_id = "live"\n{line}\n[bus]\ncommand_address = "tcp://127.0.0.1:5999"\n')
    section = line.split()[0]
    with pytest.raises(ConfigurationError, match=rf"typo.toml: {section}\b"):
        load_config(path)
    cfg = load_command_config(path)
    assert (cfg.run_id, cfg.bus.command_address) == ("live", "tcp://127.0.0.1:5999")


def test_a_secret_field_name_inside_a_string_is_no_leaked_secret():
    from workbench.exchanges.config import secrets_in_file

    assert secrets_in_file({"gateway": {"exchange": "has_api_key_in_it"}}, "f.toml") == []
    assert secrets_in_file({"gateway": {"exchange": {"api_key": "k"}}}, "f.toml")


def test_an_empty_replay_subscribers_list_is_refused_saying_to_leave_it_unset(tmp_path):
    # [] passed `config check`; the gateway then waited for nobody, sent every
    # tick before any strategy subscribed, and the replay hung.
    p = write(tmp_path, "[gateway.replay]\nsubscribers = []\n")
    with pytest.raises(ConfigurationError) as e:
        load_config(p)
    assert str(p) in str(e.value)
    assert "gateway.replay.subscribers: " in str(e.value)
    assert "must not be empty" in str(e.value)
    assert "leave it unset to wait for all strategies" in str(e.value)
    assert load_config(write(tmp_path, "[gateway.replay]\n")).replay_subscribers() == ["sr-1"]


@pytest.mark.parametrize(("symbols", "item"), [('[""]', "0 ('')"), ('["ABC", "  "]', "1 ('  ')")])
def test_an_empty_or_blank_simulated_symbol_is_refused_naming_the_field(tmp_path, symbols, item):
    # [""] passed `config check`: the feed made ticks for a symbol no condition can name.
    p = write(tmp_path, f"[gateway.simulated]\nsymbols = {symbols}\n")
    with pytest.raises(ConfigurationError) as e:
        load_config(p)
    assert str(p) in str(e.value)
    assert f"gateway.simulated.symbols: Value error, item {item} is empty or blank" in str(e.value)
