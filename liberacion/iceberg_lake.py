"""A lake named by ``--lake`` / ``LIBERACION_LAKE``: every table an Apache Iceberg table, on an object
store (``s3://bucket/prefix``, ``gs://``, ``abfs://``) or a directory, that a team shares.

The files keep the layout of the home's lake, so nothing is rewritten and any snapshot is a folder::

    <lake>/<catalog>/<table>/
        snapshots/<id>/data-0000.parquet ... rejects.parquet  snapshot.json  _writer
        metadata/                      Iceberg's metadata (written by the catalog)
        pruned/<time>-<token>.jsonl    what cites each snapshot pruned (``pruned.jsonl`` in the home's lake)

Where the home's lake switches a ``current`` file, this lake makes one Iceberg commit: the
snapshot's Parquet files become the Iceberg snapshot's data files and its summary carries the whole
snapshot record (provenance, schema, rows). The catalog (embedded SQLite in the home, or a named
pyiceberg catalog a team shares) is the commit point: a kill before it leaves the table at its
previous snapshot, and the folder it left is removed by the next publish or ``prune``.

Conversion still happens on this machine: files are staged in the home's work area and uploaded
with pyarrow's multi-threaded multipart writer before the commit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion import __version__
from liberacion.errors import ConfigError, DamagedSnapshot, LiberacionError, NoLake, NoTable, note, one_line, option
from liberacion.home import Home, host_tag, process_alive
from liberacion.lake import (
    DEFAULT_KEEP,
    PRUNED_FILE,
    Lake,
    Staging,
    TableInfo,
    count_rows,
    damaged_table,
    describe_files,
    fetch_again,
    keep_default,
    pruned_record,
    pruned_records,
)
from liberacion.naming import IDENTIFIER, parse_table_name
from liberacion.snapshots import CURRENT_FILE, SNAPSHOT_FILE, Provenance, Snapshot
from liberacion.storage import (
    LAKE_ENV,
    LakeLocation,
    abort_s3_uploads,
    check_bucket,
    claim_s3_folder,
    parse_lake,
    put_s3_files,
    storage_error,
)
from liberacion.timestamps import ID_FORMAT, TIME_FORMAT, utc_now

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

# Per process, by (home, lake): many lake objects of one run (a refresh makes one per table) share
# the catalog's table list, read again when its file changes, and look for a lake to register once.
_LOCATIONS: dict[tuple[str, str], tuple[tuple[int, ...] | None, dict[str, str]]] = {}
_ADOPTED_LAKES: set[tuple[str, str]] = set()
WRITER_FILE = "_writer"  # in a snapshot folder being uploaded: which process writes it
CLAIM_TRIES = 20  # new snapshot ids tried when the folder of each is held by another writer
ORPHAN_AGE_ENV = "LIBERACION_ORPHAN_HOURS"
# A folder no snapshot names, written by another machine (whose process we cannot check), is only
# removed once it is this old: it may be an upload whose commit is still to come.
DEFAULT_ORPHAN_HOURS = 24.0
# Table folders looked into when telling a lake from a place that holds none: a bound on the
# listings a read of a location that is not a lake (a home directory, a busy bucket) costs.
FOLDERS_LOOKED_AT = 20
# In a table's folder: the citations of its pruned snapshots, one object per prune (JSON lines, as
# the home lake's pruned.jsonl). Objects are written once and never rewritten: two homes share no
# lock (a home's writer lock is its own), so a file read, extended and written back by one could
# lose what the other wrote meanwhile.
PRUNED_FOLDER = "pruned"
# Record objects a prune leaves as they are; past this many they are merged into one (each is a
# request for every history or --as-of that reads them).
PRUNED_OBJECTS_MERGED = 8


def open_lake(home: Home) -> Lake:
    """The lake a command works on: ``home.lake_uri`` (``--lake``), else ``LIBERACION_LAKE``, else
    the home's own lake. A lake named either way is an Iceberg lake; the home's own is not."""
    given = (home.lake_uri or os.environ.get(LAKE_ENV) or "").strip()
    if not given:
        _no_shared_catalog("no lake is named: set LIBERACION_LAKE (or --lake) to the lake whose tables it holds")
        return Lake(home)
    location = parse_lake(given)
    if location.is_local and Path(location.root) == home.lake:
        _no_shared_catalog(f"the lake named, {location.root}, is the home's own, which has no Iceberg catalog")
        return Lake(home)
    return IcebergLake(home, location)


def _no_shared_catalog(why: str) -> None:
    """``LIBERACION_ICEBERG_CATALOG`` set where the home's own lake is used: the team's catalog
    would go unused without a word (a crontab missing ``LIBERACION_LAKE`` refreshed the home's
    tables, not the team's, exit 0)."""
    from liberacion.iceberg import CATALOG_ENV, named_catalog

    name = named_catalog()
    if name:
        raise ConfigError(f"{CATALOG_ENV}={name!r} names a shared Iceberg catalog, but {why}; or unset {CATALOG_ENV}")


def require_lake(lake: Lake) -> None:
    """``NoLake`` when ``lake`` is a location ``--lake`` names that holds no lake. For the commands
    over every table (refresh, prune), whose empty answer at a typo would read as "nothing to do";
    the home's own lake always is one."""
    if isinstance(lake, IcebergLake):
        lake._require_lake()


def check_store(lake: Lake) -> None:
    """A shared lake's store checked as a writer checks it (``IcebergLake.check_store``), for a run
    that writes nothing (``refresh --check``) yet must fail as ``refresh`` does; the home's own lake
    has no store."""
    if isinstance(lake, IcebergLake):
        lake.check_store()


def _metadata_version(file_name: str) -> int | None:
    """The version an Iceberg metadata file's name carries: ``00002-<uuid>.metadata.json`` (the
    catalogs pyiceberg writes), ``v3.metadata.json`` (a Hadoop table); None for any other file."""
    match = re.fullmatch(r"(?:v)?(\d+)(?:-[^/]*)?\.metadata\.json", file_name)
    return int(match.group(1)) if match else None


class IcebergLake(Lake):
    """The lake at ``location``, with an Iceberg catalog deciding what is current."""

    def __init__(self, home: Home, location: LakeLocation) -> None:
        super().__init__(home)
        self.location = location
        self._catalog: Catalog | None = None
        # The metadata files read, by location: a file is never rewritten (a commit writes a new one).
        self._documents: dict[str, dict[str, Any]] = {}
        self._named: dict[str, str] | None = None  # a named catalog's tables, asked once per change
        self._damage: dict[str, str] = {}  # tables a named catalog could not load → what is wrong
        self._found = False  # the location was seen to hold a lake (reads need not look again)

    # -- the catalog -------------------------------------------------------------------------

    def _no_table_message(self, name: str) -> str:
        return self._rejects_view(name) or f"no table {name} in the lake {self.location.uri}; see: liberacion tables"

    def _forget(self) -> None:
        """After our own commit or drop: the catalog's tables are asked again."""
        self._named = None
        self._damage = {}
        _LOCATIONS.pop((str(self.home.root), self.location.uri), None)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from liberacion.iceberg import open_catalog

            if not self.location.is_local:
                self.location.filesystem()  # an unreachable store fails here, in seconds, with one line
            self._catalog = open_catalog(self.home.root, self.location)
        return self._catalog

    def table_uri(self, name: str) -> str:
        catalog, table = parse_table_name(name)
        return self.location.uri_of(catalog, table)

    def _locations(self) -> dict[str, str]:
        """Every table of this lake → its current metadata file. The embedded catalog is read
        with the standard library; a named one is asked through pyiceberg (tables of other lakes
        or tools in it are left out)."""
        from liberacion.iceberg import CATALOG_FILE, metadata_locations

        self._adopt_local()
        if not _embedded():
            return self._named_locations()
        # One query per change of the catalog's file: a refresh asks for every table's location
        # again for each of hundreds of tables.
        key = (str(self.home.root), self.location.uri)
        stamp = _file_stamp(self.home.root / CATALOG_FILE)
        cached = _LOCATIONS.get(key)
        if stamp is None or cached is None or cached[0] != stamp:
            fast = metadata_locations(self.home.root, self.location) or {}
            cached = (stamp, {name: where for name, where in fast.items() if _valid(name)})
            _LOCATIONS[key] = cached
        return dict(cached[1])

    def _named_locations(self) -> dict[str, str]:
        if self._named is None:
            self._named = self._ask_named_catalog()
        return self._named

    def _ask_named_catalog(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            for namespace in self.catalog.list_namespaces():
                for identifier in self.catalog.list_tables(namespace):
                    name = ".".join(identifier)
                    if not _valid(name):
                        continue
                    try:
                        table = self.catalog.load_table(identifier)
                    except Exception as err:
                        if not self._unloadable(name, err):
                            raise
                        found[name] = ""  # listed, and reported as damaged by whatever reads it
                        continue
                    if table.location().rstrip("/") == self.table_uri(name):
                        found[name] = table.metadata_location
        except Exception as err:
            from liberacion.iceberg import catalog_failure

            # A REST catalog's dropped connection is an OSError too: the catalog is named, not the store.
            failure = catalog_failure(err, getattr(self._catalog, "properties", {}))
            if failure is not None:
                raise failure from None
            if isinstance(err, OSError):
                raise storage_error(err, self.location, "listing the tables of") from None
            raise
        return found

    def _unloadable(self, name: str, err: Exception) -> bool:
        """Whether ``err``, loading the table ``name`` of this lake, is its metadata file missing or
        broken (then it is noted in ``_damage``); a store or catalog failure stays lake-wide."""
        from pyarrow import fs

        from liberacion.iceberg import unreadable_metadata

        if not unreadable_metadata(err):
            return False
        folder = self.location.path_of(*parse_table_name(name))
        try:  # the catalog may serve several lakes: only a table with a folder here is ours
            if self.location.filesystem().get_file_info(folder).type == fs.FileType.NotFound:
                return False
        except OSError as failure:
            raise storage_error(failure, self.location, "listing the tables of") from None
        self._damage[name] = f"its Iceberg metadata cannot be read ({one_line(err, lines=1)})"
        return True

    def _table(self, name: str) -> Table:
        """The table through pyiceberg, for what changes it (expiry); reads use ``_metadata``."""
        from liberacion.iceberg import load_table

        catalog, table = parse_table_name(name)
        try:
            loaded = load_table(self.catalog, f"{catalog}.{table}")
        except OSError as err:
            raise storage_error(err, self.location, "reading") from None
        if loaded is None:
            raise NoTable(self._no_table_message(name))
        return loaded

    def storage(self, name: str) -> dict[str, Any]:
        """Where a table lives, for ``info``: what Spark, Trino or pyiceberg need to read it."""
        from liberacion.iceberg import CATALOG_FILE, catalog_name, named_catalog

        where, metadata = self._metadata(name)
        named = named_catalog()
        return {
            "lake": self.location.uri,
            "format": "iceberg",
            "table_location": metadata.get("location"),
            "metadata_location": where,
            "catalog": named or catalog_name(self.location),
            "catalog_uri": None if named else f"sqlite:///{self.home.root / CATALOG_FILE}",
            "identifier": name,
        }

    # -- a lake, or no lake at all ---------------------------------------------------------------

    def _require_lake(self) -> None:
        """``NoLake`` unless the location holds a lake. Reads call it when the catalog lists no
        table of this lake: a typo of a path or a bucket must be said, not listed as an empty lake.
        (Writers never call it: the first fetch into a new location creates the lake.)"""
        if self._found or self._locations():
            return
        if not self._holds_lake():
            uri = self.location.uri
            raise NoLake(
                f"no lake at {uri} (check {option('lake')} or {LAKE_ENV}); "
                f"the first 'liberacion --lake {shlex.quote(uri)} fetch REF' creates one"
            )
        self._found = True

    def _holds_lake(self) -> bool:
        """Whether a location whose tables the catalog does not list holds a lake all the same: one
        this home's catalog wrote (its namespaces outlive its tables), or one with table folders."""
        from liberacion.iceberg import CATALOG_ENV, lake_namespaces

        if self.location.is_local and not Path(self.location.root).is_dir():
            return False
        check_bucket(self.location)  # a missing bucket or an unreachable store: one line
        if lake_namespaces(self.home.root, self.location):
            return True
        if not self._holds_table_folders():
            return False
        note(
            f"the lake {self.location.uri} holds tables, but the Iceberg catalog in use lists none of them: "
            f"they were written through another catalog; every home using the lake must share one "
            f"({CATALOG_ENV}, see the README's shared lake)"
        )
        return True

    def _holds_table_folders(self) -> bool:
        """Whether ``<lake>/<catalog>/<table>/`` holds Iceberg metadata, snapshots or a ``current``
        file, looking into at most ``FOLDERS_LOOKED_AT`` folders."""
        from pyarrow import fs

        filesystem = self.location.filesystem()
        looked = 0
        try:
            for catalog in _subfolders(filesystem, self.location.root):
                for table in _subfolders(filesystem, catalog):
                    inside = filesystem.get_file_info(fs.FileSelector(table, allow_not_found=True))
                    if {entry.base_name for entry in inside} & {"metadata", "snapshots", CURRENT_FILE}:
                        return True
                    looked += 1
                    if looked >= FOLDERS_LOOKED_AT:
                        return False
        except OSError as err:
            raise storage_error(err, self.location, "listing") from None
        return False

    def tables(self) -> list[TableInfo]:
        self._require_lake()
        return super().tables()

    def _folders(self, name: str, *, recorded: bool = True) -> tuple[int, int]:
        """The table's snapshots and their bytes, for ``tables``: its Iceberg snapshots (the metadata
        is read for the current one anyway), not the home's lake folders the base class counts.
        A damaged table (not ``recorded``) counts the snapshot folders in the lake."""
        if recorded:
            snaps = self.snapshots(name)
            return len(snaps), sum(s.bytes for s in snaps)
        from pyarrow import fs

        filesystem = self.location.filesystem()
        root = self.location.path_of(*parse_table_name(name), "snapshots")
        count = size = 0
        with contextlib.suppress(OSError):  # only for the listing of a table already said damaged
            for folder in filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True)):
                if folder.type != fs.FileType.Directory:
                    continue
                files = filesystem.get_file_info(fs.FileSelector(folder.path, allow_not_found=True))
                size += sum(f.size or 0 for f in files if f.base_name.endswith(".parquet"))
                count += 1
        return count, size

    def current_snapshots(self, *, as_of: str | None = None) -> list[Snapshot]:
        self._require_lake()
        return super().current_snapshots(as_of=as_of)

    # -- SQL views -----------------------------------------------------------------------------

    @property
    def views_db(self) -> Path:
        """One views database per lake a home uses, so switching ``--lake`` rebuilds nothing."""
        from liberacion.iceberg import catalog_name

        return self.home.root / f"{catalog_name(self.location)}.duckdb"

    @property
    def files_root(self) -> str:
        return self.location.uri

    def prepare_connection(self, con: Any) -> None:
        """DuckDB reads an object store through pyarrow's filesystem, registered on the connection:
        no extension has to be downloaded."""
        if not self.location.is_local:
            from liberacion.storage import duckdb_filesystem

            con.register_filesystem(duckdb_filesystem(self.location))

    def view_statements(
        self, snapshots: Sequence[Snapshot], *, as_of: str | None = None, catalogs: Collection[str] | None = None
    ) -> list[str]:
        from liberacion.views import listed_snapshot_statements, view_statements

        history = []
        for current in self.current_snapshots(as_of=as_of):  # with as_of: what was kept by then
            kept = [snap for snap in self.snapshots(current.table) if as_of is None or snap.published_at <= as_of]
            history += [(snap, snap.id == current.id) for snap in kept]
        statements = listed_snapshot_statements(self.location.uri, history)
        return view_statements(self.home, snapshots, statements, catalogs=catalogs)

    def views_inputs(self) -> tuple[list[int], set[str], bool] | None:
        """The catalog's generation stamp covers every commit: only the tables are compared."""
        self._require_lake()  # a query of no lake at all says so, whatever SQL it runs
        return [], set(self.names()), False

    # -- reading -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._locations())

    def exists(self, name: str) -> bool:
        try:
            catalog, table = parse_table_name(name)
        except LiberacionError:
            return False
        return f"{catalog}.{table}" in self._locations()

    def current(self, name: str) -> Snapshot:
        _where, metadata = self._metadata(name)
        current = metadata.get("current-snapshot-id")
        for snap in metadata.get("snapshots") or []:
            if snap.get("snapshot-id") == current and _RECORD in (snap.get("summary") or {}):
                return self._snapshot(name, snap)
        raise NoTable(self._no_table_message(name))

    def snapshots(self, name: str) -> list[Snapshot]:
        """Every kept liberacion snapshot, in the order they were committed."""
        _where, metadata = self._metadata(name)
        if metadata.get("current-snapshot-id") in (None, -1):
            raise NoTable(self._no_table_message(name))
        listed = metadata.get("snapshots") or []
        ordered = sorted(listed, key=lambda s: (s.get("sequence-number", 0), s["timestamp-ms"]))
        return [self._snapshot(name, snap) for snap in ordered if _RECORD in (snap.get("summary") or {})]

    def _metadata(self, name: str) -> tuple[str, dict[str, Any]]:
        """The table's current metadata file and its content, read as the Iceberg spec writes it
        (a JSON document, gzipped when its name says so): the read path needs no pyiceberg."""
        catalog, table = parse_table_name(name)
        where = self._locations().get(f"{catalog}.{table}")
        if where is None:
            self._require_lake()  # no such table, or no lake at all
            raise NoTable(self._no_table_message(name))
        if where not in self._documents:
            self._documents[where] = self._read_metadata(f"{catalog}.{table}", where)
        return where, self._documents[where]

    def _read_metadata(self, name: str, where: str) -> dict[str, Any]:
        """The metadata document; ``DamagedSnapshot`` naming the table when the file is gone or
        is not Iceberg metadata (the other tables are fine: only a store failure is lake-wide)."""
        import gzip

        damage = self._damage.get(name)
        if damage is not None:
            raise self._damaged_table(name, damage)
        path = where if self.location.is_local else where.split("://", 1)[1]
        try:
            if self.location.is_local:
                data = Path(path).read_bytes()
            else:
                with self.location.filesystem().open_input_stream(path) as fh:
                    data = fh.read()
        except FileNotFoundError:
            # A store lists nothing of a bucket deleted under the lake: the bucket is said, not every
            # table taken for damaged (one more request, only on this path).
            check_bucket(self.location)
            raise self._damaged_table(name, f"its Iceberg metadata file {where} is missing") from None
        except OSError as err:
            raise storage_error(err, self.location, "reading") from None
        try:
            if where.endswith(".gz.metadata.json") or data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            document = json.loads(data)
        except (OSError, EOFError, ValueError) as err:  # truncated, half-written or not JSON
            raise self._damaged_table(name, f"its Iceberg metadata file {where} cannot be read ({err})") from None
        if not isinstance(document, dict):
            raise self._damaged_table(name, f"its Iceberg metadata file {where} is not Iceberg table metadata")
        return document

    def _damaged_table(self, name: str, problem: str) -> DamagedSnapshot:
        """The table-level message of a table whose metadata cannot be read, as the home lake words it."""
        return damaged_table(name, problem, self._fetch_again(name))

    def _fetch_again(self, name: str) -> str:
        """The command that remakes the table: the source its newest snapshot folder records."""
        from pyarrow import fs

        with contextlib.suppress(Exception):  # only for the message: a guess that fails says SOURCE
            filesystem = self.location.filesystem()
            root = self.location.path_of(*parse_table_name(name), "snapshots")
            folders = filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True))
            for folder in sorted((f.path for f in folders if f.type == fs.FileType.Directory), reverse=True):
                with contextlib.suppress(Exception), filesystem.open_input_stream(f"{folder}/{SNAPSHOT_FILE}") as fh:
                    provenance = json.loads(fh.read()).get("provenance") or {}
                    recipe = provenance.get("recipe") or {}
                    ref = recipe.get("ref") or provenance.get("ref")
                    if ref:
                        return fetch_again(ref, recipe.get("table"))
        return f"liberacion fetch SOURCE --as {name} --force"

    def published(self, name: str) -> list[Snapshot]:
        """Every kept snapshot was current once: a snapshot exists only by its commit. (Their ids
        are upload times, so two machines' ids need not follow the commit order.)"""
        return self.snapshots(name)

    def as_of(self, name: str, when: str) -> Snapshot | None:
        """The snapshot that was current at ``when``: the last one committed that was published by then."""
        chosen = None
        for snap in self.snapshots(name):
            if snap.published_at <= when:
                chosen = snap
        return chosen

    def _snapshot(self, name: str, snap: dict[str, Any]) -> Snapshot:
        """A snapshot from its entry in the table metadata (its summary holds liberacion's record)."""
        summary = snap["summary"]
        try:
            record = json.loads(summary[_RECORD])
            folder: Path | str = record["path"]
            if self.location.is_local:
                folder = Path(folder)
            record["iceberg_id"] = snap["snapshot-id"]
            if not self._registered(summary, record, snap["timestamp-ms"]):
                # When it became current: the commit (its record's time is the upload's, and two
                # machines can commit in the other order). A registered one keeps its own time.
                committed = datetime.fromtimestamp(snap["timestamp-ms"] / 1000, UTC)
                record["published_at"] = committed.strftime(TIME_FORMAT)
            return Snapshot.from_record(record, folder)
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # not a record this code can read
            why = f"{type(err).__name__}: {one_line(err, lines=1, limit=120)}"
            problem = f"the record of its Iceberg snapshot {snap.get('snapshot-id')} cannot be read ({why})"
            raise self._damaged_table(name, problem) from None

    def _registered(self, summary: dict[str, Any], record: dict[str, Any], committed_ms: int) -> bool:
        """Whether a snapshot was registered from a lake in the home's format (it keeps its own
        publish time). Versions before 2026-12-04 21:57 did not mark those: their commits, minutes
        or months after the record's time, are told by the folder, which an upload always gives a
        ``_writer`` mark and the home's lake never does (registering is only done in directories)."""
        if summary.get(_ADOPTED) == "true":
            return True
        if not self.location.is_local:
            return False
        # An upload is committed right after it (the stat below is only paid by older records).
        soon = datetime.fromtimestamp(committed_ms / 1000, UTC) - timedelta(minutes=1)
        if str(record.get("published_at", "")) >= soon.strftime(TIME_FORMAT):
            return False
        folder = Path(str(record.get("path", "")))
        return (folder / SNAPSHOT_FILE).is_file() and not (folder / WRITER_FILE).exists()

    def generation(self) -> str:
        """Changes with every commit or drop: a digest of every table's metadata location."""
        import hashlib

        locations = self._locations()
        if not locations:
            return ""
        text = "\n".join(f"{name}={where}" for name, where in sorted(locations.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _new_generation(self) -> None:
        """The catalog's metadata locations are the generation: nothing to write."""

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def stage(self, name: str, *, wait: float = 0.0) -> Iterator[Staging]:
        """The table's writer lock (this machine) and a staging folder in the home's work area;
        another machine's commit is resolved by the catalog at commit time."""
        catalog, table = parse_table_name(name)
        full = f"{catalog}.{table}"
        with self.lock(full, wait=wait), self.home.work_area() as work:
            directory = work / "snapshot"
            directory.mkdir()
            staging = Staging(self, full, directory)
            yield staging
            if staging.snapshot is not None:
                try:
                    self.prune(full, keep=keep_default())
                except LiberacionError as err:  # published; the next publish or prune tries again
                    note(f"{full}: old snapshots were not pruned: {err}")

    def commit_tables(self, staged: Sequence[tuple[Staging, Provenance]]) -> list[Snapshot]:
        """Upload every staged snapshot, then commit each table to the catalog.

        Each table switches atomically. The tables of one download are committed one after the
        other right after all uploads (a catalog commits one table at a time), so a kill between
        two commits can leave a set half-switched until the next fetch of that download.
        """
        from liberacion.engine import new_connection, switching

        prepared: list[Snapshot] = []
        snaps: list[Snapshot] = []
        try:
            with new_connection() as con:
                for staging, provenance in staged:
                    prepared.append(self._upload(staging, provenance, con))
            with switching():  # a stop from here on waits for the commits (uploads it stops at once)
                for (staging, _provenance), snap in zip(staged, prepared):
                    snaps.append(self._commit(snap, staging.dir))
        except BaseException:
            self._discard(prepared[len(snaps) :])  # uploads no commit will ever name
            raise
        for (staging, _provenance), snap in zip(staged, snaps):
            staging.snapshot = snap
        return snaps

    def _upload(self, staging: Staging, provenance: Provenance, con: Any) -> Snapshot:
        """Describe the staged files and put them in the lake (not yet part of the table)."""
        files = sorted(p.name for p in staging.dir.glob("data-*.parquet"))
        if not files:
            raise LiberacionError(f"nothing to publish for {staging.table}: no data files were written")
        rows, schema = describe_files(staging.dir, files, provenance, con)
        size = sum(p.stat().st_size for p in staging.dir.iterdir() if p.suffix == ".parquet")
        rejects = count_rows(staging.rejects_file, con) if staging.rejects_file.exists() else 0
        snapshot_id = self._claim(staging.table)  # from here on, a failure discards the claimed folder
        folder_uri = f"{self.table_uri(staging.table)}/snapshots/{snapshot_id}"
        snap = Snapshot(
            table=staging.table,
            id=snapshot_id,
            path=Path(folder_uri) if self.location.is_local else folder_uri,
            published_at=utc_now(),
            rows=rows,
            bytes=size,
            files=files,
            schema=schema,
            rejects=rejects,
            provenance=provenance,
            liberacion_version=__version__,
        )
        try:
            (staging.dir / SNAPSHOT_FILE).write_text(_record_text(snap), encoding="utf-8")
            self._put(staging.dir, self._folder(staging.table, snapshot_id))
        except BaseException:
            self._discard([snap])
            raise
        return snap

    def _claim(self, table: str) -> str:
        """A new snapshot id whose folder this process now holds.

        An id is the time to the microsecond, which two machines publishing the same table at once
        can share; uploading both into one folder would mix two snapshots. So the folder is claimed
        with its writer mark first, atomically where the store allows (a new directory, S3's
        conditional write), and a folder already held means a new id."""
        mark = f"{host_tag()} {os.getpid()} {self.home.root}\n".encode()
        for _ in range(CLAIM_TRIES):
            snapshot_id = _new_snapshot_id()
            if self._claim_folder(self._folder(table, snapshot_id), mark):
                return snapshot_id
            time.sleep(0.001)
        raise LiberacionError(
            f"found no free name for a new snapshot of {table} in {self.location.uri} after {CLAIM_TRIES} tries;"
            " run the command again"
        )

    def _claim_folder(self, folder: str, mark: bytes) -> bool:
        """Create ``folder`` with this process's writer mark in it; False if it exists already."""
        from pyarrow import fs

        if self.location.scheme == "s3":
            return claim_s3_folder(self.location, folder, WRITER_FILE, mark)
        try:
            if self.location.is_local:
                Path(folder).parent.mkdir(parents=True, exist_ok=True)
                Path(folder).mkdir()  # atomic: FileExistsError when another writer made it first
                Path(folder, WRITER_FILE).write_bytes(mark)
                return True
            # gs://, abfs://: pyarrow creates no object atomically; a folder seen is held (a narrow race remains)
            filesystem = self.location.filesystem()
            if filesystem.get_file_info(folder).type != fs.FileType.NotFound:
                return False
            with filesystem.open_output_stream(f"{folder}/{WRITER_FILE}") as out:
                out.write(mark)
        except FileExistsError:
            return False
        except OSError as err:
            raise storage_error(err, self.location, "writing to") from None
        return True

    def _folder(self, name: str, snapshot_id: str) -> str:
        """A snapshot's folder, as a path inside the lake's filesystem."""
        return self.location.path_of(*parse_table_name(name), "snapshots", snapshot_id)

    def _discard(self, snaps: Sequence[Snapshot]) -> None:
        """Delete the uploaded folders of snapshots that were not committed (best effort: what
        is left is removed by the next publish or prune)."""
        if not snaps:
            return
        try:
            filesystem = self.location.filesystem()
            for snap in snaps:
                self._delete_folder(filesystem, self._folder(snap.table, snap.id))
        except Exception:  # the store failing is why we are here; the next prune retries
            return

    def _put(self, source: Path, target: str) -> None:
        """Copy a staged folder into the lake's folder claimed for it (``_claim``: its writer mark
        says whose it is, should a killed run leave it behind).

        One file after the other, each file's parts uploaded on several threads: copying the files
        all at once kept every file's parts in flight together, and the S3 server's work per byte
        rose with them (``benchmarks/upload.py``; see NOTES). An S3 lake is written with boto3,
        which has the store check every part (``storage.put_s3_files``)."""
        from pyarrow import fs

        files = sorted(p for p in source.iterdir() if p.is_file())
        if self.location.scheme == "s3":
            put_s3_files(self.location, target, files)
            return
        filesystem = self.location.filesystem()
        local = fs.LocalFileSystem()
        try:
            for path in files:
                fs.copy_files(
                    str(path), f"{target}/{path.name}", source_filesystem=local, destination_filesystem=filesystem
                )
        except OSError as err:
            raise storage_error(err, self.location, "writing to") from None

    def _commit(self, snap: Snapshot, staged: Path | None = None, *, adopted: bool = False) -> Snapshot:
        """One Iceberg commit making ``snap`` the table's current snapshot (``staged``: the folder
        its files were uploaded from, where their footers are read)."""
        from liberacion.iceberg import commit_files

        folder = str(snap.path)
        files = [f"{folder}/{name}" for name in snap.files]
        local = {f"{folder}/{name}": staged / name for name in snap.files} if staged is not None else None
        docs = {c.name: c.description for c in snap.schema if c.description}
        self._clear_killed_create(snap.table)
        commit_files(
            self.catalog,
            self.location,
            snap.table,
            self.table_uri(snap.table),
            files,
            {**_summary(snap), **({"adopted": "true"} if adopted else {})},
            docs,
            wait=self.commit_wait,
            local=local,
        )
        self._forget()
        return snap

    def _clear_killed_create(self, name: str) -> None:
        """Delete the metadata file a first publish of ``name`` killed at its commit left: pyiceberg
        writes the new table's first file before the catalog names it, and a table folder holding
        Iceberg metadata no catalog names is refused as another catalog's (``_refuse_foreign_table``).
        It is taken for the killed run's only when it is the folder's one metadata file, of no
        snapshot, and every snapshot folder beside it was uploaded by this home, one of them by a
        process that is gone (the killed run)."""
        from pyarrow import fs

        filesystem = self.location.filesystem()
        table = self.location.path_of(*parse_table_name(name))
        try:
            listed = filesystem.get_file_info(fs.FileSelector(f"{table}/metadata", allow_not_found=True))
            metadata = [entry for entry in listed if entry.type == fs.FileType.File]
            if len(metadata) != 1 or _metadata_version(metadata[0].base_name) != 0:
                return
            with filesystem.open_input_stream(metadata[0].path) as fh:
                if json.loads(fh.read()).get("snapshots"):
                    return
            folders = filesystem.get_file_info(fs.FileSelector(f"{table}/snapshots", allow_not_found=True))
            writers = [self._writer(filesystem, f.path) for f in folders if f.type == fs.FileType.Directory]
            if not writers or None in writers or not any(not process_alive(pid) for pid in writers if pid):
                return
            if self._in_catalog(name):  # the create was committed: the publish after it was killed
                return
            filesystem.delete_file(metadata[0].path)
        except (OSError, ValueError):  # unreadable: left to the refusal, which names the folder
            return

    def _in_catalog(self, name: str) -> bool:
        """Whether the catalog names the table (asked directly: a lake of the home's format is
        not registered on the way)."""
        from liberacion.iceberg import load_table

        try:
            return load_table(self.catalog, name) is not None
        except Exception:  # a table the catalog names, whose metadata cannot be read
            return True

    def _writer(self, filesystem: Any, folder: str) -> int | None:
        """The process of this home that uploaded ``folder`` (its ``_writer`` mark), 0 for this home's
        folder whose process is not known, None for a folder of another home or machine."""
        try:
            with filesystem.open_input_stream(f"{folder}/{WRITER_FILE}") as fh:
                host, pid, *home = fh.read(4096).decode("utf-8", "replace").split(maxsplit=2)
        except (OSError, ValueError):
            return None
        if host != host_tag() or [h.strip() for h in home] != [str(self.home.root)]:
            return None
        return int(pid) if pid.isdigit() else 0

    def recover(self) -> bool:
        """Nothing to finish: a commit is one catalog operation."""
        return False

    def tidy(self) -> None:
        """Tables of a lake written by the home's lake format are registered on first use, once the
        store is checked (``check_store``)."""
        self.check_store()
        self._adopt_local()

    def check_store(self) -> None:
        """A lake on a store, checked before a writer begins: a fetch into a missing bucket or an
        unreachable store fails before anything is downloaded (a new prefix of a bucket is fine: the
        fetch creates the lake)."""
        try:
            check_bucket(self.location)
        except LiberacionError as err:
            # Writers (fetch, refresh) are batch commands: a run that can write none of its tables
            # exits 1, as it would when each failed on its own; the line says why.
            raise LiberacionError(str(err)) from None

    def prune(self, name: str, *, keep: int = DEFAULT_KEEP, wait: float = 0.0) -> list[str]:
        """Expire all but the newest ``keep`` snapshots (never the current one), delete their
        folders and the folders of commits that never happened. Returns the ids removed.
        (``wait`` is for the home's own lake, whose pruning waits for the queries reading it;
        expiry here does not: readers on other machines cannot be seen.)"""
        from liberacion.iceberg import expire

        keep = max(1, keep)
        orphan_hours()  # a bad LIBERACION_ORPHAN_HOURS is said before anything is deleted, not midway
        behind = self._catalog_behind(name)
        if behind is not None:  # what this catalog takes for old or stray may be another's current
            note(
                f"{name}: not pruned: the table's folder holds newer metadata ({behind}) than the catalog"
                " this home reads names; is its catalog an old copy, or not the team's? (A publish killed"
                " at its commit leaves such a file too: the table's next publish outdates it.)"
            )
            return []
        snaps = self.snapshots(name)
        current = self.current(name)
        kept = snaps[-keep:]
        if current.id not in {s.id for s in kept}:
            kept.append(current)
        doomed = [s for s in snaps if s.id not in {k.id for k in kept}]
        if doomed:  # only then is pyiceberg needed
            self._record_pruned(name, doomed)  # first: a prune killed midway leaves a citation, not a gap
            expire(self._table(name), [s.iceberg_id for s in kept if s.iceberg_id is not None])
            self._forget()
            filesystem = self.location.filesystem()
            for snap in doomed:  # no snapshot refers to them any more: nobody can be writing them
                self._delete_folder(filesystem, self._folder(name, snap.id))
        leftovers = self._remove_folders(name, {s.id for s in kept} | {s.id for s in doomed})
        return [s.id for s in doomed] + leftovers

    # -- the record of pruned snapshots ------------------------------------------------------------

    def pruned_location(self, name: str) -> str:
        folder = self.location.uri_of(*parse_table_name(name), PRUNED_FOLDER) + "/"
        older = self._home_format_record(name)
        if older is None or not older.is_file():
            return folder
        return f"{folder} and {older}" if Path(folder).is_dir() else str(older)

    def _home_format_record(self, name: str) -> Path | None:
        """The ``pruned.jsonl`` a directory lake written in the home's format keeps (its records
        stay where they are when its tables are registered on first use); None on a store."""
        return Path(self.location.uri_of(*parse_table_name(name), PRUNED_FILE)) if self.location.is_local else None

    def pruned(self, name: str) -> list[dict[str, Any]]:
        """The records of a table's pruned snapshots, oldest first: the lines of every object in its
        ``pruned/`` folder, in the order of their names (the first line naming a snapshot counts).
        One still kept is left out: its prune recorded it, then lost the expiry to another commit."""
        folder = self.location.path_of(*parse_table_name(name), PRUNED_FOLDER)
        older = self._home_format_record(name)
        try:
            lines = older.read_text(encoding="utf-8").splitlines() if older is not None and older.is_file() else []
            filesystem = self.location.filesystem()
            objects = self._record_lines(filesystem, folder)
            if objects is None:  # another home merged the objects listed: they are in a new one
                objects = self._record_lines(filesystem, folder) or []
            lines += objects
        except (OSError, LiberacionError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else one_line(err, lines=1)
            note(f"{name}: the record of its pruned snapshots, {self.pruned_location(name)}, cannot be read: {why}")
            return []
        kept = {snap.id for snap in self.snapshots(name)}
        return [record for record in pruned_records(lines) if record["snapshot"] not in kept]

    def _record_pruned(self, name: str, doomed: Sequence[Snapshot]) -> None:
        """Write what cites each snapshot about to be expired into a new object of the table's
        ``pruned/`` folder, so months later ``--as-of`` can name the snapshot of then. A record
        that cannot be written is a note: a prune frees space (README), and a full store must not stop it."""
        folder = self.location.path_of(*parse_table_name(name), PRUNED_FOLDER)
        text = "".join(json.dumps(pruned_record(snap), ensure_ascii=False) + "\n" for snap in doomed)
        try:
            filesystem = self.location.filesystem()
            self._write_record(filesystem, folder, text.encode("utf-8"))
        except (OSError, LiberacionError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else one_line(err, lines=1)
            note(f"{name}: the pruned snapshots' citations were not recorded in {self.pruned_location(name)}: {why}")
            return
        self._merge_records(filesystem, folder)

    def _write_record(self, filesystem: Any, folder: str, data: bytes) -> None:
        """A new object holding ``data`` in ``folder``, named by the time and a random token (no
        other writer's name), that appears whole: one PUT on a store, a rename in a directory."""
        name = f"{_new_snapshot_id()}-{secrets.token_hex(4)}.jsonl"
        if self.location.scheme == "s3":
            # One PUT with boto3: pyarrow's stream makes a multipart upload even of a few bytes, and
            # a run killed before completing it left the upload in the store (unseen, billed, never
            # aborted). The write-once condition costs nothing here: the name is new.
            claim_s3_folder(self.location, folder, name, data)
            return
        if not self.location.is_local:
            with filesystem.open_output_stream(f"{folder}/{name}") as out:
                out.write(data)
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        temporary = Path(folder, f".{name}.tmp")  # not read as a record (see _record_objects)
        try:
            temporary.write_bytes(data)
            os.replace(temporary, Path(folder, name))
        finally:
            temporary.unlink(missing_ok=True)

    def _record_objects(self, filesystem: Any, folder: str) -> list[Any]:
        """The record objects in ``folder``, oldest name first (a temporary name is none)."""
        from pyarrow import fs

        entries = filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))
        found = [e for e in entries if e.type == fs.FileType.File and _is_record(e.base_name)]
        return sorted(found, key=lambda e: e.base_name)

    def _record_lines(self, filesystem: Any, folder: str, objects: Sequence[Any] | None = None) -> list[str] | None:
        """The lines of the record objects in ``folder`` (or of ``objects`` listed there); None when
        one listed is gone: another home merged it meanwhile."""
        lines: list[str] = []
        for entry in self._record_objects(filesystem, folder) if objects is None else objects:
            try:
                with filesystem.open_input_stream(entry.path) as fh:
                    lines += fh.read().decode("utf-8", "replace").splitlines()
            except FileNotFoundError:
                return None
        return lines

    def _merge_records(self, filesystem: Any, folder: str) -> None:
        """Past ``PRUNED_OBJECTS_MERGED`` record objects, write their records as one new object, then
        delete those merged. Nothing is rewritten, so homes recording or merging at once lose
        nothing: an object goes only once its lines are in another (a snapshot recorded twice is
        read once), and a merge that finds an object gone (another home merged it) stops there.
        Only a saving of requests: a store refusing it leaves the records as they are."""
        with contextlib.suppress(OSError, LiberacionError):
            self._remove_stale_temporaries(folder)
            objects = self._record_objects(filesystem, folder)
            if len(objects) <= PRUNED_OBJECTS_MERGED:
                return
            lines = self._record_lines(filesystem, folder, objects)
            if lines is None:
                return
            merged = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pruned_records(lines))
            self._write_record(filesystem, folder, merged.encode("utf-8"))
            for entry in objects:
                with contextlib.suppress(FileNotFoundError):
                    filesystem.delete_file(entry.path)

    def _remove_stale_temporaries(self, folder: str) -> None:
        """Delete what a process killed while writing a record left in a directory lake's folder,
        once older than ``LIBERACION_ORPHAN_HOURS`` (another machine may be writing it now)."""
        if not self.location.is_local:
            return
        for entry in Path(folder).glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > orphan_hours() * 3600:
                    entry.unlink()

    def _catalog_behind(self, name: str) -> str | None:
        """The newest metadata file in the table's folder when it is newer than the one the catalog
        names: another catalog, or an old copy of this one, committed since. Its snapshots' folders
        are then unknown to this catalog, and none may be taken for a leftover."""
        from pyarrow import fs

        mine = _metadata_version((self._locations().get(name) or "").rsplit("/", 1)[-1])
        folder = self.location.path_of(*parse_table_name(name), "metadata")
        try:
            infos = self.location.filesystem().get_file_info(fs.FileSelector(folder, allow_not_found=True))
        except OSError as err:
            raise storage_error(err, self.location, "listing") from None
        versions = [(v, i.base_name) for i in infos if (v := _metadata_version(i.base_name)) is not None]
        newest = max(versions, default=None)
        return newest[1] if newest is not None and mine is not None and newest[0] > mine else None

    def _delete_folder(self, filesystem: Any, folder: str) -> None:
        try:
            filesystem.delete_dir(folder)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise storage_error(err, self.location, "deleting from") from None

    def _remove_folders(self, name: str, named: set[str]) -> list[str]:
        """Delete every snapshot folder of the table that no kept snapshot names, unless another
        process may still be uploading into it (see ``_orphan``)."""
        from pyarrow import fs

        filesystem = self.location.filesystem()
        root = self.location.path_of(*parse_table_name(name), "snapshots")
        try:
            entries = filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True))
        except OSError as err:
            raise storage_error(err, self.location, "listing") from None
        removed = []
        for entry in entries:
            if entry.type != fs.FileType.Directory or entry.base_name in named:
                continue
            if self._orphan(filesystem, entry.path):
                self._delete_folder(filesystem, entry.path)
                removed.append(entry.path)
        if removed and self.location.scheme == "s3":  # a killed run's unfinished upload keeps its parts
            abort_s3_uploads(self.location, removed)
        return [folder.rsplit("/", 1)[-1] for folder in removed]

    def _orphan(self, filesystem: Any, folder: str) -> bool:
        """Whether a folder no snapshot names can go: written by a dead process of this machine,
        or older than ``LIBERACION_ORPHAN_HOURS`` (another machine may be mid-upload)."""
        from pyarrow import fs

        try:
            with filesystem.open_input_stream(f"{folder}/{WRITER_FILE}") as fh:
                host, pid, *home = fh.read(4096).decode("utf-8", "replace").split(maxsplit=2)
            # Only a folder this home's own process wrote: another home's (another catalog's) is
            # not this catalog's leftover, whatever became of the process that wrote it.
            if host == host_tag() and pid.isdigit() and [h.strip() for h in home] in ([], [str(self.home.root)]):
                return not process_alive(int(pid))
        except (OSError, ValueError):
            pass
        infos = filesystem.get_file_info(fs.FileSelector(folder, recursive=True, allow_not_found=True))
        times = [i.mtime.timestamp() for i in infos if i.mtime is not None]
        newest = max(times, default=0.0)
        return time.time() - newest > orphan_hours() * 3600

    def drop(self, name: str) -> None:
        """Remove the table from the catalog, then its files."""
        if not self.exists(name):
            raise NoTable(self._no_table_message(name))
        catalog, table = parse_table_name(name)
        with self.lock(name):
            self.catalog.drop_table(f"{catalog}.{table}")
            self._forget()
            try:
                self.location.filesystem().delete_dir(self.location.path_of(catalog, table))
            except FileNotFoundError:
                pass
            except OSError as err:
                raise storage_error(err, self.location, "deleting from") from None
        self.refresh_views_db()

    # -- a lake of the home's format, registered on first use -------------------------------------

    def _adopt_local(self) -> None:
        """Register the tables of a directory written by the home's lake format (``current``
        pointer files): each kept snapshot becomes an Iceberg commit, oldest first, files in place."""
        key = (str(self.home.root), self.location.uri)
        if key in _ADOPTED_LAKES or not self.location.is_local:
            return
        _ADOPTED_LAKES.add(key)
        root = Path(self.location.root)
        pointers = [p for p in root.glob(f"*/*/{CURRENT_FILE}") if _valid(f"{p.parent.parent.name}.{p.parent.name}")]
        if not pointers:
            return
        from liberacion.iceberg import metadata_locations

        if _embedded():
            known = set(metadata_locations(self.home.root, self.location) or {})
        else:
            known = set(self._named_locations())
        for pointer in pointers:
            name = f"{pointer.parent.parent.name}.{pointer.parent.name}"
            if name not in known:
                self._adopt_table(name, pointer)

    def _adopt_table(self, name: str, pointer: Path) -> None:
        """Commit the kept snapshots a ``current`` file published, oldest first (a snapshot newer
        than it was never current: a publish killed before its switch)."""
        current_id = pointer.read_text(encoding="utf-8").strip()
        folders = sorted((pointer.parent / "snapshots").glob(f"*/{SNAPSHOT_FILE}"))
        snaps = [Snapshot.load(f.parent) for f in folders]
        snaps = sorted((s for s in snaps if s.id <= current_id), key=lambda s: (s.published_at, s.id))
        with self.lock(name, wait=60):
            if self.exists(name):  # another process registered it meanwhile
                return
            for snap in snaps:
                self._commit(snap, adopted=True)


def _is_record(file_name: str) -> bool:
    """Whether a name in a table's ``pruned/`` folder is a record object (not a temporary one)."""
    return file_name.endswith(".jsonl") and not file_name.startswith(".")


def _subfolders(filesystem: Any, folder: str) -> list[str]:
    """The paths of the folders in ``folder`` that a catalog or a table could be named."""
    from pyarrow import fs

    entries = filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))
    return sorted(e.path for e in entries if e.type == fs.FileType.Directory and IDENTIFIER.fullmatch(e.base_name))


def _new_snapshot_id() -> str:
    """A snapshot id: the time, to the microsecond (``20261205T231958214050Z``)."""
    return datetime.now(UTC).strftime(ID_FORMAT)


# Summary properties (prefixed ``liberacion.`` in Iceberg): the record, and what a person scanning
# the snapshot list in another engine wants to see.
_RECORD = "liberacion.snapshot"
_ADOPTED = "liberacion.adopted"  # a snapshot of a lake in the home's format, registered on first use


def _summary(snap: Snapshot) -> dict[str, str]:
    provenance = snap.provenance
    markers = {
        name: column["markers"]
        for name, column in provenance.columns.items()
        if isinstance(column, dict) and column.get("markers")
    }
    summary = {
        "snapshot": _record_text(snap, compact=True),
        "snapshot-id": snap.id,
        "rows": str(snap.rows),
        "rejects": str(snap.rejects),
    }
    if provenance.source_url:
        summary["source-url"] = provenance.source_url
    if provenance.sha256:
        summary["sha256"] = provenance.sha256
    if markers:
        summary["markers"] = json.dumps(markers, sort_keys=True)
    return summary


def _record_text(snap: Snapshot, *, compact: bool = False) -> str:
    record = snap.to_dict()
    if compact:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(record, ensure_ascii=False, indent=2, default=str)


def _valid(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 2 and all(IDENTIFIER.fullmatch(p) for p in parts)


def _file_stamp(path: Path) -> tuple[int, ...] | None:
    """What changes when SQLite writes the file (or its write-ahead log); None when it is absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    try:
        wal = os.stat(f"{path}-wal")
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino, wal.st_mtime_ns, wal.st_size)
    except OSError:
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _embedded() -> bool:
    """True with the embedded catalog (a file in the home); False with a named one."""
    from liberacion.iceberg import named_catalog

    return not named_catalog()


def orphan_hours() -> float:
    """``LIBERACION_ORPHAN_HOURS``: a value that is not a number of hours (0 or more) is a
    configuration error, never silently the default."""
    raw = os.environ.get(ORPHAN_AGE_ENV, "").strip()
    if not raw:
        return DEFAULT_ORPHAN_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 <= hours < float("inf"):
        raise ConfigError(f"{ORPHAN_AGE_ENV} must be a number of hours, 0 or more, not {raw!r}")
    return hours
