"""Durable strategy state: snapshots written atomically, read back on restart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.exceptions import CodecError, ConfigurationError
from workbench.messaging.codec import pack, unpack


class FileStateStore:
    """One msgpack file per strategy id in a folder; writes are atomic renames."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.state"

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Replace the stored state of ``key`` (never leaves a half-written file)."""
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(pack(state))
        os.replace(tmp, path)

    def load(self, key: str) -> dict[str, Any] | None:
        """The stored state of ``key``, or None if there is none.

        Raises:
            ConfigurationError: the file exists but is corrupt; it is left in place.
        """
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = unpack(data)
        except CodecError as e:
            raise ConfigurationError(f"{path}: corrupt strategy state ({e}); move it away") from e
        if not isinstance(state, dict):
            raise ConfigurationError(f"{path}: corrupt strategy state (not a map)")
        return state
