"""The strategy host's end of a stream: its end-of-stream to the executor, and its way out.

After the gateway's `EndOfStream` the host forwards its own (ticks seen, last
signal seq) behind every signal it sent, and re-sends it until the executor
echoes it: the executor then has everything before it. In a replay it then
acks the gateway's end mark and leaves once the gateway says done
(`StreamEnd`); live, it leaves at once (with ``exit_on_eos``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from workbench.messaging.codec import Ack, EndOfStream
from workbench.strategies.outcomes import deliver

if TYPE_CHECKING:
    from workbench.domain.model import Signal
    from workbench.messaging.delivery import Outbox, StreamEnd
    from workbench.messaging.ports import Receiver, Sender
    from workbench.strategies.base import Strategy
    from workbench.strategies.outcomes import OutcomeQueue

EOS_CONFIRM_TIMEOUT_S = 5.0


class StreamEndMixin:
    """`StrategyRunner`'s end-of-stream methods (the attributes are the host's)."""

    runner_id: str
    log: Any
    strategy: Strategy
    outbox: Outbox[Signal]
    finished: bool
    eos_seen: bool
    ticks_processed: int
    last_signal_seq: int
    signals_sent: int
    _acks: Receiver | None
    _signals: Sender
    _credits: Sender
    _outcomes: OutcomeQueue
    _end: StreamEnd | None
    _eos: EndOfStream | None
    _eos_confirmed: bool
    _eos_sent_at: float
    _last_eos_send: float
    _exit_on_eos: bool

    def _persist(self) -> None: ...

    def _on_eos(self, eos: EndOfStream, epoch: int = 0) -> None:
        """Forward our end-of-stream once, behind every signal sent (``epoch``: the gateway's)."""
        if self._end is not None:  # its end mark comes next (a restarted gateway's too)
            self._end.on_eos(epoch)
        if self.eos_seen:
            return
        for e in self._outcomes.due():  # outcomes after the last tick
            deliver(self.strategy, e)
        self._persist()
        self._eos = EndOfStream(self.runner_id, self.ticks_processed, self.last_signal_seq)
        if not self.outbox.holding:  # never ahead of held signals (`_finish_when_delivered`)
            self._signals.send(self._eos)
        self._last_eos_send = self._eos_sent_at = time.monotonic()
        self.eos_seen = True
        self.log.info(
            "end_of_stream_forwarded",
            ticks=self.ticks_processed,
            gateway_ticks=eos.count,
            signals=self.signals_sent,
            last_signal_seq=self.last_signal_seq,
        )
        self._finish_when_delivered(time.monotonic())

    def _finish_when_delivered(self, now: float) -> None:
        """After end-of-stream: re-send it until the executor echoes it (it has all before it).

        Live, an executor that exits at once may go before a just-joined subscription
        sees the echo: with every signal acknowledged, finish after
        ``EOS_CONFIRM_TIMEOUT_S``. Not in a replay: its executor may be down for
        longer (restarting), and the replay is over only once it has every end.
        """
        assert self._eos is not None
        delivered = self._acks is None or (self._eos_confirmed and not len(self.outbox))
        if not delivered and now - self._eos_sent_at > EOS_CONFIRM_TIMEOUT_S:
            kept = self.outbox.items()
            if not kept and self._end is None:
                self.log.warning("end_of_stream_unconfirmed", waited_s=EOS_CONFIRM_TIMEOUT_S)
                delivered = True
            elif kept and all(s.seq <= self.outbox.acked for s in kept):
                # The executor acked past these, listing them missing, and did not take
                # them since: it finished without them (each a counted, alerted gap there).
                self.log.error("signals_given_up", signal_ids=[s.id for s in kept[:50]])
                delivered = True
        if delivered:
            self._eos = None
            if self._end is None:
                self.finished = self._exit_on_eos
            elif (end := self._end.on_delivered()) is not None:
                self._ack_end(end)
            return
        if now - self._last_eos_send >= self.outbox.resend_after_s and not self.outbox.holding:
            self._signals.send(self._eos)
            self._last_eos_send = now

    def _ack_end(self, mark: int) -> None:
        """Ack a mark after our end-of-stream, saved first: a restart must not ask again."""
        self._persist()
        self._credits.send(Ack(self.runner_id, mark))
