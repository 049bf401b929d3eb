"""Parquet tick files, read in record batches and written in one go.

pyarrow is imported inside the functions only: importing this module costs
nothing, so the gateway pays for pyarrow only when it replays a Parquet file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.exceptions import DataError
from workbench.marketdata.columns import RawChunk

if TYPE_CHECKING:
    from workbench.marketdata.table import TickTable


class ParquetTicks:
    """A Parquet tick file opened for batched reading; use as a context manager.

    ``names`` are the file's column names, as in its schema.

    Raises:
        DataError: the file is missing, unreadable, not Parquet or has no rows.
    """

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        try:
            with path.open("rb"):
                pass
        except OSError as e:
            raise DataError(f"cannot read file: {e.strerror or e}", str(path)) from e
        try:
            self._file = pq.ParquetFile(path)
            self._schema = self._file.schema_arrow
        except (OSError, ValueError, pa.ArrowException) as e:  # ValueError: a name not UTF-8
            raise DataError(f"not a readable Parquet file: {e}", str(path)) from e
        self.names: list[str] = list(self._schema.names)
        if self._file.metadata.num_rows == 0:
            self._file.close()
            raise DataError("no data rows", str(path))

    def __enter__(self) -> ParquetTicks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def ts_kind(self, name: str, text_kind: str) -> str:
        """How column ``name`` holds timestamps: "ns" (integers) or ``text_kind`` (text).

        Args:
            name: The timestamp column.
            text_kind: "ns" for a ``ts_ns`` column, "iso" for ``ts``/``timestamp``.

        Raises:
            DataError: the column's type cannot hold timestamps this way.
        """
        import pyarrow as pa

        kind = self._schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_timestamp(kind) or (pa.types.is_integer(kind) and text_kind == "ns"):
            return "ns"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return text_kind
        expected = (
            "int64 nanoseconds or an Arrow timestamp"
            if text_kind == "ns"
            else "an Arrow timestamp or ISO-8601 text (name integer nanoseconds 'ts_ns')"
        )
        raise DataError(
            f"column type {kind} cannot hold timestamps here: expected {expected}",
            str(self.path),
            column=name,
        )

    def vectorised(self, roles: dict[str, str], price_mode: str) -> TickTable | None:
        """The whole file through numpy if every row is valid, else None (see `columnar`)."""
        import pyarrow as pa

        from workbench.marketdata.columnar import vectorised_table

        try:
            return vectorised_table(self._file, roles, price_mode)
        except (OSError, pa.ArrowException):
            return None  # the row path reads it again and reports where it fails

    def chunks(self, roles: dict[str, str], chunk_rows: int) -> Iterator[RawChunk]:
        """Yield the rows as `RawChunk`s holding the columns named in ``roles``."""
        import pyarrow as pa

        if "symbol" in roles:
            self._check_text(roles["symbol"])
        names = list(dict.fromkeys(roles.values()))
        first = 1
        try:
            for batch in self._file.iter_batches(batch_size=chunk_rows, columns=names):
                columns = {
                    role: _to_python(batch.column(names.index(name)), role)
                    for role, name in roles.items()
                }
                yield RawChunk(first, columns)
                first += batch.num_rows
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"cannot read Parquet data: {e}", str(self.path), first) from e

    def _check_text(self, name: str) -> None:
        """Raise unless column ``name`` holds text (UTF-8 strings, or binary to decode)."""
        import pyarrow as pa

        kind = self._schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        types = pa.types
        if not (
            types.is_string(kind)
            or types.is_large_string(kind)
            or types.is_binary(kind)
            or types.is_large_binary(kind)
        ):
            raise DataError(
                f"column type {kind} cannot hold symbols: expected text",
                str(self.path),
                column=name,
            )


def _to_python(array: Any, role: str) -> list:
    """An Arrow column as Python values for the shared converters; nulls as ``None``."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if role == "ts" and pa.types.is_timestamp(kind):
        # Naive timestamps are UTC; aware ones are stored as UTC already.
        array = array.cast(pa.timestamp("ns", tz=kind.tz)).cast(pa.int64())
    elif role == "ts" and pa.types.is_integer(kind):
        array = array.cast(pa.int64())
    elif (
        role != "symbol"
        and role != "ts"
        and (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))
    ):
        array = array.cast(pa.float64(), safe=False)
    elif role == "symbol" and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        # Text without the UTF8 annotation; bytes that are not UTF-8 stay bytes, and
        # `check_symbols` names their row.
        return [_decoded(v) for v in array.to_pylist()]
    return array.to_pylist()


def _decoded(value: bytes | None) -> str | bytes | None:
    """``value`` as UTF-8 text, or unchanged when it is None or not UTF-8."""
    try:
        return value.decode("utf-8") if value is not None else None
    except UnicodeDecodeError:
        return value


def write_parquet(table: TickTable, path: Path) -> None:
    """Write ``table`` as Parquet with columns ``ts_ns, symbol, price, size`` (and ``bid, ask``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    quotes = {}
    if table.bid is not None:
        quotes = {
            "bid": pa.array(table.bid, pa.float64()),
            "ask": pa.array(table.ask, pa.float64()),
        }
    arrow = pa.table(
        {
            "ts_ns": pa.array(table.ts_ns, pa.int64()),
            "symbol": pa.DictionaryArray.from_arrays(
                pa.array(table.symbol.codes), pa.array(table.symbol.names, pa.string())
            ).cast(pa.string()),
            "price": pa.array(table.price, pa.float64()),
            "size": pa.array(table.size, pa.float64()),
            **quotes,
        }
    )
    pq.write_table(arrow, path, compression="zstd")
