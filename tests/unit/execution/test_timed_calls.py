"""`TimedCalls`: broker calls on a worker thread, each within its timeout, with a wait hook."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.execution.broker import BrokerTimeout, TimedCalls


class _Venue:
    in_process = False


def test_a_slow_call_returns_its_result_and_the_wait_hook_runs_meanwhile() -> None:
    ticks: list[float] = []
    calls = TimedCalls(
        _Venue(), 5.0, on_wait=lambda: ticks.append(time.monotonic()), wait_tick_s=0.05
    )
    try:
        assert calls(lambda x: (time.sleep(0.3), x * 2)[1], 21) == 42
    finally:
        calls.close()
    assert len(ticks) >= 3


def test_a_call_over_its_timeout_raises_with_or_without_a_hook() -> None:
    release = threading.Event()
    for hook in (None, lambda: None):
        calls = TimedCalls(_Venue(), 0.2, on_wait=hook, wait_tick_s=0.05)
        t0 = time.monotonic()
        with pytest.raises(BrokerTimeout) as e:
            calls(release.wait, 5)
        assert e.value.started and time.monotonic() - t0 >= 0.2
        # A call queued behind the hung one never starts: it certainly did nothing.
        with pytest.raises(BrokerTimeout) as e:
            calls(lambda: None)
        assert not e.value.started
        release.set()
        calls.close()
        release.clear()


def test_in_process_brokers_are_called_directly() -> None:
    class Sim:
        in_process = True

    waits: list[int] = []
    calls = TimedCalls(Sim(), 0.01, on_wait=lambda: waits.append(1))
    assert calls(lambda: threading.current_thread().name) == threading.current_thread().name
    assert not waits
