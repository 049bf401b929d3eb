"""Binding ZeroMQ sockets: retries on a busy address, and probes for one.

A bind that finds its address in use is retried with exponential backoff
(tenacity) before a clear `AddressInUse`. An ipc address counts as in use
while a process listens on it: ZeroMQ itself would take the path over.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import structlog
import zmq

from workbench.config import BusConfig
from workbench.exceptions import TemporaryError

log = structlog.get_logger()


class AddressInUse(TemporaryError):
    """A bind kept failing because another process holds the address."""


def ensure_ipc_dir(address: str) -> None:
    """Create the folder of an ipc address's socket file (private to this user)."""
    if address.startswith("ipc://"):
        Path(address[len("ipc://") :]).parent.mkdir(mode=0o700, parents=True, exist_ok=True)


BIND_FIRST_WAIT_S = 0.02  # the first back-off; tenacity doubles it from there


def bind(sock: zmq.Socket, address: str, bus: BusConfig) -> None:
    """Bind with retries on address-in-use.

    Raises:
        AddressInUse: still in use after ``bus.bind_retry_attempts`` tries.
    """
    ensure_ipc_dir(address)

    def in_use(e: BaseException) -> bool:
        return isinstance(e, zmq.ZMQError) and e.errno == zmq.EADDRINUSE

    def busy(e: zmq.ZMQError) -> Exception:
        if in_use(e):
            return AddressInUse(
                f"{address}: address already in use after {bus.bind_retry_attempts} attempts "
                f"over {time.monotonic() - started:.1f} s; is another run using it?"
            )
        return TemporaryError(f"{address}: cannot bind: {e}")

    def bind_once(address: str) -> None:
        if address.startswith("ipc://") and ipc_in_use(address):  # bind would take it over
            raise zmq.ZMQError(zmq.EADDRINUSE)
        sock.bind(address)

    started = time.monotonic()
    try:
        bind_once(address)  # the usual case: free at once
        return
    except zmq.ZMQError as e:
        if not in_use(e) or bus.bind_retry_attempts <= 1:
            raise busy(e) from e
    # Busy: retry with backoff. tenacity (it imports tornado: 2 MB) loads only now.
    import tenacity

    log.warning("bind_retrying", address=address, attempt=1)
    time.sleep(min(BIND_FIRST_WAIT_S, bus.bind_retry_max_wait_ms / 1000))
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(in_use),
        wait=tenacity.wait_exponential(multiplier=0.02, max=bus.bind_retry_max_wait_ms / 1000),
        stop=tenacity.stop_after_attempt(bus.bind_retry_attempts - 1),
        before_sleep=lambda rs: log.warning(
            "bind_retrying", address=address, attempt=rs.attempt_number + 1
        ),
        reraise=True,
    )
    try:
        retrying(bind_once, address)
    except zmq.ZMQError as e:
        raise busy(e) from e


def address_in_use(address: str) -> bool:
    """Whether a live process is bound to the tcp or ipc ``address`` now."""
    if address.startswith("ipc://"):
        return ipc_in_use(address)
    if not address.startswith("tcp://"):
        return False
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(address)
    except zmq.ZMQError as e:
        return e.errno == zmq.EADDRINUSE
    finally:
        sock.close()
    return False


def ipc_in_use(address: str) -> bool:
    """Whether a process listens on the ipc ``address`` (its socket file takes a connect).

    ZeroMQ binds an ipc path that is taken by removing it: the running process
    keeps its socket, unreachable, and the new one gets every peer. A file that
    refuses connections is left over from a process that died, free to bind.
    """
    path = address[len("ipc://") :]
    if path.startswith("@"):  # Linux abstract namespace
        path = "\0" + path[1:]
    elif not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:  # not ours to take (permissions), or not a socket: in use
            return True
    return True
