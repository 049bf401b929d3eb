"""The wire format: msgpack multipart frames with a topic first.

Every message is two ZeroMQ frames::

    frame 0  topic   b"<kind>/<key>/"      e.g. b"tick/EURUSD/", b"eos/gateway/"
    frame 1  body    msgpack array [version, kind, sender, epoch, seq, sent_ns, *payload]

The topic lets a SUB socket filter by kind (``b"tick/"``) or by kind and symbol
(``b"tick/EURUSD/"``; the trailing slash stops ``EUR`` matching ``EURUSD``).
``sender`` is the runner id, ``epoch`` the sender's start time in ns (a restarted
sender starts a new stream), ``seq`` counts messages per sender stream from 1,
``sent_ns`` is the wall clock at send. Timestamps are integer ns since the epoch,
UTC. Payloads per kind (compact arrays, never pickle):

    tick   symbol, first_seq, [ts_ns...], [price...], [size...]
    last   symbol, seq, ts_ns, price, size      (topic ``last/<symbol>/``, live only: a symbol's
                                                newest tick, at most every snapshot interval and
                                                only when it changed; the executor's market)
    sig    id, strategy_id, seq, symbol, side, qty, price, ts_ns, reason, condition_id, origin_ns
           [, order_type, order_price, tif [, closes]]  (absent: MARKET, 0, GTC, "")
    ord    strategy_id, signal_id, order_id, status, symbol, side, qty, price, fee, ts_ns,
           filled_qty, reason                   (topic ``ord/<strategy id>/``: its own orders)
    eos    stream, count, last_seq
    hb     role, pid, state, {counters}, {extra}
    evt    name, {data}
    ack    stream, upto                         (everything of ``stream`` up to ``upto`` is safe)
    resync subscriber, after_seq, nonce         (a restarted strategy asks for ticks again)
    mark   mark [, resync_of, nonce]            (gateway flow-control barrier; with the two
                                                fields, the echo of a resync, sent before
                                                the batches re-sent for it)
    cmd    name, {args}                         (operator command: halt, resume, state)

Heartbeat ``extra`` contents per role (besides ``latency`` and ``uptime_s``),
typed in `workbench.messaging.heartbeat_extras` (``GatewayExtra``,
``StrategyExtra``, ``ExecutorExtra`` with ``EosSummary``; build with
``to_wire()``, read with ``extra_of(role, extra)``):

    gateway   ticks_total, eos, mark, first_tick_ns, last_tick_ns
    strategy  last_signal_seq, eos, outbox (signals unacknowledged), levels (optional)
    executor  positions, realized_pnl, breaker, eos, trading_state, orders_in_doubt
              (only when some), eos_summary (once every end-of-stream arrived)

Acks travel two ways: a strategy acks the gateway's marks on the control
socket (``Ack(strategy id, mark)``), and the executor acks each strategy's
signals on its events socket (topic ``ack/<strategy id>/``, ``Ack(strategy id,
seq)``) once they are journaled. `Resync` is a request, not an ack.

`pack`/`unpack` (`workbench.messaging.frames`) handle one frame (with the ``datetime``
and ``Enum`` handlers of seed 001); `encode`/`decode` handle a whole message. Anything malformed,
truncated, of another schema version or of an unknown kind raises `CodecError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.domain.model import OrderType, Side, Signal, Tick, TickBatch, TimeInForce
from workbench.domain.orders import OrderEvent
from workbench.exceptions import CodecError
from workbench.messaging.frames import pack, unpack
from workbench.messaging.messages import (
    Ack,
    Command,
    EndOfStream,
    Event,
    Heartbeat,
    Marker,
    Resync,
    missing_ranges,
)

SCHEMA_VERSION = 1

Payload = (
    TickBatch
    | Tick
    | Signal
    | EndOfStream
    | Heartbeat
    | Event
    | Ack
    | Resync
    | Marker
    | Command
    | OrderEvent
)

KIND_TICK = "tick"
KIND_LAST = "last"
KIND_SIGNAL = "sig"
KIND_EOS = "eos"
KIND_HEARTBEAT = "hb"
KIND_EVENT = "evt"
KIND_ACK = "ack"
KIND_RESYNC = "resync"
KIND_MARK = "mark"
KIND_COMMAND = "cmd"
KIND_ORDER = "ord"


@dataclass(slots=True)
class Envelope:
    """A decoded message: who sent it, its stream position, and the payload.

    Not frozen: a frozen ``__init__`` costs four times as much, on every message.
    """

    kind: str
    sender: str
    epoch: int
    seq: int
    sent_ns: int
    payload: Payload
    topic: bytes = b""


def topic(kind: str, key: str = "") -> bytes:
    """The topic frame for ``kind`` and ``key`` (symbol, runner, event name)."""
    return f"{kind}/{key}/".encode()


def _is_int(x: Any) -> bool:
    return type(x) is int


def _floats(xs: Any, n: int, what: str) -> list[float]:
    if type(xs) is not list or len(xs) != n:
        raise CodecError(f"tick batch {what} column has wrong shape")
    for x in xs:
        if type(x) is not float:
            if type(x) is int:  # msgpack may carry integral floats from other senders as ints
                return [float(v) if type(v) in (int, float) else _bad(what) for v in xs]
            _bad(what)
    return xs


def _bad(what: str) -> Any:
    raise CodecError(f"tick batch {what} column holds a non-number")


def _tick(p: TickBatch) -> tuple[str, str, list[Any]]:
    return KIND_TICK, p.symbol, [p.symbol, p.first_seq, p.ts_ns, p.price, p.size]


def _signal(p: Signal) -> tuple[str, str, list[Any]]:
    fields = [p.id, p.strategy_id, p.seq, p.symbol, p.side.value, p.qty, p.price, p.ts_ns,
              p.reason, p.condition_id, p.origin_ns]  # fmt: skip
    if p.order_type is not OrderType.MARKET or p.tif is not TimeInForce.GTC or p.closes:
        fields += [p.order_type.value, p.order_price, p.tif.value]
        if p.closes:
            fields.append(p.closes)
    return KIND_SIGNAL, p.strategy_id, fields


def _order_event(p: OrderEvent) -> tuple[str, str, list[Any]]:
    return KIND_ORDER, p.strategy_id, [p.strategy_id, p.signal_id, p.order_id, p.status,
        p.symbol, p.side, p.qty, p.price, p.fee, p.ts_ns, p.filled_qty, p.reason]  # fmt: skip


_FIELDS: dict[type, Any] = {
    TickBatch: _tick,
    Tick: lambda p: (KIND_LAST, p.symbol, [p.symbol, p.seq, p.ts_ns, p.price, p.size]),
    Signal: _signal,
    OrderEvent: _order_event,
    EndOfStream: lambda p: (KIND_EOS, p.stream, [p.stream, p.count, p.last_seq]),
    Heartbeat: lambda p: (KIND_HEARTBEAT, "", [p.role, p.pid, p.state, p.counters, p.extra]),
    Event: lambda p: (KIND_EVENT, p.name, [p.name, p.data]),
    Ack: lambda p: (
        KIND_ACK,
        p.stream,
        [p.stream, p.upto, [list(r) for r in p.missing]] if p.missing else [p.stream, p.upto],
    ),
    Resync: lambda p: (KIND_RESYNC, p.subscriber, [p.subscriber, p.after_seq, p.nonce]),
    Marker: lambda p: (
        KIND_MARK,
        "",
        [p.mark, p.resync_of, p.nonce] if p.resync_of else [p.mark],
    ),
    Command: lambda p: (KIND_COMMAND, p.name, [p.name, p.args]),
}
"""Payload type -> (kind, topic key, payload fields): one dict look-up per message sent."""


def _payload_of(p: Payload) -> tuple[str, str, list[Any]]:
    fields = _FIELDS.get(type(p))
    if fields is None:  # a subclass of a payload type: the slow way
        fields = next((f for t, f in _FIELDS.items() if isinstance(p, t)), None)
        if fields is None:
            raise CodecError(f"no wire kind for {type(p).__name__}")
    return fields(p)


def _order_fields(a: list[Any]) -> tuple[OrderType, float, TimeInForce, str]:
    if not a:
        return OrderType.MARKET, 0.0, TimeInForce.GTC, ""
    if len(a) not in (3, 4):
        raise CodecError("signal order fields must be [order_type, order_price, tif(, closes)]")
    otype, oprice, tif = a[:3]
    closes = a[3] if len(a) == 4 else ""
    if type(closes) is not str:
        raise CodecError(f"signal closes {closes!r} must be a signal id")
    try:
        ot, tf = OrderType(otype), TimeInForce(tif)
    except ValueError as e:
        raise CodecError(f"signal order type/time in force: {e}") from e
    if type(oprice) not in (int, float):
        raise CodecError(f"signal order_price {oprice!r} must be a number")
    return ot, float(oprice), tf, closes  # their values: `Signal.problem`


def _last(symbol: Any, seq: Any, ts: Any, price: Any, size: Any) -> Tick:
    if type(symbol) is not str or not symbol or not (_is_int(seq) and _is_int(ts)):
        raise CodecError("last tick header has wrong types")
    if type(price) not in (int, float) or not (math.isfinite(price) and price > 0):
        raise CodecError(f"last tick price {price!r} must be finite and positive")
    if type(size) not in (int, float) or not (math.isfinite(size) and size >= 0):
        raise CodecError(f"last tick size {size!r} must be finite and >= 0")
    return Tick(symbol, ts, float(price), float(size), seq)


def _build(kind: str, a: list[Any]) -> Payload:
    if kind == KIND_TICK:
        symbol, first_seq, ts, price, size = a
        if type(symbol) is not str or not _is_int(first_seq) or type(ts) is not list:
            raise CodecError("tick batch header has wrong types")
        n = len(ts)
        if n and type(ts[0]) is not int:  # cheap guard; full check below only on mismatch
            raise CodecError("tick batch ts_ns column holds a non-integer")
        if n > 1 and not all(type(t) is int for t in ts):  # one tick (live): checked above
            raise CodecError("tick batch ts_ns column holds a non-integer")
        return TickBatch(
            symbol, first_seq, ts, _floats(price, n, "price"), _floats(size, n, "size")
        )
    if kind == KIND_LAST:
        return _last(*a)
    if kind == KIND_SIGNAL:
        sid, strat, seq, sym, side, qty, price, ts, reason, cond, origin = a[:11]
        otype, oprice, tif, closes = _order_fields(a[11:])
        if not (
            all(type(x) is str for x in (sid, strat, sym))
            and all(_is_int(x) for x in (seq, ts, origin))
            and all(type(x) in (int, float) for x in (qty, price))
        ):
            raise CodecError("signal fields have wrong types")
        try:
            side_v = Side(side)
        except ValueError as e:
            raise CodecError(f"signal side {side!r} is not BUY or SELL") from e
        sig = Signal(sid, strat, seq, sym, side_v, float(qty), float(price), ts, str(reason),
                     str(cond), origin, otype, oprice, tif, closes)  # fmt: skip
        problem = sig.problem()  # another's id would pass for a re-delivery; a 2**64
        if problem:  # seq or time stamp would kill the executor's journal
            raise CodecError(problem)
        return sig
    if kind == KIND_ORDER:
        strat, sid, oid, status, sym, side, qty, price, fee, ts, filled, reason = a
        if not all(type(x) is str for x in (strat, sid, oid, status, sym, side, reason)):
            raise CodecError("order event fields have wrong types")
        if not _is_int(ts) or not all(type(x) in (int, float) for x in (qty, price, fee, filled)):
            raise CodecError("order event numbers have wrong types")
        return OrderEvent(strat, sid, oid, status, sym, side, float(qty), float(price),
                          float(fee), ts, float(filled), reason)  # fmt: skip
    if kind == KIND_EOS:
        stream, count, last_seq = a
        if type(stream) is not str or not _is_int(count) or not _is_int(last_seq):
            raise CodecError("end-of-stream fields have wrong types")
        return EndOfStream(stream, count, last_seq)
    if kind == KIND_HEARTBEAT:
        role, pid, state, counters, extra = a
        if type(role) is not str or not _is_int(pid) or type(state) is not str:
            raise CodecError("heartbeat role, pid, state have wrong types")
        if type(counters) is not dict or type(extra) is not dict:
            raise CodecError("heartbeat counters must be maps")
        return Heartbeat(role, pid, state, counters, extra)
    if kind == KIND_EVENT:
        name, data = a
        if type(name) is not str or type(data) is not dict:
            raise CodecError("event must be [name, map]")
        return Event(name, data)
    if kind == KIND_ACK:
        stream, upto, *rest = a
        if type(stream) is not str or not _is_int(upto) or len(rest) > 1:
            raise CodecError("ack fields have wrong types")
        return Ack(stream, upto, missing_ranges(rest[0], upto) if rest else ())
    if kind == KIND_RESYNC:
        sub, after, nonce = a
        if type(sub) is not str or not _is_int(after) or not _is_int(nonce):
            raise CodecError("resync fields have wrong types")
        return Resync(sub, after, nonce)
    if kind == KIND_MARK:
        mark, *echo = a
        if not _is_int(mark):
            raise CodecError("marker must be an integer")
        if not echo:
            return Marker(mark)
        sub, nonce = echo
        if type(sub) is not str or not sub or not _is_int(nonce):
            raise CodecError("resync echo fields have wrong types")
        return Marker(mark, sub, nonce)
    if kind == KIND_COMMAND:
        name, args = a
        if type(name) is not str or type(args) is not dict:
            raise CodecError("command must be [name, map]")
        return Command(name, args)
    raise CodecError(f"unknown message kind {kind!r}")


def topic_of(payload: Payload) -> bytes:
    """The topic frame `encode` would give ``payload``."""
    return prepare(payload)[0]


_TOPICS: dict[tuple[str, str], bytes] = {}
_TOPICS_MAX = 4096


def prepare(payload: Payload) -> tuple[bytes, str, list[Any]]:
    """``payload``'s topic frame, kind and fields: `encode` before the header and packing.

    A sender that numbers messages per topic takes the topic from here and
    then packs the body with `body`, so nothing is built twice.

    Raises:
        CodecError: no wire kind for the payload's type.
    """
    kind, key, fields = _payload_of(payload)
    t = _TOPICS.get((kind, key))
    if t is None:
        t = topic(kind, key)
        if len(_TOPICS) < _TOPICS_MAX:  # keys are symbols, runner ids, event names
            _TOPICS[kind, key] = t
    return t, kind, fields


def body(
    kind: str,
    fields: list[Any],
    sender: str,
    epoch: int,
    seq: int,
    sent_ns: int,
    packer: Callable[[Any], bytes] = pack,
) -> bytes:
    """The body frame of a prepared message (``packer``: `pack` or a `Packer`'s).

    Raises:
        CodecError: the payload cannot be encoded.
    """
    return packer([SCHEMA_VERSION, kind, sender, epoch, seq, sent_ns, *fields])


def encode(payload: Payload, sender: str, epoch: int, seq: int, sent_ns: int) -> list[bytes]:
    """A whole message as its two frames.

    Raises:
        CodecError: the payload cannot be encoded.
    """
    t, kind, fields = prepare(payload)
    return [t, body(kind, fields, sender, epoch, seq, sent_ns)]


def decode(frames: list[bytes]) -> Envelope:
    """Inverse of `encode`.

    Raises:
        CodecError: wrong frame count, malformed msgpack, another schema version,
            an unknown kind, or fields of the wrong shape.
    """
    if len(frames) != 2:
        raise CodecError(f"expected 2 frames (topic, body), got {len(frames)}")
    body = unpack(frames[1])
    if type(body) is not list or len(body) < 6:
        raise CodecError("body is not a message array")
    version, kind, sender, epoch, seq, sent_ns = body[:6]
    if version != SCHEMA_VERSION:
        raise CodecError(f"schema version {version!r}, this build speaks {SCHEMA_VERSION}")
    if type(kind) is not str or type(sender) is not str:
        raise CodecError("kind and sender must be strings")
    if not (_is_int(epoch) and _is_int(seq) and _is_int(sent_ns)):
        raise CodecError("epoch, seq and sent_ns must be integers")
    try:
        payload = _build(kind, body[6:])
    except CodecError:
        raise
    except Exception as e:  # wrong arity when unpacking the payload array, or worse:
        raise CodecError(f"{kind} payload malformed: {e}") from e  # never a runner's end
    return Envelope(kind, sender, epoch, seq, sent_ns, payload, bytes(frames[0]))


def self_check() -> None:
    """Round-trip a sample of every message kind; raise `CodecError` if any differs."""
    from workbench.messaging.codec_check import check

    check()
