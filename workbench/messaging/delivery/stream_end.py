"""gateway -> strategy (replay): a subscriber's way out of the stream, after its end."""

from __future__ import annotations


class StreamEnd:
    """When a replay strategy may ack the gateway's end mark, and when it may go.

    After `EndOfStream` the gateway sends its end mark (the first mark after
    it, from the same gateway process: its ``epoch``), and repeats it. The
    strategy acks that only once the executor has confirmed the strategy's own
    end-of-stream (`on_delivered`): until then the gateway stays, so a strategy
    restarted meanwhile rejoins and gets the end again. Once every strategy
    has acked it, the gateway sends the next mark (done) and finishes; a
    strategy leaves on that, not before, so a gateway restarted meanwhile
    finds every strategy to start again with. A restarted gateway's marks are
    acked as they come (the strategy is past them), and after its end-of-stream
    its end mark is held and acked the same way.

    No timer ends it: a gap in marks may be a gateway restarting, loading its
    file. One restarted after its ack whose gateway has finished waits for
    nothing: the replay is over (the executor has every end), and whoever
    supervises it stops every runner then.
    """

    def __init__(self) -> None:
        self.delivered = False
        self.acked = False
        self.done = False
        self.end_mark = 0
        self.epoch = 0  # the gateway process whose end-of-stream we have

    def on_eos(self, epoch: int) -> None:
        """The gateway's end-of-stream (again, from a restarted gateway): its end mark is next."""
        if epoch != self.epoch:
            self.epoch, self.end_mark, self.acked = epoch, 0, False

    def on_mark(self, mark: int, epoch: int) -> int | None:
        """A plain mark after our end-of-stream; returns the mark to ack now, if any."""
        if epoch != self.epoch:
            return mark  # a restarted gateway's stream, which we are past
        if not self.end_mark:
            self.end_mark = mark
        if mark == self.end_mark:
            self.acked = self.acked or self.delivered
            return mark if self.delivered else None
        if mark > self.end_mark and self.acked:
            self.done = True
            return None
        return mark

    def on_delivered(self) -> int | None:
        """The executor has our end-of-stream; returns the end mark to ack now, if one came."""
        self.delivered = True
        if not self.end_mark:
            return None
        self.acked = True
        return self.end_mark

    def restore(self, end_mark: int, epoch: int) -> None:
        """A restart after the end mark was acked (saved with the state)."""
        self.delivered = self.acked = True
        self.end_mark, self.epoch = end_mark, epoch
