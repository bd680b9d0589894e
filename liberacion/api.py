"""The public Python API: one function per command, with the same names and options.

Every function takes ``home`` (default: ``LIBERACION_HOME`` or the platform's data directory),
those that read or write tables ``lake`` too (as ``--lake``: a directory or ``s3://BUCKET/PREFIX``;
default: ``LIBERACION_LAKE``, else the home's own lake), and returns dataclasses, Arrow tables or
DuckDB relations; none prints or exits. Errors are ``liberacion.LiberacionError`` subclasses whose
``exit_code`` the CLI uses. Example::

    import liberacion

    [result] = liberacion.fetch(["hospitals.csv"], as_table="cms.hospitals")
    print(result.status, result.rows)
    top = liberacion.sql("select state, count(*) as n from cms.hospitals group by 1 order by 2 desc")
    print(top.fetchall())
"""

from __future__ import annotations

import functools
import operator
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import liberacion
from liberacion.errors import Busy, ConfigError, UsageError, called_from, note, option
from liberacion.home import Home, check_home, resolve_home


class _Deferred:
    """A module imported when one of its names is first looked up. The annotations name DuckDB's
    and pyarrow's classes, which the CLI must not import at start-up, and ``typing.get_type_hints``
    (as Typer and pydantic call it on a function) must still find them; liberacion's own classes
    are named through the package, which imports each on first use."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._module), name)


if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from liberacion.engine import Run
else:
    duckdb, pa = _Deferred("duckdb"), _Deferred("pyarrow")

PathLike = str | os.PathLike[str]
P = ParamSpec("P")
T = TypeVar("T")

# What DuckDB raises instead of KeyboardInterrupt when Ctrl-C lands while it runs a query on the
# main thread (a diff's comparison, the views rebuilt at the end of a fetch): it takes the signal.
_DUCKDB_CTRL_C = "Query interrupted"


def _ctrl_c_as_keyboard_interrupt(function: Callable[P, T]) -> Callable[P, T]:
    """``function`` with Ctrl-C always a ``KeyboardInterrupt``: ``except KeyboardInterrupt`` in a
    script (or a notebook's interrupt button) must see what it asked for, not DuckDB's
    ``RuntimeError`` (which the CLI would report as an internal error)."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            with called_from(sys._getframe(1)):  # its notes name the caller's line
                return function(*args, **kwargs)
        except RuntimeError as err:
            if type(err) is RuntimeError and str(err).startswith(_DUCKDB_CTRL_C):
                raise KeyboardInterrupt from None
            raise

    return call


def open_home(home: PathLike | Home | None = None) -> Home:
    """The home an API call works in: ``home`` if given, else ``LIBERACION_HOME``, else the default."""
    if isinstance(home, Home):
        return home
    if home is not None and (not isinstance(home, (str, os.PathLike)) or not str(home).strip()):
        raise UsageError(f"home must be a directory path, not {home!r}")  # "" must not mean the default
    root = resolve_home(home)
    # As the CLI does before any command: a home that is a file (or under one) is said here, not
    # read as an empty lake (``tables()`` -> []) or reported as a damaged ``lake.duckdb``.
    check_home(root)
    return Home(root)


def _in_lake(home: PathLike | Home | None, lake: PathLike | None) -> Home:
    """The home an API call works in, with ``lake`` as the command line's ``--lake``: it names the
    lake (a directory or ``s3://BUCKET/PREFIX``), else ``Home.lake_uri``, else ``LIBERACION_LAKE``,
    else the home's own. It is read where the command line's is (``iceberg_lake.open_lake``), so a
    bad one is the very error ``--lake`` gives."""
    where = open_home(home)
    if lake is None:
        return where
    if isinstance(lake, (bytes, bytearray)) or not isinstance(lake, (str, os.PathLike)):
        raise UsageError(f"lake must be a directory or a URI such as s3://BUCKET/PREFIX, not {lake!r}")
    if not os.fspath(lake).strip():  # else the default lake, as if no lake were given
        raise UsageError("lake must not be empty: give a directory or a URI such as s3://BUCKET/PREFIX, or None")
    return replace(where, lake_uri=os.fspath(lake))


def _names(value: str | Sequence[str], what: str) -> list[str]:
    """A list of names from a list, or from one name given alone (never its letters one by one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{what} must be a name or a list of names, not {value!r}")
    from liberacion.naming import utf8_text

    try:  # a file named in another encoding: refused here as the CLI refuses it, not inside DuckDB
        return [utf8_text(v, path=True) for v in value]
    except ValueError as err:
        raise UsageError(f"{what}: {err}") from None


def _refs(value: PathLike | Sequence[PathLike]) -> list[str]:
    """``fetch``'s refs: names as ``_names`` takes them, and local files as ``pathlib.Path`` too."""
    if isinstance(value, os.PathLike):
        value = [value]
    if isinstance(value, (bytes, bytearray)):  # a Sequence too: read as its byte values
        raise UsageError(f"refs must be a name or a list of names, not {value!r}")
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
    return _names(value, "refs")  # type: ignore[arg-type]


def _paths(value: PathLike | Sequence[PathLike], what: str) -> list[Path]:
    """Paths from a list, or one path given alone (never ``"/a/b"`` as the paths ``/``, ``a``, ...)."""
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, (str, os.PathLike)) for v in value):
        raise UsageError(f"{what} must be a path or a list of paths, not {value!r}")
    return [Path(v) for v in value]


def _catalog_paths(value: PathLike | Sequence[PathLike]) -> list[Path]:
    """``catalog_paths`` as paths, checked as the CLI checks ``--catalogs`` and ``LIBERACION_CATALOGS``
    before every command: one that does not exist is a ``ConfigError``, not catalogs silently missing."""
    paths = _paths(value, "catalog_paths")
    if paths or os.environ.get("LIBERACION_CATALOGS", "").strip():
        from liberacion.catalogs.manifests import check_manifest_paths

        check_manifest_paths(paths)
    return paths


def _whole(value: object, what: str) -> int:
    """A whole number (``numpy.int64`` too), or a ``UsageError`` rather than a ``TypeError`` deep inside."""
    if isinstance(value, bool):  # an int to Python, but True jobs is a slip
        raise UsageError(f"{what} must be a whole number, not {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise UsageError(f"{what} must be a whole number, not {value!r}") from None


def _seconds(value: object, what: str) -> float:
    """A number of seconds (whole or not) or a ``datetime.timedelta``, or a ``UsageError``."""
    if isinstance(value, timedelta):  # how Python (and Airflow) says a duration
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        raise UsageError(f"{what} must be a number of seconds, not {value!r}")
    return float(value)


def _text(value: object, what: str) -> str:
    """A name given as text, or a ``UsageError`` (not ``TypeError: expected string`` from a regex)."""
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, not {value!r}")
    return value


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _filled(value: object, what: str, hint: str, flag: str = "") -> str | None:
    """Optional text that, when given, says something: ``--member ""`` loaded the whole file and
    ``--publisher ""`` kept every dataset, as if neither had been given."""
    text = _optional_text(value, what)
    if text is not None and not text.strip():
        raise UsageError(f"{option(what, flag)} must not be empty: {hint}")
    return text


def _trimmed(text: str | None) -> str | None:
    """A name compared whole: ``"xpt "`` matched no format, and the search found nothing."""
    return None if text is None else text.strip()


def _flag(value: object, what: str) -> bool:
    """True or False (``numpy.bool_`` too). Anything else is a ``UsageError``: ``"False"`` (what an
    Airflow template renders) or ``"no"`` is true to Python, and would force, check or sandbox."""
    kind = type(value)
    if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
        return bool(value)
    raise UsageError(f"{what} must be True or False, not {value!r}")


def _callback(value: object, what: str) -> None:
    """A callback that cannot be called is said before the run, not by the first event."""
    if value is not None and not callable(value):
        raise UsageError(f"{what} must be a function, not {value!r}")


def _types(value: Mapping[str, str] | None) -> dict[str, str]:
    """``types`` as ``{column: type}``; anything else (a list of ``"col=TYPE"``) is refused plainly."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        msg = f"types must be a dict of column names to type names, such as {{'beds': 'BIGINT'}}, not {value!r}"
        raise UsageError(msg)
    return dict(value)


def _when(value: str | date | None, what: str = "as_of") -> str | None:
    """``as_of`` (or a snapshot named by its time: ``what``) as ``parse_as_of`` takes it: a
    ``datetime`` (UTC when naive) or ``date`` too."""
    from datetime import UTC, datetime

    if value is None:  # "" is refused where it is read, as on the command line: never "not given"
        return None
    if isinstance(value, datetime):
        try:
            return (value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value).isoformat()
        except OverflowError:  # datetime.min at UTC+5 is before year 1
            raise UsageError(f"{what} {value} is out of range once moved to UTC") from None
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise UsageError(f"{what} must be a date, a datetime or text such as 2026-11-01, not {value!r}")
    return value


def _problems_list(problems: object) -> list[ConfigError]:
    """Where the manifests that could not be read are collected: ``problems`` when the caller gives
    a list, else a list of our own whose items ``_say_problems`` turns into warnings."""
    if problems is None:
        return []
    if not isinstance(problems, list):
        raise UsageError(f"problems must be a list that collects them, not {problems!r}")
    return problems


def _say_problems(found: list[ConfigError], given: list[ConfigError] | None, what: str) -> None:
    """Manifests that could not be read, said as ``Note`` warnings (as ``sql`` says them) when the
    caller gave no ``problems`` list: the command exits 5 for them, so they are never dropped silently."""
    if given is None:
        for problem in found:
            note(f"{problem}; its catalog is left out of {what}")


def open_lake(home: PathLike | Home | None = None, lake: PathLike | None = None) -> liberacion.Lake:
    """The lake ``lake`` names (as ``--lake``), else the one ``Home.lake_uri`` or ``LIBERACION_LAKE``
    names, else the home's own."""
    from liberacion.iceberg_lake import open_lake as of_home

    return of_home(_in_lake(home, lake))


@_ctrl_c_as_keyboard_interrupt
def fetch(
    refs: PathLike | Sequence[PathLike],
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    as_table: str | None = None,
    jobs: int = 4,
    force: bool = False,
    wait: float | timedelta = 300.0,
    types: dict[str, str] | None = None,
    raw: bool = False,
    member: str | None = None,
    max_bad_rows: int | None = None,
    allow_empty: bool = False,
    catalog_paths: Sequence[PathLike] = (),
    progress: liberacion.ProgressCallback | None = None,
    on_result: Callable[[liberacion.FetchResult], None] | None = None,
) -> list[liberacion.FetchResult]:
    """Download, convert and publish datasets (refs ``CATALOG/ID``, http(s) URLs or local files).

    One result per distinct ref, in the order given (a ref named twice is fetched once): ``status``
    is ``fetched``, ``unchanged`` or ``failed`` (with ``stage`` and ``error``). A local file may be
    a ``pathlib.Path``. A failed ref leaves its table as it was; so does a file without data rows,
    unless ``allow_empty``. ``on_result`` receives the same results, in the same order, each as
    soon as it and those before it are done, one call at a time from the run's threads (on Ctrl-C:
    those done before it, then the ``KeyboardInterrupt``). An exception raised by ``progress`` or
    ``on_result`` stops the run as Ctrl-C does (no table is published after it) and ``fetch``
    raises it.
    """
    from liberacion.fetching import FetchOptions
    from liberacion.fetching import fetch as run

    _callback(progress, "progress")
    _callback(on_result, "on_result")
    options = FetchOptions(
        table=_optional_text(as_table, "as_table"),
        jobs=_whole(jobs, "jobs"),
        force=_flag(force, "force"),
        wait=_seconds(wait, "wait"),
        types=_types(types),
        raw=_flag(raw, "raw"),
        member=_filled(member, "member", "name a zip's member or a workbook's sheet"),
        max_bad_rows=None if max_bad_rows is None else _whole(max_bad_rows, "max_bad_rows"),
        allow_empty=_flag(allow_empty, "allow_empty"),
        catalog_paths=_catalog_paths(catalog_paths),
    )
    where = _in_lake(home, lake)
    named = [checked_ref(where, ref, catalog_paths=options.catalog_paths) for ref in _refs(refs)]
    return run(named, where, options, progress=progress, on_result=on_result)


@_ctrl_c_as_keyboard_interrupt
def refresh(
    tables: Sequence[str] = (),
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    older_than: float | str | timedelta | None = None,
    jobs: int = 4,
    check: bool = False,
    force: bool = False,
    on_schema_change: str = "evolve",
    wait: float | timedelta = 0.0,
    catalog_paths: Sequence[PathLike] = (),
    on_event: Callable[[liberacion.RefreshEvent], None] | None = None,
    on_waiting: Callable[[str], None] | None = None,
) -> liberacion.RefreshReport:
    """Re-check fetched tables (all when none are named) and re-fetch what changed upstream.

    ``older_than`` is seconds, a ``timedelta`` or a duration such as ``"12h"``. The report's ``exit_code`` is what
    the command exits with. ``on_waiting`` is called once with a line to show when the run waits
    (up to ``wait`` seconds) for another refresh of the same home.
    """
    from liberacion.refreshing import RefreshOptions, parse_duration
    from liberacion.refreshing import refresh as run

    _callback(on_event, "on_event")
    _callback(on_waiting, "on_waiting")
    if older_than is not None and not isinstance(older_than, str):
        older_than = _seconds(older_than, "older_than")
        if older_than < 0:  # -1 would check every table as if it had never been checked
            raise UsageError(f"older_than must be 0 or more seconds, not {older_than!r}")
    options = RefreshOptions(
        tables=_names(tables, "tables"),
        older_than=parse_duration(older_than) if isinstance(older_than, str) else older_than,
        jobs=_whole(jobs, "jobs"),
        check=_flag(check, "check"),
        force=_flag(force, "force"),
        on_schema_change=_text(on_schema_change, "on_schema_change"),
        wait=_seconds(wait, "wait"),
        catalog_paths=_catalog_paths(catalog_paths),
    )
    return run(_in_lake(home, lake), options, on_event=on_event, on_waiting=on_waiting)


@_ctrl_c_as_keyboard_interrupt
def discover(
    names: str | Sequence[str] = (),
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    catalog_paths: Sequence[PathLike] = (),
    progress: Callable[[str], None] | None = None,
) -> liberacion.DiscoverReport:
    """Download the named catalogs' listings (all when none) and rebuild the dataset index."""
    from liberacion.catalogs.index import discover as run

    _callback(progress, "progress")
    # One name alone is one catalog, not its letters (``discover("cdc")`` was "no catalog named 'c'").
    where = _in_lake(home, lake)
    report = run(where, _names(names, "names"), _catalog_paths(catalog_paths), progress=progress)
    if report.rebuilt:
        _update_views(where)
    return report


def checked_ref(home: Home, value: str, *, command: str | None = None, catalog_paths: Sequence[PathLike] = ()) -> str:
    """A dataset ref as given, or a ``UsageError`` naming the ref when a table name was given
    instead (``show("cms.hospital_general_information")``: its ref is cms/hospital-general-information),
    as ``fetch`` and ``show`` say it from Python and from the command line (``command`` adds the
    command line that takes the ref).

    A name is taken for a table when its catalog is known or the lake has it; anything else
    (``data.csv``) is left for the command to read as it reads any other ref.
    """
    from liberacion.naming import IDENTIFIER

    catalog, dot, table = value.partition(".")
    if not dot or "/" in value or not IDENTIFIER.fullmatch(catalog) or not IDENTIFIER.fullmatch(table):
        return value
    if Path(value).exists():  # a local file named like a table: fetch reads it
        return value
    ref, known = _ref_of_table(home, value, catalog_paths)
    if ref is not None:
        run = f": liberacion {command} {ref}" if command else ""
        raise UsageError(f"{value} is a table name, not a dataset ref; its ref is {ref}{run}")
    if known:
        raise UsageError(
            f"{value} is a table name, not a dataset ref (CATALOG/ID, e.g. cms/hospital-general-information); "
            f"see: liberacion search"
        )
    return value


def _ref_of_table(home: Home, name: str, catalog_paths: Sequence[PathLike]) -> tuple[str | None, bool]:
    """The ref a table comes from, looked up in its provenance, the curated datasets and the index;
    and whether the name's catalog is a known one at all."""
    from liberacion.catalogs.manifests import load_catalogs
    from liberacion.errors import LiberacionError

    lake = open_lake(home)
    try:
        if lake.exists(name):
            ref = lake.current(name).provenance.ref
            if ref and "://" not in ref and ref.count("/") == 1 and not ref.startswith((".", "/")):
                return ref, True  # a catalog ref (a table from a file or a URL has none)
    except (OSError, LiberacionError):
        pass
    catalog_name = name.split(".", 1)[0]
    catalogs = load_catalogs([Path(p) for p in catalog_paths], problems=[])
    known = any(c.name == catalog_name for c in catalogs)
    for catalog in catalogs:
        for dataset in catalog.datasets:
            if dataset.table == name:
                return dataset.ref, True
    if home.index_file.is_file():
        from liberacion.engine import new_connection
        from liberacion.naming import quote_literal

        try:
            with new_connection() as con:
                row = con.execute(
                    f"SELECT ref FROM read_parquet({quote_literal(str(home.index_file))}) WHERE table_name = ? LIMIT 1",
                    [name],
                ).fetchone()
        except Exception:  # a damaged index gives no hint; the command reports the index itself
            row = None
        if row and row[0]:
            return row[0], True
    return None, known or lake.exists(name)


def _update_views(home: Home) -> None:
    """A new index makes ``lake.duckdb`` stale, and every ``sql`` would build its views in memory
    until a table changed: the home's own lake rebuilds it now (a shared lake's waits for its next
    writer rather than reach its store here)."""
    from liberacion.fetching import update_views
    from liberacion.lake import Lake

    try:
        lake = open_lake(home)
    except ConfigError:  # a setting only a command reading the lake needs: that command says it
        return
    if type(lake) is Lake and lake.names():
        update_views(lake)


@_ctrl_c_as_keyboard_interrupt
def search(
    terms: str | Sequence[str] = (),
    *,
    home: PathLike | Home | None = None,
    catalog: str | None = None,
    publisher: str | None = None,
    data_format: str | None = None,
    limit: int | None = 20,
    catalog_paths: Sequence[PathLike] = (),
    problems: list[ConfigError] | None = None,
) -> list[liberacion.SearchHit]:
    """Datasets matching every term, best first (exact title, then titles, keywords, descriptions).

    ``catalog`` keeps one catalog's datasets, ``publisher`` those whose publisher contains the text,
    ``data_format`` those offering files of that format (``"csv"``, ``"zip"``); ``limit`` 0 or None
    returns every hit. A catalog manifest that cannot be read is left out: it is appended to
    ``problems`` when that list is given, else said as a ``liberacion.errors.Note`` warning.
    """
    from liberacion.catalogs.index import search as run

    words = _names(terms, "terms")
    if limit is not None and _whole(limit, "limit") < 0:  # hits[:-1] would drop the last hit
        raise UsageError(f"limit must be 0 (all) or more, not {limit}")
    found = _problems_list(problems)
    hits = run(
        open_home(home),
        words,
        catalog=_optional_text(catalog, "catalog"),
        publisher=_filled(publisher, "publisher", "give part of a publisher's name"),
        data_format=_trimmed(_filled(data_format, "data_format", "give a format such as csv", "--format-of-data")),
        limit=limit,
        extra_paths=_catalog_paths(catalog_paths),
        problems=found,
    )
    _say_problems(found, problems, "the search")
    return hits


@_ctrl_c_as_keyboard_interrupt
def catalogs(
    *,
    home: PathLike | Home | None = None,
    catalog_paths: Sequence[PathLike] = (),
    problems: list[ConfigError] | None = None,
) -> list[liberacion.CatalogStatus]:
    """Every catalog with what the index holds for it and how its last discover went.

    A catalog manifest that cannot be read is left out: it is appended to ``problems`` when that
    list is given, else said as a ``liberacion.errors.Note`` warning.
    """
    from liberacion.catalogs.index import catalog_status

    found = _problems_list(problems)
    statuses = catalog_status(open_home(home), _catalog_paths(catalog_paths), problems=found)
    _say_problems(found, problems, "the list")
    return statuses


@_ctrl_c_as_keyboard_interrupt
def show(
    ref: str,
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    catalog_paths: Sequence[PathLike] = (),
) -> liberacion.Description:
    """A dataset's metadata, the file(s) fetch would take and why, and its table in the lake."""
    from liberacion.resolve import describe

    lake = open_lake(home, lake)
    paths = _catalog_paths(catalog_paths)
    description = describe(lake.home, checked_ref(lake.home, _text(ref, "ref"), catalog_paths=paths), paths)
    table = description.dataset.table
    state: dict[str, Any] = {"table": table, "present": False}
    if lake.exists(table):
        current = lake.current(table)
        state.update(present=True, snapshot=current.id, published_at=current.published_at, rows=current.rows)
    description.lake = state
    return description


@_ctrl_c_as_keyboard_interrupt
def sql(
    query: str,
    *,
    params: Mapping[str, Any] | None = None,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    as_of: str | date | None = None,
    arrow: bool = False,
    safe: bool | None = None,
    catalog_paths: Sequence[PathLike] = (),
) -> duckdb.DuckDBPyRelation | pa.Table:
    """Run DuckDB SQL over the lake (tables are ``CATALOG.TABLE``).

    Returns a DuckDB relation (``.df()``, ``.fetchall()``, ``.arrow()``, more SQL on top), or with
    ``arrow=True`` the whole result as an Arrow table. ``as_of`` (a date or UTC timestamp) queries
    every table as it was then. ``safe=True`` (or ``LIBERACION_SQL_SAFE=1``, which ``safe=False``
    does not undo) lets the SQL read the lake and nothing else. ``liberacion.datasets`` shows the
    catalogs loaded with ``catalog_paths`` (as ``search`` does). No snapshot the relation reads
    is pruned while the relation lives (see ``prune``): read it and let it go, rather than keeping
    it for a long time. (With DuckDB 1.4 and later a relation's ``.arrow()`` is a
    ``RecordBatchReader``: ``.to_arrow_table()`` is the table.)

    ``params`` gives the SQL's ``$name`` parameters their values, as data, never as SQL:
    ``sql("select * from cms.beds where state = $state", params={"state": "CA"})``. Values keep
    their Python types (a ``str`` is text, as on the command line; an ``int``, ``float``,
    ``Decimal``, ``bool``, ``date``, ``datetime`` or ``None`` is that type). Each statement of a
    script takes the values of the names it holds; a name the SQL holds that ``params`` does not
    give, or one given that the SQL does not hold, is a ``UsageError``.
    """
    import weakref

    from liberacion.engine import Run
    from liberacion.errors import DamagedSnapshot, NoSnapshot, NoTable
    from liberacion.query import check_params, explain_damaged, explain_missing, explain_unkept, relation, safe_default
    from liberacion.timestamps import parse_as_of

    # As ``--safe``: LIBERACION_SQL_SAFE=1 sandboxes every query, and ``safe=False`` does not undo
    # it (an operator's setting: the command line has no way out of it either).
    asked = False if safe is None else _flag(safe, "safe")
    sandboxed = safe_default() or asked
    arrow = _flag(arrow, "arrow")
    if not isinstance(query, str):
        raise UsageError(f"the SQL must be text, not {query!r}")
    values = check_params(params)
    when = _when(as_of)
    moment = parse_as_of(when, option("as_of")) if when is not None else None
    lake = open_lake(home, lake)
    # Held until the relation is garbage-collected (with ``arrow``: read whole): it is read lazily.
    release = lake.hold_readers()
    try:
        paths = _catalog_paths(catalog_paths)
        run = Run()  # Ctrl-C while the rows are read stops this query, not other threads' queries
        result = run.call(relation, lake, query, as_of=moment, safe=sandboxed, catalog_paths=paths, params=values)
        if result is None:
            raise UsageError("the SQL has no result to return (it is not a query)")
        if arrow:
            table = _read_whole(result, query, run, values)
            release()
            return table
    except NoTable as err:
        release()
        raise explain_missing(lake, err, moment) from None
    except NoSnapshot as err:
        release()
        raise explain_unkept(lake, err) from None
    except DamagedSnapshot as err:  # a table's file gone: the very fetch that replaces it, as the command says
        release()
        raise explain_damaged(lake, err) from None
    except BaseException:
        release()
        raise
    weakref.finalize(result, release)
    return result


def _read_whole(result: duckdb.DuckDBPyRelation, query: str, run: Run, values: Mapping[str, Any]) -> pa.Table:
    """The relation as an Arrow table. An error that only shows while the rows are read (a failed
    cast) is an ``SQLError`` as ``relation`` makes it, not DuckDB's; Ctrl-C stops the query at once
    and is a ``KeyboardInterrupt``, not DuckDB's ``RuntimeError: Query interrupted``."""
    import duckdb

    from liberacion.engine import interruptible
    from liberacion.query import param_error, sql_error

    try:
        return interruptible(result.to_arrow_table, run)
    except duckdb.Error as err:
        raise param_error(sql_error(err, sql=query), values) from None


def checked_table(
    lake: liberacion.Lake,
    name: object,
    what: str = "table",
    *,
    command: str | None = None,
    catalog_paths: Sequence[PathLike] = (),
) -> str:
    """``name`` as a table name, or the mistake said as ``info``, ``history``, ``diff`` and ``prune``
    say it, from Python as from the command line: a bare name the lake has under a catalog
    (``beds`` for ``cms.beds``) is a ``NoTable`` naming it, a dataset ref a ``UsageError`` naming its
    table (``command`` adds the command line that takes it)."""
    from liberacion.errors import NoTable

    name = _text(name, what)
    if "." not in name and "/" not in name:
        matches = [other for other in lake.names() if other.split(".", 1)[-1] == name.lower()]
        if matches:  # only the names are read: every table's snapshots would take seconds on a big lake
            raise NoTable(f"no table {name}: a table is CATALOG.TABLE; did you mean {' or '.join(matches)}?")
    if "/" not in name:
        return name
    import contextlib

    from liberacion.fetching import table_of_ref

    table = table_of_ref(name)  # not a known ref: the table its name would give
    with contextlib.suppress(Exception):  # the catalog knows the ref's own table (show prints it too)
        table = show(name, home=lake.home, catalog_paths=catalog_paths).lake["table"]
    run = f": liberacion {command} {table}" if command else ""
    raise UsageError(f"{name} is a dataset ref, not a table; its table is {table}{run}")


@_ctrl_c_as_keyboard_interrupt
def tables(*, home: PathLike | Home | None = None, lake: PathLike | None = None) -> list[liberacion.TableInfo]:
    """Every table in the lake with its current snapshot, and what this home's refreshes last
    found of it (``checked_at``, ``last_refresh``): whether cron still keeps it fresh."""
    from liberacion.refresh_state import last_checks

    found = open_lake(home, lake)
    checks = last_checks(found.home)
    return [_with_last_check(info, checks) for info in found.tables()]


def _with_last_check(info: liberacion.TableInfo, checks: dict[str, dict[str, Any]]) -> liberacion.TableInfo:
    """``info`` with its last refresh's record. A zip's or a workbook's member tables are refreshed
    as their set, under the table their ref fetches into (their provenance's ``target``)."""
    check = checks.get(info.name)
    if check is None and info.current is not None:
        check = checks.get(info.current.provenance.target or "")
    check = check or {}
    return replace(info, checked_at=check.get("checked_at"), last_refresh=check.get("last_refresh"))


@dataclass
class TableDetails:
    """What ``info`` shows: the current snapshot and every kept one, oldest first."""

    current: liberacion.Snapshot
    snapshots: list[liberacion.Snapshot]
    # Where the table lives: the lake, its format, and for an Iceberg lake its metadata location and catalog.
    storage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(),
            "snapshots": [s.to_dict() for s in self.snapshots],
            "storage": self.storage,
        }


@_ctrl_c_as_keyboard_interrupt
def info(table: str, *, home: PathLike | Home | None = None, lake: PathLike | None = None) -> TableDetails:
    """A table's schema, provenance, kept snapshots and where it is stored."""
    lake = open_lake(home, lake)
    table = checked_table(lake, table)
    return TableDetails(lake.current(table), lake.snapshots(table), lake.storage(table))


@_ctrl_c_as_keyboard_interrupt
def history(
    table: str, *, home: PathLike | Home | None = None, lake: PathLike | None = None
) -> list[liberacion.HistoryEntry]:
    """A table's kept snapshots, oldest first, each compared with the one before it.

    Snapshots ``prune`` deleted are not among them: a ``Note`` names the record that cites them.
    """
    from liberacion.timeline import history as run

    lake = open_lake(home, lake)
    table = checked_table(lake, table)
    entries = run(lake, table)
    _say_pruned(lake, table)
    return entries


def _say_pruned(lake: liberacion.Lake, name: str) -> None:
    """Name the record of the snapshots pruned: a history that starts later than an analysis
    must not read as a table that did not exist then."""
    gone = lake.pruned(name)
    if gone:
        note(
            f"{len(gone)} older snapshot(s) of {name} were pruned, the newest of them"
            f" {gone[-1]['snapshot']}; what cites each (published_at, rows, sha256, source) is in"
            f" {lake.pruned_location(name)}"
        )


@_ctrl_c_as_keyboard_interrupt
def diff(
    table: str,
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    from_snapshot: str | date | None = None,
    to_snapshot: str | date | None = None,
    keys: Sequence[str] = (),
    show: int = 5,
) -> liberacion.TableDiff:
    """Compare two snapshots (default: the previous and the current one) by schema and rows.

    Snapshots are named by id or unique prefix, ``current``, ``previous``, or a date/time (text, a
    ``date`` or a ``datetime``, UTC when naive: the snapshot current then). Without ``keys``, the
    dataset's declared keys are used when it has them.
    """
    from liberacion.compare import diff as run
    from liberacion.compare import keys_from_provenance
    from liberacion.timeline import previous_snapshot, resolve_snapshot

    if _whole(show, "show") < 0:
        raise UsageError(f"{option('show')} must be 0 or more")
    table = _text(table, "table")
    from_snapshot, to_snapshot = _when(from_snapshot, "from_snapshot"), _when(to_snapshot, "to_snapshot")
    lake = open_lake(home, lake)
    table = checked_table(lake, table)
    with lake.reading_snapshots():  # neither snapshot is pruned while they are compared
        newer = "current" if to_snapshot is None else to_snapshot
        new = resolve_snapshot(lake, table, newer, option("to_snapshot", "--to"))
        old = (
            resolve_snapshot(lake, table, from_snapshot, option("from_snapshot", "--from"))
            if from_snapshot is not None
            else previous_snapshot(lake, table, new)
        )
        if old.id == new.id:  # an empty diff would read as "nothing changed"
            msg = f"--from and --to both name snapshot {old.id} of {table}: name two; see: liberacion history {table}"
            raise UsageError(msg)
        keys = _names(keys, "keys") or keys_from_provenance(new, old)
        return run(old, new, keys=keys, show=show, prepare=lake.prepare_connection)


@dataclass
class PruneReport:
    removed: list[tuple[str, liberacion.Snapshot]] = field(default_factory=list)  # (table, snapshot) deleted
    busy: list[str] = field(default_factory=list)  # tables being written, or read by a query: not pruned
    reading: list[str] = field(default_factory=list)  # those of them not pruned because a query reads the lake
    damaged: dict[str, str] = field(default_factory=dict)  # tables whose current snapshot cannot be read


# Seconds ``prune`` waits, over all its tables, for the queries reading the lake to end.
PRUNE_READERS_WAIT = 10.0


@_ctrl_c_as_keyboard_interrupt
def prune(
    tables: Sequence[str] = (),
    *,
    home: PathLike | Home | None = None,
    lake: PathLike | None = None,
    keep: int | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete all but the newest ``keep`` snapshots (``LIBERACION_KEEP`` or 3) of each table.

    ``dry_run=True`` deletes nothing: ``removed`` lists the snapshots a prune would delete.

    Snapshots are not deleted while a query reads the lake (``sql``, ``diff``, a relation from
    ``sql()`` not yet garbage-collected): after waiting up to ``PRUNE_READERS_WAIT`` seconds in all,
    its tables are reported busy. A damaged table is reported and not pruned.
    """
    import time

    from liberacion.errors import DamagedSnapshot, NoTable, QueryReading
    from liberacion.iceberg_lake import orphan_hours, require_lake
    from liberacion.lake import keep_default
    from liberacion.timeline import checked_keep
    from liberacion.timeline import prune as prune_table

    if keep is not None:
        _whole(keep, "keep")
    dry_run = _flag(dry_run, "dry_run")
    keep_default()  # settings said before anything is deleted, as fetch and refresh say them
    orphan_hours()
    lake = open_lake(home, lake)
    require_lake(lake)  # a lake_uri or LIBERACION_LAKE naming no lake (a typo) is said, never "nothing to prune"
    report = PruneReport()
    named = [checked_table(lake, name) for name in _names(tables, "tables")]
    deadline = time.monotonic() + PRUNE_READERS_WAIT
    checked_keep(keep)  # a bad --keep is said before a name that is no table
    for name in named:  # a name that is no table is said before any lock file is made for it
        lake.current(name)
    for name in named or lake.names():
        try:
            wait = max(0.0, deadline - time.monotonic())
            removed = prune_table(lake, name, keep=keep, readers_wait=wait, dry_run=dry_run)
        except Busy as err:  # the others can still be pruned
            report.busy.append(name)
            if isinstance(err, QueryReading):
                report.reading.append(name)
            continue
        except DamagedSnapshot as err:
            if named:  # asked for by name: the error is the answer
                raise
            report.damaged[name] = str(err)
            continue
        except NoTable:
            if named:
                raise
            # Dropped meanwhile, or a shared lake's table whose first publish stopped after the
            # catalog created it: no snapshot to prune (tables does not list it either).
            continue
        report.removed += [(name, snap) for snap in removed]
    return report
