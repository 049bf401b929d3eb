"""Messaging ports: how runners send and receive, whatever carries the bytes.

Two small protocols serve every stream (ticks, signals, events, heartbeats,
credits): a runner depends on a `Sender` or a `Receiver`, never on zmq. The
ZeroMQ adapters are in `zmq_adapters`; `inproc` holds the in-memory pair used
by in-process tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from workbench.messaging.codec import Envelope, Payload


class Sender(Protocol):
    """Sends payloads on one stream, numbering them per topic."""

    def send(self, payload: Payload) -> bool:
        """Send one message (may block under flow control; never drops silently).

        Returns:
            False if a full queue refused it (a transport told not to block).
        """
        ...

    def send_many(self, payloads: Sequence[Payload]) -> int:
        """`send` each payload, in order (a transport may send them more cheaply together).

        Returns:
            How many were sent, from the first: fewer if a full queue refused the rest.
        """
        ...

    def subscribed(self, kind: str, key: str = "") -> bool:
        """Whether a message of ``kind`` and ``key`` may reach anyone (False: it is dropped)."""
        ...

    def close(self) -> None:
        """Release the transport."""
        ...


class Receiver(Protocol):
    """Receives decoded messages; bad frames are counted and dropped inside.

    ``taken_ns``: the wall clock when the message `recv` returned last was
    taken off the transport, before it was decoded (0 before the first).
    """

    taken_ns: int

    def recv(self, timeout_ms: int) -> Envelope | None:
        """The next good message, or None after ``timeout_ms`` (0 = don't wait)."""
        ...

    def close(self) -> None:
        """Release the transport."""
        ...


class Replier(Protocol):
    """A request/reply endpoint: one reply per request received."""

    def recv(self, timeout_ms: int) -> Envelope | None:
        """The next request, or None."""
        ...

    def reply(self, payload: Payload) -> None:
        """Answer the request received last."""
        ...
