"""DuckDB over the lake: one schema per catalog, one view per table, pinned to a snapshot."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from liberacion.errors import SQLError, one_line
from liberacion.lake import CURRENT_FILE, REJECTS_SUFFIX, SNAPSHOT_FILE, Lake, Snapshot

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS = 64 * 1024
INDEX_FILE = "datasets.parquet"


def new_connection(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection as liberacion uses them: no progress bar (stdout is for data)."""
    import duckdb

    con = duckdb.connect(database)
    con.execute("SET enable_progress_bar = false")
    return con


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def view_statements(lake: Lake, snapshots: Iterable[Snapshot]) -> list[str]:
    """SQL that creates the catalog schemas and a view per table (and its rejects)."""
    statements = []
    schemas: set[str] = set()
    for snap in snapshots:
        catalog, table = snap.table.split(".", 1)
        if catalog not in schemas:
            statements.append(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(catalog)}")
            schemas.add(catalog)
        target = f"{quote_ident(catalog)}.{quote_ident(table)}"
        statements.append(
            f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM read_parquet({_file_list(snap.data_paths)})"
        )
        if snap.rejects_path is not None:
            rejects = f"{quote_ident(catalog)}.{quote_ident(table + REJECTS_SUFFIX)}"
            statements.append(
                f"CREATE OR REPLACE VIEW {rejects} AS SELECT * FROM read_parquet({_file_list([snap.rejects_path])})"
            )
    index = lake.home.index / INDEX_FILE
    if index.is_file():
        statements.append("CREATE SCHEMA IF NOT EXISTS liberacion")
        statements.append(
            f"CREATE OR REPLACE VIEW liberacion.datasets AS SELECT * FROM read_parquet({quote_literal(str(index))})"
        )
    statements += snapshot_statements(lake)
    return statements


def snapshot_statements(lake: Lake) -> list[str]:
    """SQL naming any kept snapshot: ``liberacion.snapshots`` (a listing), and table macros
    ``liberacion.snapshot(table, id)`` (one snapshot) and ``liberacion.all_snapshots(table)``
    (every kept snapshot, unioned by column name, with a ``_snapshot`` column).

    They cost the same with 1 table or 200: files are listed and read only when a query uses them.
    """
    root = lake.home.lake.as_posix()
    table_dir = f"({quote_literal(root + '/')} || replace(lower(table_name), '.', '/'))"
    statements = [
        "CREATE SCHEMA IF NOT EXISTS liberacion",
        "CREATE OR REPLACE MACRO liberacion.snapshot(table_name, snapshot_id) AS TABLE SELECT * FROM "
        f"read_parquet({table_dir} || '/snapshots/' || snapshot_id || '/data-*.parquet')",
        # A snapshot newer than "current" is a publish killed before its switch: never shown.
        "CREATE OR REPLACE MACRO liberacion.all_snapshots(table_name) AS TABLE SELECT "
        f"regexp_extract(__file, {_SNAPSHOT_DIR}, 1) AS _snapshot, * EXCLUDE (__file) "
        f"FROM read_parquet({table_dir} || '/snapshots/*/data-*.parquet', union_by_name = true, filename = '__file') "
        f"WHERE _snapshot <= (SELECT {_TRIM} FROM read_text({table_dir} || '/current'))",
    ]
    # read_json and read_text list their files when the view is created, and fail on none.
    if next(lake.home.lake.glob(f"*/*/{CURRENT_FILE}"), None) is not None:
        statements.append(_snapshots_view(root))
    return statements


# The id in a "current" file, without its newline.
_TRIM = "trim(content, chr(10) || chr(13) || ' ')"
_SNAPSHOT_DIR = quote_literal(r"[/\\]snapshots[/\\]([^/\\]+)[/\\][^/\\]+$")


def _snapshots_view(root: str) -> str:
    manifests = quote_literal(f"{root}/*/*/snapshots/*/{SNAPSHOT_FILE}")
    currents = quote_literal(f"{root}/*/*/{CURRENT_FILE}")
    columns = (
        "{'table': 'VARCHAR', 'published_at': 'VARCHAR', 'rows': 'BIGINT', 'bytes': 'BIGINT', "
        "'provenance': 'STRUCT(sha256 VARCHAR, source_url VARCHAR)'}"
    )
    return (
        "CREATE OR REPLACE VIEW liberacion.snapshots AS "
        f"WITH s AS (SELECT *, regexp_extract(filename, {_SNAPSHOT_DIR}, 1) AS id "
        f"FROM read_json({manifests}, columns = {columns}, filename = true)), "
        f"c AS (SELECT parse_dirpath(filename) AS dir, {_TRIM} AS id "
        f"FROM read_text({currents})) "
        "SELECT s.table AS table_name, s.id AS snapshot, "
        "strptime(s.published_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS published_at, s.rows, s.bytes, "
        "s.provenance.sha256 AS sha256, s.provenance.source_url AS source_url, s.id = c.id AS is_current, "
        "parse_dirpath(s.filename) AS path "
        "FROM s JOIN c ON parse_dirpath(parse_dirpath(parse_dirpath(s.filename))) = c.dir "
        "WHERE s.id <= c.id ORDER BY table_name, s.published_at"
    )


def current_snapshots(lake: Lake, *, as_of: str | None = None) -> list[Snapshot]:
    """The snapshot of every table that is current now, or was current at ``as_of``."""
    snaps = []
    for name in lake.names():
        try:
            snap = lake.current(name) if as_of is None else lake.as_of(name, as_of)
        except FileNotFoundError:  # dropped while we looked
            continue
        if snap is not None:
            snaps.append(snap)
    return snaps


def connect(lake: Lake, *, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view for every table in the lake."""

    con = new_connection()
    for statement in view_statements(lake, current_snapshots(lake, as_of=as_of)):
        con.execute(statement)
    return con


def run(lake: Lake, sql: str, *, as_of: str | None = None) -> pa.RecordBatchReader:
    """Run SQL over the lake and return its result as a stream of Arrow record batches."""
    import duckdb

    con = connect(lake, as_of=as_of)
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, CREATE TEMP ...)
            return _empty_reader()
        reader = relation.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as err:
        raise SQLError(one_line(err)) from None
    return _guarded(reader, con)


def _guarded(reader: pa.RecordBatchReader, con: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
    """The same stream, but an error found mid-stream (a failed cast) is an SQLError too."""
    import duckdb
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (duckdb.Error, pa.ArrowInvalid) as err:
            raise SQLError(one_line(err)) from None
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _empty_reader() -> pa.RecordBatchReader:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(pa.schema([]), [])


def write_views_db(lake: Lake) -> Path:
    """Write ``lake.duckdb`` next to a temporary name, then swap it in with one rename."""
    target = lake.home.views_db
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with new_connection(str(tmp)) as con:
            for statement in view_statements(lake, current_snapshots(lake)):
                con.execute(statement)
            con.execute("CHECKPOINT")
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            if leftover.exists():
                leftover.unlink()
    return target
