"""DuckDB over the lake: one schema per catalog, one view per table, pinned to a snapshot."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from liberacion.engine import new_connection
from liberacion.errors import LiberacionError, NoTable, Note, SQLError, one_line
from liberacion.lake import Lake
from liberacion.views import check_index, view_statements

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS = 64 * 1024


def connect(lake: Lake, *, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view for every table in the lake."""

    _repair(lake)
    con = new_connection()
    for statement in view_statements(lake.home, lake.current_snapshots(as_of=as_of)):
        con.execute(statement)
    return con


def _repair(lake: Lake) -> None:
    """A damaged dataset index or ``lake.duckdb`` is rebuilt (with a ``Note``) rather than failing every query."""
    home = lake.home
    if home.index_file.is_file() and not check_index(home):
        from liberacion.catalogs.index import rebuild
        from liberacion.catalogs.manifests import load_catalogs

        try:
            rebuild(home, load_catalogs())
            warnings.warn("the dataset index was rebuilt from the stored listings", Note, stacklevel=2)
        except (OSError, LiberacionError) as err:
            warnings.warn(f"the dataset index could not be rebuilt ({err})", Note, stacklevel=2)
    lake.repair_views_db()


def relation(lake: Lake, sql: str, *, as_of: str | None = None) -> duckdb.DuckDBPyRelation | None:
    """Run SQL over the lake; its result as a DuckDB relation (None for a statement without one)."""
    import duckdb

    con = connect(lake, as_of=as_of)
    try:
        return con.sql(sql)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err) from None


# DuckDB's words for a table that is not there, and the name it gives.
_NO_TABLE = re.compile(r'Table with name "?(?P<name>[^"!]+?)"? does not exist')
_SUGGESTION = re.compile(r'Did you mean "(?P<name>[^"]+)"')
_INTERNAL_NAMES = ("pg_", "duckdb_", "information_schema", "sqlite_")


def sql_error(err: Exception, *, rows: int = 0) -> LiberacionError:
    """A DuckDB error as ours: ``NoTable`` for a table that is not in the lake, else ``SQLError``.

    ``rows`` counts the rows already streamed out when the error came mid-stream: the output is
    then incomplete, and the message says so.
    """
    text = str(err)
    missing = _NO_TABLE.search(text)
    if missing and not rows:
        suggestion = _SUGGESTION.search(text)
        maybe = ""
        if suggestion and not suggestion.group("name").startswith(_INTERNAL_NAMES):
            maybe = f" (did you mean {suggestion.group('name')}?)"
        return NoTable(f"no table named {missing.group('name')} in the lake{maybe}; see: liberacion tables")
    message = one_line(err)
    if rows:
        message += f" (the query failed after {rows:,} rows had been written: the output is incomplete)"
    return SQLError(message)


def run(lake: Lake, sql: str, *, as_of: str | None = None) -> pa.RecordBatchReader:
    """Run SQL over the lake and return its result as a stream of Arrow record batches."""
    import duckdb

    result = relation(lake, sql, as_of=as_of)
    if result is None:  # a statement without a result (SET, CREATE TEMP ...)
        return _empty_reader()
    try:
        reader = result.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as err:
        raise sql_error(err) from None
    return _guarded(reader, result)


def _guarded(reader: pa.RecordBatchReader, result: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """The same stream, but an error found mid-stream (a failed cast) is an SQLError too.

    DuckDB's errors reach Arrow's reader as a bare ``OSError`` carrying DuckDB's message.
    """
    import duckdb
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            for batch in reader:
                yield batch
                rows += batch.num_rows
        except (duckdb.Error, pa.ArrowException, OSError) as err:
            raise sql_error(err, rows=rows) from None
        finally:
            result.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _empty_reader() -> pa.RecordBatchReader:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(pa.schema([]), [])
