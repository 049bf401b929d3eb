"""``GET /health`` (JSON, 200 or 503) and ``GET /metrics`` (Prometheus text).

Loopback by default. With ``supervisor.http_token`` set, every request must
carry ``Authorization: Bearer <token>`` (else 401), and the server may bind
any address, so a monitoring stack on another host can scrape it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from workbench.supervisor.metrics import RunnerCollector
from workbench.supervisor.status import StatusSource
from workbench.telemetry import Telemetry

log = structlog.get_logger()
# How often the serving thread looks for a stop request: `stop` waits up to this long.
SHUTDOWN_POLL_S = 0.05
# A connection that sends (or takes) nothing for this long is closed: an idle
# client must not hold a thread and a file descriptor for ever.
REQUEST_TIMEOUT_S = 2.0
# Nor may one that trickles a byte at a time: each connection is cut this long
# after it opened, answered or not (one request per connection: HTTP/1.0).
REQUEST_DEADLINE_S = 5.0
# Connections served at once (each holds a thread); more are closed at once and
# counted (`http_connections_refused`): a flood cannot take the supervisor's threads.
MAX_CONNECTIONS = 32
# Of which one client address may hold this many: idle connections from one host
# (before any token is read) cannot lock a scraper on another out.
MAX_PER_CLIENT = 8
# /health answers 503 when the supervisor's loop has not run for this long (a
# subscriber's callback blocking it, say): no runner is watched or restarted then.
LOOP_STALL_S = 10.0

LoopState = Callable[[], tuple[float, BaseException | None]]
"""The supervisor loop's last run (monotonic, 0 before its first) and what ended it, if anything."""

RemoteSource = Callable[[], dict[str, dict[str, Any]]]


class HealthServer:
    """A small threaded HTTP server over the runners' statuses.

    Args:
        status: The runners' statuses now (`Supervisor.status`).
        host: Address to bind.
        port: Port to bind (0: a free one).
        token: Bearer token every request must carry, or None.
        remote: The remote runners' status (`Supervisor.remote_status`), if any.
        run_id: Shown in ``/health``.
        own: The supervisor's own counters, exported as runner ``supervisor``.
        loop: The supervisor loop's state: ``/health`` is 503 while it stalls or after it ended.
    """

    def __init__(
        self,
        status: StatusSource,
        host: str,
        port: int,
        token: str | None = None,
        *,
        remote: RemoteSource | None = None,
        run_id: str = "",
        own: Telemetry | None = None,
        loop: LoopState | None = None,
    ) -> None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(RunnerCollector(status, own))
        remote_of: RemoteSource = remote or dict
        expected = f"Bearer {token}".encode() if token else None

        deadline_s = REQUEST_DEADLINE_S

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S  # on each socket operation; then the connection closes

            def setup(self) -> None:
                super().setup()
                self._deadline = threading.Timer(deadline_s, self._cut)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def finish(self) -> None:
                self._deadline.cancel()
                super().finish()

            def do_GET(self) -> None:
                if expected is not None and not _authorized(self, expected):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="workbench"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    statuses = status()
                    runners = {s.runner: s.health() for s in statuses}
                    remote = remote_of()
                    ok = bool(statuses) and all(s.is_running for s in statuses)
                    ok = ok and not any(r["stale"] for r in remote.values())
                    stalled = loop_problem(loop) if loop is not None else None
                    ok = ok and not stalled
                    body = json.dumps(
                        {
                            "status": "ok" if ok else "degraded",
                            "run_id": run_id,
                            "runners": runners,
                            **({"remote": remote} if remote else {}),
                            **({"supervisor": stalled} if stalled else {}),
                        }
                    ).encode()
                    self._reply(200 if ok else 503, "application/json", body)
                elif path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                else:
                    self._reply(404, "application/json", b'{"error": "try /health or /metrics"}')

            do_HEAD = do_GET  # a load balancer's check: the same answer, no body

            def _reply(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # requests are not worth a log line each

        server = _ServerV6 if ":" in host else _Server
        self._server = server((host, port), Handler, MAX_CONNECTIONS, own)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="workbench-health",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``limit`` at once; the rest closed at once."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type, limit: int, own: Telemetry | None
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(limit)
        self._own = own
        self._lock = threading.Lock()  # the counts below, and `own`'s counters
        self._per_client: dict[str, int] = {}

    def count(self, name: str) -> None:
        """Add 1 to the supervisor's counter ``name`` (from any of the server's threads)."""
        if self._own is not None:
            with self._lock:
                self._own.inc(name)

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0])
        with self._lock:
            held = self._per_client.get(client, 0)
            if held < MAX_PER_CLIENT and self._slots.acquire(blocking=False):
                self._per_client[client] = held + 1
                held = -1
        if held >= 0:
            self.count("http_connections_refused")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # its thread releases the slot
        except BaseException:
            self._release(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(str(client_address[0]))

    def _release(self, client: str) -> None:
        with self._lock:
            left = self._per_client.pop(client, 1) - 1
            if left:
                self._per_client[client] = left
        self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer (a scrape's timeout) is counted; anything else logged.

        socketserver printed a traceback to stderr for each: under systemd, 23 raw lines
        in the journal per aborted scrape.
        """
        e = sys.exc_info()[1]
        if isinstance(e, ConnectionError | TimeoutError):
            self.count("http_connections_aborted")
            return
        log.error("http_request_failed", client=str(client_address[0]), error=repr(e),
                  exc_info=True)  # fmt: skip


class _ServerV6(_Server):
    address_family = socket.AF_INET6


def _authorized(handler: BaseHTTPRequestHandler, expected: bytes) -> bool:
    got = (handler.headers.get("Authorization") or "").encode()
    return hmac.compare_digest(got, expected)


def loop_problem(loop: LoopState) -> dict[str, Any] | None:
    """What ``/health`` says of a supervisor loop that ended or stalls; None when it runs."""
    beat, error = loop()
    if error is not None:
        return {"loop": "ended", "error": repr(error)[:200]}
    stalled = time.monotonic() - beat
    if beat and stalled > LOOP_STALL_S:
        return {"loop": "stalled", "stalled_s": round(stalled, 1)}
    return None
