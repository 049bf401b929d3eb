"""Thrift's compact protocol, decoded generically, for Parquet's footer and page headers."""

from __future__ import annotations

import struct
from typing import Any

Buf = bytes | bytearray


class Thrift:
    """Thrift compact protocol, decoded generically: a struct is ``{field id: value}``."""

    def __init__(self, data: Buf, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def varint(self) -> int:
        shift = result = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise EOFError("truncated thrift data")
            b = data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def _zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def _value(self, kind: int) -> Any:
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            self.pos += 1
            return struct.unpack_from("<b", self.data, self.pos - 1)[0]
        if kind in (4, 5, 6):
            return self._zigzag()
        if kind == 7:
            self.pos += 8
            return struct.unpack_from("<d", self.data, self.pos - 8)[0]
        if kind == 8:
            n = self.varint()
            self.pos += n
            if self.pos > len(self.data):
                raise EOFError("truncated thrift data")
            return self.data[self.pos - n : self.pos]
        if kind in (9, 10):
            head = self.data[self.pos]
            self.pos += 1
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            self._fits(size)
            if elem in (1, 2):  # booleans in lists are one byte each
                self.pos += size
                return [b == 1 for b in self.data[self.pos - size : self.pos]]
            return [self._value(elem) for _ in range(size)]
        if kind == 11:
            size = self.varint()
            if not size:
                return {}
            self._fits(size)
            head = self.data[self.pos]
            self.pos += 1
            return {self._value(head >> 4): self._value(head & 0x0F) for _ in range(size)}
        if kind == 12:
            return self.struct()
        raise ValueError(f"unknown thrift type {kind}")

    def _fits(self, size: int) -> None:
        """Raise unless ``size`` elements (a byte or more each) fit in what is left."""
        if size > len(self.data) - self.pos:
            raise EOFError("truncated thrift data")

    def struct(self) -> dict[int, Any]:
        """Read one struct."""
        out: dict[int, Any] = {}
        last = 0
        while True:
            if self.pos >= len(self.data):
                raise EOFError("truncated thrift data")
            head = self.data[self.pos]
            self.pos += 1
            if head == 0:
                return out
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self._zigzag()
            out[last] = self._value(kind)
