"""`HealthServer` connections: an idle or half-sent request does not hold the server for ever."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from workbench.supervisor import http
from workbench.supervisor.http import HealthServer
from workbench.supervisor.status import RunnerState, RunnerStatus


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


def test_a_client_trickling_bytes_is_cut_at_the_deadline(monkeypatch):
    monkeypatch.setattr(http, "REQUEST_TIMEOUT_S", 5.0, raising=False)
    monkeypatch.setattr(http, "REQUEST_DEADLINE_S", 1.0, raising=False)
    server = HealthServer(list, "127.0.0.1", 0)
    server.start()
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        t0 = time.monotonic()
        slow.sendall(b"GET /health HTTP/1.1\r\n")
        cut = False
        while time.monotonic() - t0 < 4 and not cut:
            time.sleep(0.3)  # each byte well within the per-read timeout
            try:
                slow.sendall(b"X")
            except OSError:
                cut = True
        assert cut or closed_by_server(slow)
        assert time.monotonic() - t0 < 3  # before: kept open for as long as bytes came
    finally:
        slow.close()
        server.stop()


def test_connections_over_the_limit_are_closed_at_once_and_counted(monkeypatch):
    from workbench.telemetry import Telemetry

    monkeypatch.setattr(http, "MAX_CONNECTIONS", 2, raising=False)
    own = Telemetry()
    server = HealthServer(list, "127.0.0.1", 0, own=own)
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)  # both taken by their threads
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        t0 = time.monotonic()
        assert closed_by_server(extra) and time.monotonic() - t0 < 1
        extra.close()
        assert own.get("http_connections_refused") == 1
    finally:
        for s in idle:
            s.close()
    try:
        deadline = time.monotonic() + 5
        code = health_code_or_none(server)
        while code is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the idle ones' threads notice their close
            code = health_code_or_none(server)
        # (that answer's own thread may still count a moment: not asked a second time)
        assert code == 503  # served again once they are gone
    finally:
        server.stop()


def health_code_or_none(server: HealthServer) -> int | None:
    try:
        return health_code(server)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_a_client_gone_mid_answer_is_counted_not_printed_as_a_traceback(capfd):
    """socketserver printed ~23 lines of traceback to stderr per aborted scrape."""
    import struct

    from workbench.telemetry import Telemetry

    own = Telemetry()
    server = HealthServer(list, "127.0.0.1", 0, own=own)
    server.start()
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, before the answer is written
        deadline = time.monotonic() + 5
        while own.get("http_connections_aborted") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert own.get("http_connections_aborted") >= 1
        assert health_code(server) == 503  # and it serves on (no runners: 503)
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_one_client_address_cannot_take_every_connection(monkeypatch):
    # 32 idle connections from anywhere, before any token was read, locked the scraper out.
    monkeypatch.setattr(http, "MAX_PER_CLIENT", 2, raising=False)
    server = HealthServer(list, "127.0.0.1", 0)
    server.start()
    other = ("127.0.0.2", 0)  # another loopback address: another client
    idle = [socket.create_connection(("127.0.0.1", server.port), 5, other) for _ in range(2)]
    try:
        time.sleep(0.2)  # both taken by their threads
        extra = socket.create_connection(("127.0.0.1", server.port), 2, other)
        assert closed_by_server(extra)
        extra.close()
        assert health_code(server) == 503  # from 127.0.0.1: served (no runners: degraded)
    finally:
        for s in idle:
            s.close()
        server.stop()


def running(name: str) -> RunnerStatus:
    return RunnerStatus(runner=name, role="gateway", state=RunnerState.RUNNING, pid=1)


def health(server: HealthServer, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(f"{server.url}/health", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_health_is_503_while_the_supervisor_loop_stalls_or_after_it_ended():
    # A subscriber's callback blocking the loop left /health at 200, the runners frozen
    # "running" while none was watched (a SIGKILLed gateway among them).
    loop: list = [time.monotonic(), None]
    server = HealthServer(lambda: [running("gateway")], "127.0.0.1", 0, loop=lambda: tuple(loop))
    server.start()
    try:
        code, body = health(server)
        assert code == 200 and "supervisor" not in json.loads(body)
        loop[0] = time.monotonic() - http.LOOP_STALL_S - 1
        code, body = health(server)
        assert code == 503
        answer = json.loads(body)
        assert answer["status"] == "degraded" and answer["supervisor"]["loop"] == "stalled"
        assert answer["supervisor"]["stalled_s"] > http.LOOP_STALL_S
        loop[1] = RuntimeError("boom")
        code, body = health(server)
        assert (code, json.loads(body)["supervisor"]) == (
            503,
            {"loop": "ended", "error": "RuntimeError('boom')"},
        )
    finally:
        server.stop()


def test_head_answers_like_get_without_a_body():
    server = HealthServer(lambda: [running("gateway")], "127.0.0.1", 0)
    server.start()
    try:
        assert health(server, "HEAD") == (200, b"")
    finally:
        server.stop()
