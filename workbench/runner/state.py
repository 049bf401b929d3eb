"""Durable strategy state: snapshots that survive a crash, written cheaply.

A strategy saves its state before every signal leaves, so a save must cost
microseconds, not the milliseconds of write-to-temp-and-rename. Each key has
two slot files written in turn, each in place with one ``pwrite`` of::

    magic b"WBS1" | generation u64 | length u32 | crc32 u32 | msgpack payload

Loading takes the valid slot with the highest generation. A save torn by a
crash fails its checksum, so the previous slot is used: a crash loses at most
the save in progress, never the one before it.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

from workbench.exceptions import CodecError, ConfigurationError
from workbench.messaging.codec import pack, unpack

_MAGIC = b"WBS1"
_HEADER = struct.Struct(">4sQII")


class FileStateStore:
    """Strategy state per key in a folder (``<key>.state.0`` and ``<key>.state.1``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fds: dict[str, tuple[int, int]] = {}
        self._generation: dict[str, int] = {}

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.state.0", self.folder / f"{key}.state.1"

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Store ``state`` as the newest snapshot of ``key``."""
        fds = self._fds.get(key)
        if fds is None:
            a, b = self._paths(key)
            flags = os.O_RDWR | os.O_CREAT
            fds = self._fds[key] = (os.open(a, flags, 0o644), os.open(b, flags, 0o644))
            if key not in self._generation:
                self._generation[key] = self._read_best(key)[0]
        gen = self._generation[key] + 1
        payload = pack(state)
        record = _HEADER.pack(_MAGIC, gen, len(payload), zlib.crc32(payload)) + payload
        os.pwrite(fds[gen % 2], record, 0)
        self._generation[key] = gen

    def load(self, key: str) -> dict[str, Any] | None:
        """The newest intact snapshot of ``key``, or None if there is none.

        Raises:
            ConfigurationError: slot files exist but neither is intact.
        """
        gen, state, seen = self._read_best(key)
        self._generation[key] = max(gen, self._generation.get(key, 0))
        if state is None and seen:
            raise ConfigurationError(
                f"{self._paths(key)[0].parent}: no intact state for {key!r} "
                "(both slots fail their checksum); move the files away to start fresh"
            )
        return state

    def _read_best(self, key: str) -> tuple[int, dict[str, Any] | None, bool]:
        best_gen, best, seen = 0, None, False
        for path in self._paths(key):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            if not data:
                continue
            seen = True
            parsed = _parse(data)
            if parsed is not None and parsed[0] > best_gen:
                best_gen, best = parsed
        return best_gen, best, seen

    def close(self) -> None:
        """Close the slot files."""
        for a, b in self._fds.values():
            os.close(a)
            os.close(b)
        self._fds.clear()


def _parse(data: bytes) -> tuple[int, dict[str, Any]] | None:
    if len(data) < _HEADER.size:
        return None
    magic, gen, length, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size : _HEADER.size + length]
    if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        state = unpack(payload)
    except CodecError:
        return None
    return (gen, state) if isinstance(state, dict) else None
