"""ZeroMQ addresses in a config: checked before any runner binds or connects to one.

Runners are separate processes: ``tcp://HOST:PORT`` (a port 1-65535) and
``ipc://PATH`` (at most 107 bytes, a Unix socket's limit) reach across them,
``inproc://`` does not, and a runner would wait for ever on it. One runner
binds an address and the others connect to it, so HOST must be one they can
connect to: not ``*`` or ``0.0.0.0``, and not IPv6 (the sockets do not enable it).
"""

from __future__ import annotations

import re
import socket

_TCP = re.compile(r"^tcp://([^:/\s\[\]*]+):(\d+)$")
_LOOPBACK = {"localhost", "127.0.0.1"}
IPC_MAX_BYTES = 107


def check_address(v: str) -> str:
    """``v`` if it is a usable ``tcp://`` or ``ipc://`` address.

    Raises:
        ValueError: what is wrong with it.
    """
    if v.startswith("ipc://"):
        path = v[len("ipc://") :]
        if not path:
            raise ValueError("ipc:// needs a path")
        if not path.startswith("/"):  # "@name": Linux's abstract namespace
            raise ValueError(
                "ipc:// needs an absolute path (ipc:///folder/name): a relative one is read "
                "from each process's folder, and an abstract one (@) has no permissions to "
                "keep other users out"
            )
        if len(path.encode()) > IPC_MAX_BYTES:
            raise ValueError(f"ipc path is {len(path.encode())} bytes; at most {IPC_MAX_BYTES}")
        return v
    if v.startswith("tcp://"):
        m = _TCP.match(v)
        if m is None:
            raise ValueError("must be tcp://HOST:PORT (HOST a name or an IPv4 address)")
        if _ipv4(m.group(1)) == "0.0.0.0":  # "0", "0x0", "000.0.0.0" too: every interface
            raise ValueError(
                f"{m.group(1)} is 0.0.0.0, which cannot be connected to: name the host the "
                "others reach"
            )
        if not 1 <= int(m.group(2)) <= 65535:
            raise ValueError(f"port {m.group(2)} is not 1-65535")
        return v
    raise ValueError("must start with tcp:// or ipc:// (runners are separate processes)")


def endpoint(v: str) -> str:
    """What two addresses must not share (a loopback name is its IP)."""
    m = _TCP.match(v)
    if m is None:
        return v
    return f"tcp://{tcp_host(v)}:{int(m.group(2))}"


def tcp_host(v: str) -> str | None:
    """The host of a ``tcp://`` address, a loopback name or any IPv4 spelling as its IP."""
    m = _TCP.match(v)
    if m is None:
        return None
    host = m.group(1).lower()
    return "127.0.0.1" if host in _LOOPBACK else _ipv4(host) or host  # "127.1" is 127.0.0.1


def is_loopback(v: str) -> bool:
    """A ``tcp://`` address on this machine's loopback (127.0.0.0/8, ``localhost``)."""
    return (tcp_host(v) or "").startswith("127.")


def _ipv4(host: str) -> str | None:
    """``host`` as a dotted IPv4 address if it is one in any spelling the resolver takes."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def clashing(addresses: list[str]) -> list[str]:
    """The addresses among ``addresses`` that name the same endpoint as another."""
    keys = [endpoint(a) for a in addresses]
    return [a for a, k in zip(addresses, keys, strict=True) if keys.count(k) > 1]
