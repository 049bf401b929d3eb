"""`check_config` finds what a runner would refuse at start: feeds, folders, CURVE keys."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import make_config

from workbench.config import check_config
from workbench.messaging.curve_keys import generate_keys

MEMBERS = ["gateway", "executor", "sr-1", "supervisor"]


def exchange_config(tmp_path: Path, **exchange: object):
    return make_config(
        tmp_path, gateway={"feed": "exchange", "exchange": {"symbols": ["BTC/USDT"], **exchange}}
    )


def test_an_exchange_feed_that_would_publish_nothing_is_named(tmp_path):
    problems = check_config(exchange_config(tmp_path, trades=False, bids_asks=False))
    assert any(
        "gateway.exchange.trades: trades and bids_asks are both false" in p for p in problems
    ), problems


def test_an_exchange_ccxt_does_not_have_is_named(tmp_path):
    problems = check_config(exchange_config(tmp_path, exchange="notanexchange"))
    assert any(
        "gateway.exchange.exchange: ccxt has no WebSocket exchange 'notanexchange'" in p
        for p in problems
    ), problems


def test_a_good_exchange_feed_passes(tmp_path):
    assert check_config(exchange_config(tmp_path, bids_asks=True)) == []


def test_a_run_folder_under_a_file_is_named(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    cfg = make_config(tmp_path, runtime={"run_dir": str(tmp_path / "taken" / "runs")})
    problems = check_config(cfg)
    assert any(
        "runtime.run_dir: cannot create the run folder" in p and "taken is a file" in p
        for p in problems
    ), problems


def curve(tmp_path: Path, names: list[str] = MEMBERS, **security: object):
    keys = tmp_path / "keys"
    publics = generate_keys(keys, names)
    sec = {"curve": True, "keys_dir": str(keys), "public_keys": publics, **security}
    return make_config(tmp_path, security=sec), keys


def test_curve_keys_that_load_and_match_pass(tmp_path):
    cfg, _ = curve(tmp_path)
    assert check_config(cfg) == []


def test_a_missing_keys_dir_is_named(tmp_path):
    cfg, _ = curve(tmp_path, keys_dir=str(tmp_path / "nowhere"))
    problems = check_config(cfg)
    assert any("security.keys_dir" in p and "nowhere is not a folder" in p for p in problems)


def test_a_secret_that_does_not_match_its_public_key_is_named(tmp_path):
    cfg, keys = curve(tmp_path)
    other = generate_keys(tmp_path / "other", ["executor"])
    assert other["executor"] != cfg.security.public_keys["executor"]
    (keys / "executor.key_secret").write_bytes(
        (tmp_path / "other/executor.key_secret").read_bytes()
    )
    problems = check_config(cfg)
    assert problems == [
        f"{cfg.source}: security.public_keys.executor: does not match the secret key in "
        f"{keys / 'executor.key_secret'}"
    ]


def test_a_secret_key_file_others_can_read_is_named(tmp_path):
    cfg, keys = curve(tmp_path)
    (keys / "gateway.key_secret").chmod(0o644)
    problems = check_config(cfg)
    assert len(problems) == 1 and "must be 0600" in problems[0], problems


def test_another_hosts_secrets_need_not_be_here(tmp_path):
    """On several hosts each keeps only its own runners' secret keys."""
    cfg, keys = curve(tmp_path)
    (keys / "executor.key_secret").unlink()
    (keys / "sr-1.key_secret").unlink()
    assert check_config(cfg) == []


def test_secrets_from_the_environment_need_no_keys_dir(tmp_path, monkeypatch):
    cfg, keys = curve(tmp_path, keys_dir=str(tmp_path / "nowhere"))
    from workbench.messaging.security import secret_env_name

    for name in MEMBERS:
        text = (keys / f"{name}.key_secret").read_text()
        secret = text.split('secret-key = "')[1].split('"')[0]
        monkeypatch.setenv(secret_env_name(name), secret)
    assert check_config(cfg) == []


def test_a_keys_dir_this_user_cannot_read_is_named(tmp_path, monkeypatch):
    cfg, keys = curve(tmp_path)

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "listdir", refuse)  # root reads any folder: as another user would
    assert check_config(cfg) == [
        f"{cfg.source}: security.keys_dir: cannot read {keys}: Permission denied"
    ]


def test_a_live_recorder_folder_under_a_file_is_named(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    cfg = make_config(tmp_path, recorder={"enabled": True, "path": str(tmp_path / "taken/ticks")})
    problems = check_config(cfg)
    assert any(
        "recorder.path: cannot create the recorder's folder" in p and "taken is a file" in p
        for p in problems
    ), problems


def test_a_loopback_bus_address_with_hosts_on_several_machines_is_named(tmp_path):
    # The README's two-host config left command_address at 127.0.0.1: `workbench halt`
    # on the compute host connected to its own loopback and found no executor.
    bus = {f"{n}_address": f"tcp://10.0.0.1:57{i:02d}" for i, n in
           enumerate(("ticks", "signals", "events", "control"))}  # fmt: skip
    hosts = [
        {"name": "exchange", "runners": ["gateway", "executor"],
         "telemetry_address": "tcp://10.0.0.1:5705"},
        {"name": "compute", "runners": ["sr-1"], "telemetry_address": "tcp://10.0.0.2:5705"},
    ]  # fmt: skip
    cfg = make_config(tmp_path, bus=bus | {"command_address": "tcp://127.0.0.1:5706"},
                      hosts=hosts)  # fmt: skip
    assert [p for p in check_config(cfg) if "loopback" in p] == [
        f"{cfg.source}: bus.command_address: tcp://127.0.0.1:5706 is loopback, but [[hosts]] "
        "are on several machines: the others cannot reach it; give the binding host's address"
    ]
    fixed = make_config(tmp_path, bus=bus | {"command_address": "tcp://10.0.0.1:5706"},
                        hosts=hosts)  # fmt: skip
    assert not [p for p in check_config(fixed) if "loopback" in p]
