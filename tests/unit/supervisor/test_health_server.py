"""`HealthServer` connections: an idle or half-sent request does not hold the server for ever."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from workbench.supervisor import http
from workbench.supervisor.http import HealthServer


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (EOF or reset); waits up to the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def health_code(server: HealthServer) -> int:
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_idle_and_half_sent_connections_are_closed_after_the_request_timeout(monkeypatch):
    monkeypatch.setattr(http, "REQUEST_TIMEOUT_S", 0.5, raising=False)
    server = HealthServer(list, "127.0.0.1", 0)
    server.start()
    opened: list[socket.socket] = []
    try:
        for _ in range(3):  # connected, never a byte sent
            opened.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        half = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        opened.append(half)
        half.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # headers never end
        t0 = time.monotonic()
        assert all(closed_by_server(s) for s in opened)  # before: recv timed out after 5 s
        assert time.monotonic() - t0 < 3
        assert health_code(server) == 503  # it still answers (no runners: degraded)
    finally:
        for s in opened:
            s.close()
        server.stop()
