"""Taps: extra subscribers that fill bounded ring buffers for notebooks.

A tap never slows the pipeline. It subscribes next to the real consumers, and
when the notebook falls behind it drops the oldest rows and counts them
(``dropped``). If the tap thread itself falls behind, ZeroMQ drops at the
publisher and the sequence numbers show how many were missed (``missed``).
What a stream sent before the tap first heard it is counted apart
(``before_join``): a subscription takes a moment to reach a publisher. Each
ring counts in its own rows: ``ticks`` by the ticks' seqs (one count over all
symbols of a gateway process), ``signals`` and ``fills`` by their events' seqs
(the executor numbers the events it builds for no one too), ``events`` by all.

Signals travel PUSH/PULL, which cannot be tapped. So the executor publishes
every signal it receives as a ``signal_received`` event; `Taps.signals` shows
those, and `Taps.fills` shows ``order_filled``.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import structlog
import zmq

from workbench.config import WorkbenchConfig
from workbench.domain.model import TickBatch
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.messaging import codec, security
from workbench.messaging.codec import Event
from workbench.messaging.zmq_adapters import ZmqReceiver
from workbench.telemetry import Telemetry

log = structlog.get_logger()

DRAIN_INTERVAL_S = 0.01
DRAIN_MAX = 2_000  # messages taken per socket per turn
TAP_RCVHWM = 10_000

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
        self.missed = 0  # gaps in a stream while the tap listened
        self.before_join = 0  # what each stream had sent before the tap first heard it

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
        """A copy of the newest ``last`` rows (all when None; none when 0 or less)."""
        if last is not None and last <= 0:
            return []
        with self._lock:
            if last is None or last >= len(self._rows):
                return list(self._rows)
            return list(self._rows)[-last:]

    def since(self, total: int) -> tuple[int, list[tuple]]:
        """The rows added after the ring's ``total`` was ``total`` (those still held).

        Returns:
            The ring's ``total`` now, to pass next time, and the rows, oldest first.
        """
        with self._lock:
            n = min(self.total - total, len(self._rows))
            if n <= 0:
                return self.total, []
            return self.total, list(itertools.islice(reversed(self._rows), n))[::-1]

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
        self._epochs: dict[tuple[str, bytes], int] = {}  # each stream's epoch, as first seen
        self._next_tick: dict[tuple[str, int], int] = {}  # a gateway process's next tick seq
        self._derived = {b"evt/signal_received/": self.signals, b"evt/order_filled/": self.fills}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._setup_error: ConfigurationError | None = None

    def start(self, config: WorkbenchConfig | None = None) -> None:
        """Connect and start filling the buffers; returns once subscribed (5 s at most).

        ``config``: the pipeline's now (a notebook may have replaced its config
        since: the taps listened on the first one's bus).

        Raises:
            ConfigurationError: the tap cannot connect (with CURVE on, no tap key).
            TemporaryError: the previous tap thread is still stopping.
        """
        if self._thread is not None:
            if self._thread.is_alive() and not self._stop.is_set():
                return
            self.stop()  # it crashed, or a stop did not finish: end it first
            if self._thread is not None:
                raise TemporaryError("the previous tap thread did not stop within 5 s")
        if config is not None:
            self.config = config
        # Each start waits for its own thread's set-up, and reports its own error.
        self._stop.clear()
        self._ready.clear()
        self._setup_error = None
        self._thread = threading.Thread(target=self._loop, name="workbench-taps", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        error = self._setup_error
        if error is not None:  # e.g. no tap key with CURVE on: say so here
            self.stop()
            raise error

    def stop(self) -> None:
        """Disconnect; the buffers keep what they hold."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(5)
        if thread.is_alive():  # kept, so that the next stop or start joins it
            log.warning("tap_thread_not_stopped", waited_s=5)
            return
        self._thread = None

    close = stop

    def _loop(self) -> None:
        bus = self.config.bus
        interval = self.config.runtime.bad_frame_log_interval_s
        ctx = zmq.Context()
        try:
            try:
                security.install(ctx, self.config, self.identity, self.telemetry)
            except ConfigurationError as e:
                self._setup_error = e
                return
            ticks = ZmqReceiver(
                ctx, zmq.SUB, bus.ticks_address, bus, self.telemetry, bind_it=False,
                subscriptions=[b"tick/", b"eos/"], rcvhwm=TAP_RCVHWM, name="tap.ticks",
                bad_frame_log_interval_s=interval,
            )  # fmt: skip
            events = ZmqReceiver(
                ctx, zmq.SUB, bus.events_address, bus, self.telemetry, bind_it=False,
                subscriptions=[b"evt/"], rcvhwm=TAP_RCVHWM, name="tap.events",
                bad_frame_log_interval_s=interval,
            )  # fmt: skip
            poller = zmq.Poller()
            poller.register(ticks.sock, zmq.POLLIN)
            poller.register(events.sock, zmq.POLLIN)
            self._ready.set()
            while not self._stop.is_set():
                ready = dict(poller.poll(100))
                if ticks.sock in ready:  # counted by tick seq (`_count_ticks`), not message
                    self._drain(ticks, self._on_tick_message, None)
                if events.sock in ready:
                    self._drain(events, self._on_event_message, self.events)
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

    def _drain(
        self, receiver: ZmqReceiver, handle: Callable[[codec.Envelope], None], ring: Ring | None
    ) -> None:
        """Take what is queued (bad frames are counted and logged by the receiver).

        Message gaps and what a stream sent before the tap joined go to
        ``ring`` and to the ring its topic feeds (signals, fills).
        """
        for _ in range(DRAIN_MAX):
            gaps = self.telemetry.get("gaps")
            env = receiver.recv(0)
            if env is None:
                return
            if ring is not None:
                missed = self.telemetry.get("gaps") - gaps
                stream = (env.sender, env.topic)
                joined = 0
                if self._epochs.get(stream) != env.epoch:  # joined late: what went before
                    self._epochs[stream] = env.epoch
                    joined = env.seq - 1
                for r in (ring, self._derived.get(env.topic)):
                    if r is not None:
                        r.missed += missed
                        r.before_join += joined
            handle(env)

    def _count_ticks(self, sender: str, epoch: int, b: TickBatch) -> None:
        """Ticks missed, and sent before the tap first heard a gateway process, by tick seq.

        One seq runs over all symbols; a replay's re-sent ticks come again lower.
        """
        key = (sender, epoch)
        expected = self._next_tick.get(key)
        if expected is None:
            self.ticks.before_join += max(0, b.first_seq - 1)
            expected = b.first_seq
            # A new process of this gateway: of its older ones keep only the last (its
            # ticks may still be in flight), else one entry per restart for ever.
            older = sorted(k for k in self._next_tick if k[0] == sender and k[1] < epoch)
            for k in older[:-1]:
                del self._next_tick[k]
        elif b.first_seq > expected:
            self.ticks.missed += b.first_seq - expected
        self._next_tick[key] = max(expected, b.first_seq + len(b))

    def _on_tick_message(self, env: codec.Envelope) -> None:
        b = env.payload
        if isinstance(b, TickBatch):
            self._count_ticks(env.sender, env.epoch, b)
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
