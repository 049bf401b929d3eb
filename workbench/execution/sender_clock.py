"""Times another process stamped with its wall clock, told in this machine's clock.

The executor judges a price's age by when the gateway sent it, but the
gateway may run on another host whose clock is off from this one's. The
least ``receive - send`` gap seen lately is that offset plus the fastest
delivery; a message stamped ``sent_ns`` left, by this machine's clock, at
about ``sent_ns + gap`` and never after it arrived. Messages read late (a
backlog behind a slow broker call) have longer gaps and leave the least one
alone, so an old price still looks old. Pure: the caller passes its clocks.
"""

from __future__ import annotations

from collections import deque


class SenderClock:
    """The least ``receive - send`` gap over a sliding window, and times told with it.

    Args:
        window_s: How long a gap counts. After the sender's clock steps back,
            its messages look older than they are (too old: refused) for at
            most this long; a step forward is taken at once. The gaps kept
            are each second's least, so a gap may count up to 1 s longer.
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._gaps: deque[tuple[float, int]] = deque()  # (when, gap), gaps increasing

    def local(self, sent_ns: int, received_ns: int, now_s: float) -> int:
        """When a message stamped ``sent_ns`` and received at ``received_ns`` left, here.

        Args:
            sent_ns: The sender's wall clock when it sent the message.
            received_ns: This machine's wall clock when the message was read.
            now_s: A monotonic clock (seconds), for the window.
        """
        gap = received_ns - sent_ns
        gaps = self._gaps
        while gaps and gaps[-1][1] >= gap:
            gaps.pop()
        # One gap kept a second at most: a sender whose clock drifts makes every gap
        # larger than the last, and a thousand symbols' prices must not all be kept.
        if not gaps or now_s - gaps[-1][0] >= 1.0:
            gaps.append((now_s, gap))
        while gaps[0][0] < now_s - self.window_s:
            gaps.popleft()
        return min(received_ns, sent_ns + gaps[0][1])

    def __len__(self) -> int:
        return len(self._gaps)

    @property
    def gap_ns(self) -> int | None:
        """The least gap in the window (the sender's clock behind this one's, plus delivery)."""
        return self._gaps[0][1] if self._gaps else None
