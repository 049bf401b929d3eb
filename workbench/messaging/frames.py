"""One msgpack frame: `pack`/`unpack` with the ``datetime`` and ``Enum`` handlers of seed 001.

Whole messages (topic, header, payload per kind) are `workbench.messaging.codec`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import struct
from typing import Any

import msgpack

from workbench.exceptions import CodecError

_EXT_DATETIME = 1
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime):
        if obj.tzinfo is None:
            raise TypeError("naive datetime cannot cross the wire; give it a timezone")
        delta = obj - _EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        return msgpack.ExtType(_EXT_DATETIME, struct.pack(">q", ns))
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"cannot pack {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        if len(data) != 8:
            raise CodecError(f"datetime ext of {len(data)} bytes, expected 8")
        (ns,) = struct.unpack(">q", data)
        return _EPOCH + _dt.timedelta(microseconds=ns // 1_000)
    raise CodecError(f"unknown msgpack ext type {code}")


def pack(obj: Any) -> bytes:
    """One frame of msgpack; tz-aware ``datetime`` and ``Enum`` values supported.

    Raises:
        CodecError: the object holds something that cannot cross the wire.
    """
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise CodecError(f"cannot encode: {e}") from e


class Packer:
    """`pack` with one reused msgpack packer: for a sender's hot path (one thread only)."""

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=_default, use_bin_type=True)

    def __call__(self, obj: Any) -> bytes:
        """Like `pack`.

        Raises:
            CodecError: the object holds something that cannot cross the wire.
        """
        try:
            return self._packer.pack(obj)
        except (TypeError, ValueError, OverflowError) as e:
            raise CodecError(f"cannot encode: {e}") from e


def unpack(data: bytes) -> Any:
    """Inverse of `pack`.

    Raises:
        CodecError: truncated or malformed bytes.
    """
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except CodecError:
        raise
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise CodecError(f"malformed msgpack frame ({len(data)} bytes): {e}") from e
