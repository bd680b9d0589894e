"""DuckDB over the lake: one schema per catalog, one view per table, pinned to a snapshot."""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.engine import new_connection, set_memory_limit
from liberacion.errors import (
    ConfigError,
    DamagedSnapshot,
    LiberacionError,
    NoSnapshot,
    NoTable,
    SQLError,
    StorageError,
    UsageError,
    note,
    one_line,
    option,
    output_error,
)
from liberacion.files import read_json
from liberacion.lake import Lake, damaged_table, pruned_snapshot, refetch
from liberacion.naming import quote_ident, quote_literal
from liberacion.snapshots import REJECTS_SUFFIX
from liberacion.storage import read_failure
from liberacion.views import check_index, datasets_view

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from liberacion.render import Rows

BATCH_ROWS = 64 * 1024
SAFE_ENV = "LIBERACION_SQL_SAFE"
# What --safe refuses outright, before DuckDB's own checks: statements that write files, reach
# other databases or load code.
_UNSAFE_STATEMENTS = ("COPY", "COPY_DATABASE", "EXPORT", "ATTACH", "DETACH", "LOAD", "EXTENSION")


def safe_default() -> bool:
    """``LIBERACION_SQL_SAFE``: 1/true/yes turns --safe on, 0/false/no or unset leaves it off."""
    value = os.environ.get(SAFE_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{SAFE_ENV}={value!r}: use 1 to run SQL in the sandbox (--safe), or 0")


def connect(
    lake: Lake, *, as_of: str | None = None, safe: bool = False, catalog_paths: Sequence[Path] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view for every table in the lake.

    Every connection has a memory limit and spills into the home's work area, never the current
    directory. ``safe`` then locks it down: only the lake and the index can be read, nothing written.
    ``liberacion.datasets`` holds the datasets of the catalogs loaded with ``catalog_paths``
    (``--catalogs``) only, as ``search`` shows them.
    """
    return _connect(lake, as_of=as_of, safe=safe, catalogs=_index_catalogs(lake, catalog_paths))[0]


def _connect(
    lake: Lake, *, as_of: str | None = None, safe: bool = False, catalogs: _ShownIndex | None = None
) -> tuple[duckdb.DuckDBPyConnection, dict[str, list[str]]]:
    """``connect``, and the table names more than one catalog holds (see ``_refuse_ambiguous``).

    ``catalogs``: those whose rows ``liberacion.datasets`` shows; None when the SQL does not read
    the index (or there is none), so that no manifest is loaded: the view is then left as
    ``lake.duckdb`` has it, or built empty."""
    _repair(lake)
    con = new_connection()
    _bound(con, lake)
    lake.prepare_connection(con)
    shared = _attach_views_db(con, lake, catalogs) if as_of is None else None
    if shared is None:
        import duckdb

        try:
            shown = () if catalogs is None else catalogs
            statements = lake.view_statements(lake.current_snapshots(as_of=as_of), as_of=as_of, catalogs=shown)
            for statement in statements:
                con.execute(statement)
            views = con.execute(
                "SELECT schema_name || '.' || view_name FROM duckdb_views()"
                " WHERE database_name = 'memory' AND schema_name <> 'main' AND NOT internal"
            ).fetchall()
            shared = _search_path(con, "memory", [name for (name,) in views])
        except duckdb.Error as err:  # out of memory, a snapshot's file gone: one line, not a traceback
            con.close()
            raise sql_error(err) from None
    if catalogs is not None:
        _show_edits(con, lake, catalogs)
    if safe:
        _sandbox(con, lake)
    return con, shared or {}


def reads_index(sql: str) -> bool:
    """Whether ``sql`` may read ``liberacion.datasets``: it names it. Only then are the manifests
    loaded to tell which catalogs it shows (their module's import alone is ~15 ms, a third of a
    small query's overhead). A name assembled at run time (``query_table('data' || 'sets')``)
    finds the view empty, or as ``lake.duckdb`` has it."""
    return "datasets" in sql.lower()


class _ShownIndex(list[str]):
    """The catalogs ``liberacion.datasets`` shows, and the rows of curated datasets edited in their
    manifests since the index was built: the refs to leave out and an Arrow table of the rows to
    show instead (``catalogs.index.datasets_edits``), or None."""

    edits: tuple[list[str], pa.Table] | None = None


def _index_catalogs(lake: Lake, catalog_paths: Sequence[Path], sql: str | None = None) -> _ShownIndex | None:
    """The catalogs ``liberacion.datasets`` shows in a session running ``sql`` (None: any SQL):
    those loaded now. None when there is no index or the SQL does not name it. A manifest that
    cannot be used leaves its catalog out, with a ``Note``. A curated dataset edited, renamed,
    added or removed in a manifest since the index was built shows as the manifest has it now;
    listings changed since are said in a ``Note`` (only a discover reads them)."""
    if not lake.home.index_file.is_file() or (sql is not None and not reads_index(sql)):
        return None
    from liberacion.catalogs.manifests import index_changes, load_catalogs

    home = lake.home
    problems: list[ConfigError] = []
    cache = home.state / "manifests.json" if home.root.is_dir() else None  # as views.loaded_catalogs reads them
    catalogs = load_catalogs(catalog_paths, problems=problems, cache=cache)
    for problem in problems:
        note(f"{problem}; its datasets are left out of liberacion.datasets")
    shown = _ShownIndex(catalog.name for catalog in catalogs)
    coverage = read_json(home.index / "coverage.json")  # index.COVERAGE_FILE
    indexed = coverage.get("manifests") if isinstance(coverage, dict) else None
    changes = index_changes(indexed, catalogs)
    for name, changed in changes.items():
        if "listings" in changed:
            note(
                f"the manifest of {name} names other listings than its last discover read: liberacion.datasets"
                f" holds what that discover found; run: liberacion discover {name}"
            )
    if any("datasets" in changed for changed in changes.values()):
        from liberacion.catalogs.index import datasets_edits  # imports every adapter: only when needed

        shown.edits = datasets_edits(home, catalogs, indexed, changes)
    return shown


def _show_edits(con: duckdb.DuckDBPyConnection, lake: Lake, shown: _ShownIndex) -> None:
    """The session's ``liberacion.datasets`` with the curated datasets of manifests edited since
    the index was built as they are now: their rows from the index left out, the new ones (a
    temporary table) added."""
    import duckdb

    if shown.edits is None:
        return
    refs, table = shown.edits
    kept = [f"catalog IN ({', '.join(quote_literal(name) for name in sorted(shown))})" if shown else "false"]
    kept += [f"ref NOT IN ({', '.join(quote_literal(ref) for ref in refs)})"] if refs else []
    index = quote_literal(str(lake.home.index_file))
    try:
        exists = con.execute(
            "SELECT 1 FROM duckdb_views() WHERE database_name = 'memory' AND schema_name = 'liberacion'"
            " AND view_name = 'datasets'"
        ).fetchall()
        if not exists:
            return
        con.register("liberacion_edited_rows", table)
        con.execute("CREATE TEMP TABLE liberacion_datasets_edited AS SELECT * FROM liberacion_edited_rows")
        con.unregister("liberacion_edited_rows")
        con.execute(
            f"CREATE OR REPLACE VIEW memory.liberacion.datasets AS SELECT * FROM read_parquet({index})"
            f" WHERE {' AND '.join(kept)} UNION ALL BY NAME SELECT * FROM temp.main.liberacion_datasets_edited"
        )
    except duckdb.Error as err:  # out of memory: one line, not a traceback
        con.close()
        raise sql_error(err) from None


def _bound(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """A memory limit and a spill directory inside the home, for every query."""
    try:
        set_memory_limit(con)
    except ConfigError:
        con.close()
        raise
    # DuckDB makes the directory only when it spills; a killed run's is removed with the work area.
    # A home not made yet has no work area, and reading never makes one: the system's temporary
    # directory then (DuckDB makes only the last directory of the path).
    # Nor does a home on a read-only file system (a mounted snapshot, a shared copy): its queries
    # spill there too, rather than fail on a directory DuckDB cannot make.
    spill = lake.home.work / f"{os.getpid()}-sql"
    if not lake.home.work.is_dir() or not os.access(lake.home.work, os.W_OK):
        spill = Path(tempfile.gettempdir()) / f"liberacion-{os.getpid()}-sql"
    con.execute(f"SET temp_directory = {quote_literal(str(spill))}")


def _sandbox(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """No file, network or extension access except reading the lake and the index, locked so the
    query cannot set it back. The views are already bound; their files are read as the query runs."""
    roots = [str(lake.home.lake) + os.sep, str(lake.home.index) + os.sep]
    if lake.files_root != str(lake.home.root):  # a lake of its own (--lake)
        roots.append(lake.files_root.rstrip("/") + "/")
    allowed = ", ".join(quote_literal(root) for root in roots)
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def _refuse_unsafe(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Under --safe, statements that write files, attach databases or load extensions are refused."""
    try:
        kinds = [statement.type.name for statement in con.extract_statements(sql)]
    except Exception as err:  # a syntax error, or a statement DuckDB's Python API cannot name
        con.close()
        raise sql_error(err) from None
    refused = next((kind for kind in kinds if kind in _UNSAFE_STATEMENTS), None)
    if refused is not None:
        con.close()
        raise SQLError(
            f"--safe: {refused.replace('_', ' ')} statements are not allowed (they write files, reach other "
            f"databases or load code); run without --safe (and without {SAFE_ENV}) to use them"
        )


# -- query parameters ---------------------------------------------------------------------------

# A parameter's name as the SQL writes it after ``$``: a letter or _, then letters, digits or _.
# DuckDB also takes ``?`` and ``$1``; those are positional, and liberacion gives values by name only.
_PARAM_NAME = re.compile(r"[^\W\d]\w*")


def _command_line() -> bool:
    return option("params", "--param") == "--param"


def _given(name: str) -> str:
    """A parameter as the caller gave it: ``--param state`` on the command line, ``params['state']`` in Python."""
    return f"--param {name}" if _command_line() else f"params[{name!r}]"


def check_params(params: object) -> dict[str, Any]:
    """The values of the SQL's ``$name`` parameters, checked: a mapping whose names a ``$`` can
    spell, each given once. DuckDB's names are the same in any case (``$State`` is ``$state``)."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        msg = f"params must be a dict of parameter names to values, such as {{'state': 'CA'}}, not {params!r}"
        raise UsageError(msg)
    seen: dict[str, str] = {}
    for name in params:
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            where = f"--param {name}" if _command_line() else f"params: {name!r}"
            raise UsageError(
                f"{where}: not a parameter name; a name is a letter or _ then letters, digits or _,"
                " as the SQL writes it after $ ($state, $min_beds)"
            )
        first = seen.setdefault(name.lower(), name)
        if first != name:
            raise UsageError(
                f"{_given(first)} and {_given(name)} are the same parameter (a name is the same in any case);"
                " give it once"
            )
    return dict(params)


def _dollars(names: Sequence[str]) -> str:
    return _listed([f"${name}" for name in names])


def _listed(words: Sequence[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _names_in(statement: Any) -> list[str]:
    """The ``$name``s of a statement (DuckDB's parser finds them, never one in a string or a
    comment), in the order the SQL first writes them."""
    query = statement.query

    def first(name: str) -> int:
        found = re.search(rf"\${re.escape(name)}(?!\w)", query, re.I)
        return found.start() if found else len(query)

    return sorted(statement.named_parameters, key=lambda name: (first(name), name))


def bind_params(statements: Sequence[Any], values: Mapping[str, Any]) -> list[dict[str, Any] | None] | None:
    """The values each statement of the SQL takes: those of the ``$name``s it holds (None for a
    statement holding none), each statement of a script taking the ones it names. None when the SQL
    names no parameter and none is given: it runs as it always did.

    Every parameter the SQL names must be given and every value given must be used: a typo on
    either side is an error, never a NULL or a value silently dropped."""
    named = [_names_in(statement) for statement in statements]
    if not values and not any(named):
        return None
    on_command_line = _command_line()
    if any(name.isdigit() for names in named for name in names):
        give = "--param name=VALUE" if on_command_line else "params={'name': VALUE}"
        raise UsageError(
            f"the SQL holds positional parameters (? or $1); values are given by name: write $name in the SQL"
            f" and give {give}"
        )
    wanted: dict[str, str] = {}
    for names in named:
        for name in names:
            wanted.setdefault(name.lower(), name)
    given = {name.lower(): name for name in values}
    missing = [name for key, name in wanted.items() if key not in given]
    unused = [name for key, name in given.items() if key not in wanted]
    if missing:
        if on_command_line:
            add = " ".join(f"--param {name}=VALUE" for name in missing)
            msg = f"the SQL names {_dollars(missing)}, which no --param gives: add {add}"
        else:
            add = ", ".join(f"{name!r}: VALUE" for name in missing)
            msg = f"the SQL names {_dollars(missing)}, which params does not give: add {{{add}}} to params"
        if unused:  # most often a typo: --param stat=CA for $state
            given_too = _listed([_given(name) for name in unused])
            msg += f" ({given_too} given, but the SQL names no {_listed([f'${n}' for n in unused], 'or')})"
        raise UsageError(msg)
    if unused:
        them = _listed([_given(name) for name in unused])
        holds = f"it names {_dollars(list(wanted.values()))}" if wanted else "it names no parameter"
        one = len(unused) == 1
        raise UsageError(
            f"{them} {'is' if one else 'are'} not used: the SQL names no {_listed([f'${n}' for n in unused], 'or')}"
            f" ({holds}); remove {'it' if one else 'them'}, or write {_dollars(unused)} in the SQL where"
            f" {'its value goes' if one else 'their values go'}"
        )
    by_key = {name.lower(): value for name, value in values.items()}
    return [{name: by_key[name.lower()] for name in names} or None for names in named]


def _statement_params(
    con: duckdb.DuckDBPyConnection, sql: str, values: Mapping[str, Any]
) -> tuple[list[Any], list[dict[str, Any] | None]] | None:
    """The statements of ``sql`` and each one's values (``bind_params``), or None when the SQL
    takes none: without a ``$`` or a ``?`` it is not even parsed for them."""
    import duckdb

    if not values and "$" not in sql and "?" not in sql:
        return None
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err, sql=sql) from None
    try:
        bound = bind_params(statements, values)
    except UsageError:
        con.close()
        raise
    return None if bound is None else (statements, bound)


def _run_script(
    con: duckdb.DuckDBPyConnection, statements: Sequence[Any], bound: Sequence[dict[str, Any] | None], sql: str
) -> tuple[str, dict[str, Any] | None]:
    """Run every statement but the last, each with its own values (DuckDB binds parameters in
    one statement at a time); the last one's text and values, for the caller to run."""
    import duckdb

    *before, last = statements
    try:
        for statement, values in zip(before, bound):
            con.execute(statement, values)
            con.abort()  # a SELECT's rows in the middle of a script are not shown: dropped, not read
    except duckdb.Error as err:
        con.close()
        raise sql_error(err, sql=sql) from None
    return last.query, bound[-1]


# DuckDB's words for a call it cannot type because an argument is text of no known type: a
# --param's value, or a quoted string.
_UNTYPED_CALL = re.compile(r'for the function call "([^"]*STRING_LITERAL[^"]*)"')
_UNTYPED_VALUE = re.compile(r"Unable to transform python value of type '?<class '([^']+)'>'?")


def param_error(err: LiberacionError, values: Mapping[str, Any]) -> LiberacionError:
    """``err`` said in terms of the parameter behind it, when one was: a text value DuckDB
    cannot type where it stands, a value it cannot read as the type it is compared with, a Python
    value it cannot take, a parameter where DuckDB takes none. Any other error as it is."""
    if not values or not isinstance(err, SQLError):
        return err
    cause = err.query_error
    first = cause.split(" LINE ", 1)[0].rstrip()  # DuckDB's words, without its quote of the SQL
    texts = [name for name, value in values.items() if isinstance(value, str)]
    others = [name for name, value in values.items() if value is not None and not isinstance(value, str)]
    better: str | None = None
    call = _UNTYPED_CALL.search(first)
    untyped = _UNTYPED_VALUE.search(first)
    read_as = next((name for name in texts if _quoted(values[name], first)), None) if "Conversion" in first else None
    if call and texts:
        kind = "a --param value" if _command_line() else "a str in params"
        example = texts[0]
        better = (
            f"DuckDB cannot choose which {call.group(1)} to call: {kind} is text, as a quoted string is,"
            f" and nothing beside it says which type it stands for; cast it in the SQL, e.g."
            f" ${example}::INTEGER or ${example}::DATE"
        )
    elif untyped:
        kind = untyped.group(1)
        name = next((n for n, v in values.items() if _type_name(v) == kind), None)
        where = _given(name) if name else "params"
        return UsageError(
            f"{where}: DuckDB cannot take {_a(kind.rsplit('.', 1)[-1])} as a parameter's value; give a str, int,"
            " float, Decimal, bool, date, datetime, time, None, or a list of them"
        )
    elif read_as is not None:
        better = f"{first} (the value of {_given(read_as)}, read as the type of what the SQL compares it with)"
    elif "when casting from source column" in first and others:
        name = others[0]
        better = (
            f"{first} (a column compared with a parameter is read as the parameter's type, and"
            f" {_given(name)} is {_a(type(values[name]).__name__)}: give it as a str, or cast it, ${name}::VARCHAR)"
        )
    elif "Unexpected prepared parameter" in first or "Parameter expressions within macro" in first:
        better = (
            f"{first} (DuckDB takes $parameters in queries and in CREATE TABLE ... AS, not in a view or"
            " a macro: make a table of the rows instead, CREATE TEMP TABLE name AS SELECT ...)"
        )
    if better is None:
        return err
    said = str(err).replace(cause, better, 1) if cause in str(err) else better
    return SQLError(said, query_error=better)


def _quoted(value: str, text: str) -> bool:
    """Whether the error ``text`` quotes ``value``, as ``one_line`` left it: its white space (a
    newline, a tab) one space, and a long value with its middle given up for an ellipsis."""
    spelled = " ".join(value.split())
    if any(f"{q}{v}{q}" in text for v in (value, spelled) for q in "'\""):
        return True
    for quoted in _CUT_QUOTE.findall(text):
        pieces = quoted.split("…")
        if spelled.startswith(pieces[0]) and spelled.endswith(pieces[-1]) and all(p in spelled for p in pieces):
            return True
    return False


_CUT_QUOTE = re.compile(r"'([^']*…[^']*)'")  # a quoted value one_line cut in the middle


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


_CREATED = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:temp(?:orary)?\s+)?(?:table|view)\s+(?:if\s+not\s+exists\s+)?\"?(\w+)", re.I
)


def _refuse_ambiguous(con: duckdb.DuckDBPyConnection, sql: str, shared: dict[str, list[str]]) -> None:
    """A table named without its catalog resolves through the search path, where the first catalog
    holding that name would win: when two catalogs hold it (``shared``), the query is refused.

    Each statement's tables come from DuckDB's parser; a statement it cannot list without binding
    (``CREATE VIEW ... AS``, ``PIVOT``) is searched for the name itself, outside comments, strings
    and ``catalog.`` prefixes."""
    import duckdb

    if not shared:
        return
    try:
        statements = [statement.query for statement in con.extract_statements(sql)]
    except duckdb.Error:
        return  # DuckDB reports the syntax error itself
    code = _STRINGS_AND_COMMENTS.sub(" ", sql)
    own = {name.lower() for name in _CREATED.findall(code)}  # the session's own tables come first
    for statement in statements:
        try:
            named = {_unquoted(n).lower() for n in duckdb.get_table_names(statement, qualified=True)}
        except duckdb.Error:
            bare = _STRINGS_AND_COMMENTS.sub(" ", statement)
            named = {name for name in shared if re.search(rf'(?<![\w."]){re.escape(name)}(?![\w.])', bare, re.I)}
        for name in sorted(named):
            if name in shared and name not in own:
                con.close()
                tables = ", ".join(shared[name])
                msg = f"{name} is a table of more than one catalog ({tables}): name the catalog, e.g. {shared[name][0]}"
                raise UsageError(msg)


_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)


def _attach_views_db(
    con: duckdb.DuckDBPyConnection, lake: Lake, catalogs: Collection[str] | None = None
) -> dict[str, list[str]] | None:
    """Use the views of ``lake.duckdb`` when it is current: attached read-only and put on the search
    path, so ``cms.x`` and ``liberacion.datasets`` resolve to it while the session's own tables
    (``CREATE TABLE``) stay in memory. Re-creating the views instead reads every table's snapshot
    record and binds every view, about 2.5 ms a table.

    Returns None when the views are to be built in memory instead, else the table names more than
    one catalog holds, with their catalogs (see ``_search_path``).

    Current means: stamped with the lake's generation, written after every table's ``current``
    pointer and the index last changed, holding exactly the lake's tables, and naming files under
    this home. Anything else, or a file this DuckDB cannot open, falls back to building the views
    in memory (writers rebuild it at the end of their run).

    Its ``liberacion.datasets`` shows the catalogs loaded when it was written, without
    ``--catalogs``; given ``catalogs``, the session's own view, showing those, comes first.
    """
    import duckdb

    home = lake.home
    inputs = lake.views_inputs()
    if inputs is None:
        return None
    changed, expected, switching = inputs
    try:
        built = lake.views_db.stat().st_mtime_ns
    except OSError:
        return None
    # The last: its generation stamp, and the dataset index's time.
    if switching or any(t >= built for t in changed) or lake.views_db_stale():
        return None
    try:
        con.execute(f"ATTACH {quote_literal(str(lake.views_db))} AS liberacion_views (READ_ONLY)")
        views = con.execute(
            "SELECT schema_name || '.' || view_name, contains(sql, ?) FROM duckdb_views() "
            "WHERE database_name = 'liberacion_views' AND NOT internal",
            [lake.files_root],
        ).fetchall()
        # Its tables must be the lake's (a drop whose rebuild was killed leaves one too many), and
        # its files under this home (a home moved elsewhere keeps the old paths).
        own = [(name, ok) for name, ok in views if not name.startswith("liberacion.")]
        # A table's bad rows are a view beside it; a table whose own name ends so (a zip's member
        # ``rejects.csv``) is a table like any other.
        tables = {name for name, _ in own if name in expected or not name.endswith(REJECTS_SUFFIX)}
        if tables != expected or not all(ok for _, ok in own):
            con.execute("DETACH liberacion_views")
            return None
        own_index = []
        if catalogs is not None and any(name == "liberacion.datasets" for name, _ok in views):
            con.execute("CREATE SCHEMA memory.liberacion")
            con.execute(datasets_view(home.index_file, catalogs, schema="memory.liberacion"))
            own_index = ["memory.liberacion"]
        return _search_path(con, "liberacion_views", [name for name, _ok in views], first=own_index)
    except duckdb.Error:
        return None


def _search_path(
    con: duckdb.DuckDBPyConnection, database: str, views: Sequence[str], *, first: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Put the schemas of ``views`` (``schema.view`` names in ``database``) on the search path, so a
    table named without its catalog resolves; returns the names more than one catalog holds (a
    query naming one of those bare is refused: ``_refuse_ambiguous``), with their catalogs.

    New tables go to the session's own database (the first entry), then ``first``."""
    schemas = dict.fromkeys(name.split(".", 1)[0] for name in views)
    path = ",".join(["memory.main", *first, *(f"{database}.{schema}" for schema in schemas)])
    con.execute(f"SET search_path = {quote_literal(path)}")
    by_name: dict[str, list[str]] = {}
    for name in views:
        by_name.setdefault(name.split(".", 1)[1].lower(), []).append(name)
    return {bare: sorted(names) for bare, names in by_name.items() if len(names) > 1}


def _repair(lake: Lake) -> None:
    """A damaged dataset index or ``lake.duckdb`` is rebuilt (with a ``Note``) rather than failing every query."""
    home = lake.home
    if home.index_file.is_file() and not check_index(home):
        from liberacion.catalogs.index import rebuild
        from liberacion.catalogs.manifests import load_catalogs

        try:
            rebuild(home, load_catalogs())
            note("the dataset index was rebuilt from the stored listings")
        except (OSError, LiberacionError) as err:
            note(f"the dataset index could not be rebuilt ({err})")
    lake.repair_views_db()


def relation(
    lake: Lake,
    sql: str,
    *,
    as_of: str | None = None,
    safe: bool = False,
    catalog_paths: Sequence[Path] = (),
    params: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation | None:
    """Run SQL over the lake; its result as a DuckDB relation (None for a statement without one).
    ``catalog_paths`` as in ``connect``: more SQL may run on the relation's connection. ``params``:
    the values of the SQL's ``$name`` parameters (``bind_params``)."""
    import duckdb

    values = check_params(params)
    con, shared = _connect(lake, as_of=as_of, safe=safe, catalogs=_index_catalogs(lake, catalog_paths))
    if safe:
        _refuse_unsafe(con, sql)
    _refuse_ambiguous(con, sql, shared)
    bound = _statement_params(con, sql, values)
    try:
        if bound is None:
            return con.sql(sql)
        text, own = _run_script(con, *bound, sql)
        return con.sql(text, params=own)  # bound, not run: the relation stays lazy
    except duckdb.Error as err:
        con.close()
        raise param_error(sql_error(err, sql=sql), values) from None
    except LiberacionError as err:
        raise param_error(err, values) from None


# DuckDB's words for a table that is not there, and the name it gives.
_NO_TABLE = re.compile(r'Table with name "?(?P<name>[^"!]+?)"? does not exist')
_SUGGESTION = re.compile(r'Did you mean "(?P<name>[^"]+)"')
_INTERNAL_NAMES = ("pg_", "duckdb_", "information_schema", "sqlite_")
_NO_SNAPSHOT = re.compile(
    r'No files found that match the pattern "(?P<lake>[^"]*)/(?P<catalog>[^/"]+)/(?P<table>[^/"]+)/snapshots/'
    r'(?P<id>[^/"]+)/data-\*\.parquet"'
)
# A file a table's view names that is gone: the snapshot's folder was removed by hand, or by
# prune or retention while the query ran.
_MISSING_FILE = re.compile(
    r'(?:No files found that match the pattern "|Cannot open file ")(?P<path>[^"]*/(?P<catalog>[^/"]+)/'
    r'(?P<table>[^/"]+)/snapshots/(?P<id>[^/"*]+)/[^/"*]+\.parquet)"(?!: Permission)'
)

_ID = re.compile(r"\d{8}T\d{12}Z")  # a snapshot's folder name, sortable by time


def _curated_ref(table: str) -> str | None:
    """The ref of the curated dataset whose table is ``table`` (``cms.hospital_general_information``)."""
    from liberacion.catalogs.manifests import load_catalogs

    if "." not in table:
        return None
    try:
        catalogs = load_catalogs(problems=[])
    except LiberacionError:
        return None
    return next((d.ref for c in catalogs for d in c.datasets if d.table == table.lower()), None)


def _superseded(path: str, snapshot_id: str) -> bool:
    """Whether the snapshot a missing file belongs to is no longer its table's current one (so
    prune or a publish's retention removed it under the query, not damage): the table's ``current``
    file names another id, or, in a lake without one (Iceberg in a directory or on a store), a newer
    snapshot's folder is there."""
    from liberacion.snapshots import CURRENT_FILE

    if "://" in path:
        return _superseded_in_store(path, snapshot_id)
    snapshots = Path(path).parent.parent
    try:
        pointed = (snapshots.parent / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        pointed = ""
    if pointed:
        return pointed != snapshot_id
    try:
        return any(_ID.fullmatch(entry) and entry > snapshot_id for entry in os.listdir(snapshots))
    except OSError:
        return False


def _superseded_in_store(path: str, snapshot_id: str) -> bool:
    """``_superseded`` for a file of a lake on an object store (``s3://.../snapshots/<id>/<file>``),
    asked of the store: expiry there does not wait for the queries of other machines, so a query
    may lose its snapshot under it. A store that cannot be asked leaves it damage, as before."""
    from pyarrow import fs

    from liberacion.storage import parse_lake

    try:
        folder = parse_lake(path.rsplit("/", 2)[0])  # the table's snapshots/ folder
        entries = folder.filesystem().get_file_info(fs.FileSelector(folder.root, allow_not_found=True))
    except (OSError, LiberacionError):
        return False
    return any(_ID.fullmatch(entry.base_name) and entry.base_name > snapshot_id for entry in entries)


def sql_error(err: Exception, *, rows: int = 0, partial: bool = False, sql: str | None = None) -> LiberacionError:
    """A DuckDB error as ours: ``NoTable`` for a table that is not in the lake, else ``SQLError``.

    ``rows`` counts the rows already streamed out when the error came mid-stream, and ``partial``
    says that an unknown number of them may have been (DuckDB was writing to stdout): the output is
    then incomplete, and the message says so. With the ``sql`` that failed, a table DuckDB names
    without its catalog is named as the SQL does (``cms.nosuch``, not ``nosuch``).
    """
    text = str(err)
    missing = _NO_TABLE.search(text)
    if missing and not rows and not partial:
        name, catalog = _as_written(missing.group("name"), sql)
        suggestion = _SUGGESTION.search(text)
        maybe = ""
        if suggestion and not suggestion.group("name").startswith(_INTERNAL_NAMES):
            suggested = suggestion.group("name")
            if _alike(name.rsplit(".", 1)[-1], suggested.rsplit(".", 1)[-1]):  # DuckDB names its nearest, however far
                maybe = f" (did you mean {catalog + '.' if catalog and '.' not in suggested else ''}{suggested}?)"
        if name.lower() in ("datasets", "liberacion.datasets"):  # the index, made by discover
            return NoTable("liberacion.datasets is the dataset index, not built yet: run liberacion discover")
        ref = _curated_ref(name)
        if ref:  # the README's first query, when its fetch has not run (or failed)
            missing_table = NoTable(f"no table named {name} in the lake yet: fetch it with liberacion fetch {ref}")
            missing_table.table = name
            return missing_table
        missing_table = NoTable(f"no table named {name} in the lake{maybe}; see: liberacion tables")
        missing_table.table = name
        return missing_table
    unread = _NO_SNAPSHOT.search(text)
    if unread and not rows and not partial:  # liberacion.snapshot() or all_snapshots() of nothing kept
        table = f"{unread.group('catalog')}.{unread.group('table')}"
        # A table the lake does not hold at all: no snapshot of it to look for in its history.
        folder = f"{unread.group('lake')}/{unread.group('catalog')}/{unread.group('table')}"
        if unread.group("id") == "*" or ("://" not in folder and not Path(folder).exists()):
            return NoTable(f"no table named {table} in the lake; see: liberacion tables")
        unkept = NoSnapshot(f"{table} has no kept snapshot {unread.group('id')!r}; see: liberacion history {table}")
        unkept.table, unkept.snapshot = table, unread.group("id")
        return unkept
    gone = _MISSING_FILE.search(text)
    if gone and not rows and not partial:
        table = f"{gone.group('catalog')}.{gone.group('table')}"
        if _superseded(gone.group("path"), gone.group("id")):
            return SQLError(
                f"the snapshot of {table} this query read was removed while it ran"
                " (prune or a publish's retention); run the query again"
            )
        damaged = DamagedSnapshot(
            f"table {table} is damaged: {gone.group('path')} of snapshot {gone.group('id')} is missing; "
            f"fetch the table again to replace it, with --force (see: liberacion info {table})"
        )
        damaged.problem, damaged.table = f"{gone.group('path')} of snapshot {gone.group('id')} is missing", table
        return damaged
    message = one_line(err)
    if _TRACEBACK in text:  # raised in Python under DuckDB: the object store's filesystem
        cause = _raised(text)
        failure = read_failure(cause)
        if failure is not None:
            return failure
        message = cause
    said = message
    if rows:
        said += f" (the query failed after {rows:,} rows had been written: the output is incomplete)"
    elif partial:
        said += " (some rows may already have been written: the output is incomplete)"
    return SQLError(said, query_error=message)


def _alike(name: str, other: str) -> bool:
    """Close enough to be the name meant (``hospitls``, ``hospitals``), not merely the nearest
    (``nope``, ``mcc__overview``)."""
    import difflib

    return difflib.SequenceMatcher(None, name.lower(), other.lower()).ratio() >= 0.6


def explain_unkept(lake: Lake, err: NoSnapshot) -> LiberacionError:
    """``err``, or, when a prune deleted the snapshot it names, which one it was and when it went."""
    return pruned_snapshot(lake, err.table, err.snapshot) or err


def explain_missing(lake: Lake, err: NoTable, when: str | None) -> LiberacionError:
    """``err``, or what is really wrong when the table it names is in the lake: its current
    snapshot is damaged, or ``--as-of`` names a time before its first kept snapshot (the CLI and
    the API say the same)."""
    named = (err.table or "").lower()
    empty = lake.no_bad_rows(named) if when is None and "." in named else None
    if empty:
        return NoTable(empty)
    # DuckDB names the table without its catalog when the catalog did not exist then either.
    found = [n for n in lake.names() if n == named or n.endswith(f".{named}")] if named else []
    if len(found) != 1:
        return err
    kept = [] if when is None else lake.snapshots(found[0])
    if not kept or kept[0].published_at <= when:  # a snapshot then, yet no view: one that cannot be read
        return _damage(lake, found[0]) or err
    later = NoTable(
        f"{found[0]} has no kept snapshot as of {when}: {lake.not_kept_then(found[0], when, kept[0].published_at)};"
        f" see: liberacion history {found[0]}"
    )
    later.table = found[0]
    return later


def explain_damaged(lake: Lake, err: DamagedSnapshot) -> DamagedSnapshot:
    """A table whose file a query found missing, with the very fetch that replaces it, read from the
    table's record (``sql_error`` has no lake to read it in: its message sends to ``info``)."""
    if not err.table:
        return err
    try:
        provenance = lake.current(err.table).provenance
    except (LiberacionError, OSError):
        return err
    again = refetch(provenance)
    if again is None:
        return err
    better = damaged_table(err.table, err.problem, again)
    better.table = err.table
    return better


def _damage(lake: Lake, table: str) -> DamagedSnapshot | None:
    """Why ``table``, in the lake, has no view: its current snapshot cannot be read (None: it can)."""
    try:
        lake.current(table)
    except DamagedSnapshot as damaged:
        return damaged
    return None


def _as_written(name: str, sql: str | None) -> tuple[str, str | None]:
    """``name`` as the SQL qualifies it, and its catalog (DuckDB drops the catalog it looked in)."""
    import duckdb

    if "." in name or not sql:
        return name, name.rsplit(".", 1)[0] if "." in name else None
    try:
        named = [_unquoted(n) for n in duckdb.get_table_names(sql, qualified=True)]
    except duckdb.Error:
        return name, None
    found = [n for n in named if n.lower().endswith(f".{name.lower()}") and n.count(".") == 1]
    return (found[0], found[0].split(".")[0]) if len(found) == 1 else (name, None)


# One part of a name as DuckDB's parser writes it: quoted ("local", "a""b") or bare.
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


def _unquoted(name: str) -> str:
    """A table name from ``duckdb.get_table_names`` as the lake spells it. The parser quotes a
    part that is a keyword (``"local".a``: ``local`` is the catalog of every fetched file and URL,
    ``"order"``) or that was written in capitals, so compared as it came such a name matched no
    table: a damaged ``local`` table was "no table named", a shared ``"order"`` was not refused."""
    parts = _NAME_PART.findall(name.split(" AS ")[0])
    return ".".join(quoted.replace('""', '"') if quoted or not bare else bare for quoted, bare in parts)


_TRACEBACK = "Traceback (most recent call last)"


def _raised(text: str) -> str:
    """The exception line that ends a Python traceback DuckDB put in its message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = next((line for line in reversed(lines) if re.match(r"[A-Za-z_.]+(Error|Exception)\b", line)), None)
    return one_line(found or lines[-1], lines=1)


def run(
    lake: Lake, sql: str, *, as_of: str | None = None, safe: bool = False, params: Mapping[str, Any] | None = None
) -> pa.RecordBatchReader:
    """Run SQL over the lake and return its result as a stream of Arrow record batches."""

    return _batches(relation(lake, sql, as_of=as_of, safe=safe, params=params))


def _batches(result: duckdb.DuckDBPyRelation | None, as_text: Collection[str] = ()) -> pa.RecordBatchReader:
    """A relation's rows as Arrow batches (none for a statement without a result: SET, CREATE ...);
    its columns of the types ``as_text`` (DuckDB type ids) as DuckDB's text of their values."""
    import duckdb

    if result is None:
        return _empty_reader()
    try:
        reader = _arrow_ready(result, as_text).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as err:
        raise sql_error(err) from None
    return _guarded(reader, result)


_HUGEINT_MAX = 2**127 - 1
# What the CLI writes as DuckDB's text, not as its Arrow form, which loses what they hold: a TIME
# WITH TIME ZONE comes out without its offset (12:00+05 as 12:00), BIT and BIGNUM as their inner
# bytes, and a UNION as a type DuckDB cannot read back to write its JSON.
_ARROW_AS_TEXT = frozenset({"time with time zone", "bit", "bignum", "varint", "union"})


def _arrow_ready(result: duckdb.DuckDBPyRelation, as_text: Collection[str] = ()) -> duckdb.DuckDBPyRelation:
    """The relation with its UHUGEINT columns as HUGEINT, and those of the types ``as_text`` as
    text. Arrow has no unsigned 128-bit integer: DuckDB exports one as a 128-bit decimal, which
    turns a value above 2^127 - 1 negative. Such a value is an error here, never a wrong number."""
    if not any(t.id == "uhugeint" or t.id in as_text for t in result.types):
        return result
    columns = []  # by position: the names may repeat ("A" and "a" are one name to DuckDB)
    for at, (name, type_) in enumerate(zip(result.columns, result.types), start=1):
        if type_.id == "uhugeint":
            refused = quote_literal(
                f"column {name} holds a UHUGEINT above 2^127 - 1, which this output cannot carry;"
                f" cast it in the query ({name}::VARCHAR or {name}::DOUBLE)"
            )
            expr = f"CASE WHEN #{at} > {_HUGEINT_MAX}::UHUGEINT THEN error({refused}) ELSE #{at}::HUGEINT END"
        elif type_.id in as_text:
            expr = f"#{at}::VARCHAR"
        else:
            expr = f"#{at}"
        columns.append(f"{expr} AS {quote_ident(name)}")
    return result.project(", ".join(columns))


def _guarded(
    reader: pa.RecordBatchReader, result: duckdb.DuckDBPyRelation | duckdb.DuckDBPyConnection
) -> pa.RecordBatchReader:
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


# -- results DuckDB writes itself -------------------------------------------------------------

# CSV, TSV, JSON and JSON Lines of one query are written by DuckDB's COPY, straight from the query
# to the file or the pipe: no Arrow and no Python object per value, so a small query starts fast
# (pyarrow is never imported) and a large one streams at DuckDB's speed on every core.
_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true, DELIMITER ','",
    "tsv": "FORMAT csv, HEADER true, DELIMITER '\t'",
    "json": "FORMAT json, ARRAY true",
    "jsonl": "FORMAT json",
}
_STATEMENT_END = re.compile(r";(?:\s|--[^\n]*|/\*.*?\*/)*$", re.S)


def export(
    lake: Lake,
    sql: str,
    fmt: str,
    *,
    output: Path | None = None,
    as_of: str | None = None,
    safe: bool = False,
    table_rows: int | None = None,
    catalog_paths: Sequence[Path] = (),
    params: Mapping[str, Any] | None = None,
) -> pa.RecordBatchReader | Rows | None:
    """Write the result of ``sql`` as ``fmt`` to ``output`` (atomically) or to stdout.

    CSV, TSV, JSON and JSON Lines of a single query are written by DuckDB itself, and None is
    returned; anything else (several statements, a PRAGMA, duplicate column names, another format)
    comes back as a stream of Arrow batches for :mod:`liberacion.render`. For a terminal table
    (``table_rows`` given: the rows it shows) the result comes back as ``Rows`` fetched from DuckDB
    when its columns are plain values, so a small query never loads pyarrow. ``catalog_paths``
    as in ``connect``; ``params`` the values of the SQL's ``$name`` parameters (``bind_params``).
    """
    values = check_params(params)
    try:
        return _export(lake, sql, fmt, output, as_of, safe, table_rows, catalog_paths, values)
    except LiberacionError as err:
        raise param_error(err, values) from None


def _export(
    lake: Lake,
    sql: str,
    fmt: str,
    output: Path | None,
    as_of: str | None,
    safe: bool,
    table_rows: int | None,
    catalog_paths: Sequence[Path],
    values: dict[str, Any],
) -> pa.RecordBatchReader | Rows | None:
    import duckdb

    con, shared = _connect(lake, as_of=as_of, safe=safe, catalogs=_index_catalogs(lake, catalog_paths, sql))
    if safe:
        _refuse_unsafe(con, sql)
    _refuse_ambiguous(con, sql, shared)
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err) from None
    if not statements:
        con.close()
        raise UsageError("the SQL holds no statement, only comments")
    try:
        bound = bind_params(statements, values)
    except UsageError:
        con.close()
        raise
    # Each statement's own values: every SQL liberacion runs around one (a COPY, a count, a probe
    # of its types) takes that statement's values too, never the values pasted into SQL text.
    own = bound or [None] * len(statements)
    if fmt == "table" and table_rows is not None:
        return _table_rows(con, statements, table_rows, own)
    # A sandboxed connection may not write files: its rows go out through render instead.
    copied = not safe and fmt in _COPY_OPTIONS
    if not (copied or fmt == "markdown") or statements[-1].type != duckdb.StatementType.SELECT:
        if bound is None:
            return _stream(con, sql)
        return _stream(con, *_run_script(con, statements, own, sql))
    # A script's statements run first, its last SELECT is written as a single query's is: the same
    # CSV or JSON, byte for byte (render spelled a double 100.0 as 100).
    last, given = _run_script(con, statements, own, sql)
    text = _STATEMENT_END.sub("", last)
    try:
        result = con.sql(text, params=given)  # binds the query: unknown tables and columns are reported here
        columns, types = result.columns, result.types
    except duckdb.Error as err:
        con.close()
        raise sql_error(err, sql=text) from None
    if fmt == "markdown":
        return _markdown_rows(con, text, result, given)
    # JSON keys need distinct names, and the COPY's select list names columns regardless of
    # case ("A" and "a" are one column to DuckDB): render writes them (as a, a_1 in JSON).
    if len({c.lower() for c in columns}) != len(columns):
        return _stream(con, text, given)
    select = ", ".join(_export_column(c, t, json=fmt.startswith("json")) for c, t in zip(columns, types))
    # "COPY (...) TO <target> (...)": the target is filled in last (the SQL may hold braces).
    copy = (f"COPY (SELECT {select or '*'} FROM ({text}\n)) TO ", f" ({_COPY_OPTIONS[fmt]})")
    try:
        _copy(con, copy, output, given)  # DuckDB binds parameters inside a COPY's query
    except _NotCopyable:
        return _stream(con, text, given)
    except BaseException:
        con.close()
        raise
    con.close()
    return None


# Column types whose Python values (DuckDB's fetch) read in a terminal table as Arrow's do.
_PLAIN_TYPES = frozenset(
    {
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "float",
        "double",
        "decimal",
        "varchar",
        "date",
        "time",
        "timestamp",
        "timestamp_s",
        "timestamp_ms",
    }
)


def _table_rows(
    con: duckdb.DuckDBPyConnection, statements: list[Any], limit: int, own: Sequence[dict[str, Any] | None]
) -> pa.RecordBatchReader | Rows:
    """The first ``limit`` rows as Python tuples and a count of the rest; Arrow for other column
    types. The last statement runs once: a second run costs its time again and may give other
    rows (``random()``, ``USING SAMPLE``, ``nextval``). ``own``: each statement's parameter values."""
    import duckdb

    from liberacion.render import Rows

    *before, last = statements
    given = own[-1]
    select = last.type == duckdb.StatementType.SELECT
    text = _STATEMENT_END.sub("", last.query)
    kept: int | None = None  # the rows of a result kept whole (``_keep``)
    wrapped = False  # the SQL run is liberacion's, around the user's
    try:
        for statement, values in zip(before, own):
            con.execute(statement, values)
        described = _result_types(con, last, given) if select else None
        if described is not None and not _plain([t for _, t in described]):
            return _stream(con, text, given)  # read once, as Arrow
        if described is not None and _waits_for_all(con, text, given):
            wrapped = True
            text, kept = _keep(con, text, described, given)
        finite = _finite_moments(text, described) if described is not None else None
        wrapped = wrapped or finite is not None
        started = time.monotonic()
        # The rows kept whole are read from liberacion's table: the query's values were used up there.
        con.execute(finite or (text if kept is not None else last), None if kept is not None else given)
    except duckdb.Error as err:
        con.close()
        # An error's "LINE 1: ..." would quote the SQL wrapped around the user's own.
        failed = _without_context(err) if wrapped else err
        raise sql_error(failed, sql=";".join(s.query for s in statements)) from None
    if con.description is None:
        con.close()
        return Rows([], [[]])
    if finite is None and not _plain([d[1] for d in con.description]):  # a PRAGMA, a SHOW: small
        return _guarded(_rest_as_arrow(con), con)
    try:
        head = con.fetchmany(limit)
        more = con.fetchmany(1)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err) from None
    first = time.monotonic() - started
    columns = [d[0] for d in con.description]
    reals = [at for at, d in enumerate(con.description) if getattr(d[1], "id", None) == "float"]
    if reals:
        head = [tuple(_shortest_real(v) if at in reals else v for at, v in enumerate(row)) for row in head]
    if finite is not None and described is not None:  # an infinite date came as text: shown whole, as dates are
        moments = {at for at, (_, type_) in enumerate(described) if type_.id in _MOMENTS}
        head = [tuple(_whole_text(v) if at in moments else v for at, v in enumerate(row)) for row in head]
    if not more or kept is not None:
        con.close()
        rest = None if kept is None else kept - len(head)
        return Rows(columns, [head], remaining=None if rest is None else lambda: rest)

    def count_rest() -> int:
        try:
            return _count_rest(con, last if select else None, len(head), first, given)
        finally:
            con.close()

    return Rows(columns, [head], remaining=count_rest)


# A plan's operators whose first row waits for all of its rows, and those that may stand above them.
_WAITING = frozenset({"ORDER_BY", "TOP_N", "HASH_GROUP_BY", "PERFECT_HASH_GROUP_BY", "WINDOW"})
_PASSING = frozenset({"PROJECTION", "FILTER", "LIMIT", "STREAMING_LIMIT"})
# The words of SQL whose plan may have one of them on top: only such SQL is planned first.
_MAY_WAIT = re.compile(r"\b(?:order|group|distinct|over|window|qualify|pivot|union)\b", re.I)


def _waits_for_all(con: duckdb.DuckDBPyConnection, text: str, params: dict[str, Any] | None = None) -> bool:
    """Whether the first row of the SELECT ``text`` waits for all of its rows: a sort, a GROUP BY,
    a DISTINCT or a window on top of its plan (DuckDB's EXPLAIN, a millisecond or two). Counting
    the rest of such a result by a query of its own ran the sort again; reading it on in Python
    took longer than the sort (``_count_rest``). A plan that cannot be read: False."""
    import json

    import duckdb

    if not _MAY_WAIT.search(_STRINGS_AND_COMMENTS.sub(" ", text)):
        return False
    try:
        node = json.loads(con.execute(f"EXPLAIN (FORMAT json) {text}", params).fetchall()[0][1])[0]
        while node["name"] in _PASSING and node.get("children"):
            node = node["children"][0]
        return node["name"] in _WAITING
    except (duckdb.Error, ValueError, LookupError, TypeError):
        return False


_KEPT_TABLE = "liberacion_table_rows"


def _keep(
    con: duckdb.DuckDBPyConnection, text: str, described: list[tuple[str, Any]], params: dict[str, Any] | None = None
) -> tuple[str, int]:
    """Run the SELECT ``text`` once into a temporary table (``_waits_for_all``): every value is
    computed, so an error past the rows shown is the query's error (exit 4), and what does not fit
    the memory limit spills into the home's work area, as the sort itself did. Returns the SELECT
    of its rows, in the query's order and with its column names, and how many there are."""
    positional = ", ".join(f"#{at} AS c{at}" for at in range(1, len(described) + 1))
    con.execute(f"CREATE TEMP TABLE {_KEPT_TABLE} AS SELECT {positional} FROM ({text}\n)", params)
    total = con.execute(f"SELECT count(*) FROM {_KEPT_TABLE}").fetchall()[0][0]
    columns = ", ".join(f"c{at} AS {quote_ident(name)}" for at, (name, _) in enumerate(described, start=1))
    return f"SELECT {columns} FROM {_KEPT_TABLE}", int(total)


def _markdown_rows(
    con: duckdb.DuckDBPyConnection, text: str, result: duckdb.DuckDBPyRelation, params: dict[str, Any] | None = None
) -> Rows | pa.RecordBatchReader:
    """A SELECT's Markdown: each row's line made by DuckDB in the query itself, on every core (a
    Python string per value was ten times slower than CSV, and lines made from its Arrow batches
    twice). The values are those its Arrow stream carries (``_arrow_ready``), written as before;
    a REAL column goes through Arrow still: its shortest digits are Arrow's, not DuckDB's."""
    import duckdb

    from liberacion.render import Rows, markdown_selects

    if any(t.id == "float" for t in result.types):
        return _stream(con, text, params)
    ready = _arrow_ready(result, _ARROW_AS_TEXT)
    texts, line = markdown_selects(ready.types)
    positional = ", ".join(f'#{at} AS "c{at - 1}"' for at in range(1, len(ready.columns) + 1))
    try:
        lines = ready.project(positional).project(texts).project(line)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err, sql=text) from None
    return Rows(list(result.columns), arrow=_batches(lines), markdown_lines=True)


def _whole_text(value: Any) -> Any:
    """A date's text (``infinity``) marked to be shown whole; any other value as it is."""
    from liberacion.render import WholeText

    return WholeText(value) if isinstance(value, str) else value


def _plain(types: Sequence[Any]) -> bool:
    return all(getattr(t, "id", None) in _PLAIN_TYPES for t in types)


def _result_types(
    con: duckdb.DuckDBPyConnection, statement: Any, params: dict[str, Any] | None = None
) -> list[tuple[str, Any]] | None:
    """The column names and types of a SELECT, bound but not run (no row is made: a ``nextval``
    in it is not called); None when it cannot be told so (its own run then reports any error)."""
    import duckdb

    text = _STATEMENT_END.sub("", statement.query)
    # In parentheses, columns keep their names ("A" and "a"; a subquery would rename one a_1).
    for probe in (f"({text}\n) LIMIT 0", f"SELECT * FROM ({text}\n) LIMIT 0"):
        try:
            con.execute(probe, params)
        except duckdb.Error:
            continue
        return [(d[0], d[1]) for d in con.description or []]
    return None


_MOMENTS = ("date", "timestamp", "timestamp_s", "timestamp_ms")


def _finite_moments(text: str, described: list[tuple[str, Any]]) -> str | None:
    """The SELECT with each date and timestamp column as a UNION of its value and, for an infinite
    one, DuckDB's text of it (``infinity``): Python's conversion would show DuckDB's infinity as
    the year 9999 and -infinity as the year 1. None when it has no such column."""
    if not any(t.id in _MOMENTS for _, t in described):
        return None
    columns = []  # by position: the names may repeat ("A" and "a" are one name to DuckDB)
    for at, (name, type_) in enumerate(described, start=1):
        expr = f"#{at}"
        if type_.id in _MOMENTS:
            both = f"UNION(v {type_}, t VARCHAR)"
            expr = (
                f"CASE WHEN isinf(#{at}) THEN union_value(t := #{at}::VARCHAR)::{both} "
                f"ELSE union_value(v := #{at})::{both} END"
            )
        columns.append(f"{expr} AS {quote_ident(name)}")
    return f"SELECT {', '.join(columns)} FROM ({text}\n)"


# Past the screen, the rest of a result is read on for this long, or for as long as its first
# rows took when that is longer, before a SELECT's rows are counted by a query of its own.
DRAIN_SECONDS = 0.5
DRAIN_VALUES = 256 * 1024  # values fetched as Python objects at a time


def _count_rest(
    con: duckdb.DuckDBPyConnection, select: Any, shown: int, first: float, params: dict[str, Any] | None = None
) -> int:
    """The rows of the pending result after the ``shown`` ones, never holding them all.

    The rest is read on in batches, which counts the very rows shown (a second run of
    ``random()`` or ``USING SAMPLE`` makes others) and costs no second run. Python rows of a
    whole big table would take minutes, though, and Arrow read from a connection's pending result
    materializes every row first (32 million rows: 4 GB): a SELECT still going after ``first``
    seconds (at least DRAIN_SECONDS) counts what is left with a query of its own, a scan DuckDB
    answers at its own speed, computing every value (an error past the rows shown is the query's
    error). A sort or a GROUP BY on top of the plan never comes here: that query ran twice, the
    rows are kept whole instead (``_keep``). Any other statement (a PRAGMA, a SHOW) is small.
    """
    import duckdb

    rest = 1  # the row fetched to learn there were more
    deadline = time.monotonic() + max(DRAIN_SECONDS, first)
    size = max(1, DRAIN_VALUES // max(1, len(con.description or ())))
    while batch := _fetch_rows(con, size):
        rest += batch
        if select is not None and time.monotonic() >= deadline:
            break
    else:
        return rest
    text = _STATEMENT_END.sub("", select.query)
    try:
        con.abort()  # a SELECT only reads: its pending rows are dropped, not a transaction
        # Every value computed, as the rows shown were: a bare count(*) lets DuckDB drop the
        # columns, and a division by zero past the rows shown would go unsaid (exit 0).
        count = f"SELECT count(*) FROM ({text}\n) liberacion_row WHERE hash(liberacion_row) IS NOT NULL"
        total = con.execute(count, params)
        total = total.fetchall()[0][0]
    except duckdb.Error as err:
        raise sql_error(err) from None
    return max(rest, int(total) - shown)  # at least the rows read past them (a sample may count fewer)


def _fetch_rows(con: duckdb.DuckDBPyConnection, size: int) -> int:
    import duckdb

    try:
        return len(con.fetchmany(size))
    except duckdb.Error as err:
        raise sql_error(err) from None


def _shortest_real(value: float | None) -> float | None:
    """A REAL (float32) as the double of its shortest text: 0.1, as DuckDB writes it in CSV and
    JSON, not the 0.10000000149011612 its float32 widens to in Python."""
    if value is None or not math.isfinite(value):
        return value
    for digits in range(1, 10):  # nine significant digits tell every float32 apart
        text = f"{value:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return float(text)
    return value  # pragma: no cover - nine digits always suffice


def _rest_as_arrow(con: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
    import duckdb

    with warnings.catch_warnings():  # "an extra copy of the rows": the rows are only counted or shown
        warnings.simplefilter("ignore")
        try:
            return con.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as err:
            con.close()
            raise sql_error(err) from None


class _NotCopyable(Exception):
    """DuckDB cannot COPY this statement (a ``SHOW``, say): the general path writes it."""


def _export_column(name: str, duck_type: Any, *, json: bool) -> str:
    """A column as liberacion writes it (``render.export_expr``)."""
    from liberacion.render import export_expr

    col = quote_ident(name)
    expr = export_expr(col, duck_type, json=json)
    return col if expr is None else f"{expr} AS {col}"


def _copy(
    con: duckdb.DuckDBPyConnection, copy: tuple[str, str], output: Path | None, params: dict[str, Any] | None = None
) -> None:
    """Run the COPY into ``output`` (a temporary name, renamed into place), into stdout when it is a
    pipe or a terminal (DuckDB writes it directly, streaming), or else through a temporary file.
    ``params``: the values of the query's parameters."""
    from liberacion.files import is_special, output_path

    if output is not None:
        with output_path(output) as tmp:
            _run_copy(con, copy, tmp, direct=is_special(output), params=params)
        return
    if _stdout_is_a_stream():
        sys.stdout.flush()
        _run_copy(con, copy, Path(STDOUT_PATH), direct=True, params=params)
        return
    with tempfile.TemporaryDirectory(prefix="liberacion-") as directory:
        tmp = Path(directory) / "result"
        try:
            _run_copy(con, copy, tmp, direct=False, params=params)
        except OSError as err:  # the system's temporary directory is full (or read-only)
            what = err.strerror or one_line(err)
            raise StorageError(
                f"cannot write the result into the temporary directory {directory}: {what};"
                " free some disk space there or set TMPDIR to another directory"
            ) from None
        send_result(tmp)


def _run_copy(
    con: duckdb.DuckDBPyConnection,
    copy: tuple[str, str],
    target: Path,
    *,
    direct: bool,
    params: dict[str, Any] | None = None,
) -> None:
    import duckdb

    from liberacion.render import OutputClosed, silence_stdout

    try:
        con.execute(copy[0] + quote_literal(str(target)) + copy[1], params)
    except duckdb.ParserException:
        raise _NotCopyable() from None
    except duckdb.Error as err:
        if direct and ("Broken pipe" in str(err) or '"errno":"32"' in str(err)):
            silence_stdout()  # the reader went away (| head): end quietly
            raise OutputClosed() from None
        failed = None if direct else _write_failure(err, target)
        if failed is not None:  # the file could not be written (a full disk): not the query's fault
            raise failed from None
        raise sql_error(_without_wrapper(err), partial=direct) from None


# DuckDB's IO errors carry the errno in a JSON document (``"errno":"28"``), or only its text.
_ERRNO = re.compile(r'"errno"\s*:\s*"?(\d+)')
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)


def _write_failure(err: Exception, target: Path) -> OSError | None:
    """DuckDB's failure to write ``target`` as the OSError it was, for the caller to name the
    file; None when the error is about something else (the query, the lake's files)."""
    text = str(err)
    if target.name not in text:
        return None
    found = _ERRNO.search(text)
    code = int(found.group(1)) if found else None
    if code is None:
        code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in text), None)
    if code is None:
        return None
    return OSError(code, os.strerror(code), str(target))


def _without_wrapper(err: Exception) -> Exception:
    """DuckDB's error without its ``LINE 1: COPY (SELECT ...`` context: that quotes the COPY
    liberacion wrapped around the query, not the SQL the user wrote. Line 1 holds the COPY whether
    or not DuckDB shortens it (``LINE 1: ..."name" FROM (select ...``): a parameter's value that
    cannot be read is found only when the COPY runs."""
    text = str(err)
    context = text.find("\nLINE ")
    if context < 0 or not text.startswith("\nLINE 1:", context):
        return err
    return _without_context(err)


def _without_context(err: Exception) -> Exception:
    """DuckDB's error without its ``LINE 1: ...`` context, which quotes SQL liberacion wrote."""
    text = str(err)
    context = text.find("\nLINE ")
    return err if context < 0 else type(err)(text[:context].rstrip())


def _stdout_is_a_stream() -> bool:
    """True when stdout is file descriptor 1 and a pipe or a terminal, which DuckDB can open as
    ``/dev/stdout`` and write to as it goes. A regular file is not: opening it again would
    truncate what the shell appended before (``>>``). Nor is a pipe another user made (cron's,
    made by root before it switches user; ``sudo -u`` in a pipeline): ours to write into, but its
    ``/dev/stdout`` refuses us, so it is tried first (one open)."""
    if os.name != "posix" or sys.stdout is not sys.__stdout__:
        return False
    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    # A character device other than a terminal (/dev/null) is shared by every process writing to
    # it, and DuckDB locks what it copies to: several queries at once into /dev/null failed.
    stream = stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))
    return fd == 1 and stream and _opens_for_writing(STDOUT_PATH)


STDOUT_PATH = "/dev/stdout"


def _opens_for_writing(path: str) -> bool:
    """Whether ``path`` can be opened for writing now. Without blocking (a pipe whose reader left
    says so at once) and without becoming the controlling terminal of a process that has none."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def stdout_is_a_file() -> bool:
    """Whether stdout is a regular file (``> out.parquet``): it gets a result only once it is
    complete (``send_result``), never the part a failed query wrote."""
    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def send_result(path: Path) -> None:
    """A finished result file to stdout, in blocks."""
    from liberacion.render import OutputClosed, silence_stdout

    stream = sys.stdout
    try:
        stream.flush()
        binary = getattr(stream, "buffer", None)
        with open(path, "rb") as fh:
            if binary is not None:
                shutil.copyfileobj(fh, binary, 1 << 20)
                binary.flush()
            else:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    stream.write(block.decode("utf-8"))
                stream.flush()
    except BrokenPipeError:
        silence_stdout()
        raise OutputClosed() from None
    except OSError as err:  # where stdout goes is full: a file the shell opened, not the home
        raise output_error(err, "the standard output") from None


def _stream(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pa.RecordBatchReader:
    """The general path: the result as Arrow batches (for the table, Markdown and Parquet, and for
    what DuckDB's COPY cannot write). ``params``: the values of the parameters of ``sql``, one statement."""
    import duckdb

    try:
        result = con.sql(sql, params=params)
    except duckdb.Error as err:
        con.close()
        raise sql_error(err) from None
    if result is None:
        return _batches(result)
    return _json_marked(_batches(result, _ARROW_AS_TEXT), result.types)


JSON_MARK = {b"liberacion": b"json"}  # an Arrow field's metadata: its text is JSON (see ``_json_marked``)


def _json_marked(reader: pa.RecordBatchReader, types: Sequence[Any]) -> pa.RecordBatchReader:
    """The stream with its JSON columns, and its BIGNUMs (sent as text), marked ``JSON_MARK``: Arrow
    has no JSON type, and without the mark JSON output would write each value as a string holding
    JSON rather than as the JSON it is, as the COPY of one query does."""
    import pyarrow as pa

    marked = [str(t) == "JSON" or t.id in ("bignum", "varint") for t in types]
    if not any(marked) or len(marked) != len(reader.schema):
        return reader
    schema = pa.schema(
        [f.with_metadata(JSON_MARK) if mark else f for f, mark in zip(reader.schema, marked)],
        metadata=reader.schema.metadata,
    )
    batches = (pa.RecordBatch.from_arrays(batch.columns, schema=schema) for batch in reader)
    return pa.RecordBatchReader.from_batches(schema, batches)
