"""Lake tables as Apache Iceberg tables, so Spark, Trino, Snowflake, BigQuery and DuckDB read them
with the same history liberacion keeps.

Each publish is one Iceberg commit (an ``overwrite`` snapshot): the Parquet files liberacion wrote
become the snapshot's data files as they are (no rewrite), the snapshot summary carries the
provenance, column descriptions become column docs. The catalog gives the atomic commit two
machines can race on: a commit that lost the race is retried on the new current state.

The embedded catalog is a SQL catalog on SQLite in the home (nothing has to run);
``LIBERACION_ICEBERG_CATALOG=NAME`` uses a catalog from pyiceberg's own configuration (a REST
catalog such as Polaris, Lakekeeper or Nessie, Glue, Hive, SQL on PostgreSQL).

pyiceberg takes most of a second to import: only writers and Iceberg-specific reads import this
module's functions' dependencies; the cheap ``metadata_locations`` serves the read path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.errors import Busy, ConfigError, LiberacionError, StorageError, Unreachable, home_elsewhere, one_line
from liberacion.naming import redact_url
from liberacion.storage import LakeLocation, storage_error

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

CATALOG_ENV = "LIBERACION_ICEBERG_CATALOG"
CATALOG_NAME = "liberacion"
CATALOG_FILE = "iceberg.db"
PROPERTY_PREFIX = "liberacion."
NAME_MAPPING = "schema.name-mapping.default"
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",  # our commit loop redoes a lost race itself (see commit_files)
    # A cron job commits for months: older metadata files go (readers hold the current location).
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


@dataclass(frozen=True)
class IcebergSnapshot:
    """One Iceberg snapshot of a table: its id, commit time, liberacion's properties, data files."""

    snapshot_id: int
    timestamp_ms: int
    properties: dict[str, str]
    files: list[str] = field(default_factory=list)


def catalog_name(location: LakeLocation) -> str:
    """The embedded catalog's name for a lake: one SQLite file serves every lake a home has used,
    each under its own name, so two lakes' tables never mix."""
    import hashlib

    return f"{CATALOG_NAME}_{hashlib.sha256(location.uri.encode()).hexdigest()[:12]}"


def named_catalog() -> str:
    """The pyiceberg catalog named by ``LIBERACION_ICEBERG_CATALOG`` ("" for the embedded one)."""
    return os.environ.get(CATALOG_ENV, "").strip()


def open_catalog(home_root: Path, location: LakeLocation) -> Catalog:
    """The table catalog of a lake: a named pyiceberg catalog, or the embedded SQLite one.

    A SQL catalog creates its tables when first opened; two processes opening a new one at the
    same moment race to create them, and the loser opens it again."""
    for attempt in range(4):
        try:
            return _open_catalog(home_root, location)
        except Exception as err:
            if not any(text in str(err) for text in ("already exists", "database is locked")):
                raise
            time.sleep(0.05 * (attempt + 1))
    return _open_catalog(home_root, location)


def _open_catalog(home_root: Path, location: LakeLocation) -> Catalog:
    from pyiceberg.catalog import load_catalog

    name = named_catalog()
    properties: dict[str, Any] = {}
    try:
        if name:
            from pyiceberg.utils.config import Config

            # Read now: pyiceberg reads its configuration once, when imported, and a long-lived
            # process (a notebook using the API) may name the catalog after that.
            properties = Config().get_catalog_config(name) or {}
            _check_rest_catalog(str(properties.get("uri") or ""))
            _check_one_store(name, properties, location)
            return load_catalog(name, **{**io_properties(location), **properties})
        from pyiceberg.catalog.sql import SqlCatalog

        home_root.mkdir(parents=True, exist_ok=True)
        properties = {"uri": f"sqlite:///{home_root / CATALOG_FILE}", "warehouse": location.uri}
        return SqlCatalog(catalog_name(location), **properties, **io_properties(location))
    except (ValueError, KeyError) as err:
        where = f"the catalog {name!r} ({CATALOG_ENV})" if name else "the embedded Iceberg catalog"
        raise ConfigError(f"cannot open {where}: {err}") from None
    except Exception as err:  # a catalog that cannot be reached or opened as configured: one line
        failure = catalog_failure(err, properties)
        if failure is None:
            raise
        raise failure from None


# What an open that lost a race to another process says (``open_catalog`` opens again then).
_RACES = ("already exists", "database is locked")
# The ports SQLAlchemy's dialects connect to when a catalog's uri names none.
_SQL_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
PROBE_SECONDS = 3.0


def catalog_failure(err: BaseException, properties: Mapping[str, Any]) -> LiberacionError | None:
    """A catalog that cannot be reached (``Unreachable``, exit 1) or opened as configured
    (``ConfigError``, exit 5), as one line naming it and its uri without credentials; None for any
    other error, which the caller handles as before."""
    import requests
    from pyiceberg.exceptions import NotInstalledError
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(err, LiberacionError) or any(text in str(err) for text in _RACES):
        return None
    uri = str(properties.get("uri") or "")
    where = _catalog_called(uri)
    if isinstance(err, NotInstalledError):  # pyiceberg says what to pip install; its cause, what is missing
        missing = f"{err.__cause__}; " if isinstance(err.__cause__, ImportError) else ""
        return ConfigError(f"cannot open {where}: {missing}{one_line(err, lines=1)}")
    if isinstance(err, ArgumentError):  # a uri SQLAlchemy cannot read
        return ConfigError(f"cannot open {where}: {one_line(err, lines=1)}; {_fix_uri()}")
    if isinstance(err, requests.ConnectionError | requests.Timeout):  # a REST catalog
        return Unreachable(f"cannot reach {where} ({_no_connection(str(err))}): is it running? {_fix_uri()}")
    if isinstance(err, DBAPIError):  # a SQL catalog
        return _database_failure(err, uri, where)
    return None


def _catalog_called(uri: str) -> str:
    """How messages name the catalog in use: by name and uri (its credentials left out)."""
    name = named_catalog()
    shown = f" at {redact_url(uri)}" if uri else ""
    return f"the Iceberg catalog {name!r}{shown}" if name else f"the embedded Iceberg catalog{shown}"


def _fix_uri() -> str:
    variable = f"PYICEBERG_CATALOG__{named_catalog().upper()}__URI"
    return f"check its uri ({variable} or ~/.pyiceberg.yaml)"


def _database_failure(err: Any, uri: str, where: str) -> LiberacionError:
    """A SQL catalog's database that would not open: a file that cannot be opened is a setting to
    fix (or, for the embedded catalog, a home to check); a server is probed, so that one that does
    not answer is told from one that refused us."""
    from sqlalchemy.engine import make_url

    cause = one_line(err.orig if err.orig is not None else err, lines=1)
    try:
        url = make_url(uri)
    except Exception:  # not a URL: only the driver's words can be given
        return ConfigError(f"cannot open {where}: {cause}")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not named_catalog():
            return StorageError(f"cannot use {where}: {cause}; check it, or {home_elsewhere()}")
        return ConfigError(f"cannot open {where}: {cause}; its directory must exist and be writable: {_fix_uri()}")
    port = url.port or _SQL_PORTS.get(backend)
    from liberacion.storage import no_connection

    refused = no_connection(url.host, port, seconds=PROBE_SECONDS) if url.host and port else None
    if refused is not None:
        return Unreachable(f"cannot reach {where} ({refused}): is the database running? {_fix_uri()}")
    return ConfigError(f"cannot open {where}: {cause}")


def _check_rest_catalog(uri: str) -> None:
    """Fail in seconds when a REST catalog's server does not answer: pyiceberg's client sets no
    timeout, so a server that takes the connection and stays silent held every command for ever,
    and one behind a firewall that drops packets for two minutes."""
    from urllib.parse import urlsplit

    from liberacion.storage import no_answer

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # a SQL or Glue catalog, or no uri: opening it says what is wrong
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: pyiceberg's own error names it
        return
    why = no_answer(parts.hostname, port, tls=parts.scheme == "https", seconds=PROBE_SECONDS)
    if why is not None:
        raise Unreachable(f"cannot reach {_catalog_called(uri)} ({why}): is it running? {_fix_uri()}")


def _no_connection(text: str) -> str:
    """The reason buried in a requests connection error (``[Errno 111] Connection refused``)."""
    import re

    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    return "timed out" if "timed out" in text.lower() else "no connection"


def _check_one_store(name: str, properties: dict[str, Any], location: LakeLocation) -> None:
    """A catalog whose own ``s3.endpoint`` is not the store the AWS settings name would put an S3
    lake's metadata in one store and its data files (written through the AWS settings) in another:
    a table every reader finds damaged. Refused before anything is written."""
    configured = str(properties.get("s3.endpoint") or "").rstrip("/")
    if location.scheme != "s3" or not configured:
        return
    named = (io_properties(location).get("s3.endpoint") or "").rstrip("/")
    if named != configured:
        said = f"AWS_ENDPOINT_URL names {named}" if named else "AWS_ENDPOINT_URL is not set (AWS itself)"
        raise ConfigError(
            f"the catalog {name!r} reads and writes the store at {configured} (its s3.endpoint), but {said},"
            f" where the lake's data files go: set AWS_ENDPOINT_URL={configured} too"
        )


def io_properties(location: LakeLocation) -> dict[str, str]:
    """pyiceberg FileIO settings from the standard AWS environment (the credential chain does the rest)."""
    if location.scheme != "s3":
        return {}
    props = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        props["s3.region"] = region
    return props


def metadata_locations(home_root: Path, location: LakeLocation) -> dict[str, str] | None:
    """Every table's current metadata file in the embedded catalog, read with the standard library
    (no pyiceberg import): a table whose location is unchanged needs no Iceberg read. None when a
    named catalog is in use (only pyiceberg can ask it) or there is no catalog yet."""
    if named_catalog():
        return None
    path = home_root / CATALOG_FILE
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            rows = con.execute(
                "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables WHERE catalog_name = ?",
                (catalog_name(location),),
            ).fetchall()
    except sqlite3.Error:
        return None
    return {f"{ns}.{name}": location for ns, name, location in rows if location}


def lake_namespaces(home_root: Path, location: LakeLocation) -> list[str]:
    """The namespaces the embedded catalog holds for a lake: a lake written through this home keeps
    them when its tables go, so it is a lake without tables, not a missing one. [] with a named
    catalog (a team's catalog serves many lakes: its namespaces say nothing of this one)."""
    path = home_root / CATALOG_FILE
    if named_catalog() or not path.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            rows = con.execute(
                "SELECT DISTINCT namespace FROM iceberg_namespace_properties WHERE catalog_name = ?",
                (catalog_name(location),),
            ).fetchall()
    except sqlite3.Error:
        return []
    return [namespace for (namespace,) in rows]


def load_table(catalog: Catalog, name: str) -> Table | None:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return None


def unreadable_metadata(err: BaseException) -> bool:
    """Whether loading a table failed on its own metadata file (gone, truncated, half-written),
    not on the store or the catalog: that table is damaged, the others are not."""
    from pyiceberg.exceptions import ValidationError

    return isinstance(err, FileNotFoundError | ValueError | EOFError | ValidationError)  # JSON errors: ValueError


def commit_files(
    catalog: Catalog,
    location: LakeLocation,
    name: str,
    table_uri: str,
    files: list[str],
    properties: Mapping[str, str],
    docs: Mapping[str, str] | None = None,
    *,
    wait: float = 60.0,
    local: Mapping[str, Path] | None = None,
) -> IcebergSnapshot:
    """Make ``files`` (Parquet already in the lake) the table's data as one new snapshot.

    The table is created on first use and its schema follows the files (columns added, dropped or
    retyped). A commit that another writer beat is redone on the new state until ``wait`` seconds
    have passed; then ``Busy``. ``local`` maps files to identical copies on this machine (the
    staged ones just uploaded): their footers are read there rather than from the store.
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    local = local or {}
    schema = _file_schema(location, files[0], docs or {}, local.get(files[0]))
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            with uncommitted_metadata_removed(catalog, name):
                table = _ensure_table(catalog, location, name, table_uri, schema)
                return _overwrite(table, files, {PROPERTY_PREFIX + k: v for k, v in properties.items()}, local)
        except (CommitFailedException, ValidationException):
            # Another writer committed first. Our overwrite replaces whatever is current, so it is
            # redone from their snapshot (pyiceberg's own retry would refuse: it sees their files).
            if time.monotonic() >= deadline:
                raise Busy(f"table {name}: another writer kept committing for {wait:g} s; try again later") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        except Exception as err:
            failure = catalog_failure(err, catalog.properties)  # a catalog gone away since it opened
            if failure is not None:
                raise failure from None
            if isinstance(err, OSError):
                raise storage_error(err, location, "writing") from None
            if "database is locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)  # the embedded catalog's SQLite file is busy with another writer


# The metadata files written by the commits of this thread's ``uncommitted_metadata_removed`` block.
_WRITTEN = threading.local()


@contextlib.contextmanager
def uncommitted_metadata_removed(catalog: Catalog, name: str) -> Iterator[None]:
    """Delete the metadata files the block's commit of ``name`` wrote when the block fails.

    A metastore catalog (SQL, Hive, Glue) writes the new metadata file, then switches the table to
    it. A commit stopped between the two (Ctrl-C, SIGTERM, a catalog that fails or lost a race)
    left that file in the table's folder, newer than the one the catalog names: ``prune`` takes
    such a file for another catalog's commit and leaves the table alone. (A REST catalog writes its
    own files; a kill -9 in that moment still leaves one, which the table's next publish outdates.)
    """
    if not hasattr(catalog, "_write_metadata"):
        yield
        return
    if "_write_metadata" not in vars(catalog):  # once per catalog object, for every thread using it
        write = catalog._write_metadata

        def recording(metadata: Any, io: Any, metadata_path: str) -> None:
            written = getattr(_WRITTEN, "files", None)
            if written is not None:  # first: the file may be whole before the write fails
                written.append((io, metadata_path))
            write(metadata=metadata, io=io, metadata_path=metadata_path)

        catalog._write_metadata = recording  # type: ignore[attr-defined]
    outer = getattr(_WRITTEN, "files", None)
    _WRITTEN.files = written = []
    try:
        yield
    except BaseException:
        _remove_unnamed(catalog, name, written)
        raise
    finally:
        _WRITTEN.files = outer


def _remove_unnamed(catalog: Catalog, name: str, written: list[tuple[Any, str]]) -> None:
    """Delete each file of ``written`` in the table's folder that the catalog neither names nor
    lists among the table's previous metadata (a commit that went through before the failure keeps
    its file). Best effort: a catalog that cannot be asked now leaves them, as a kill would."""
    if not written:
        return
    with contextlib.suppress(Exception):
        table = load_table(catalog, name)
        named, folder = set(), ""
        if table is not None:
            named = {table.metadata_location} | {entry.metadata_file for entry in table.metadata.metadata_log}
            folder = table.location().rstrip("/") + "/"
        for io, path in written:
            if path not in named and path.startswith(folder):
                with contextlib.suppress(Exception):
                    io.delete(path)


def _file_schema(location: LakeLocation, file_uri: str, docs: Mapping[str, str], copy: Path | None) -> pa.Schema:
    """The Arrow schema of a data file (or of its local ``copy``), with liberacion's column
    descriptions as Iceberg docs."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import PYARROW_FIELD_DOC_KEY

    path = file_uri if location.is_local else file_uri.split("://", 1)[1]
    try:
        schema = pq.read_schema(copy) if copy is not None else pq.read_schema(path, filesystem=location.filesystem())
    except OSError as err:
        raise storage_error(err, location, "reading") from None
    fields = []
    for f in schema:
        doc = docs.get(f.name)
        f = _nullable(f)
        fields.append(f.with_metadata({PYARROW_FIELD_DOC_KEY: doc.encode()}) if doc else f.remove_metadata())
    return pa.schema(fields)


def _nullable(f: pa.Field) -> pa.Field:
    """``f``, and every field nested in it, nullable. DuckDB writes a column it knows holds no
    NULL (one read from a Parquet or SAS file without a missing value) as required: a table created
    so refused the next release's file, where a value is missing (pyiceberg: ``Mismatch in fields``)."""
    import pyarrow as pa

    t = f.type
    if pa.types.is_struct(t):
        t = pa.struct([_nullable(t.field(i)) for i in range(t.num_fields)])
    elif pa.types.is_map(t):
        t = pa.map_(t.key_field, _nullable(t.item_field))
    elif pa.types.is_large_list(t):
        t = pa.large_list(_nullable(t.value_field))
    elif pa.types.is_list(t):
        t = pa.list_(_nullable(t.value_field))
    return pa.field(f.name, t, nullable=True, metadata=f.metadata)


def _ensure_table(catalog: Catalog, location: LakeLocation, name: str, table_uri: str, schema: pa.Schema) -> Table:
    """The table, created with ``schema`` or evolved to it, with a name mapping (our Parquet files
    carry no field ids: columns are matched by name)."""
    namespace = name.split(".", 1)[0]
    replacing = False
    try:
        table = load_table(catalog, name)
    except Exception as err:
        if not unreadable_metadata(err):
            raise
        table, replacing = _forget_damaged(catalog, location, name, table_uri), True
    if table is not None and table.location().rstrip("/") != table_uri.rstrip("/"):
        # One catalog shared by several lakes: the name is taken by a table of another lake.
        raise LiberacionError(
            f"{name} is, in this Iceberg catalog, the table at {table.location()}, not one of the lake "
            f"{location.uri}: fetch it into another table name, or use a catalog of its own for this lake"
        )
    if table is None:
        if not replacing:  # a damaged table's folder holds its own older metadata files
            _refuse_foreign_table(catalog, location, name, table_uri)
        # Another writer may create the namespace or the table at the same moment; catalogs report
        # that differently (an "already exists" error, or the database's unique-key error).
        try:
            catalog.create_namespace_if_not_exists(namespace)
        except Exception:
            if (namespace,) not in catalog.list_namespaces():
                raise
        try:
            table = catalog.create_table(name, schema=schema, location=table_uri, properties=TABLE_PROPERTIES)
        except Exception:
            table = load_table(catalog, name)
            if table is None:
                raise
    _evolve(table, schema)
    return catalog.load_table(name)


def _forget_damaged(catalog: Catalog, location: LakeLocation, name: str, table_uri: str) -> None:
    """Take a table whose current metadata cannot be read out of the catalog, so that this publish
    creates it afresh (its history went with that file; its snapshot folders stay until pruned).
    Only a table whose folder is in this lake: a catalog several lakes share may hold another's."""
    from pyarrow import fs

    folder = table_uri.split("://", 1)[1] if "://" in table_uri else table_uri
    try:
        ours = location.filesystem().get_file_info(folder).type != fs.FileType.NotFound
    except OSError as err:
        raise storage_error(err, location, "listing") from None
    if not ours:
        raise LiberacionError(
            f"the Iceberg catalog's table {name} cannot be read and is not in the lake {location.uri}: "
            "repair it in its own lake, or fetch into another table name"
        )
    from pyiceberg.exceptions import NoSuchTableError

    with contextlib.suppress(NoSuchTableError):  # another writer took it out first
        catalog.drop_table(name)


def _refuse_foreign_table(catalog: Catalog, location: LakeLocation, name: str, table_uri: str) -> None:
    """A table this catalog does not know, whose folder already holds Iceberg metadata, belongs to
    another catalog (another home without a shared catalog): two catalogs writing one folder would
    each take the other's snapshots for leftovers and delete them."""
    from pyarrow import fs

    folder = table_uri.split("://", 1)[1] if "://" in table_uri else table_uri
    try:
        found = location.filesystem().get_file_info(fs.FileSelector(f"{folder}/metadata", allow_not_found=True))
    except OSError as err:
        raise storage_error(err, location, "listing") from None
    if not any(info.base_name.endswith(".metadata.json") for info in found):
        return
    # Another writer through this same catalog may be creating the table right now (its metadata
    # file is written before the catalog names it): then it is ours, once the catalog says so.
    for _ in range(10):
        if load_table(catalog, name) is not None:
            return
        time.sleep(0.2)
    raise LiberacionError(
        f"{table_uri} already holds the table {name}, written through another Iceberg catalog: every "
        "home that writes this lake must share one catalog (LIBERACION_ICEBERG_CATALOG; see the README's "
        "shared lake); or fetch into another table name"
    )


def _evolve(table: Table, schema: pa.Schema) -> None:
    """Make the table's current schema exactly the files' schema, and its name mapping follow it."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema

    current = table.schema()
    wanted = {f.name: f for f in schema}
    have = {f.name: f for f in current.fields}
    converted = pyarrow_to_schema(schema, name_mapping=_name_mapping_for(schema), format_version=table.format_version)
    new_types = {f.name: f for f in converted.fields}
    # Compared without field ids: the converted schema's are numbered afresh, the table's are its own.
    changed = [n for n in wanted if n in have and _shape(have[n].field_type) != _shape(new_types[n].field_type)]
    dropped = [n for n in have if n not in wanted]
    added = [n for n in wanted if n not in have]
    redocumented = [n for n in wanted if n in have and have[n].doc != new_types[n].doc]
    if redocumented:
        with table.update_schema() as update:
            for n in redocumented:
                update.update_column(n, doc=new_types[n].doc)
    later: list[tuple[tuple[str, ...], Any]] = []  # fields added once the deletions are committed
    required = _required_paths(current.as_struct())  # a table an earlier version created
    if changed or dropped or required:
        # A retyped column keeps its field id, only its type changes: our files carry no field ids,
        # and the name mapping gives a name one id, so a new id would leave every older snapshot's
        # schema asking for an id no file has (its column read as NULL). Each snapshot keeps the
        # schema it was written with, so it still reads its own files with their own type. A nested
        # column (a JSON object, a list) changes field by field, so its unchanged fields keep theirs.
        with table.update_schema(allow_incompatible_changes=True) as update:
            for n in dropped:
                update.delete_column(n)
            for n in changed:
                _retype(update, (n,), have[n].field_type, new_types[n].field_type, later)
            for path in required:
                if path[0] not in dropped and path[0] not in changed:
                    update.make_column_optional(path)
    if added or later:
        with table.update_schema() as update:
            for path, field_type in later:
                update.add_column(path, field_type)
            for n in [f.name for f in schema if f.name in added]:
                f = new_types[n]
                update.add_column(n, f.field_type, doc=f.doc)
    # Only what the table lacks: a value set by a team (or another version of liberacion) stays.
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if k not in table.properties}
    if changed or added or dropped:
        table = table.refresh()
    mapping = _mapping_of_every_schema(table)
    if mapping != table.properties.get(NAME_MAPPING) or missing:
        with table.transaction() as tx:
            tx.set_properties(**{**missing, NAME_MAPPING: mapping})


def _mapping_of_every_schema(table: Table) -> str:
    """The name mapping (JSON) of the current schema, with the names only older schemas have: a
    reader of an older snapshot (pyiceberg's ``scan(snapshot_id=...)``) maps that snapshot's files,
    which carry no field ids, through this one mapping, and refuses a file whose column (a dropped
    one, a JSON object's field gone since) it does not name."""
    from pyiceberg.table.name_mapping import NameMapping, create_mapping_from_schema

    current = table.schema()
    older = sorted(
        (s for s in table.schemas().values() if s.schema_id != current.schema_id), key=lambda s: -s.schema_id
    )
    fields: list[Any] = []
    for schema in [current, *older]:  # the newest schema's id for a name several of them hold
        fields = _merge_mapped(fields, list(create_mapping_from_schema(schema).root))
    return NameMapping(fields).model_dump_json()


def _merge_mapped(kept: list[Any], older: list[Any]) -> list[Any]:
    """``kept``'s fields, each with the nested names its namesake in ``older`` adds, then the
    fields of ``older`` that ``kept`` does not name."""
    from pyiceberg.table.name_mapping import MappedField

    merged = []
    for f in kept:
        twin = next((o for o in older if set(o.names) & set(f.names)), None)
        if twin is not None:
            f = MappedField(field_id=f.field_id, names=f.names, fields=_merge_mapped(list(f.fields), list(twin.fields)))
        merged.append(f)
    names = {n for f in kept for n in f.names}
    return merged + [o for o in older if not names & set(o.names)]


def _retype(update: Any, path: tuple[str, ...], old: Any, new: Any, later: list[tuple[tuple[str, ...], Any]]) -> None:
    """Change the field at ``path`` from type ``old`` to ``new`` within ``update``: a struct's
    fields one by one (new ones into ``later``), a list's element, a map's value, a primitive in
    place; a field whose kind changes (an object become a string) is deleted and added again."""
    from pyiceberg.types import ListType, MapType, PrimitiveType, StructType

    if isinstance(old, StructType) and isinstance(new, StructType):
        before = {f.name: f for f in old.fields}
        after = {f.name: f for f in new.fields}
        for name, f in after.items():
            if name not in before:
                later.append(((*path, name), f.field_type))
            elif _shape(before[name].field_type) != _shape(f.field_type):
                _retype(update, (*path, name), before[name].field_type, f.field_type, later)
        for name in before:
            if name not in after:
                update.delete_column((*path, name))
    elif isinstance(old, ListType) and isinstance(new, ListType):
        _retype(update, (*path, "element"), old.element_type, new.element_type, later)
    elif isinstance(old, MapType) and isinstance(new, MapType) and _shape(old.key_type) == _shape(new.key_type):
        _retype(update, (*path, "value"), old.value_type, new.value_type, later)
    elif isinstance(old, PrimitiveType) and isinstance(new, PrimitiveType):
        update.update_column(path, field_type=new)
    else:
        update.delete_column(path)
        later.append((path, new))


def _required_paths(struct: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of the required fields in ``struct`` (an Iceberg StructType), nested ones too."""
    from pyiceberg.types import ListType, MapType, StructType

    found = []
    for f in struct.fields:
        here = (*path, f.name)
        if f.required:
            found.append(here)
        t = f.field_type
        if isinstance(t, StructType):
            found += _required_paths(t, here)
        elif isinstance(t, ListType) and isinstance(t.element_type, StructType):
            found += _required_paths(t.element_type, (*here, "element"))
        elif isinstance(t, MapType) and isinstance(t.value_type, StructType):
            found += _required_paths(t.value_type, (*here, "value"))
    return found


def _shape(type_: Any) -> Any:
    """An Iceberg type without its field ids, to compare two schemas numbered apart."""
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(type_, StructType):
        return ("struct", tuple((f.name, _shape(f.field_type)) for f in type_.fields))
    if isinstance(type_, ListType):
        return ("list", _shape(type_.element_type))
    if isinstance(type_, MapType):
        return ("map", _shape(type_.key_type), _shape(type_.value_type))
    return type_


def _name_mapping_for(schema: pa.Schema) -> Any:
    """A name mapping of every field, nested ones too (a struct's fields, a list's ``element``, a
    map's ``key`` and ``value``): pyiceberg refuses a file schema with a field the mapping lacks."""
    import itertools

    import pyarrow as pa
    from pyiceberg.table.name_mapping import MappedField, NameMapping

    ids = itertools.count(1)

    def mapped(name: str, type_: pa.DataType) -> MappedField:
        field_id = next(ids)
        if pa.types.is_struct(type_):
            children = [mapped(type_.field(i).name, type_.field(i).type) for i in range(type_.num_fields)]
        elif pa.types.is_map(type_):
            children = [mapped("key", type_.key_type), mapped("value", type_.item_type)]
        elif pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
            children = [mapped("element", type_.value_type)]
        else:
            children = []
        return MappedField(field_id=field_id, names=[name], fields=children)

    return NameMapping([mapped(f.name, f.type) for f in schema])


def _overwrite(
    table: Table, files: list[str], properties: dict[str, str], local: Mapping[str, Path] | None = None
) -> IcebergSnapshot:
    """One ``overwrite`` snapshot: the current data files out, ``files`` in (a delete then an append
    would make two snapshots, the first one empty, and time travel would see it)."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    io = _reading_local_copies(table.io, local) if local else table.io
    with table.transaction() as tx:
        current = tx.table_metadata.current_snapshot()
        with tx.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
            if current is not None:
                for task in table.scan(snapshot_id=current.snapshot_id).plan_files():
                    overwrite.delete_data_file(task.file)
            for path in files:
                overwrite.append_data_file(parquet_file_to_data_file(io, tx.table_metadata, path))
    table = table.refresh()
    snap = table.current_snapshot()
    assert snap is not None
    return IcebergSnapshot(snap.snapshot_id, snap.timestamp_ms, _liberacion_properties(snap), list(files))


def _reading_local_copies(io: Any, local: Mapping[str, Path]) -> Any:
    """A FileIO that reads the files it has local copies of from this machine's disk: pyiceberg
    reads every new data file's footer for its statistics, a round trip each to the store."""
    from pyiceberg.io import FileIO
    from pyiceberg.io.pyarrow import PyArrowFileIO

    class LocalCopies(FileIO):
        def new_input(self, location: str) -> Any:
            copy = local.get(location)
            return PyArrowFileIO().new_input(str(copy)) if copy is not None else io.new_input(location)

        def new_output(self, location: str) -> Any:
            return io.new_output(location)

        def delete(self, location: Any) -> None:
            io.delete(location)

    return LocalCopies(properties=io.properties)


def _liberacion_properties(snap: Any) -> dict[str, str]:
    extra = snap.summary.additional_properties if snap.summary is not None else {}
    return {k[len(PROPERTY_PREFIX) :]: v for k, v in extra.items() if k.startswith(PROPERTY_PREFIX)}


def snapshots(table: Table) -> list[IcebergSnapshot]:
    """Every snapshot of the table that liberacion published, oldest first, with its data files."""
    found = []
    for snap in table.snapshots():
        props = _liberacion_properties(snap)
        if not props:
            continue  # a maintenance commit by another tool: not a liberacion snapshot
        files = [task.file.file_path for task in table.scan(snapshot_id=snap.snapshot_id).plan_files()]
        found.append(IcebergSnapshot(snap.snapshot_id, snap.timestamp_ms, props, files))
    return sorted(found, key=lambda s: (s.timestamp_ms, s.snapshot_id))


def expire(table: Table, keep: Iterable[int]) -> list[str]:
    """Expire every snapshot but ``keep`` (and the current one); returns the data files no kept
    snapshot references any more, for the caller to delete."""
    kept = set(keep)
    current = table.current_snapshot()
    if current is not None:
        kept.add(current.snapshot_id)
    referenced = {task.file.file_path for sid in kept for task in table.scan(snapshot_id=sid).plan_files()}
    doomed_ids = [s.snapshot_id for s in table.snapshots() if s.snapshot_id not in kept]
    if not doomed_ids:
        return []
    orphans = {
        task.file.file_path
        for sid in doomed_ids
        for task in table.scan(snapshot_id=sid).plan_files()
        if task.file.file_path not in referenced
    }
    try:
        with uncommitted_metadata_removed(table.catalog, ".".join(table.name())):
            table.maintenance.expire_snapshots().by_ids(doomed_ids).commit()
    except Exception as err:  # an expiry that lost a race is redone by the next prune
        raise LiberacionError(f"could not expire snapshots of {table.name()}: {err}") from None
    return sorted(orphans)
