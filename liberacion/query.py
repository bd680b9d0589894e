"""DuckDB over the lake: one schema per catalog, one view per table, pinned to a snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from liberacion.engine import new_connection
from liberacion.errors import SQLError, one_line
from liberacion.lake import Lake
from liberacion.views import view_statements

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS = 64 * 1024


def connect(lake: Lake, *, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view for every table in the lake."""

    con = new_connection()
    for statement in view_statements(lake.home, lake.current_snapshots(as_of=as_of)):
        con.execute(statement)
    return con


def relation(lake: Lake, sql: str, *, as_of: str | None = None) -> duckdb.DuckDBPyRelation | None:
    """Run SQL over the lake; its result as a DuckDB relation (None for a statement without one)."""
    import duckdb

    con = connect(lake, as_of=as_of)
    try:
        return con.sql(sql)
    except duckdb.Error as err:
        con.close()
        raise SQLError(one_line(err)) from None


def run(lake: Lake, sql: str, *, as_of: str | None = None) -> pa.RecordBatchReader:
    """Run SQL over the lake and return its result as a stream of Arrow record batches."""
    import duckdb

    result = relation(lake, sql, as_of=as_of)
    if result is None:  # a statement without a result (SET, CREATE TEMP ...)
        return _empty_reader()
    try:
        reader = result.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as err:
        raise SQLError(one_line(err)) from None
    return _guarded(reader, result)


def _guarded(reader: pa.RecordBatchReader, result: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """The same stream, but an error found mid-stream (a failed cast) is an SQLError too."""
    import duckdb
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (duckdb.Error, pa.ArrowInvalid) as err:
            raise SQLError(one_line(err)) from None
        finally:
            result.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _empty_reader() -> pa.RecordBatchReader:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(pa.schema([]), [])
