"""Binding: an ipc address a live process listens on is busy; a left-over file is not."""

from __future__ import annotations

import socket

import pytest
import zmq

from workbench.config import BusConfig
from workbench.messaging.binding import AddressInUse, address_in_use, bind


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def test_an_ipc_address_is_in_use_only_while_someone_listens(tmp_path, ctx):
    address = f"ipc://{tmp_path / 'sig'}"
    assert not address_in_use(address)  # no file
    holder = ctx.socket(zmq.PULL)
    holder.bind(address)
    assert address_in_use(address)
    holder.close(linger=0)
    stale = tmp_path / "stale"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))  # a file left by a process that died: nobody listens
    assert stale.exists() and not address_in_use(f"ipc://{stale}")


def test_a_bind_never_takes_a_live_ipc_address_over(tmp_path, ctx):
    # ZeroMQ would remove the path and bind it anew: the running process then
    # keeps a socket nobody can reach, and the newcomer gets all its peers.
    address = f"ipc://{tmp_path / 'sig'}"
    holder = ctx.socket(zmq.PULL)
    holder.bind(address)
    newcomer = ctx.socket(zmq.PULL)
    with pytest.raises(AddressInUse, match="already in use"):
        bind(newcomer, address, BusConfig(bind_retry_attempts=2, bind_retry_max_wait_ms=10))
    push = ctx.socket(zmq.PUSH)
    push.connect(address)
    push.send(b"still mine")
    assert holder.poll(5_000) and holder.recv() == b"still mine"


def test_a_bind_takes_an_ipc_address_its_dead_owner_left(tmp_path, ctx):
    path = tmp_path / "sig"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
    sock = ctx.socket(zmq.PULL)
    bind(sock, f"ipc://{path}", BusConfig(bind_retry_attempts=1))
    assert address_in_use(f"ipc://{path}")
