"""`SenderClock`: another host's send times in this host's clock, with fake clocks."""

from __future__ import annotations

from workbench.execution.sender_clock import SenderClock

S = 1_000_000_000
T0 = 1_700_000_000 * S


def test_a_sender_whose_clock_is_behind_is_told_in_ours():
    c = SenderClock()
    # The gateway's clock is 3 s behind; messages take 1 ms.
    assert c.local(T0 - 3 * S, T0 + S // 1000, 0.0) == T0 + S // 1000
    # Read 2 s late (a backlog): it left 2 s ago by our clock, not when it was read.
    sent_here = T0 + 10 * S
    assert c.local(sent_here - 3 * S, sent_here + 2 * S, 12.0) == sent_here + S // 1000
    assert c.gap_ns == 3 * S + S // 1000


def test_never_later_than_received_and_a_faster_delivery_lowers_the_gap():
    c = SenderClock()
    assert c.local(T0, T0 + 5_000, 0.0) == T0 + 5_000
    assert c.local(T0 + S, T0 + S + 1_000, 1.0) == T0 + S + 1_000  # 1 us now the least
    assert c.local(T0 + 2 * S, T0 + 2 * S + 9_000, 2.0) == T0 + 2 * S + 1_000
    assert c.gap_ns == 1_000


def test_a_gap_counts_for_the_window_only():
    c = SenderClock(window_s=60.0)
    c.local(T0, T0 + 1_000, 0.0)
    # The sender's clock stepped back 5 s: its times look 5 s old for up to a window...
    assert c.local(T0 + 30 * S - 5 * S, T0 + 30 * S, 30.0) == T0 + 25 * S + 1_000
    # ...then the new gap is the least one and they are right again.
    assert c.local(T0 + 90 * S - 5 * S, T0 + 90 * S, 90.0) == T0 + 90 * S
    assert c.gap_ns == 5 * S


def test_a_drifting_sender_keeps_one_gap_a_second():
    c = SenderClock(window_s=60.0)
    for i in range(10_000):  # 100 messages a second, each gap 1 us longer than the last
        now = i / 100
        sent = T0 + i * S // 100
        # The least gap of about a window ago (gaps grow): never later than received.
        want = sent + 1_000 * max(0, i - 6_000)
        assert want <= c.local(sent, sent + 1_000 * i, now) <= want + 1_000 * 100
    assert len(c) <= 61
