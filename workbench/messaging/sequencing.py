"""Per-stream sequence checking: every gap and duplicate is reported, none hidden."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from workbench.telemetry import Telemetry

log = structlog.get_logger()


@dataclass(slots=True)
class _Stream:
    epoch: int
    last_seq: int


class SequenceTracker:
    """Checks ``seq`` per (sender, kind) stream; a new ``epoch`` restarts a stream.

    Gaps and duplicates are logged and counted in ``telemetry`` as ``gaps``
    (messages missed) and ``duplicates``.
    """

    def __init__(self, telemetry: Telemetry, socket_name: str) -> None:
        self._streams: dict[tuple[str, bytes], _Stream] = {}
        self._telemetry = telemetry
        self._socket = socket_name
        telemetry.declare("gaps", "duplicates", "bad_frames")  # every receiving socket counts them

    def check(self, sender: str, kind: bytes, epoch: int, seq: int) -> bool:
        """Record a message; returns False for a duplicate that should be dropped."""
        key = (sender, kind)
        st = self._streams.get(key)
        if st is None or st.epoch != epoch:
            if st is not None:
                log.info(
                    "stream_restarted",
                    socket=self._socket,
                    sender=sender,
                    kind=kind,
                    old_epoch=st.epoch,
                    epoch=epoch,
                )
            self._streams[key] = _Stream(epoch, seq)
            return True
        expected = st.last_seq + 1
        if seq == expected:
            st.last_seq = seq
            return True
        if seq > expected:
            missed = seq - expected
            self._telemetry.inc("gaps", missed)
            log.warning(
                "sequence_gap",
                socket=self._socket,
                sender=sender,
                kind=kind,
                expected=expected,
                got=seq,
                missed=missed,
            )
            st.last_seq = seq
            return True
        self._telemetry.inc("duplicates")
        log.warning(
            "sequence_duplicate",
            socket=self._socket,
            sender=sender,
            kind=kind,
            expected=expected,
            got=seq,
        )
        return False
