"""The venue's report book: an order's end is final, and an ended order is polled no more.

The stream (``watch_orders``), the REST poller and a create's answer race; an
older answer that arrives after the order's end must neither reopen it nor
keep it polled.
"""

from __future__ import annotations

from workbench.exchanges.venue_orders import ReportBook, VenueOrder


def order(status: str, filled: float = 0.0) -> VenueOrder:
    return VenueOrder("c1", "1001", "USD/JPY", "buy", 2.0, 86.0, status, filled, 86.0, 1)


def statuses(book: ReportBook) -> list[tuple[str, float]]:
    return [(r.order.status, r.order.filled) for r in book.drain()]


def test_an_older_open_answer_after_a_cancel_is_ignored():
    # The cancel was lost: the order stayed open in the executor, counted as working.
    book = ReportBook()
    book.track(order("open"), "USD/JPY")
    book.note(order("canceled"), "ws")
    book.note(order("open"), "poll")  # the poller's answer, sent before the cancel
    assert statuses(book) == [("open", 0.0), ("canceled", 0.0)]
    assert book.in_flight() == []


def test_fills_reported_after_the_end_still_count():
    book = ReportBook()
    book.track(order("open"), "USD/JPY")
    book.note(order("canceled", 0.0), "ws")
    book.note(order("canceled", 1.0), "poll")  # a fill before the cancel, listed later
    assert statuses(book) == [("open", 0.0), ("canceled", 0.0), ("canceled", 1.0)]


def test_an_order_the_stream_ended_before_the_creates_answer_is_not_polled():
    # It was polled every round for the rest of the session, eating the rate limit.
    book = ReportBook()
    book.note(order("open"), "ws")
    book.note(order("closed", 2.0), "ws")
    book.track(order("open"), "USD/JPY")  # the create's answer, late
    assert book.in_flight() == [] and book.poll_due() == []
    assert statuses(book) == [("open", 0.0), ("closed", 2.0)]


def test_an_ended_order_found_again_leaves_the_polls():
    book = ReportBook()
    book.track(order("open"), "USD/JPY")
    book.note(order("closed", 2.0), "ws")
    book.track(order("open"), "USD/JPY")  # followed again (reconciliation's stale look-up)
    book.note(order("closed", 2.0), "poll")
    assert book.in_flight() == []
