"""CURVE handshakes seen from both ends: the binder's key list, and refusals counted and logged.

A binder (`KeyList`, its ZAP handler's provider) names the key it refused and
whose it is. `HandshakeMonitor` watches sockets on a thread of its own: a
binder's refusals are counted (``curve_handshakes_refused``) and logged once
per burst; a refusal of one of our connections (``curve_handshakes_refused_by_peer``)
is kept, because libzmq never connects again after one (see
`workbench.messaging.security.check_peers`).
"""

from __future__ import annotations

import queue
import threading

import structlog
import zmq

from workbench.telemetry import BurstLog, Telemetry

log = structlog.get_logger()

REFUSED_COUNTER = "curve_handshakes_refused"
REFUSED_BY_PEER_COUNTER = "curve_handshakes_refused_by_peer"
_REFUSED_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_REASONS: dict[int, str] = {  # keyed by int: monitor messages carry the event as int
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "key not listed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol (no CURVE, or wrong server key)",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
}


class KeyList:
    """A ZAP credentials provider: allowed when the client's z85 key is listed.

    A refusal is logged (once per burst) with the key and whose it is in
    ``security.public_keys``: the monitor's event names neither.
    """

    def __init__(self, domain: str, keys: set[str], names: dict[str, str], burst: BurstLog) -> None:
        self._domain = domain
        self._keys = {k.encode() for k in keys}
        self._names = names
        self._burst = burst

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self._keys:
            return True
        text = key.decode(errors="replace")
        self._burst(
            socket=self._domain,
            public_key=text,
            key_of=self._names.get(text, "no one in security.public_keys"),
        )
        return False


class HandshakeMonitor:
    """Counts and logs the refused handshakes of server sockets, on its own thread."""

    def __init__(self, telemetry: Telemetry, burst: BurstLog) -> None:
        self._telemetry = telemetry
        self._burst = burst
        # (domain, endpoint) of our connections a binder refused (ZAP: key not listed), until
        # one succeeds there or its socket closes. A dict: read (copied) from other threads.
        self.refused_by_peer: dict[tuple[str, str], None] = {}
        self._new: queue.Queue[tuple[zmq.Socket[bytes], str, bool]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curve-monitor", daemon=True)
        self._thread.start()

    def add(self, sock: zmq.Socket, domain: str, *, client: bool = False) -> None:
        # Created here, then owned by the monitor thread alone (handed over by the queue).
        events = _REFUSED_EVENTS | zmq.EVENT_MONITOR_STOPPED
        if client:
            events |= zmq.EVENT_HANDSHAKE_SUCCEEDED
        self._new.put((sock.get_monitor_socket(events), domain, client))

    def _run(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        poller = zmq.Poller()
        mons: dict[zmq.Socket[bytes], tuple[str, bool]] = {}
        refused: dict[zmq.Socket[bytes], set[tuple[str, str]]] = {}  # what each client's added
        try:
            while not self._stop.is_set():
                while not self._new.empty():
                    mon, domain, client = self._new.get()
                    mons[mon] = domain, client
                    poller.register(mon, zmq.POLLIN)
                ready = dict(poller.poll(100))
                for mon in [m for m in mons if m in ready]:
                    msg = recv_monitor_message(mon)
                    domain, client = mons[mon]
                    endpoint = msg["endpoint"].decode(errors="replace")
                    event = msg["event"]
                    if event == zmq.EVENT_MONITOR_STOPPED:  # its socket closed
                        poller.unregister(mon)
                        for key in refused.pop(mon, ()):
                            self.refused_by_peer.pop(key, None)
                        del mons[mon]
                        mon.close(linger=0)
                    elif client and event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        self.refused_by_peer.pop((domain, endpoint), None)
                        refused.get(mon, set()).discard((domain, endpoint))
                    elif client and event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                        # Only a ZAP refusal: libzmq connects again after the other failures.
                        self._telemetry.inc(REFUSED_BY_PEER_COUNTER)
                        if (domain, endpoint) not in self.refused_by_peer:
                            self.refused_by_peer[domain, endpoint] = None
                            refused.setdefault(mon, set()).add((domain, endpoint))
                            log.error("curve_refused_by_peer", socket=domain, endpoint=endpoint)
                    elif not client and event & _REFUSED_EVENTS:
                        self._telemetry.inc(REFUSED_COUNTER)
                        self._burst(
                            socket=domain,
                            endpoint=endpoint,
                            reason=_REASONS.get(event, "handshake failed"),
                            total_refused=self._telemetry.get(REFUSED_COUNTER),
                        )
        finally:
            for mon in mons:
                mon.close(linger=0)
            while not self._new.empty():
                self._new.get()[0].close(linger=0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
