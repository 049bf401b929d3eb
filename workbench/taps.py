"""Taps: extra subscribers that fill bounded ring buffers for notebooks.

A tap never slows the pipeline. It subscribes next to the real consumers, and
when the notebook falls behind it drops the oldest rows and counts them
(``dropped``). If the tap thread itself falls behind, ZeroMQ drops at the
publisher and the sequence numbers show how many were missed (``missed``).

Signals travel PUSH/PULL, which cannot be tapped. So the executor publishes
every signal it receives as a ``signal_received`` event; `Taps.signals` shows
those, and `Taps.fills` shows ``order_filled``.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import Any

import structlog
import zmq

from workbench.config import WorkbenchConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import CodecError, ConfigurationError
from workbench.messaging import codec, security
from workbench.messaging.codec import Event
from workbench.messaging.sequencing import SequenceTracker
from workbench.telemetry import Telemetry

log = structlog.get_logger()

DRAIN_INTERVAL_S = 0.01

TICK_COLUMNS = ("ts", "symbol", "price", "size", "seq")
EVENT_COLUMNS = ("ts", "name", "sender", "data")
SIGNAL_COLUMNS = (
    "ts",
    "signal_id",
    "strategy_id",
    "symbol",
    "side",
    "qty",
    "price",
    "reason",
    "condition_id",
    "latency_us",
)
FILL_COLUMNS = (
    "ts",
    "fill_id",
    "signal_id",
    "symbol",
    "side",
    "qty",
    "price",
    "realized_pnl",
    "position",
)


class Ring:
    """A bounded, thread-safe buffer of rows that drops (and counts) the oldest."""

    def __init__(self, columns: tuple[str, ...], maxlen: int) -> None:
        self.columns = columns
        self.maxlen = maxlen
        self._rows: collections.deque[tuple] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.total = 0
        self.dropped = 0
        self.missed = 0

    def extend(self, rows: Iterable[tuple]) -> None:
        """Append rows; the oldest beyond ``maxlen`` are dropped and counted."""
        rows = rows if isinstance(rows, list) else list(rows)
        with self._lock:
            over = len(self._rows) + len(rows) - self.maxlen
            self._rows.extend(rows)
            self.total += len(rows)
            if over > 0:
                self.dropped += over

    def rows(self, last: int | None = None) -> list[tuple]:
        """A copy of the newest ``last`` rows (all when None)."""
        with self._lock:
            if last is None or last >= len(self._rows):
                return list(self._rows)
            return list(self._rows)[-last:]

    def frame(self, last: int | None = None) -> Any:
        """The newest ``last`` rows as a pandas DataFrame (``ts`` as UTC datetimes)."""
        import pandas as pd

        df = pd.DataFrame(self.rows(last), columns=list(self.columns))
        if "ts" in df and len(df):
            df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
        return df

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Forget every row (counters are kept)."""
        with self._lock:
            self._rows.clear()


class Taps:
    """Subscribes to ticks and executor events on a background thread.

    Attributes:
        ticks: Every tick published by the gateway.
        events: Every executor event (signals received, orders, fills, alerts, eos).
        signals: Signals as the executor received them.
        fills: Fills.
    """

    def __init__(
        self,
        config: WorkbenchConfig,
        *,
        max_ticks: int = 100_000,
        max_events: int = 20_000,
        identity: str = "tap",
    ) -> None:
        self.config = config
        self.identity = identity  # whose CURVE key pair the tap uses (curve on)
        self.ticks = Ring(TICK_COLUMNS, max_ticks)
        self.events = Ring(EVENT_COLUMNS, max_events)
        self.signals = Ring(SIGNAL_COLUMNS, max_events)
        self.fills = Ring(FILL_COLUMNS, max_events)
        self.telemetry = Telemetry()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._setup_error: ConfigurationError | None = None

    def start(self) -> None:
        """Connect and start filling the buffers."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="workbench-taps", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self._setup_error is not None:  # e.g. no tap key with CURVE on: say so here
            self._thread.join(5)
            self._thread = None
            raise self._setup_error

    def stop(self) -> None:
        """Disconnect; the buffers keep what they hold."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(5)
        self._thread = None

    close = stop

    def _loop(self) -> None:
        bus = self.config.bus
        ctx = zmq.Context()
        try:
            try:
                security.install(ctx, self.config, self.identity, self.telemetry)
            except ConfigurationError as e:
                self._setup_error = e
                return
            tick_sock = ctx.socket(zmq.SUB)
            tick_sock.setsockopt(zmq.RCVHWM, 10_000)
            tick_sock.setsockopt(zmq.LINGER, 0)
            tick_sock.setsockopt(zmq.RECONNECT_IVL, bus.reconnect_interval_ms)
            tick_sock.setsockopt(zmq.RECONNECT_IVL_MAX, bus.reconnect_interval_max_ms)
            for t in (b"tick/", b"eos/"):
                tick_sock.setsockopt(zmq.SUBSCRIBE, t)
            security.secure(tick_sock, bus.ticks_address, server=False)
            tick_sock.connect(bus.ticks_address)
            ev_sock = ctx.socket(zmq.SUB)
            ev_sock.setsockopt(zmq.RCVHWM, 10_000)
            ev_sock.setsockopt(zmq.LINGER, 0)
            ev_sock.setsockopt(zmq.RECONNECT_IVL, bus.reconnect_interval_ms)
            ev_sock.setsockopt(zmq.RECONNECT_IVL_MAX, bus.reconnect_interval_max_ms)
            ev_sock.setsockopt(zmq.SUBSCRIBE, b"evt/")
            security.secure(ev_sock, bus.events_address, server=False)
            ev_sock.connect(bus.events_address)
            poller = zmq.Poller()
            poller.register(tick_sock, zmq.POLLIN)
            poller.register(ev_sock, zmq.POLLIN)
            tick_seq = SequenceTracker(self.telemetry, "tap.ticks")
            ev_seq = SequenceTracker(self.telemetry, "tap.events")
            self._ready.set()
            while not self._stop.is_set():
                ready = dict(poller.poll(100))
                if tick_sock in ready:
                    self._drain(tick_sock, tick_seq, self._on_tick_message, self.ticks)
                if ev_sock in ready:
                    self._drain(ev_sock, ev_seq, self._on_event_message, self.events)
                # Waking once per message costs far more than handling it; a
                # notebook needs no microseconds, so let a few ms of messages
                # queue (well inside RCVHWM) and take them in one go.
                self._stop.wait(DRAIN_INTERVAL_S)
        except Exception as e:  # a tap must never take the kernel down
            log.error("tap_crashed", error=repr(e))
        finally:
            self._ready.set()
            security.uninstall(ctx)
            ctx.destroy(linger=0)

    def _drain(self, sock, seq: SequenceTracker, handle, ring: Ring) -> None:
        for _ in range(2_000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                env = codec.decode(frames)
            except CodecError:
                self.telemetry.inc("bad_frames")
                continue
            gaps = self.telemetry.get("gaps")
            # check() keys streams by the topic bytes; its `kind: str` annotation is
            # wrong, to be fixed in messaging/sequencing.py (rewritten on another branch).
            seq.check(env.sender, env.topic, env.epoch, env.seq)  # type: ignore[arg-type]
            ring.missed += self.telemetry.get("gaps") - gaps
            handle(env)

    def _on_tick_message(self, env: codec.Envelope) -> None:
        b = env.payload
        if isinstance(b, TickBatch):
            n = len(b)
            self.ticks.extend(
                list(
                    zip(
                        b.ts_ns,
                        [b.symbol] * n,
                        b.price,
                        b.size,
                        range(b.first_seq, b.first_seq + n),
                        strict=True,
                    )
                )
            )

    def _on_event_message(self, env: codec.Envelope) -> None:
        ev = env.payload
        if not isinstance(ev, Event):
            return
        d = ev.data
        self.events.extend([(env.sent_ns, ev.name, env.sender, d)])
        if ev.name == "signal_received":
            origin = d.get("origin_ns") or 0
            latency = (d.get("received_ns", 0) - origin) / 1e3 if origin else None
            self.signals.extend(
                [
                    (
                        d.get("ts_ns"),
                        d.get("signal_id"),
                        d.get("strategy_id"),
                        d.get("symbol"),
                        d.get("side"),
                        d.get("qty"),
                        d.get("price"),
                        d.get("reason"),
                        d.get("condition_id"),
                        latency,
                    )
                ]
            )
        elif ev.name == "order_filled":
            self.fills.extend(
                [
                    (
                        d.get("ts_ns"),
                        d.get("fill_id"),
                        d.get("signal_id"),
                        d.get("symbol"),
                        d.get("side"),
                        d.get("qty"),
                        d.get("price"),
                        d.get("realized_pnl"),
                        d.get("position"),
                    )
                ]
            )
