"""The shared test helpers in tests/helpers.py."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest
from helpers import (
    FREE_PORT_RANGE,
    free_port,
    make_config,
    pid_alive,
    pid_exists,
    port_slice,
    wait_until,
)


def test_wait_until_returns_once_the_predicate_holds():
    t0 = time.monotonic()
    wait_until(lambda: time.monotonic() - t0 > 0.05, 5, "50 ms")


def test_wait_until_fails_naming_what_it_waited_for():
    with pytest.raises(AssertionError, match=r"after 0.05 s waiting for the moon"):
        wait_until(lambda: False, 0.05, "the moon")


def test_free_port_is_below_the_ephemeral_range():
    assert FREE_PORT_RANGE[0] <= free_port() < FREE_PORT_RANGE[1]


def test_free_port_draws_a_different_port_each_time():
    assert len({free_port() for _ in range(20)}) == 20


def test_parallel_workers_draw_ports_from_disjoint_slices():
    slices = [port_slice(f"gw{i}", "4") for i in range(4)]
    assert slices[0][0] == FREE_PORT_RANGE[0] and slices[-1][1] <= FREE_PORT_RANGE[1]
    for (_, hi), (lo, _) in itertools.pairwise(slices):
        assert hi <= lo
    assert port_slice("", "") == FREE_PORT_RANGE  # not under xdist: the whole range


def test_a_zombie_exists_but_is_not_alive():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: not pid_alive(p.pid), 10, "the child to exit")
    assert pid_exists(p.pid)  # not reaped yet: a zombie still answers kill(pid, 0)
    p.wait()
    assert not pid_exists(p.pid)


def test_make_config_puts_the_bus_under_tmp_path(tmp_path):
    cfg = make_config(tmp_path, run_id="x")
    assert cfg.run_id == "x"
    assert cfg.bus.ticks_address == f"ipc://{tmp_path}/ipc/ticks"
