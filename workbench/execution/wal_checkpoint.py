"""WAL checkpoints off the commit path, for the executor's journal."""

from __future__ import annotations

import sqlite3
import threading

CHECKPOINT_INTERVAL_S = 0.5


class Checkpointer:
    """Passive WAL checkpoints on a connection and a thread of their own.

    SQLite's automatic checkpoint runs inside a commit every 1000 WAL pages
    and its fsyncs stall that commit for milliseconds: signals arriving then
    waited behind it (the executor's latency tail). A passive checkpoint
    blocks no writer; what is committed and when is unchanged.
    """

    def __init__(self, path: str, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._stop = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="journal-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error:  # busy or closing: the next round (or close) catches up
                continue

    def close(self) -> None:
        """Stop the thread and close its connection (the journal's close checkpoints last)."""
        self._stop.set()
        self._thread.join()
        self._db.close()
