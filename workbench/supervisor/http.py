"""``GET /health`` (JSON, 200 or 503) and ``GET /metrics`` (Prometheus text).

Loopback by default. With ``supervisor.http_token`` set, every request must
carry ``Authorization: Bearer <token>`` (else 401), and the server may bind
any address, so a monitoring stack on another host can scrape it.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from workbench.supervisor.metrics import RunnerCollector

if TYPE_CHECKING:
    from workbench.supervisor.supervisor import Supervisor

log = structlog.get_logger()


class HealthServer:
    """A small threaded HTTP server over a `Supervisor`."""

    def __init__(
        self, supervisor: Supervisor, host: str, port: int, token: str | None = None
    ) -> None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(RunnerCollector(supervisor))
        expected = f"Bearer {token}".encode() if token else None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if expected is not None and not _authorized(self, expected):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="workbench"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    runners = {s["runner"]: _health_view(s) for s in supervisor.status()}
                    remote = supervisor.remote_status()
                    ok = bool(runners) and all(r["state"] == "running" for r in runners.values())
                    ok = ok and not any(r["stale"] for r in remote.values())
                    body = json.dumps(
                        {
                            "status": "ok" if ok else "degraded",
                            "run_id": supervisor.config.run_id,
                            "runners": runners,
                            **({"remote": remote} if remote else {}),
                        }
                    ).encode()
                    self._reply(200 if ok else 503, "application/json", body)
                elif path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                else:
                    self._reply(404, "application/json", b'{"error": "try /health or /metrics"}')

            def _reply(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # requests are not worth a log line each

        self._server = (_ServerV6 if ":" in host else ThreadingHTTPServer)((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="workbench-health", daemon=True
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


class _ServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _authorized(handler: BaseHTTPRequestHandler, expected: bytes) -> bool:
    got = (handler.headers.get("Authorization") or "").encode()
    return hmac.compare_digest(got, expected)


def _health_view(s: dict) -> dict:
    return {
        k: s[k]
        for k in (
            "role",
            "state",
            "pid",
            "uptime_s",
            "restarts",
            "heartbeat_age_s",
            "exit_code",
            "detail",
        )
    }
