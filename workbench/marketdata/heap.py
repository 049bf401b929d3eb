"""glibc's malloc, told to give freed memory back: a replay gateway has an RSS budget.

A load converts a file in small chunks; their freed buffers stay resident in
glibc's heap (below the mmap threshold, in the middle of the heap) unless the
heap is trimmed. On another C library these calls do nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

_M_MMAP_THRESHOLD = -3


@cache
def _glibc() -> Any:
    """glibc's malloc controls, or None on another C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def keep_heap_small() -> None:
    """Give freed page buffers back to the system at once.

    glibc raises its mmap threshold after the first large free, so later
    page-sized buffers land on the heap and stay resident; a fixed threshold
    keeps them mmapped and returned on free.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 17)


def trim_heap() -> None:
    """Return the heap's free pages to the system (``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
