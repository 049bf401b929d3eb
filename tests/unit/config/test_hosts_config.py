"""[[hosts]]: a pipeline over several hosts, validated with the field named."""

from __future__ import annotations

import pytest

from workbench.config import build_config
from workbench.exceptions import ConfigurationError
from workbench.supervisor.hosts import find_host, host_config, remote_dependencies

HOSTS = [
    {"name": "exchange", "runners": ["gateway", "executor"], "telemetry_address": "tcp://a:1"},
    {"name": "compute", "runners": ["sr-1"], "telemetry_address": "tcp://b:1"},
]


def test_a_host_is_found_by_its_runners_and_binds_its_own_telemetry():
    cfg = build_config({"hosts": HOSTS})
    assert find_host(cfg, ["executor", "gateway"]).name == "exchange"
    assert host_config(cfg, ["sr-1"]).bus.telemetry_address == "tcp://b:1"
    assert cfg.bus.telemetry_address != "tcp://b:1"  # the original is untouched


def test_the_strategy_host_depends_on_the_remote_binders():
    cfg = build_config({"hosts": HOSTS})
    assert remote_dependencies(cfg, ["sr-1"]) == {"gateway": "gateway", "executor": "executor"}
    assert remote_dependencies(cfg, ["gateway", "executor"]) == {}
    replay = build_config({"hosts": HOSTS, "gateway": {"feed": "replay"}})
    assert remote_dependencies(replay, ["gateway", "executor"]) == {"sr-1": "strategy"}


def test_without_hosts_nothing_is_remote():
    assert remote_dependencies(build_config({}), ["sr-1"]) == {}


@pytest.mark.parametrize(
    ("hosts", "needle"),
    [
        (
            [{**HOSTS[0], "runners": ["gateway", "nope"]}],
            "hosts[0].runners: no runner named 'nope'",
        ),
        ([HOSTS[0], {**HOSTS[1], "runners": ["gateway"]}], "is on host 'exchange' too"),
        ([HOSTS[0], {**HOSTS[1], "telemetry_address": "tcp://a:1"}], "must differ"),
        ([{**HOSTS[0], "telemetry_address": "http://x"}], "hosts.0.telemetry_address"),
    ],
)
def test_bad_hosts_are_config_errors_naming_the_field(hosts, needle):
    with pytest.raises(ConfigurationError) as e:
        build_config({"hosts": hosts}, source="pipe.toml")
    assert needle in str(e.value) and "pipe.toml" in str(e.value)
