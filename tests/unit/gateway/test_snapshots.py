"""MarketSnapshots: per symbol its newest tick, at most every interval, only on change."""

from __future__ import annotations

import math

import pytest

from workbench.domain.model import Tick, TickBatch
from workbench.gateway.snapshots import MarketSnapshots

IV = 0.125  # binary fractions: the clock's sums stay exact


def batch(sym: str, first_seq: int, *prices: float) -> TickBatch:
    n = len(prices)
    return TickBatch(sym, first_seq, [first_seq + i for i in range(n)], list(prices), [1.0] * n)


def test_the_first_tick_goes_out_at_once_with_its_own_seq_and_time():
    s = MarketSnapshots(IV)
    assert s.due(0.0) == [] and s.seconds_to_due(0.0) == math.inf
    s.offer(batch("ABC", 7, 100.0, 100.5))
    assert s.seconds_to_due(0.0) == 0.0
    assert s.due(0.0) == [Tick("ABC", 8, 100.5, 1.0, 8)]  # the batch's newest tick
    assert s.due(0.0) == [] and s.pending == 0


def test_ticks_within_the_interval_wait_and_only_the_newest_goes_out():
    s = MarketSnapshots(IV)
    s.offer(batch("ABC", 1, 100.0))
    assert len(s.due(0.0)) == 1
    for i, t in enumerate((0.25 * IV, 0.5 * IV, 0.75 * IV), start=2):
        s.offer(batch("ABC", i, 100.0 + i))
        assert s.due(t) == []  # within the interval: withheld for now
    assert s.seconds_to_due(0.75 * IV) == 0.25 * IV
    assert s.due(IV) == [Tick("ABC", 4, 104.0, 1.0, 4)]  # the burst's last tick, not withheld
    assert s.due(10 * IV) == []  # nothing new: nothing sent


def test_a_tick_after_a_quiet_spell_goes_out_at_once():
    s = MarketSnapshots(IV)
    s.offer(batch("ABC", 1, 100.0))
    s.due(0.0)
    s.offer(batch("ABC", 2, 101.0))
    assert [t.price for t in s.due(3 * IV)] == [101.0]
    s.offer(batch("ABC", 3, 102.0))
    assert s.due(3.5 * IV) == [] and s.seconds_to_due(3.5 * IV) == 0.5 * IV


def test_symbols_are_throttled_each_on_its_own():
    s = MarketSnapshots(IV)
    s.offer(batch("ABC", 1, 1.0))
    assert [t.symbol for t in s.due(0.0)] == ["ABC"]
    s.offer(batch("XYZ", 2, 2.0))  # never sent before: due now, ABC's interval regardless
    s.offer(batch("ABC", 3, 3.0))
    assert [t.symbol for t in s.due(0.5 * IV)] == ["XYZ"]
    assert s.seconds_to_due(0.5 * IV) == 0.5 * IV  # ABC's
    s.offer(batch("XYZ", 4, 4.0))
    assert [(t.symbol, t.price) for t in s.due(IV)] == [("ABC", 3.0)]
    assert [(t.symbol, t.price) for t in s.due(1.5 * IV)] == [("XYZ", 4.0)]


def test_a_late_caller_still_gets_at_most_one_snapshot_per_interval():
    s = MarketSnapshots(IV)
    s.offer(batch("ABC", 1, 1.0))
    s.due(0.0)
    s.offer(batch("ABC", 2, 2.0))
    assert len(s.due(1.5 * IV)) == 1  # sent late: the next interval counts from now
    s.offer(batch("ABC", 3, 3.0))
    assert s.due(2.25 * IV) == [] and s.seconds_to_due(2.25 * IV) == 0.25 * IV


def test_flush_sends_everything_pending_at_once():
    s = MarketSnapshots(IV)
    s.offer(batch("ABC", 1, 1.0))
    s.due(0.0)
    s.offer(batch("ABC", 2, 2.0))
    s.offer(batch("XYZ", 3, 3.0, 4.0))
    assert s.flush(0.25 * IV) == [Tick("ABC", 2, 2.0, 1.0, 2), Tick("XYZ", 4, 4.0, 1.0, 4)]
    assert s.flush(0.5 * IV) == [] and s.seconds_to_due(0.5 * IV) == math.inf


def test_an_empty_batch_changes_nothing_and_the_interval_must_be_positive():
    s = MarketSnapshots(IV)
    s.offer(TickBatch("ABC", 1, [], [], []))
    assert s.due(0.0) == [] and s.pending == 0
    with pytest.raises(ValueError, match="> 0"):
        MarketSnapshots(0.0)
