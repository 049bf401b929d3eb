"""The supervisor's two inbound sockets: heartbeats (bound) and executor events.

Both are `ZmqReceiver`s, so bad frames are counted per socket
(``bad_frames_by_socket:telemetry`` / ``:events``) and logged once per burst,
as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable

import zmq

from workbench.config import WorkbenchConfig
from workbench.messaging.codec import Envelope
from workbench.messaging.zmq_adapters import ZmqReceiver
from workbench.telemetry import Telemetry

DRAIN_MAX = 1000  # messages taken per socket per poll
# A local bus: reconnect the events subscription fast, or a short replay can end unseen.
EVENTS_RECONNECT_MS = (20, 200)

Handler = Callable[[Envelope], None]


class Inbox:
    """Heartbeats in on ``bus.telemetry_address``; ``eos`` and ``alert`` events in."""

    def __init__(self, ctx: zmq.Context, config: WorkbenchConfig, telemetry: Telemetry) -> None:
        bus, interval = config.bus, config.runtime.bad_frame_log_interval_s
        self.heartbeats = ZmqReceiver(
            ctx, zmq.SUB, bus.telemetry_address, bus, telemetry, bind_it=True,
            subscriptions=[b"hb/"], rcvhwm=0,  # heartbeats are small: queue, never drop them
            name="telemetry", bad_frame_log_interval_s=interval,
        )  # fmt: skip
        fast = bus.model_copy(
            update={
                "reconnect_interval_ms": EVENTS_RECONNECT_MS[0],
                "reconnect_interval_max_ms": EVENTS_RECONNECT_MS[1],
            }
        )
        try:
            self.events = ZmqReceiver(
                ctx, zmq.SUB, bus.events_address, fast, telemetry, bind_it=False,
                subscriptions=[b"evt/eos/", b"evt/alert/"], name="events",
                bad_frame_log_interval_s=interval,
            )  # fmt: skip
        except Exception:
            self.heartbeats.close()
            raise
        self._poller = zmq.Poller()
        self._poller.register(self.heartbeats.sock, zmq.POLLIN)
        self._poller.register(self.events.sock, zmq.POLLIN)

    def poll(self, timeout_ms: int, on_heartbeat: Handler, on_event: Handler) -> None:
        """Wait up to ``timeout_ms`` for input, then hand over what is queued."""
        ready = dict(self._poller.poll(timeout_ms))
        if self.heartbeats.sock in ready:
            _drain(self.heartbeats, on_heartbeat)
        if self.events.sock in ready:
            _drain(self.events, on_event)


def _drain(receiver: ZmqReceiver, handle: Handler) -> None:
    for _ in range(DRAIN_MAX):
        env = receiver.recv(0)
        if env is None:
            return
        handle(env)
