"""In-memory implementation of the messaging ports, for in-process tests.

Messages go through the real codec, so a test that passes here exercises the
same encode/decode path as the wire.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence

from workbench.messaging import codec
from workbench.messaging.codec import Envelope, Payload


class Channel:
    """A FIFO of encoded frames shared by one or more senders and a receiver."""

    def __init__(self) -> None:
        self.frames: collections.deque[list[bytes]] = collections.deque()


class InprocSender:
    """`Sender` into a `Channel`."""

    def __init__(self, channel: Channel, sender_id: str) -> None:
        self._channel = channel
        self.sender_id = sender_id
        self.epoch = time.time_ns()
        self._seqs: dict[bytes, int] = {}

    def send(self, payload: Payload) -> bool:
        """Encode and append (a channel is never full)."""
        topic = codec.topic_of(payload)
        seq = self._seqs[topic] = self._seqs.get(topic, 0) + 1
        self._channel.frames.append(
            codec.encode(payload, self.sender_id, self.epoch, seq, time.time_ns())
        )
        return True

    def send_many(self, payloads: Sequence[Payload]) -> int:
        """`send` each, in order."""
        for payload in payloads:
            self.send(payload)
        return len(payloads)

    def subscribed(self, kind: str, key: str = "") -> bool:
        """Always: a channel has no subscriptions."""
        return True

    wanted = subscribed  # asked per message: nothing to number unsent

    def close(self) -> None:
        """Nothing to release."""


class InprocReceiver:
    """`Receiver` from a `Channel`; never waits (single-threaded tests)."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self.taken_ns = 0

    def recv(self, timeout_ms: int) -> Envelope | None:
        """Pop and decode the next message, or None when empty."""
        if not self._channel.frames:
            return None
        frames = self._channel.frames.popleft()
        self.taken_ns = time.time_ns()
        return codec.decode(frames)

    def close(self) -> None:
        """Nothing to release."""
