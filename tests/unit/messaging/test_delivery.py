"""Reliable delivery objects: credit window, outbox and inbound sequencing (fake clock)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.messaging.delivery import CreditWindow, Gap, InboundSequence, Outbox, Rejoin
from workbench.messaging.messages import MAX_ACK_MISSING

# -- CreditWindow -------------------------------------------------------------------


def joined(subscribers=("a", "b"), window=4, mark_every=2) -> CreditWindow[str]:
    w: CreditWindow[str] = CreditWindow(subscribers, window, mark_every)
    for s in subscribers:
        assert w.on_ack(s, 0) == "ok"
    return w


def test_window_waits_for_every_subscriber_to_ack_the_handshake():
    w: CreditWindow[str] = CreditWindow(["a", "b"], window=4, mark_every=2)
    assert w.active
    assert not w.all_joined()
    assert w.missing() == ["a", "b"]
    w.on_ack("a", 0)
    assert not w.all_joined()
    assert w.missing() == ["b"]
    w.on_ack("b", 0)
    assert w.all_joined()
    assert w.missing() == []


def test_ack_from_an_unexpected_subscriber_is_unknown_and_changes_nothing():
    w: CreditWindow[str] = CreditWindow(["a"], window=4, mark_every=2)
    assert w.on_ack("intruder", 0) == "unknown"
    assert not w.knows("intruder")
    assert w.knows("a")
    assert w.missing() == ["a"]
    assert "intruder" not in w.acked


def test_ack_for_a_mark_never_sent_is_stale_and_not_trusted():
    w = joined()
    assert w.on_ack("a", 1) == "stale"  # only mark 0 exists
    assert w.acked["a"] == 0
    w.next_mark()
    assert w.on_ack("a", 1) == "ok"
    assert w.acked["a"] == 1


def test_ack_never_moves_a_subscriber_backwards():
    w = joined()
    w.next_mark()
    w.next_mark()
    assert w.on_ack("a", 2) == "ok"
    assert w.on_ack("a", 1) == "ok"
    assert w.acked["a"] == 2


def test_before_anyone_joined_every_sent_batch_is_in_flight():
    w: CreditWindow[str] = CreditWindow(["a"], window=2, mark_every=10)
    assert w.can_send()
    w.sent("b1")
    assert w.in_flight() == 1 and w.can_send()
    w.sent("b2")
    assert w.in_flight() == 2
    assert not w.can_send()


def test_window_bounds_batches_past_the_slowest_ack():
    w = joined(window=3, mark_every=100)
    for i in range(3):
        assert w.can_send()
        w.sent(f"b{i}")
    assert w.in_flight() == 3
    assert not w.can_send()


def test_in_flight_counts_from_the_slowest_subscribers_mark():
    w = joined(window=3, mark_every=2)
    assert w.sent("b1") is False
    assert w.sent("b2") is True  # a mark is due every 2 batches
    assert w.next_mark() == 1
    w.sent("b3")
    assert w.in_flight() == 3 and not w.can_send()
    w.on_ack("a", 1)
    assert w.in_flight() == 3  # b still at mark 0
    w.on_ack("b", 1)
    assert w.in_flight() == 1  # only b3 is past mark 1
    assert w.can_send()


def test_sent_says_a_mark_is_due_every_mark_every_batches():
    w = joined(window=100, mark_every=3)
    due = [w.sent(f"b{i}") for i in range(1, 10)]
    assert due == [False, False, True] * 3


def test_mark_every_below_one_means_a_mark_after_every_batch():
    w: CreditWindow[str] = CreditWindow(["a"], window=10, mark_every=0)
    assert w.mark_every == 1
    assert w.sent("b1") is True


def test_marks_are_numbered_one_up():
    w = joined()
    assert [w.next_mark() for _ in range(3)] == [1, 2, 3]
    assert w.mark == 3


def test_sent_batches_are_retained_oldest_first_until_acked():
    w = joined(window=10, mark_every=2)
    for b in ("b1", "b2", "b3"):
        w.sent(b)
    assert w.retained() == ["b1", "b2", "b3"]


def test_next_mark_forgets_only_what_the_slowest_subscriber_acked():
    w = joined(window=10, mark_every=2)
    w.sent("b1")
    w.sent("b2")
    w.next_mark()  # mark 1 after b2
    w.sent("b3")
    w.sent("b4")
    w.on_ack("a", 1)
    w.next_mark()  # mark 2 after b4; b is still at 0
    assert w.retained() == ["b1", "b2", "b3", "b4"]
    w.on_ack("b", 1)
    w.next_mark()  # slowest ack is now mark 1: b1, b2 can go
    assert w.retained() == ["b3", "b4"]
    w.on_ack("a", 3)
    w.on_ack("b", 2)
    w.next_mark()  # slowest is mark 2 (after b4)
    assert w.retained() == []


def test_acks_alone_do_not_prune_retained_batches():
    w = joined(window=10, mark_every=2)
    w.sent("b1")
    w.next_mark()
    w.on_ack("a", 1)
    w.on_ack("b", 1)
    assert w.retained() == ["b1"]  # pruned at the next mark, not on the ack
    w.next_mark()
    assert w.retained() == []


def test_nothing_is_pruned_while_a_subscriber_never_joined():
    w: CreditWindow[str] = CreditWindow(["a", "b"], window=10, mark_every=1)
    w.on_ack("a", 0)
    w.sent("b1")
    w.next_mark()
    w.on_ack("a", 1)
    w.sent("b2")
    w.next_mark()
    assert w.retained() == ["b1", "b2"]


def test_resync_counts_a_restarted_subscriber_as_joined_without_losing_its_ack():
    w: CreditWindow[str] = CreditWindow(["a", "b"], window=10, mark_every=1)
    w.on_ack("a", 0)
    w.on_resync("b")
    assert w.acked["b"] == 0 and w.all_joined()
    w.next_mark()
    w.on_ack("b", 1)
    w.on_resync("b")
    assert w.acked["b"] == 1  # never backwards
    w.on_resync("nobody")
    assert "nobody" not in w.acked


def test_done_once_every_subscriber_acked_the_last_mark():
    w = joined()
    assert w.done()  # only the handshake mark so far, and everyone acked it
    w.sent("b1")
    w.next_mark()
    assert not w.done()
    w.on_ack("a", 1)
    assert not w.done()
    w.on_ack("b", 1)
    assert w.done()


def test_live_mode_without_subscribers_has_no_flow_control_and_retains_nothing():
    w: CreditWindow[str] = CreditWindow([], window=1, mark_every=1)
    assert not w.active
    assert w.all_joined() and w.missing() == []
    for i in range(5):
        assert w.can_send()
        assert w.sent(f"b{i}") is False  # no mark is ever due
    assert w.retained() == []
    assert w.batches_sent == 5
    assert w.done()


# -- Rejoin -------------------------------------------------------------------------


def test_rejoin_asks_on_a_mark_and_again_only_after_the_retry_interval():
    r = Rejoin(nonce=5, retry_s=0.5)
    assert r.ask(10.0) and not r.joined
    assert not r.ask(10.4)  # a mark republished every 50 ms: not a resync each
    assert r.ask(10.5)  # unanswered (a restarted gateway lost it): asked again


def test_rejoin_joins_only_on_the_echo_of_its_own_nonce():
    r = Rejoin(nonce=5)
    r.ask(0.0)
    r.on_echo(4)  # an earlier process's request, served late
    assert not r.joined
    r.on_echo(5)
    assert r.joined and not r.ask(99.0)
    r.on_echo(4)  # a repeat served later changes nothing
    assert r.joined


# -- Outbox -------------------------------------------------------------------------


def test_added_items_wait_in_seq_order():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    o.add(3, "c", 0.0)
    o.add(1, "a", 0.0)
    o.add(2, "b", 0.0)
    assert len(o) == 3
    assert o.items() == ["a", "b", "c"]


def test_ack_releases_everything_up_to_it():
    o: Outbox[str] = Outbox(1.0)
    for s in range(1, 6):
        o.add(s, f"i{s}", 0.0)
    assert o.on_ack(3) == 3
    assert o.items() == ["i4", "i5"]
    assert o.acked == 3
    assert o.on_ack(5) == 2
    assert len(o) == 0


def test_ack_at_or_below_the_current_one_is_ignored():
    o: Outbox[str] = Outbox(1.0)
    for s in range(1, 4):
        o.add(s, f"i{s}", 0.0)
    o.on_ack(2)
    assert o.on_ack(2) == 0
    assert o.on_ack(1) == 0
    assert o.acked == 2
    assert o.items() == ["i3"]


def test_an_item_already_acked_is_not_kept():
    o: Outbox[str] = Outbox(1.0)
    o.on_ack(5)
    o.add(4, "old", 0.0)
    o.add(5, "old", 0.0)
    assert len(o) == 0
    o.add(6, "new", 0.0)
    assert o.items() == ["new"]


def test_items_are_due_only_after_resend_after_s():
    o: Outbox[str] = Outbox(resend_after_s=2.0)
    o.add(1, "a", 10.0)
    o.add(2, "b", 11.0)
    assert o.due(10.0) == []
    assert o.due(11.9) == []
    assert o.due(12.0) == ["a"]  # exactly the bound counts
    assert o.due(13.0) == ["b"]  # a was re-sent at 12.0: not due again yet


def test_due_marks_items_re_sent_so_they_wait_again_twice_as_long():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    o.add(1, "a", 0.0)
    o.add(2, "b", 0.0)
    assert o.due(5.0) == ["a", "b"]
    assert o.due(6.5) == []
    assert o.due(7.0) == ["a", "b"]
    assert o.due(10.9) == []
    assert o.due(11.0) == ["a", "b"]


def test_a_receiver_that_stays_down_is_sent_ever_less_often_up_to_the_longest_wait():
    """Not the whole outbox every second: its queue would fill (and a sender block)."""
    o: Outbox[str] = Outbox(resend_after_s=1.0, max_resend_after_s=8.0)
    o.add(1, "a", 0.0)
    sent_at = [t / 10 for t in range(0, 600) if o.due(t / 10)]
    assert sent_at == [1.0, 3.0, 7.0, 15.0, 23.0, 31.0, 39.0, 47.0, 55.0]


def test_each_item_keeps_its_own_wait():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    o.add(1, "old", 0.0)
    assert o.due(1.0) == ["old"]  # now waits 2 s
    o.add(2, "new", 1.5)
    assert o.due(2.5) == ["new"]
    assert o.due(3.0) == ["old"]
    assert o.due(4.5) == ["new"]


def test_a_restarted_receiver_resets_the_waits():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    o.add(1, "a", 0.0)
    for t in (1.0, 3.0, 7.0):
        assert o.due(t) == ["a"]  # waits 8 s now
    assert o.everything(8.0) == ["a"]
    assert o.due(8.9) == []
    assert o.due(9.0) == ["a"]  # 1 s again


def test_an_item_the_receiver_asks_for_waits_the_first_wait_again():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    for s in (1, 2):
        o.add(s, f"i{s}", 0.0)
    for t in (1.0, 3.0, 7.0):
        assert o.due(t) == ["i1", "i2"]  # both wait 8 s now
    o.on_ack(2, ((1, 1),))  # 2 arrived, 1 is listed missing
    assert o.items() == ["i1"]
    assert o.due(8.0) == ["i1"]


def test_held_items_go_first_in_order_and_only_then_wait_for_their_ack():
    """A full queue refused their first send: not due (they were never sent), but first in line."""
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    for s in (1, 2, 3):
        o.add(s, f"i{s}", 0.0, saved=f"S{s}".encode())
    assert o.hold([2, 3]) == 2 and o.hold([3]) == 0  # counted once
    assert o.holding == 2 and o.held(10) == ["i2", "i3"]
    assert o.due(5.0) == ["i1"]  # only the one that went
    o.add(4, "i4", 5.0)
    o.hold([4])
    assert o.held(10) == ["i2", "i3", "i4"]  # a later first send waits behind them
    assert o.held(2) == ["i2", "i3"]
    o.release(2, 6.0)  # the queue took two
    assert o.held(10) == ["i4"]
    assert o.due(6.9) == [] and o.due(7.0) == ["i1", "i2", "i3"]  # i1 waited 2 s
    assert o.saved() == [b"S1", b"S2", b"S3", b""]  # what a save writes, whatever is held
    assert o.everything(8.0) == ["i1", "i2", "i3", "i4"]  # a restarted receiver: all, in order
    assert o.holding == 0  # the sender holds again what its queue refuses of them
    o.on_ack(4)
    assert len(o) == 0 and o.holding == 0


def test_a_refused_re_send_is_held_in_seq_order_and_its_wait_does_not_grow():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    for s in (1, 2, 3):
        o.add(s, f"i{s}", 0.0)
    o.hold([3])  # a first send refused
    assert o.due(1.0) == ["i1", "i2"]  # their re-sends: refused too
    o.hold([1, 2])
    assert o.held(10) == ["i1", "i2", "i3"]  # in seq order, whatever came first
    assert o.due(100.0) == []  # held: never "due" while the queue is full
    o.release(3, 100.0)  # the queue has room again
    assert o.due(100.9) == [] and o.due(101.0) == ["i3"]  # a first send: the first wait
    assert o.due(102.0) == ["i1", "i2"]  # re-sends: the wait they had grown to, not reset


def test_an_ack_of_held_re_sends_keeps_the_rest_held_in_order():
    """Refused re-sends of signals the receiver had: acked, they are no longer held."""
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    for s in range(1, 7):
        o.add(s, f"i{s}", 0.0)
    assert o.due(1.0) == [f"i{s}" for s in range(1, 7)]
    o.hold(range(1, 7))  # every re-send refused: the receiver is slow, not gone
    assert o.on_ack(4, missing=[(2, 2)]) == 3  # 1, 3 and 4 arrived; 2 is asked for again
    assert o.holding == 3 and o.held(10) == ["i2", "i5", "i6"]
    o.release(1, 2.0)
    assert o.held(10) == ["i5", "i6"] and o.on_ack(6) == 3 and o.holding == 0 and len(o) == 0


def test_a_refused_re_send_does_not_throw_away_its_grown_wait():
    o: Outbox[str] = Outbox(resend_after_s=1.0, max_resend_after_s=30.0)
    o.add(1, "i1", 0.0)
    for t in (1.0, 3.0, 7.0, 15.0, 31.0):
        assert o.due(t) == ["i1"]  # waits 1, 2, 4, 8, 16, then 30 s
    assert o.due(61.0) == ["i1"]
    o.hold([1])  # that re-send was refused
    o.release(1, 61.01)  # and went once there was room
    assert o.due(90.0) == [] and o.due(91.01) == ["i1"]  # 30 s on, not 1 s


def test_an_item_added_later_is_due_on_time_whatever_was_due_before():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    assert o.due(0.0) == []
    o.add(1, "a", 5.0)
    assert o.due(5.9) == []
    assert o.due(6.0) == ["a"]
    o.on_ack(1)
    assert o.due(100.0) == []


def test_acked_items_are_never_due():
    o: Outbox[str] = Outbox(1.0)
    o.add(1, "a", 0.0)
    o.add(2, "b", 0.0)
    o.on_ack(1)
    assert o.due(100.0) == ["b"]


def test_everything_returns_all_unacked_in_order_and_restarts_their_timers():
    o: Outbox[str] = Outbox(resend_after_s=1.0)
    o.add(2, "b", 0.0)
    o.add(1, "a", 0.5)
    assert o.everything(0.6) == ["a", "b"]
    assert o.due(1.5) == []  # both just sent at 0.6
    assert o.due(1.6) == ["a", "b"]


def test_restore_keeps_every_saved_item_and_makes_them_due_at_once():
    o: Outbox[str] = Outbox(resend_after_s=5.0)
    # 1: kept, listed missing by an ack
    o.restore([(1, "a", b"A"), (2, "b", b"B"), (3, "c", b"C")], acked=2)
    assert o.acked == 2
    assert o.items() == ["a", "b", "c"] and o.saved() == [b"A", b"B", b"C"]
    assert o.due(100.0) == ["a", "b", "c"]
    assert o.due(100.0) == []  # now marked sent


def test_an_item_kept_as_missing_survives_a_restart_until_an_ack_clears_it():
    o: Outbox[str] = Outbox(1.0)
    for s in range(1, 4):
        o.add(s, f"i{s}", 0.0)
    o.on_ack(3, ((2, 2),))
    again: Outbox[str] = Outbox(1.0)
    again.restore([(2, "i2", b"")], o.acked)  # what the strategy saved
    assert again.everything(5.0) == ["i2"]
    assert again.on_ack(3) == 1 and len(again) == 0


def test_restore_replaces_what_was_there():
    o: Outbox[str] = Outbox(1.0)
    o.add(9, "stale", 0.0)
    o.restore([(1, "a", b"")], acked=0)
    assert o.items() == ["a"]


@pytest.mark.parametrize(
    ("now", "resend_after_s"),
    [(0.7, 0.1), (1.1, 0.2), (3.3, 0.3), (1e9 + 0.3, 0.3), (1764632000.123, 1.1), (0.0, 5.0)],
)
def test_restored_items_are_due_at_once_whatever_the_float_clock(now, resend_after_s):
    # Regression: sent_at = now - resend_after_s lost to float rounding for these pairs.
    o: Outbox[str] = Outbox(resend_after_s)
    o.restore([(1, "a", b"")], acked=0)
    assert o.due(now) == ["a"]
    assert o.due(now) == []


# -- InboundSequence ----------------------------------------------------------------


def seq_(timeout: float = 10.0, next_seq: int = 1, max_held: int = 100_000):
    return InboundSequence[str]("s", next_seq, timeout, max_held)


def test_in_order_items_are_delivered_at_once():
    q = seq_()
    assert q.offer(1, "a", 0.0) == ["a"]
    assert q.offer(2, "b", 0.0) == ["b"]
    assert q.ack == 2 and q.held == 0


def test_ack_starts_just_below_next_seq():
    assert seq_(next_seq=1).ack == 0
    assert seq_(next_seq=8).ack == 7


def test_out_of_order_items_are_held_until_the_hole_fills_then_released_in_order():
    q = seq_()
    assert q.offer(3, "c", 0.0) == []
    assert q.offer(2, "b", 0.0) == []
    assert q.held == 2 and q.ack == 0
    assert q.offer(1, "a", 1.0) == ["a", "b", "c"]
    assert q.held == 0 and q.ack == 3


def test_filling_the_first_of_two_holes_releases_only_up_to_the_second():
    q = seq_()
    q.offer(2, "b", 0.0)
    q.offer(4, "d", 0.0)
    assert q.offer(1, "a", 0.0) == ["a", "b"]
    assert q.ack == 2 and q.held == 1
    assert q.offer(3, "c", 0.0) == ["c", "d"]
    assert q.ack == 4


def test_duplicates_and_late_items_below_next_seq_are_passed_straight_on():
    q = seq_()
    q.offer(1, "a", 0.0)
    q.offer(2, "b", 0.0)
    assert q.offer(1, "a-again", 0.0) == ["a-again"]
    assert q.ack == 2


def test_a_held_duplicate_is_held_once():
    q = seq_()
    q.offer(3, "c", 0.0)
    q.offer(3, "c", 0.0)
    assert q.held == 1
    assert q.offer(1, "a", 0.0) == ["a"]
    assert q.offer(2, "b", 0.0) == ["b", "c"]


def test_expire_without_a_hole_reports_nothing():
    q = seq_(timeout=1.0)
    q.offer(1, "a", 0.0)
    assert q.expire(1000.0) == ([], None)


def test_a_hole_is_not_skipped_before_gap_timeout():
    q = seq_(timeout=10.0)
    q.offer(3, "c", 5.0)
    assert q.expire(14.9) == ([], None)
    assert q.ack == 0 and q.held == 1


def test_a_hole_older_than_gap_timeout_is_reported_once_and_skipped():
    q = seq_(timeout=10.0)
    q.offer(1, "a", 0.0)
    q.offer(4, "d", 5.0)
    q.offer(5, "e", 6.0)
    out, gap = q.expire(15.0)
    assert gap == Gap("s", 2, 3)
    assert gap.missing == 2
    assert out == ["d", "e"]
    assert q.ack == 5 and q.held == 0
    assert q.expire(100.0) == ([], None)  # reported once


def test_the_hole_timer_starts_at_the_first_held_item():
    q = seq_(timeout=10.0)
    q.offer(3, "c", 5.0)
    q.offer(4, "d", 9.0)  # a later item does not restart the timer
    _, gap = q.expire(15.0)
    assert gap == Gap("s", 1, 2)


def test_a_skipped_item_arriving_late_is_passed_on():
    q = seq_(timeout=1.0)
    q.offer(2, "b", 0.0)
    q.expire(1.0)
    assert q.offer(1, "a-late", 2.0) == ["a-late"]
    assert q.offer(3, "c", 2.0) == ["c"]


def test_after_a_skip_the_next_hole_gets_its_own_full_timeout():
    q = seq_(timeout=10.0)
    q.offer(3, "c", 0.0)
    q.offer(6, "f", 1.0)
    out, gap = q.expire(10.0)
    assert out == ["c"] and gap == Gap("s", 1, 2)
    assert q.held == 1 and q.ack == 3
    assert q.expire(19.9) == ([], None)  # the hole at 4..5 timed from 10.0
    out, gap = q.expire(20.0)
    assert out == ["f"] and gap == Gap("s", 4, 5)
    assert q.ack == 6


def test_a_hole_that_fills_clears_the_timer():
    q = seq_(timeout=10.0)
    q.offer(2, "b", 0.0)
    q.offer(1, "a", 5.0)
    q.offer(4, "d", 12.0)  # a new hole opens at 12
    assert q.expire(21.9) == ([], None)
    _, gap = q.expire(22.0)
    assert gap == Gap("s", 3, 3)


def test_a_hole_exposed_when_an_earlier_hole_fills_gets_its_own_full_timeout():
    # Regression: the hole left behind used to keep the first hole's timer.
    q = seq_(timeout=10.0)
    q.offer(2, "b", 0.0)  # hole at 1 since 0.0
    q.offer(4, "d", 9.5)  # hole at 3
    assert q.offer(1, "a", 9.6) == ["a", "b"]  # fills the first hole
    assert q.held == 1
    assert q.expire(10.0) == ([], None)
    assert q.expire(19.5) == ([], None)
    assert q.expire(19.6) == (["d"], Gap("s", 3, 3))


def test_filling_part_of_a_hole_keeps_its_timer():
    q = seq_(timeout=10.0)
    q.offer(4, "d", 0.0)  # hole 1..3 since 0.0
    assert q.offer(1, "a", 5.0) == ["a"]  # the same hole, now 2..3
    out, gap = q.expire(10.0)
    assert (out, gap) == (["d"], Gap("s", 2, 3))


def test_held_items_are_bounded_by_max_held():
    q = seq_(max_held=2)
    q.offer(3, "c", 0.0)
    q.offer(4, "d", 0.0)
    assert q.offer(5, "e", 0.0) == []
    assert q.held == 2  # e dropped: the sender still has it
    q.offer(4, "d2", 0.0)  # a held seq may still be replaced
    assert q.held == 2
    assert q.offer(1, "a", 0.0) == ["a"]
    assert q.offer(2, "b", 0.0) == ["b", "c", "d2"]
    assert q.ack == 4
    assert q.offer(5, "e", 0.0) == ["e"]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.permutations(list(range(1, n + 1))),
            st.lists(st.integers(min_value=1, max_value=n), max_size=2 * n),
            st.randoms(use_true_random=False),
        )
    )
)
def test_any_permutation_with_duplicates_is_delivered_once_each_in_order(case):
    n, perm, dups, rnd = case
    offers = list(perm) + dups
    rnd.shuffle(offers)
    q = InboundSequence[int]("s", 1, gap_timeout_s=1e9)
    delivered: list[int] = []
    for t, s in enumerate(offers):
        delivered.extend(q.offer(s, s, float(t)))
        out, gap = q.expire(float(t))
        assert out == [] and gap is None
    first_seen: list[int] = []
    for s in delivered:
        if s not in first_seen:
            first_seen.append(s)
    assert first_seen == list(range(1, n + 1))
    assert q.ack == n and q.held == 0


# -- gaps given up on: the ack lists them, the sender keeps them ---------------------------


def test_a_skipped_range_is_listed_as_missing_until_it_arrives_late():
    q = seq_(timeout=1.0)
    q.offer(3, "c", 0.0)
    q.expire(1.0)
    assert q.ack == 3 and q.missing == ((1, 2),)
    assert q.offer(2, "b-late", 2.0) == ["b-late"] and q.late == 1
    assert q.missing == ((1, 1),)
    assert q.offer(1, "a-late", 2.0) == ["a-late"] and q.late == 2
    assert q.missing == ()
    assert q.offer(1, "a-again", 3.0) == ["a-again"] and q.late == 2  # a re-send: not late


def test_ranges_remembered_from_before_a_restart_are_missing_until_they_arrive():
    q = InboundSequence("s", 8, 1.0)  # the journal has up to seq 7
    q.remember([(5, 5), (2, 3), (8, 9)], 10.0)  # (8, 9) is not below next_seq: not a gap
    assert q.ack == 7 and q.missing == ((2, 3), (5, 5)) and q.given_up == [(2, 3), (5, 5)]
    assert q.skipped_at == 10.0  # re-sends get a bound from the restart
    assert q.offer(3, "c-late", 0.0) == ["c-late"] and q.late == 1
    assert q.given_up == [(2, 2), (5, 5)]


def test_a_remembered_range_is_cut_to_what_is_below_next_seq_and_has_not_arrived():
    q = InboundSequence("s", 5, 1.0)  # up to seq 4 journaled, 3 among them
    q.remember([(1, 1), (2, 7)], 0.0, arrived={1, 3})
    assert q.given_up == [(2, 2), (4, 4)]
    huge = InboundSequence("s", 10**12 + 1, 1.0)  # one far seq made a vast hole: no loop over it
    huge.remember([(2, 10**12)], 0.0, arrived={5, 7})
    assert huge.given_up == [(2, 4), (6, 6), (8, 10**12)]
    nothing = InboundSequence("s", 5, 1.0)
    nothing.remember([(2, 3)], 0.0, arrived={2, 3})
    assert nothing.given_up == [] and nothing.skipped_at == float("-inf")


def test_the_sender_keeps_what_the_ack_lists_as_missing_and_re_sends_it():
    o: Outbox[str] = Outbox(1.0)
    for s in range(1, 5):
        o.add(s, f"i{s}", 0.0)
    assert o.on_ack(4, ((1, 2),)) == 2
    assert o.items() == ["i1", "i2"] and 1 in o and 3 not in o
    assert o.due(5.0) == ["i1", "i2"]
    assert o.on_ack(4) == 2  # the late copies arrived: the same ack, nothing missing
    assert len(o) == 0


def test_a_lost_last_signal_is_timed_from_the_end_of_stream_and_reported():
    q = seq_(timeout=1.0)
    q.offer(1, "a", 0.0)
    q.ends_at(3, 5.0)  # the sender's end of stream says 3 was its last
    assert q.expire(5.5) == ([], None)
    out, gap = q.expire(6.0)
    assert out == [] and gap == Gap("s", 2, 3)
    assert q.ack == 3 and q.missing == ((2, 3),)


def test_an_end_of_stream_that_nothing_is_missing_from_starts_no_timer():
    q = seq_(timeout=1.0)
    q.offer(1, "a", 0.0)
    q.ends_at(1, 1.0)
    assert q.expire(100.0) == ([], None)


def test_with_more_missing_ranges_than_an_ack_lists_it_stops_below_the_first_unlisted():
    q = seq_(timeout=1.0)
    now = 0.0
    for k in range(MAX_ACK_MISSING + 1):  # seqs 2, 4, 6, ... each after a skipped one
        q.offer(2 * k + 2, "x", now)
        now += 1.0
        q.expire(now)
    assert len(q.missing) == MAX_ACK_MISSING
    assert q.missing[-1] == (2 * MAX_ACK_MISSING - 1,) * 2
    assert q.ack == 2 * MAX_ACK_MISSING  # just below the unlisted range
