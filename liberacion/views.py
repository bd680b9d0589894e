"""The SQL views over the lake: one schema per catalog, one view per table pinned to a snapshot,
``liberacion.datasets`` (the index, its loaded catalogs' rows) and the snapshot macros; and
``lake.duckdb``, a database file holding them for use outside liberacion.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from liberacion.engine import new_connection
from liberacion.errors import ConfigError, note
from liberacion.files import atomic_path, remove_temporary
from liberacion.home import Home
from liberacion.naming import quote_ident, quote_literal
from liberacion.snapshots import CURRENT_FILE, REJECTS_SUFFIX, SNAPSHOT_FILE, Snapshot


def _file_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def view_statements(
    home: Home,
    snapshots: Iterable[Snapshot],
    snapshot_sql: list[str] | None = None,
    *,
    as_of: str | None = None,
    catalogs: Collection[str] | None = None,
) -> list[str]:
    """SQL that creates the catalog schemas and a view per table (and its rejects), the index's
    view and the snapshot macros (``snapshot_sql``, else those of the home's lake, as of ``as_of``).
    ``liberacion.datasets`` shows ``catalogs``' rows: by default (``lake.duckdb``'s) those loaded
    without --catalogs."""
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
                f" UNION ALL BY NAME {_REJECTS_NAMED}"
            )
    index = home.index_file
    if index.is_file() and check_index(home):
        statements.append("CREATE SCHEMA IF NOT EXISTS liberacion")
        statements.append(datasets_view(index, loaded_catalogs(home) if catalogs is None else catalogs))
    statements += snapshot_statements(home, as_of=as_of) if snapshot_sql is None else snapshot_sql
    return statements


# The columns naming a bad row's file, which rejects written before them lack (an older version's
# snapshot, or ``Lake.publish``'s rejects): NULL there, so one query reads every table's rejects.
_REJECTS_NAMED = "SELECT NULL::VARCHAR AS file, NULL::VARCHAR AS member WHERE false"


def datasets_view(index: Path, catalogs: Collection[str], *, schema: str = "liberacion") -> str:
    """The view of the dataset index holding ``catalogs``' rows only: the index keeps the rows of
    catalogs whose manifest is not loaded now (see ``catalogs.index.rebuild``), as search hides them."""
    names = ", ".join(quote_literal(name) for name in sorted(catalogs))
    kept = f"catalog IN ({names})" if names else "false"
    source = f"read_parquet({quote_literal(str(index))})"
    return f"CREATE OR REPLACE VIEW {schema}.datasets AS SELECT * FROM {source} WHERE {kept}"


def loaded_catalogs(
    home: Home, extra_paths: Sequence[Path] = (), *, problems: list[ConfigError] | None = None
) -> list[str]:
    """The names of the catalogs loaded with ``extra_paths`` (``--catalogs``): the shipped ones,
    ``LIBERACION_CATALOGS``' and theirs, less any whose manifest cannot be used (its problem is
    appended to ``problems``). Read through the home's cache of parsed manifests; the manifests'
    module is imported only here (about 15 ms, a third of a small query's overhead)."""
    from liberacion.catalogs.manifests import load_catalogs

    # index.MANIFEST_CACHE (that module imports every adapter); none before the home exists
    cache = home.state / "manifests.json" if home.root.is_dir() else None
    return [catalog.name for catalog in load_catalogs(extra_paths, problems=problems, cache=cache)]


def check_index(home: Home) -> bool:
    """True when the dataset index is readable Parquet; a damaged one is set aside (with a ``Note``)
    so that it never breaks a query or a publish, and False is returned.

    Parquet's frame is checked (``PAR1`` at both ends, a footer that fits the file) rather than
    the footer parsed: it runs before every query, and importing pyarrow would double the time of
    a small one. Index files are written whole and renamed into place, so damage is a foreign or
    cut file, which the frame shows."""
    index = home.index_file
    try:
        with open(index, "rb") as fh:
            head = fh.read(4)
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(size - 8, 0))
            tail = fh.read(8)
        footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 else -1
        framed = head == b"PAR1" and tail[4:] == b"PAR1" and 0 < footer <= size - 12
    except FileNotFoundError:
        return False
    except OSError:
        framed = False
    if not framed:
        damaged = index.with_name(index.name + ".damaged")
        try:
            os.replace(index, damaged)
        except OSError:
            return False
        msg = f"the dataset index {index} was damaged; it was set aside as {damaged.name} (discover rebuilds it)"
        note(msg)
        return False
    return True


def snapshot_statements(home: Home, *, as_of: str | None = None) -> list[str]:
    """SQL naming any kept snapshot: ``liberacion.snapshots`` (a listing), and table macros
    ``liberacion.snapshot(table, id)`` (one snapshot) and ``liberacion.all_snapshots(table)``
    (every kept snapshot, unioned by column name, with a ``_snapshot`` column).

    With ``as_of`` (``--as-of``) the listing and ``all_snapshots`` hold only the snapshots
    published by then, and ``is_current`` marks the one current then, as the tables' views read.
    They cost the same with 1 table or 200: files are listed and read only when a query uses them.
    """
    root = home.lake.as_posix()
    table_dir = f"({quote_literal(root + '/')} || replace(lower(table_name), '.', '/'))"
    # A snapshot newer than "current" is a publish killed before its switch: never shown.
    kept = f"_snapshot <= (SELECT {_TRIM} FROM read_text({table_dir} || '/current'))"
    if as_of is not None:
        kept = "_snapshot IN (SELECT k.snapshot FROM liberacion.snapshots AS k WHERE k.table_name = lower(table_name))"
    statements = [
        "CREATE SCHEMA IF NOT EXISTS liberacion",
        "CREATE OR REPLACE MACRO liberacion.snapshot(table_name, snapshot_id) AS TABLE SELECT * FROM "
        f"read_parquet({table_dir} || '/snapshots/' || snapshot_id || '/data-*.parquet')",
        "CREATE OR REPLACE MACRO liberacion.all_snapshots(table_name) AS TABLE SELECT "
        f"regexp_extract(__file, {_SNAPSHOT_DIR}, 1) AS _snapshot, * EXCLUDE (__file) "
        f"FROM read_parquet({table_dir} || '/snapshots/*/data-*.parquet', union_by_name = true, filename = '__file') "
        f"WHERE {kept}",
    ]
    # read_json and read_text list their files when the view is created, and fail on none: an
    # empty lake (or one whose every snapshot record is gone) lists no snapshot, not an error.
    listed = next(home.lake.glob(f"*/*/{CURRENT_FILE}"), None) is not None
    listed = listed and next(home.lake.glob(f"*/*/snapshots/*/{SNAPSHOT_FILE}"), None) is not None
    statements.append(
        _snapshots_view(root, as_of) if listed else f"CREATE OR REPLACE VIEW liberacion.snapshots AS {_NO_SNAPSHOTS}"
    )
    return statements


# ``liberacion.snapshots`` of a lake without snapshots: no rows, the same columns.
_NO_SNAPSHOTS = (
    "SELECT NULL::VARCHAR AS table_name, NULL::VARCHAR AS snapshot, NULL::TIMESTAMP AS published_at, "
    "NULL::BIGINT AS rows, NULL::BIGINT AS bytes, NULL::VARCHAR AS sha256, NULL::VARCHAR AS source_url, "
    "NULL::BOOLEAN AS is_current, NULL::VARCHAR AS path WHERE false"
)
# The id in a "current" file, without its newline.
_TRIM = "trim(content, chr(10) || chr(13) || ' ')"
_SNAPSHOT_DIR = quote_literal(r"[/\\]snapshots[/\\]([^/\\]+)[/\\][^/\\]+$")


def _table_of(folder: str) -> str:
    """SQL naming the table whose folder (``<lake>/<catalog>/<table>``) is ``folder``."""
    return f"parse_filename(parse_dirpath({folder})) || '.' || parse_filename({folder})"


def _snapshots_view(root: str, as_of: str | None) -> str:
    manifests = quote_literal(f"{root}/*/*/snapshots/*/{SNAPSHOT_FILE}")
    currents = quote_literal(f"{root}/*/*/{CURRENT_FILE}")
    columns = (
        "{'table': 'VARCHAR', 'published_at': 'VARCHAR', 'rows': 'BIGINT', 'bytes': 'BIGINT', "
        "'provenance': 'STRUCT(sha256 VARCHAR, source_url VARCHAR)'}"
    )
    current, published = "s.id = c.id", ""
    if as_of is not None:  # what was kept by then; the last of each table was current then
        current, published = (
            "s.id = max(s.id) OVER (PARTITION BY s.table_name)",
            f" AND s.published_at <= {quote_literal(as_of)}",
        )
    # The table's name is read from the paths (<catalog>/<table>/snapshots/<id>/), not from the
    # records: DuckDB then opens only the records of the tables a query names (``WHERE table_name =
    # 'cms.x'`` over 1,000 tables of 3 snapshots read all 3,000 records: 1.3 s, now 0.3 s).
    return (
        "CREATE OR REPLACE VIEW liberacion.snapshots AS "
        f"WITH s AS (SELECT *, regexp_extract(filename, {_SNAPSHOT_DIR}, 1) AS id, "
        f"{_table_of('parse_dirpath(parse_dirpath(parse_dirpath(filename)))')} AS table_name "
        f"FROM read_json({manifests}, columns = {columns}, filename = true)), "
        f"c AS (SELECT {_table_of('parse_dirpath(filename)')} AS table_name, {_TRIM} AS id "
        f"FROM read_text({currents})) "
        "SELECT s.table_name, s.id AS snapshot, "
        "strptime(s.published_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS published_at, s.rows, s.bytes, "
        f"s.provenance.sha256 AS sha256, s.provenance.source_url AS source_url, {current} AS is_current, "
        "parse_dirpath(s.filename) AS path "
        "FROM s JOIN c ON s.table_name = c.table_name "
        f"WHERE s.id <= c.id{published} ORDER BY table_name, s.published_at"
    )


def listed_snapshot_statements(root: str, snapshots: Iterable[tuple[Snapshot, bool]]) -> list[str]:
    """The snapshot view and macros of a lake whose history a catalog keeps (not ``current`` files):
    ``liberacion.snapshots`` lists ``snapshots`` (each with whether it is current), the macros read
    the folders under ``root``."""
    rows = [
        "("
        + ", ".join(
            [
                quote_literal(snap.table),
                quote_literal(snap.id),
                f"strptime({quote_literal(snap.published_at)}, '%Y-%m-%dT%H:%M:%S.%fZ')",
                str(int(snap.rows)),
                str(int(snap.bytes)),
                quote_literal(snap.provenance.sha256) if snap.provenance.sha256 else "NULL",
                quote_literal(snap.provenance.source_url) if snap.provenance.source_url else "NULL",
                "true" if is_current else "false",
                quote_literal(str(snap.path)),
            ]
        )
        + ")"
        for snap, is_current in snapshots
    ]
    names = "table_name, snapshot, published_at, rows, bytes, sha256, source_url, is_current, path"
    listing = _NO_SNAPSHOTS if not rows else f"SELECT * FROM (VALUES {', '.join(rows)}) AS s({names})"
    table_dir = f"({quote_literal(root.rstrip('/') + '/')} || replace(lower(table_name), '.', '/'))"
    return [
        "CREATE SCHEMA IF NOT EXISTS liberacion",
        f"CREATE OR REPLACE VIEW liberacion.snapshots AS {listing} ORDER BY table_name, published_at",
        "CREATE OR REPLACE MACRO liberacion.snapshot(table_name, snapshot_id) AS TABLE SELECT * FROM "
        f"read_parquet({table_dir} || '/snapshots/' || snapshot_id || '/data-*.parquet')",
        "CREATE OR REPLACE MACRO liberacion.all_snapshots(table_name) AS TABLE SELECT "
        f"regexp_extract(__file, {_SNAPSHOT_DIR}, 1) AS _snapshot, * EXCLUDE (__file) "
        f"FROM read_parquet({table_dir} || '/snapshots/*/data-*.parquet', union_by_name = true, filename = '__file') "
        "WHERE _snapshot IN (SELECT k.snapshot FROM liberacion.snapshots AS k WHERE k.table_name = lower(table_name))",
    ]


def write_views_db(target: Path, statements: list[str], prepare: Callable[[Any], None] | None = None) -> Path:
    """Write the views database next to a temporary name, then swap it in with one rename.
    ``prepare`` readies the connection for the lake's files (an object store's filesystem).

    With ``IN_PLACE_FROM`` tables or more, the temporary file starts as a copy of ``target`` when
    that holds nothing but liberacion's views and macros: a table's view is created again only
    when its statement changed (a new snapshot). Binding a view reads its files' footers, so
    rebuilding all of them made every publish in a home of 1,000 tables about 0.4 s slower
    (``benchmarks/publish.py``). Anything else in the file (a table, a view liberacion did not
    make), or a copy DuckDB cannot open, gets a database built anew, with the same views."""
    import duckdb

    planned = [(statement, _table_view(statement)) for statement in statements]
    with atomic_path(target) as tmp:
        if target.is_file() and sum(view is not None for _, view in planned) >= IN_PLACE_FROM:
            shutil.copyfile(target, tmp)
            try:
                with new_connection(str(tmp)) as con:
                    if _only_ours(con):
                        _write_views(con, planned, prepare)
                        return target
            except duckdb.Error:
                pass
            remove_temporary(tmp)
        with new_connection(str(tmp)) as con:
            _write_views(con, planned, prepare)
    return target


# Fewer tables than this, and the views database is built anew: copying and checking the file
# cost about 20 ms (``benchmarks/publish.py``: a publish in a home of 1 table took 19-25 ms longer
# in place), about what binding 50 views costs.
IN_PLACE_FROM = 64
# The comment on a table's view: the digest of the statement that made it. An unchanged view
# (the same snapshot's files) is kept; its files never change, so neither does what it binds to.
_DIGEST = "liberacion {}"
# A table's view, as ``view_statements`` writes it: its catalog and name.
_TABLE_VIEW = re.compile(r'CREATE OR REPLACE VIEW "((?:[^"]|"")*)"\."((?:[^"]|"")*)" AS SELECT \* FROM read_parquet\(')


def _table_view(statement: str) -> tuple[str, str] | None:
    found = _TABLE_VIEW.match(statement)
    if found is None:
        return None
    return found[1].replace('""', '"'), found[2].replace('""', '"')


def _only_ours(con: Any) -> bool:
    """True when the database holds only schemas, views and liberacion's macros."""
    here = "database_name = current_database()"
    foreign = con.execute(
        f"SELECT (SELECT count(*) FROM duckdb_tables() WHERE {here}) "
        f"+ (SELECT count(*) FROM duckdb_sequences() WHERE {here}) "
        f"+ (SELECT count(*) FROM duckdb_indexes() WHERE {here}) "
        f"+ (SELECT count(*) FROM duckdb_types() WHERE {here} AND NOT internal) "
        f"+ (SELECT count(*) FROM duckdb_functions() WHERE {here} AND NOT internal AND schema_name <> 'liberacion')"
    ).fetchone()
    return foreign is not None and foreign[0] == 0


def _write_views(
    con: Any, planned: list[tuple[str, tuple[str, str] | None]], prepare: Callable[[Any], None] | None
) -> None:
    """Bring the database ``con`` holds to the ``planned`` statements (each with the table view it
    makes, if any): what the ``liberacion`` schema holds (the index, the snapshot listing and
    macros, a few statements) is made anew, a table's view only when its statement changed; views
    no statement makes, and schemas left empty, go."""
    if prepare is not None:
        prepare(con)
    here = "database_name = current_database()"
    # One transaction: each statement committed on its own wrote the log once a view.
    con.execute("BEGIN TRANSACTION")
    con.execute("DROP SCHEMA IF EXISTS liberacion CASCADE")
    kept = {
        (schema, name): comment
        for schema, name, comment in con.execute(
            f"SELECT schema_name, view_name, comment FROM duckdb_views() WHERE {here} AND NOT internal"
        ).fetchall()
    }
    wanted = {view: _DIGEST.format(_digest(st)) for st, view in planned if view is not None}
    for schema, name in kept.keys() - wanted.keys():  # a changed view is replaced below
        con.execute(f"DROP VIEW {quote_ident(schema)}.{quote_ident(name)}")
    for statement, view in planned:
        if view is not None and kept.get(view) == wanted[view]:
            continue
        con.execute(statement)
        if view is not None:
            target = f"{quote_ident(view[0])}.{quote_ident(view[1])}"
            con.execute(f"COMMENT ON VIEW {target} IS {quote_literal(wanted[view])}")
    for (schema,) in con.execute(
        f"SELECT schema_name FROM duckdb_schemas() WHERE {here} AND NOT internal AND schema_name NOT IN "
        f"(SELECT schema_name FROM duckdb_views() WHERE {here} AND NOT internal)"
    ).fetchall():
        con.execute(f"DROP SCHEMA {quote_ident(schema)}")
    con.execute("COMMIT")
    con.execute("CHECKPOINT")


def _digest(statement: str) -> str:
    return hashlib.sha256(statement.encode("utf-8")).hexdigest()[:32]
