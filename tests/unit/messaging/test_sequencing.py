"""Sequence tracking reports gaps and duplicates per sender stream."""

from __future__ import annotations

from structlog.testing import capture_logs

from workbench.messaging.sequencing import SequenceTracker
from workbench.telemetry import Telemetry


def test_in_order_messages_pass_without_reports():
    t = Telemetry()
    seq = SequenceTracker(t, "ticks")
    assert all(seq.check("gw", b"tick/A/", 1, n) for n in range(1, 6))
    assert t.get("gaps") == 0 and t.get("duplicates") == 0


def test_gap_is_counted_by_messages_missed_and_logged():
    t = Telemetry()
    seq = SequenceTracker(t, "ticks")
    seq.check("gw", b"tick/A/", 1, 1)
    with capture_logs() as logs:
        assert seq.check("gw", b"tick/A/", 1, 5)
    assert t.get("gaps") == 3
    assert logs[0]["event"] == "sequence_gap" and logs[0]["missed"] == 3


def test_duplicate_is_dropped_counted_and_logged():
    t = Telemetry()
    seq = SequenceTracker(t, "signals")
    seq.check("s1", b"sig/s1/", 1, 1)
    seq.check("s1", b"sig/s1/", 1, 2)
    with capture_logs() as logs:
        assert not seq.check("s1", b"sig/s1/", 1, 2)
    assert t.get("duplicates") == 1
    assert logs[0]["event"] == "sequence_duplicate"


def test_streams_are_independent_per_sender_and_topic():
    t = Telemetry()
    seq = SequenceTracker(t, "ticks")
    seq.check("gw", b"tick/A/", 1, 1)
    seq.check("gw", b"tick/B/", 1, 1)
    seq.check("other", b"tick/A/", 1, 1)
    assert seq.check("gw", b"tick/A/", 1, 2)
    assert t.get("gaps") == 0 and t.get("duplicates") == 0


def test_new_epoch_restarts_the_stream_without_reporting_duplicates():
    t = Telemetry()
    seq = SequenceTracker(t, "ticks")
    seq.check("gw", b"tick/A/", 1, 10)
    assert seq.check("gw", b"tick/A/", 2, 1)
    assert t.get("duplicates") == 0
