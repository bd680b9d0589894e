"""DuckDB over the lake: one schema per catalog, one view per table, pinned to a snapshot."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from liberacion.errors import SQLError
from liberacion.lake import REJECTS_SUFFIX, Lake, Snapshot

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS = 64 * 1024
INDEX_FILE = "datasets.parquet"


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
    return statements


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
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
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
        raise SQLError(_one_line(err)) from None
    return _guarded(reader, con)


def _guarded(reader: pa.RecordBatchReader, con: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
    """The same stream, but an error found mid-stream (a failed cast) is an SQLError too."""
    import duckdb
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (duckdb.Error, pa.ArrowInvalid) as err:
            raise SQLError(_one_line(err)) from None
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _empty_reader() -> pa.RecordBatchReader:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(pa.schema([]), [])


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else type(err).__name__
    if len(lines) > 1 and lines[0].endswith(":"):
        text = f"{lines[0]} {lines[1]}"
    return text[:500]


def write_views_db(lake: Lake) -> Path:
    """Write ``lake.duckdb`` next to a temporary name, then swap it in with one rename."""
    import duckdb

    target = lake.home.views_db
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with duckdb.connect(str(tmp)) as con:
            for statement in view_statements(lake, current_snapshots(lake)):
                con.execute(statement)
            con.execute("CHECKPOINT")
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            if leftover.exists():
                leftover.unlink()
    return target
