"""An XPUB socket's view of what its subscribers want, so a sender skips the rest."""

from __future__ import annotations

import time
from typing import cast

import zmq

SUBSCRIPTIONS_READ_INTERVAL_S = 0.001
_EVENTS = int(zmq.EVENTS)  # plain ints: enum.Flag arithmetic costs a microsecond a check
_POLLIN = int(zmq.POLLIN)


class Subscriptions:
    """What the subscribers of an XPUB socket want, from the (un)subscriptions it passes up.

    libzmq passes a topic's subscription when its first subscriber asks and
    its unsubscription when its last one leaves (or disconnects), so a set of
    topics is the whole state. It is read before a message goes out, at most
    once a millisecond (``ZMQ_EVENTS`` makes libzmq take in what has arrived):
    libzmq itself takes in new subscriptions while sending at most that often
    (its command throttle), so a topic counted as unwanted is one the socket
    would drop itself, give or take that millisecond.
    """

    def __init__(self, sock: zmq.Socket) -> None:
        self._sock = sock
        self._topics: set[bytes] = set()
        self._wanted: dict[bytes, bool] = {}
        self._read_at = -1.0

    def wanted(self, topic: bytes) -> bool:
        """True if some subscriber's topic is a prefix of ``topic``."""
        now = time.monotonic()
        if now - self._read_at >= SUBSCRIPTIONS_READ_INTERVAL_S:
            self._read_at = now
            self._read()
        w = self._wanted.get(topic)
        if w is None:
            w = self._wanted[topic] = any(topic.startswith(t) for t in self._topics)
        return w

    def _read(self) -> None:
        sock = self._sock
        while cast(int, sock.get(_EVENTS)) & _POLLIN:
            msg = bytes(sock.recv(zmq.NOBLOCK))
            if msg[:1] == b"\x01":
                self._topics.add(msg[1:])
            elif msg[:1] == b"\x00":
                self._topics.discard(msg[1:])
            self._wanted.clear()
