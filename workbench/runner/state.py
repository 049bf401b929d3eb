"""Durable strategy state: snapshots that survive a crash, written cheaply.

A strategy saves its state before every signal leaves, so a save must cost
microseconds, not the milliseconds of write-to-temp-and-rename. Each key has
two slot files written in turn, each in place with one ``pwrite`` of::

    magic b"WBS2" | generation u64 | length u32 | crc32 u32 | msgpack payload

The checksum covers the generation and the length with the payload (``WBS1``
slots, whose checksum covers only the payload, still load). Loading takes the
valid slot with the highest generation. A save torn by a crash fails its
checksum, so the previous slot is used: a crash loses at most the save in
progress, never the one before it; a damaged generation never makes an older
snapshot (seqs already sent) pass for the newest. With ``sync`` (a real venue's
orders) a save also waits for an ``fdatasync``, so a power loss loses none.
`signal_to_state` and `signal_from_state` turn the outbox's signals into the
plain rows saved with it.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any, TypeVar

import structlog

from workbench.domain.model import OrderType, Side, Signal, TimeInForce
from workbench.exceptions import CodecError, ConfigurationError
from workbench.messaging.codec import pack, unpack

_MAGIC, _MAGIC_V1 = b"WBS2", b"WBS1"
_HEADER = struct.Struct(">4sQII")
_COVERED = struct.Struct(">QI")  # generation and length: in the checksum (WBS2)
_T = TypeVar("_T")
log = structlog.get_logger(__name__)


class FileStateStore:
    """Strategy state per key in a folder (``<key>.state.0`` and ``<key>.state.1``).

    Args:
        sync: Each save waits until it is on disk (an ``fdatasync``), not only
            handed to the OS: a strategy whose signals become a real venue's
            orders, so a machine that loses power restarts it where it was (its
            seq, its conditions), never reusing an id. A simulator's orders
            vanish with their executor; their strategies skip the wait.
    """

    def __init__(self, folder: Path, *, sync: bool = False) -> None:
        self.folder = Path(folder)
        self.sync = sync
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fds: dict[str, tuple[int, int]] = {}
        self._generation: dict[str, int] = {}
        self._first_format: set[str] = set()  # keys with a WBS1 slot: both slots on next save

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.state.0", self.folder / f"{key}.state.1"

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Store ``state`` as the newest snapshot of ``key``."""
        fds = self._fds.get(key)
        if fds is None:
            a, b = self._paths(key)
            flags = os.O_RDWR | os.O_CREAT
            fds = self._fds[key] = (os.open(a, flags, 0o644), os.open(b, flags, 0o644))
            if self.sync:  # the slot files' names on disk too (and the folder's own)
                _fsync_dir(self.folder)
                _fsync_dir(self.folder.parent)
            if key not in self._generation:
                self._generation[key] = self._read_best(key)[0]
        gen = self._generation[key] + 1
        payload = pack(state)
        record = _HEADER.pack(_MAGIC, gen, len(payload), _crc(gen, payload)) + payload
        # Over a WBS1 slot too, once: an older build, which reads only WBS1, then finds
        # no state and says so, where it would take the older slot for the newest.
        slots = (gen % 2, 1 - gen % 2) if key in self._first_format else (gen % 2,)
        for slot in slots:
            written = os.pwrite(fds[slot], record, 0)
            if written != len(record):  # a full disk, a file size limit: no save
                raise OSError(
                    f"{self._paths(key)[slot]}: wrote {written} of {len(record)} bytes of state"
                )
            if self.sync:
                os.fdatasync(fds[slot])
        self._first_format.discard(key)
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
        """The newest intact slot: (generation, state, whether a slot holds bytes).

        A first save cut short (slot 0 still empty, slot 1 holding part of
        generation 1) counts as no state: no save ever finished, so no signal
        went out under it, and a fresh start reuses nothing.
        """
        best_gen, best, seen = 0, None, False
        found: list[bytes] = []
        for path in self._paths(key):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                data = b""
            found.append(data)
            if not data:
                continue
            if data[:4] == _MAGIC_V1:
                self._first_format.add(key)
            seen = True
            parsed = _parse(data)
            if parsed is not None and parsed[0] > best_gen:
                best_gen, best = parsed
        if best is None and seen and not found[0] and _first_generation(found[1]):
            log.warning("state_first_save_unfinished", key=key, folder=str(self.folder))
            return 0, None, False
        return best_gen, best, seen

    def close(self) -> None:
        """Close the slot files."""
        for a, b in self._fds.values():
            os.close(a)
            os.close(b)
        self._fds.clear()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_generation(data: bytes) -> bool:
    """Whether ``data`` is (the start of) a slot record of generation 1."""
    if len(data) < _HEADER.size:
        return _MAGIC.startswith(data[:4]) or _MAGIC_V1.startswith(data[:4])
    magic, gen, _, _ = _HEADER.unpack_from(data)
    return magic in (_MAGIC, _MAGIC_V1) and gen == 1


def _crc(gen: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_COVERED.pack(gen, len(payload))))


def _parse(data: bytes) -> tuple[int, dict[str, Any]] | None:
    if len(data) < _HEADER.size:
        return None
    magic, gen, length, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size : _HEADER.size + length]
    if magic not in (_MAGIC, _MAGIC_V1) or len(payload) != length:
        return None
    if crc != (_crc(gen, payload) if magic == _MAGIC else zlib.crc32(payload)):
        return None  # torn or damaged (WBS1: its header unchecked)
    try:
        state = unpack(payload)
    except CodecError:
        return None
    return (gen, state) if isinstance(state, dict) else None


def signal_to_state(s: Signal) -> list[Any]:
    """A signal as plain data for the state file."""
    row = [s.id, s.strategy_id, s.seq, s.symbol, s.side.value, s.qty, s.price, s.ts_ns,
           s.reason, s.condition_id, s.origin_ns]  # fmt: skip
    if s.order_type is not OrderType.MARKET or s.tif is not TimeInForce.GTC or s.closes:
        row += [s.order_type.value, s.order_price, s.tif.value]
        if s.closes:
            row.append(s.closes)
    return row


def signal_from_state(row: list[Any] | bytes) -> Signal:
    """Inverse of `signal_to_state` (also of its packed form).

    Raises:
        ConfigurationError: the row is not a saved signal (names the field).
    """
    data = unpack(row) if isinstance(row, bytes) else row
    if not isinstance(data, list) or len(data) not in (11, 14, 15):
        raise ConfigurationError(f"saved signal {data!r}: expected a list of 11, 14 or 15 fields")
    if len(data) == 11:  # state saved before order types
        data = [*data, "MARKET", 0.0, "GTC"]
    if len(data) == 14:  # an entry, or state saved before exits named their entry
        data = [*data, ""]
    return Signal(
        _field(data, 0, "id", str),
        _field(data, 1, "strategy_id", str),
        _field(data, 2, "seq", int),
        _field(data, 3, "symbol", str),
        Side(_field(data, 4, "side", str)),
        _field(data, 5, "qty", float),
        _field(data, 6, "price", float),
        _field(data, 7, "ts_ns", int),
        _field(data, 8, "reason", str),
        _field(data, 9, "condition_id", str),
        _field(data, 10, "origin_ns", int),
        OrderType(_field(data, 11, "order_type", str)),
        _field(data, 12, "order_price", float),
        TimeInForce(_field(data, 13, "tif", str)),
        _field(data, 14, "closes", str),
    )


def _field(row: list[Any], i: int, name: str, kind: type[_T]) -> _T:
    value = row[i]  # a float field also takes an int; no field takes a bool
    ok = isinstance(value, int | float if kind is float else kind)
    if not ok or isinstance(value, bool):
        raise ConfigurationError(f"saved signal {row!r}: {name} must be {kind.__name__}: {value!r}")
    return value
