"""ZeroMQ adapters for the messaging ports: PUB/SUB, PUSH/PULL.

Every socket gets the bus settings: reconnect interval and its backoff cap,
ZMTP heartbeats to notice dead peers, linger. Binds go through
`workbench.messaging.binding` (retries on a busy address).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import zmq

from workbench.config import BusConfig
from workbench.exceptions import CodecError, TemporaryError
from workbench.messaging import codec, security
from workbench.messaging.binding import bind, ensure_ipc_dir
from workbench.messaging.codec import Envelope, Payload
from workbench.messaging.frames import Packer
from workbench.messaging.sequencing import SequenceTracker
from workbench.messaging.subscriptions import Subscriptions
from workbench.telemetry import BurstLog, Telemetry


def _configure(sock: zmq.Socket, bus: BusConfig) -> None:
    sock.setsockopt(zmq.LINGER, bus.linger_ms)
    sock.setsockopt(zmq.RECONNECT_IVL, bus.reconnect_interval_ms)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, bus.reconnect_interval_max_ms)
    if bus.zmq_heartbeat_interval_ms:
        sock.setsockopt(zmq.HEARTBEAT_IVL, bus.zmq_heartbeat_interval_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, bus.zmq_heartbeat_timeout_ms)
        sock.setsockopt(zmq.HEARTBEAT_TTL, bus.zmq_heartbeat_timeout_ms)


# Plain ints: ``getsockopt(zmq.EVENTS) & zmq.POLLIN`` on the enums costs twice as
# much (enum.Flag arithmetic), on a check every receive loop makes.
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
# How long one `recv` goes on dropping bad frames before it returns None: a flood
# of garbage must not keep the caller's loop (its heartbeats, its commands, its
# ticks) waiting until the flood ends.
BAD_FRAMES_BUDGET_S = 0.01


def _budget_spent(since: float) -> tuple[float, bool]:
    """After a bad frame: when the run of bad frames began, and whether it has used its budget."""
    now = time.monotonic()
    return since or now, bool(since) and now - since >= BAD_FRAMES_BUDGET_S


class ZmqSender:
    """A PUB, XPUB or PUSH socket that encodes and numbers messages per topic.

    An XPUB socket knows what its subscribers subscribed to and does not even
    encode a message no one wants (libzmq would drop it): the executor's
    events, most of which a headless run or a benchmark has no reader for.
    Such a message still takes its seq, as a dropped one does.

    Args:
        sndhwm: Send high-water mark; 0 = unlimited (PUB then never drops; the
            replay gateway bounds what is queued with credit-based flow control).
        block: A PUSH socket whose queue is full (``sndhwm`` messages for a peer
            that is down or slow) waits for room. With False it does not: `send`
            and `send_many` then send what fits and say how much that was (the
            strategy's signals, which wait in its durable outbox instead).
    """

    def __init__(
        self,
        ctx: zmq.Context,
        socket_type: int,
        address: str,
        bus: BusConfig,
        sender_id: str,
        telemetry: Telemetry,
        *,
        bind_it: bool,
        sndhwm: int = 0,
        name: str = "",
        block: bool = True,
    ) -> None:
        if not block and socket_type != zmq.PUSH:  # a PUB drops at the mark, it never refuses
            raise ValueError(f"{name or address}: block=False is for a PUSH socket")
        self.sock = ctx.socket(socket_type)
        _configure(self.sock, bus)
        security.secure(self.sock, address, server=bind_it)  # CURVE keys, ZAP; ipc folder 0700
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        if bind_it:
            bind(self.sock, address, bus)
        else:
            ensure_ipc_dir(address)
            self.sock.connect(address)
        self.address = address
        self.sender_id = sender_id
        self.epoch = time.time_ns()
        self._seqs: dict[bytes, int] = {}
        self._telemetry = telemetry
        self._counter = f"{name or 'sent'}_msgs_out"
        self._pack = Packer()
        self._subscriptions = Subscriptions(self.sock) if socket_type == zmq.XPUB else None
        self._flags = 0 if block else zmq.NOBLOCK
        self._full = False  # the last send found the queue full (only without ``block``)

    def subscribed(self, kind: str, key: str = "") -> bool:
        """Whether a message of ``kind`` and ``key`` would reach anyone (an XPUB knows)."""
        return self._subscriptions is None or self._subscriptions.wanted(codec.topic(kind, key))

    def wanted(self, kind: str, key: str = "") -> bool:
        """`subscribed`, asked once per message: one nobody wants takes its seq, as `send` does.

        The caller then builds nothing, and a reader that joins later counts
        the message as sent before it joined.
        """
        if self._subscriptions is None:
            return True
        topic = codec.topic(kind, key)
        if self._subscriptions.wanted(topic):
            return True
        self._unwanted(topic)
        return False

    def _unwanted(self, topic: bytes) -> None:
        """A message nobody subscribes to: dropped unencoded, as libzmq would drop it.

        It takes its seq, so a reader that joins later counts it.
        """
        self._seqs[topic] = self._seqs.get(topic, 0) + 1
        self._telemetry.inc(self._counter)

    def send(self, payload: Payload) -> bool:
        """Encode and send; False if a full queue refused it (only without ``block``)."""
        topic, kind, fields = codec.prepare(payload)
        if self._subscriptions is not None and not self._subscriptions.wanted(topic):
            self._unwanted(topic)
            return True
        seq = self._seqs.get(topic, 0) + 1
        data = codec.body(kind, fields, self.sender_id, self.epoch, seq, time.time_ns(), self._pack)
        # Two plain sends: for frames this small, send_multipart's per-part
        # checks and zero-copy frames cost more than the copy they save.
        sock = self.sock
        try:
            sock.send(topic, zmq.SNDMORE | self._flags)
        except zmq.Again:
            self._full = True
            return False  # nothing queued: the seq stays free
        self._full = False
        sock.send(data)  # a message's first frame queued, the rest always is
        self._seqs[topic] = seq  # only now: a failed send must not look like a gap
        self._telemetry.inc(self._counter)
        return True

    def send_many(self, payloads: Sequence[Payload]) -> int:
        """`send` each, in order: all encoded first, then sent back to back.

        Why: a send into an idle pipe wakes the I/O thread, and on a VM a
        wake-up costs tens of microseconds of CPU. Sent back to back, a burst
        (a strategy's signals of one batch) usually costs one wake-up, not one
        each.

        Returns:
            How many were sent: all, unless a full queue refused the rest
            (only without ``block``).
        """
        if self._full and len(payloads) > 1:  # still full? found out on one encoding, not all
            return self.send_many(payloads[:1]) and 1 + self.send_many(payloads[1:])
        seqs = self._seqs
        numbered: dict[bytes, int] = {}
        now = time.time_ns()
        out = []
        for payload in payloads:
            topic, kind, fields = codec.prepare(payload)
            seq = numbered[topic] = numbered.get(topic, seqs.get(topic, 0)) + 1
            if self._subscriptions is not None and not self._subscriptions.wanted(topic):
                continue  # as in `send`: its seq taken below with the others
            body = codec.body(kind, fields, self.sender_id, self.epoch, seq, now, self._pack)
            out.append((topic, seq, body))
        sock, flags = self.sock, zmq.SNDMORE | self._flags
        for i, (topic, seq, body) in enumerate(out):
            try:
                sock.send(topic, flags)
            except zmq.Again:  # the rest keeps its seqs free, as if never sent
                self._telemetry.inc(self._counter, i)
                self._full = True
                return i
            self._full = False
            sock.send(body)
            seqs[topic] = seq  # only now: a failed send must not look like a gap
        seqs.update(numbered)
        self._telemetry.inc(self._counter, len(payloads))
        return len(payloads)

    def send_raw(self, frames: list[bytes]) -> None:
        """Send pre-built frames (tests inject malformed frames this way)."""
        self.sock.send_multipart(frames)

    def close(self) -> None:
        """Close the socket (lingers per ``bus.linger_ms`` to flush)."""
        self.sock.close()


class ZmqReceiver:
    """A SUB or PULL socket that decodes, sequence-checks and counts.

    Bad frames never escape: each is counted as ``bad_frames``, logged once per
    burst with its context, and dropped.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        socket_type: int,
        address: str,
        bus: BusConfig,
        telemetry: Telemetry,
        *,
        bind_it: bool,
        subscriptions: list[bytes] | None = None,
        rcvhwm: int = 0,
        name: str = "",
        bad_frame_log_interval_s: float = 5.0,
    ) -> None:
        self.sock = ctx.socket(socket_type)
        _configure(self.sock, bus)
        security.secure(self.sock, address, server=bind_it)  # CURVE keys, ZAP; ipc folder 0700
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if socket_type == zmq.SUB:
            for sub in subscriptions if subscriptions is not None else [b""]:
                self.sock.setsockopt(zmq.SUBSCRIBE, sub)
        if bind_it:
            bind(self.sock, address, bus)
        else:
            ensure_ipc_dir(address)
            self.sock.connect(address)
        self.address = address
        self.name = name or address
        self._telemetry = telemetry
        self._seq = SequenceTracker(telemetry, self.name)
        self._bad = BurstLog("bad_frame_dropped", bad_frame_log_interval_s)
        self._counter = f"{name or 'received'}_msgs_in"
        # "<counter>:<label>" becomes one metric with a socket label in /metrics.
        self._bad_counter = f"bad_frames_by_socket:{name or 'received'}"
        self.taken_ns = 0  # when the last message returned left the socket (before decoding)
        self._poll_items = [(self.sock, zmq.POLLIN)]

    def recv(self, timeout_ms: int) -> Envelope | None:
        """The next good message, or None when none arrives within ``timeout_ms``.

        Without a wait, an empty socket is found by its ``EVENTS`` flags, not
        by a receive that raises ``Again`` (twice the cost). With one, a single
        ``zmq_poll`` both checks and waits (it returns at once when a message
        is there): a live runner waits before nearly every message, and each
        readiness check costs a system call. None also comes back early once
        bad frames have taken `BAD_FRAMES_BUDGET_S`, so that the caller's loop goes on.
        """
        sock = self.sock
        deadline = 0.0
        bad_since = 0.0
        while True:
            if timeout_ms > 0:
                if not deadline:
                    deadline, wait_ms = time.monotonic() + timeout_ms / 1000, timeout_ms
                else:  # after a bad frame: what is left of the wait
                    wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                if not zmq.zmq_poll(self._poll_items, wait_ms):
                    return None
            elif not sock.get(_EVENTS) & _POLLIN:
                return None
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:  # pragma: no cover - polled readable
                continue
            self.taken_ns = time.time_ns()
            env = self._decode(frames)
            if env is not None:
                return env
            bad_since, spent = _budget_spent(bad_since)
            if spent:
                return None

    def _decode(self, frames: list[bytes]) -> Envelope | None:
        try:
            env = codec.decode(frames)
        except CodecError as e:
            self._telemetry.inc("bad_frames")
            self._telemetry.inc(self._bad_counter)
            head = frames[0][:40] if frames else b""
            self._bad(
                socket=self.name,
                error=str(e),
                frames=len(frames),
                head=head,
                total_bad=self._telemetry.get("bad_frames"),
            )
            return None
        if not self._seq.check(env.sender, env.topic, env.epoch, env.seq):
            return None
        self._telemetry.inc(self._counter)
        return env

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class ZmqReplier(ZmqReceiver):
    """A bound REP socket: `recv` a request, then `reply` to it (operator commands)."""

    def __init__(self, ctx: zmq.Context, address: str, bus: BusConfig, telemetry: Telemetry,
                 sender_id: str, *, name: str = "commands",
                 bad_frame_log_interval_s: float = 5.0) -> None:  # fmt: skip
        super().__init__(
            ctx,
            zmq.REP,
            address,
            bus,
            telemetry,
            bind_it=True,
            name=name,
            bad_frame_log_interval_s=bad_frame_log_interval_s,
        )
        self.sender_id = sender_id
        self.epoch = time.time_ns()
        self._replies = 0
        self._owed = False

    def recv(self, timeout_ms: int) -> Envelope | None:
        """The next request; a bad one is answered with an error at once (REP must answer)."""
        bad_since = 0.0
        while True:
            if not self.sock.get(_EVENTS) & _POLLIN:  # cheap when idle
                if timeout_ms <= 0 or not self.sock.poll(timeout_ms):
                    return None
                timeout_ms = 0
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            self._owed = True
            env = self._decode(frames)
            if env is not None:
                return env
            self.reply(codec.Event("error", {"error": "malformed request"}))
            bad_since, spent = _budget_spent(bad_since)
            if spent:  # as `ZmqReceiver.recv`: the caller's loop goes on
                return None

    def reply(self, payload: Payload) -> None:
        """Answer the last request."""
        if not self._owed:
            return
        self._replies += 1
        self.sock.send_multipart(
            codec.encode(payload, self.sender_id, self.epoch, self._replies, time.time_ns())
        )
        self._owed = False


def request(
    address: str,
    payload: Payload,
    *,
    timeout_ms: int = 3_000,
    ctx: zmq.Context[zmq.Socket[bytes]] | None = None,
) -> Envelope:
    """Send one request to a `ZmqReplier` and wait for its answer.

    Args:
        ctx: The context to use (with its `security` installed: CURVE keys);
            default the process's shared one.

    Raises:
        TemporaryError: no answer within ``timeout_ms`` (is the runner up? With
            CURVE on, an unlisted key gets no answer either).
        CodecError: the answer could not be decoded.
    """
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        security.secure(sock, address, server=False)
        sock.connect(address)
        sock.send_multipart(codec.encode(payload, "operator", time.time_ns(), 1, time.time_ns()))
        if not sock.poll(timeout_ms):
            if refused := security.refusal(ctx, "command"):
                raise security.RefusedByPeer(refused)  # our key: a retry cannot help
            raise TemporaryError(
                f"{address}: no answer within {timeout_ms} ms; is the executor up?"
            )
        return codec.decode(sock.recv_multipart())
    finally:
        sock.close()
