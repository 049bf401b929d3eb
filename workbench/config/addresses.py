"""ZeroMQ addresses in a config: checked before any runner binds or connects to one.

Runners are separate processes: ``tcp://HOST:PORT`` (a port 1-65535; ``*``
binds every interface) and ``ipc://PATH`` (at most 107 bytes, a Unix
socket's limit) reach across them, ``inproc://`` does not, and a runner would
wait for ever on it.
"""

from __future__ import annotations

import re

_TCP = re.compile(r"^tcp://(\*|\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+):(\d+)$")
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
_ANY = {"*", "0.0.0.0", "[::]"}
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
        if len(path.encode()) > IPC_MAX_BYTES:
            raise ValueError(f"ipc path is {len(path.encode())} bytes; at most {IPC_MAX_BYTES}")
        return v
    if v.startswith("tcp://"):
        m = _TCP.match(v)
        if m is None:
            raise ValueError("must be tcp://HOST:PORT (HOST a name, an IP or *)")
        if not 1 <= int(m.group(2)) <= 65535:
            raise ValueError(f"port {m.group(2)} is not 1-65535")
        return v
    raise ValueError("must start with tcp:// or ipc:// (runners are separate processes)")


def endpoint(v: str) -> str:
    """What two addresses must not share: a loopback name is its IP, a wildcard every host."""
    m = _TCP.match(v)
    if m is None:
        return v
    host = m.group(1).lower()
    host = "127.0.0.1" if host in _LOOPBACK else "*" if host in _ANY else host
    return f"tcp://{host}:{int(m.group(2))}"


def clashing(addresses: list[str]) -> list[str]:
    """The addresses among ``addresses`` that name the same endpoint as another."""
    keys = [endpoint(a) for a in addresses]
    ports = [k.rsplit(":", 1)[1] if k.startswith("tcp://") else None for k in keys]
    out = []
    for i, (k, port) in enumerate(zip(keys, ports, strict=True)):
        for j, (k2, port2) in enumerate(zip(keys, ports, strict=True)):
            if i == j:
                continue
            wildcard = port is not None and port == port2 and "tcp://*:" in (k[:8], k2[:8])
            if k == k2 or wildcard:
                out.append(addresses[i])
                break
    return out
