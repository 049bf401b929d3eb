"""`RepairLog`: what `load_ticks(repair=True)` changed, as human-readable notes.

Nothing is dropped silently: every removed row is counted and named (the
first few row numbers when many share a reason).
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.marketdata.columns import Problem

_SHOW_ROWS = 10


class RepairLog:
    """Collects removals by reason and column, and other repairs, in row order."""

    def __init__(self) -> None:
        self._removed: dict[tuple[str, str | None], list[Problem]] = {}
        self._other: list[tuple[int, str]] = []
        self._rows_seen: set[int] = set()
        self.count = 0
        """Rows removed so far."""

    def removed(self, problems: Iterable[Problem]) -> None:
        """Record removed rows; a row with several problems counts once, under its first."""
        for p in problems:
            if p.row in self._rows_seen:
                continue
            self._rows_seen.add(p.row)
            self._removed.setdefault((p.reason, p.column), []).append(p)
            self.count += 1

    def note(self, row: int, text: str) -> None:
        """Record a repair other than a removal, sorted among the notes by ``row``."""
        self._other.append((row, text))

    def notes(self) -> list[str]:
        """One line per kind of change, ordered by the first row concerned."""
        lines = [(row, text) for row, text in self._other]
        for (reason, column), problems in self._removed.items():
            lines.append((problems[0].row, _removal_note(reason, column, problems)))
        return [text for _, text in sorted(lines, key=lambda line: line[0])]


def _removal_note(reason: str, column: str | None, problems: list[Problem]) -> str:
    where = f" in column {column!r}" if column is not None else ""
    first = problems[0]
    if len(problems) == 1:
        return f"removed row {first.row} ({reason}{where}): {first.detail}"
    rows = ", ".join(str(p.row) for p in problems[:_SHOW_ROWS])
    more = len(problems) - _SHOW_ROWS
    if more > 0:
        rows += f" and {more:,} more"
    return (
        f"removed {len(problems):,} rows ({reason}{where}): rows {rows}; "
        f"first: row {first.row}: {first.detail}"
    )
