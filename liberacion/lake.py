"""The lake: tables of Parquet snapshots, published atomically, with provenance.

Layout under the home (documented in the README)::

    lake/<catalog>/<table>/
        current                    the id of the current snapshot (replaced atomically)
        snapshots/<id>/
            data-0000.parquet ...  the table's rows
            rejects.parquet        optional: rows that could not be loaded (<table>__rejects)
            snapshot.json          provenance: source, sha256, validators, rows, schema, ...
        .staging-<random>/         a publish in progress: never read, removed on failure

A publish writes into a staging directory, renames it into ``snapshots/`` and only then
replaces ``current``; readers resolve ``current`` once and read that snapshot's files, so they see
the old table or the new one, never a mix.

The tables one download makes (the members of a zip) switch as one transaction: their snapshots
are all in place first, then a commit record ``lake/.commits/<id>.json`` naming every pointer to
switch is written, the pointers are switched and the record is removed. The record is the commit
point: while it exists readers take its snapshots as current, and the next writer finishes the
switch, so a kill at any moment leaves all the tables of the set current or none. Every switch
also writes a new ``lake/.generation``; ``lake.duckdb`` remembers the generation it was built
from, so a stale views database is found with two small reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion import __version__
from liberacion.errors import (
    Busy,
    ConfigError,
    DamagedSnapshot,
    LiberacionError,
    NoTable,
    NotFound,
    QueryReading,
    UsageError,
    note,
)
from liberacion.files import atomic_write, fsync_dir, fsync_file, read_json, write_json
from liberacion.home import Home, file_lock
from liberacion.naming import IDENTIFIER, RESERVED_SCHEMAS, parse_table_name
from liberacion.snapshots import (
    CURRENT_FILE,
    PROVENANCE_KEY,
    REJECTS_FILE,
    REJECTS_SUFFIX,
    SNAPSHOT_FILE,
    Column,
    Provenance,
    Snapshot,
)
from liberacion.timestamps import ID_FORMAT, after, parse_id, parse_stamp, stamp, utc_now
from liberacion.views import view_statements, write_views_db

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_KEEP = 3
MIN_PREFIX = 8  # a snapshot id prefix must name at least the day
PRUNED_FILE = "pruned.jsonl"  # in a table's folder: one line per snapshot pruned, to cite it later
KEEP_ENV = "LIBERACION_KEEP"
COMMITS_DIR = ".commits"  # under lake/: commit records of set switches in progress
GENERATION_FILE = ".generation"  # under lake/: changes with every switch and drop
COMMIT_LOCK = "commit.lock"  # under locks/: held while pointers switch (shared by readers of many)
# Under locks/: shared by every query while it reads snapshot files, exclusive while old snapshots
# are deleted, so a query that started on a snapshot finishes on it (see ``Lake.hold_readers``).
READERS_LOCK = "readers.lock"
STAGING_PREFIX = ".staging-"


@dataclass
class TableInfo:
    """A table in the lake: its current snapshot and how many snapshots are kept."""

    name: str
    current: Snapshot | None  # None when the table is damaged
    snapshot_count: int
    size_on_disk: int
    damaged: str | None = None  # why its current snapshot cannot be read, and what to do
    # What this home's refreshes last found of it (``liberacion.tables`` fills them): the last check
    # that got an answer, and the last run's event. None when no refresh has checked it.
    checked_at: str | None = None
    last_refresh: str | None = None


class Staging:
    """A snapshot being written. Write Parquet files into ``dir``, then ``commit``."""

    def __init__(self, lake: Lake, table: str, directory: Path) -> None:
        self.lake = lake
        self.table = table
        self.dir = directory
        self.snapshot: Snapshot | None = None

    def data_file(self, part: int = 0) -> Path:
        return self.dir / f"data-{part:04d}.parquet"

    @property
    def rejects_file(self) -> Path:
        return self.dir / REJECTS_FILE

    def kv_metadata(self, provenance: Provenance) -> dict[str, str]:
        """Key-value metadata to write into every Parquet file of this snapshot."""
        record = {"table": self.table, "liberacion_version": __version__, **asdict(provenance)}
        return {PROVENANCE_KEY: json.dumps(record, default=str)}

    def write_arrow(self, data: pa.Table | pa.RecordBatchReader, provenance: Provenance, *, part: int = 0) -> Path:
        """Write Arrow data as one zstd Parquet file carrying the provenance metadata."""
        return _write_parquet(self.data_file(part), data, self.kv_metadata(provenance))

    def write_rejects(self, rejects: pa.Table, provenance: Provenance) -> Path:
        return _write_parquet(self.rejects_file, rejects, self.kv_metadata(provenance))

    def schema(self) -> list[Column]:
        """The schema of what was written so far, as ``commit`` will record it."""
        from liberacion.engine import new_connection

        files = sorted(p.name for p in self.dir.glob("data-*.parquet"))
        if not files:
            return []
        with new_connection() as con:
            return describe_files(self.dir, files, Provenance(), con)[1]

    def commit(self, provenance: Provenance) -> Snapshot:
        """Publish what was written: the table's current snapshot becomes this one."""
        [snapshot] = self.lake.commit_tables([(self, provenance)])
        return snapshot


class Lake:
    """The Parquet lake under one home. Cheap to create: touches nothing until used."""

    # Seconds a commit that another machine beat is redone before ``Busy`` (a catalog's commits;
    # here a switch waits for the commit lock instead).
    commit_wait = 300.0

    def __init__(self, home: Path | Home) -> None:
        self.home = home if isinstance(home, Home) else Home(Path(home))

    # -- reading ---------------------------------------------------------------------------

    def table_dir(self, name: str) -> Path:
        catalog, table = self._parts(name)
        return self.home.lake / catalog / table

    def _parts(self, name: str) -> tuple[str, str]:
        """``catalog, table`` of a name; ``DamagedSnapshot`` saying what to do for a table an older
        version published into a catalog whose name is reserved now (see ``_reserved``)."""
        try:
            return parse_table_name(name)
        except UsageError:
            catalog, _, table = name.lower().partition(".")
            if catalog in RESERVED_SCHEMAS and (self.home.lake / catalog / table / CURRENT_FILE).is_file():
                raise self._reserved(catalog, table) from None
            raise

    def _reserved(self, catalog: str, table: str) -> DamagedSnapshot:
        """Versions before 2026-12-04 18:19 let a catalog be named ``lake`` or ``memory``, which
        DuckDB's databases take (their ``sql`` failed on every query once such a table existed).
        Its snapshots stay on disk; the table is fetched again under a name of its own."""
        directory = self.home.lake / catalog / table
        ref = None
        with contextlib.suppress(DamagedSnapshot, OSError):
            pointed = _pointer(directory)
            provenance = Snapshot.load(directory / "snapshots" / str(pointed)).provenance
            ref = provenance.recipe.ref if provenance.recipe is not None else provenance.ref
        problem = f"its catalog name {catalog!r} is reserved since 2026-12-04 (DuckDB uses it)"
        if ref and ref.startswith(f"{catalog}/"):  # from the manifest of that name: it needs another
            again = f"rename the catalog in its manifest and fetch NEWNAME/{ref.split('/', 1)[1]}"
        else:
            again = f"liberacion fetch {shlex.quote(ref) if ref else 'SOURCE'} --as OTHER.{table}"
        err = DamagedSnapshot(
            f"table {catalog}.{table} cannot be used: {problem}; fetch it again under another catalog name "
            f"({again}), then delete {directory}"
        )
        err.problem = problem
        return err

    def names(self) -> list[str]:
        """Every table that has a current snapshot, sorted."""
        if not self.home.lake.is_dir():
            return []
        found = set(self._pending())
        for pointer in self.home.lake.glob(f"*/*/{CURRENT_FILE}"):
            catalog, table = pointer.parent.parent.name, pointer.parent.name
            if IDENTIFIER.fullmatch(catalog) and IDENTIFIER.fullmatch(table):
                found.add(f"{catalog}.{table}")
        return sorted(found)

    def exists(self, name: str) -> bool:
        return self._current_id(name) is not None

    def current(self, name: str) -> Snapshot:
        """The table's current snapshot; ``NoTable``, or ``DamagedSnapshot`` naming the table
        and what to do when its record or folder is damaged or gone."""
        snapshot_id = self._current_id(name)
        if snapshot_id is None:
            raise NoTable(self._no_table_message(name))
        try:
            return Snapshot.load(self.table_dir(name) / "snapshots" / snapshot_id)
        except DamagedSnapshot as err:
            if self._current_id(name) != snapshot_id:  # switched, or dropped, while we read it
                return self.current(name)
            raise self._damaged(name, snapshot_id, err) from None

    def _damaged(self, name: str, snapshot_id: str, err: DamagedSnapshot) -> DamagedSnapshot:
        """The table-level message of a current snapshot that cannot be read."""
        catalog, table = parse_table_name(name)
        provenance = self._kept_provenance(name, snapshot_id) or self._set_provenance(name)
        again = (
            refetch(provenance) if provenance else None
        ) or f"liberacion fetch SOURCE --as {catalog}.{table} --force"
        return damaged_table(f"{catalog}.{table}", f"its current snapshot {snapshot_id}: {err.problem or err}", again)

    def _kept_provenance(self, name: str, damaged_id: str) -> Provenance | None:
        """The provenance of another kept snapshot of the table (for the message above)."""
        root = self.table_dir(name) / "snapshots"
        with contextlib.suppress(OSError):
            for entry in sorted(os.listdir(root), reverse=True):
                if entry == damaged_id or not _SNAPSHOT_ID.fullmatch(entry):
                    continue
                with contextlib.suppress(DamagedSnapshot, OSError):
                    provenance = Snapshot.load(root / entry).provenance
                    if provenance.recipe or provenance.ref:
                        return provenance
        return None

    def _set_provenance(self, name: str) -> Provenance | None:
        """The provenance of a readable table of the same set (a zip's members share a target:
        ``cat.pair`` makes ``cat.pair__m1``, ``cat.pair__m2``), when ``name`` is one of its members."""
        for other in self.names():
            if other == name or other.split("__")[0] != name.split("__")[0]:
                continue
            with contextlib.suppress(DamagedSnapshot, OSError):  # read directly: a damaged one asks nobody
                snapshot_id = self._current_id(other)
                if snapshot_id is None:
                    continue
                provenance = Snapshot.load(self.table_dir(other) / "snapshots" / snapshot_id).provenance
                target = provenance.target
                if target and (name == target or name.startswith(target + "__")):
                    return provenance
        return None

    def _current_id(self, name: str) -> str | None:
        """The id ``current`` names, or the newer one an interrupted set commit switches it to."""
        catalog, table = self._parts(name)
        pointed = _pointer(self.home.lake / catalog / table)
        waiting = self._pending().get(f"{catalog}.{table}")
        if waiting is not None and (pointed is None or waiting > pointed):
            return waiting
        return pointed

    def _pending(self) -> dict[str, str]:
        """Pointers that set commits still have to switch: table → snapshot id (one listing when none)."""
        pending: dict[str, str] = {}
        for _record, tables in self._commit_records():
            for table, snapshot_id in tables.items():
                if snapshot_id > pending.get(table, ""):
                    pending[table] = snapshot_id
        return pending

    def _commit_records(self) -> list[tuple[Path, dict[str, str]]]:
        """The commit records in ``lake/.commits``, each with the pointers it switches whose
        snapshots are in place (a record can name nothing else: it is written after them)."""
        directory = self.home.lake / COMMITS_DIR
        try:
            entries = sorted(os.listdir(directory))
        except OSError:  # no directory: nothing is switching, the usual case
            return []
        records = []
        for entry in entries:
            if entry.startswith(".") or not entry.endswith(".json"):  # a record being written
                continue
            data = read_json(directory / entry)
            tables = data.get("tables") if isinstance(data, dict) else None
            valid: dict[str, str] = {}
            for table, snapshot_id in (tables or {}).items() if isinstance(tables, dict) else ():
                parts = str(table).split(".")
                if (
                    len(parts) == 2
                    and all(IDENTIFIER.fullmatch(part) for part in parts)
                    and isinstance(snapshot_id, str)
                    and _SNAPSHOT_ID.fullmatch(snapshot_id)
                    and (self.home.lake / parts[0] / parts[1] / "snapshots" / snapshot_id / SNAPSHOT_FILE).is_file()
                ):
                    valid[str(table)] = snapshot_id
            records.append((directory / entry, valid))
        return records

    def hold_readers(self) -> Callable[[], None]:
        """Take the readers' lock (shared) and return what releases it (once; calling it again
        does nothing). While it is held no snapshot is deleted (``prune``, retention after a
        publish), so every snapshot resolved after this stays readable. Taken before a query
        resolves its tables, released when its reading is done: one open and one flock.

        A home where the lock file cannot be opened (no ``locks`` yet: nothing was ever
        published or pruned there; or one we may only read and nobody locked before) needs none."""
        if os.name != "posix":  # pragma: no cover - no flock: Windows keeps files open anyway
            return _nothing
        path = self.home.locks / READERS_LOCK
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return _nothing
        try:
            _lock_shared(fd, busy="old snapshots are being deleted by another liberacion process (prune)")
        except BaseException:
            os.close(fd)
            raise
        held = [fd]

        def release() -> None:
            if held:
                os.close(held.pop())

        return release

    @contextmanager
    def reading_snapshots(self) -> Iterator[None]:
        """``hold_readers`` for the duration of the block."""
        release = self.hold_readers()
        try:
            yield
        finally:
            release()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Resolve many pointers while no set switches (the commit lock, shared): a set is seen
        whole or not at all. A home never switched, or one we may only read, needs no lock."""
        fd = None
        if os.name == "posix":
            try:
                fd = os.open(self.home.locks / COMMIT_LOCK, os.O_RDONLY)
            except OSError:
                fd = None
        try:
            if fd is not None:
                _lock_shared(fd)
            yield
        finally:
            if fd is not None:
                os.close(fd)

    def _switching(self) -> Any:
        """The commit lock, held while pointers switch (briefly: the snapshots are already in place)."""
        return file_lock(self.home.locks / COMMIT_LOCK, wait=SWITCH_WAIT, what="the lake's table pointers")

    def generation(self) -> str:
        """A token that changes whenever a table switches or is dropped ("" before the first)."""
        try:
            return (self.home.lake / GENERATION_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _new_generation(self) -> None:
        atomic_write(self.home.lake / GENERATION_FILE, f"{time.time_ns()}-{secrets.token_hex(4)}\n")

    def snapshots(self, name: str) -> list[Snapshot]:
        """Every kept snapshot of a table, oldest first. An old snapshot whose record is damaged
        is left out with a ``Note`` (the current one's damage is ``current``'s to report)."""
        if not self.exists(name):
            raise NoTable(self._no_table_message(name))
        root = self.table_dir(name) / "snapshots"
        found = []
        for path in sorted(root.iterdir()):
            if not (path / SNAPSHOT_FILE).is_file():
                continue
            try:
                found.append(Snapshot.load(path))
            except DamagedSnapshot as err:
                if path.is_dir():  # not pruned while we listed
                    note(f"{err.problem}: snapshot {path.name} of {name} is left out")
        return sorted(found, key=lambda s: (s.published_at, s.id))

    def published(self, name: str) -> list[Snapshot]:
        """The kept snapshots that were ever current, oldest first.

        A snapshot newer than ``current`` was left by a publish killed before its switch (the next
        publish removes it): it was never part of the table's history.
        """
        current = self.current(name)
        return [s for s in self.snapshots(name) if s.id <= current.id]

    def snapshot(self, name: str, snapshot_id: str) -> Snapshot:
        for snap in self.snapshots(name):
            if snap.id == snapshot_id:
                return snap
        raise NotFound(f"table {name} has no snapshot {snapshot_id!r}; see: liberacion info {name}")

    def as_of(self, name: str, when: str) -> Snapshot | None:
        """The snapshot that was current at ``when`` (ISO 8601 UTC), or None if none was."""
        current = self.current(name)
        chosen = None
        for snap in self.snapshots(name):
            # A snapshot newer than current is a publish killed before its switch: never current.
            if snap.published_at <= when and snap.id <= current.id:
                chosen = snap
        return chosen

    def info(self, name: str) -> TableInfo:
        current = self.current(name)
        snaps = self.snapshots(name)
        size = sum(s.bytes for s in snaps)
        return TableInfo(name=current.table, current=current, snapshot_count=len(snaps), size_on_disk=size)

    def tables(self) -> list[TableInfo]:
        """Every table; a damaged one is listed too, without a current snapshot, with a ``Note``.

        Only each table's current record is read: the others are counted by their folders and sized
        by their files, as their records say (reading every record cost seconds in a home of a
        thousand tables with long histories). ``info`` reads them all, and notes a damaged one."""
        infos = []
        with self._reading():
            for name in self.names():
                try:
                    current = self.current(name)
                    count, size = self._folders(name)
                    infos.append(TableInfo(current.table, current, count, size))
                except NoTable:  # removed while we looked
                    continue
                except DamagedSnapshot as err:  # listed, and the others are not hidden
                    note(str(err))
                    infos.append(self._damaged_info(name, str(err)))
        return infos

    def _damaged_info(self, name: str, damaged: str) -> TableInfo:
        count, size = self._folders(name, recorded=False)
        return TableInfo(name, None, count, size, damaged=damaged)

    def _folders(self, name: str, *, recorded: bool = True) -> tuple[int, int]:
        """The snapshot folders of a table (with a record, unless not ``recorded``) and the bytes of
        their Parquet files (data and bad rows: what a record's ``bytes`` counts)."""
        catalog, table = name.split(".", 1)  # a name names() listed: a directory of the lake
        root = self.home.lake / catalog / table / "snapshots"
        count = size = 0
        with contextlib.suppress(OSError):
            for folder in root.iterdir():
                if _SNAPSHOT_ID.fullmatch(folder.name) and (not recorded or (folder / SNAPSHOT_FILE).is_file()):
                    with contextlib.suppress(OSError):  # pruned while we looked
                        size += sum(f.stat().st_size for f in folder.iterdir() if f.suffix == ".parquet")
                        count += 1
        return count, size

    def current_snapshots(self, *, as_of: str | None = None) -> list[Snapshot]:
        """The snapshot of every table that is current now, or was current at ``as_of``."""
        snaps = []
        with self._reading():
            for name in self.names():
                try:
                    snap = self.current(name) if as_of is None else self.as_of(name, as_of)
                except (NoTable, FileNotFoundError):  # dropped while we looked
                    continue
                except DamagedSnapshot as err:  # the other tables stay queryable
                    note(str(err))
                    continue
                if snap is not None:
                    snaps.append(snap)
        return snaps

    def storage(self, name: str) -> dict[str, Any]:
        """Where a table lives, for ``info``."""
        if not self.exists(name):
            raise NoTable(self._no_table_message(name))
        return {"lake": str(self.home.lake), "format": "parquet", "table_location": str(self.table_dir(name))}

    # -- SQL views -----------------------------------------------------------------------------

    @property
    def views_db(self) -> Path:
        """The DuckDB file of views over this lake's current tables, for use outside liberacion."""
        return self.home.views_db

    @property
    def files_root(self) -> str:
        """The prefix of every file a view of this lake reads."""
        return str(self.home.root)

    def view_statements(
        self, snapshots: Sequence[Snapshot], *, as_of: str | None = None, catalogs: Collection[str] | None = None
    ) -> list[str]:
        """SQL creating a view per table at ``snapshots``, the index (``catalogs``' rows, see
        ``views.view_statements``) and the snapshot macros (``as_of``: as listed then)."""
        return view_statements(self.home, snapshots, as_of=as_of, catalogs=catalogs)

    def prepare_connection(self, con: Any) -> None:
        """Whatever a DuckDB connection needs before it reads this lake's files (nothing here)."""

    def views_inputs(self) -> tuple[list[int], set[str], bool] | None:
        """What ``lake.duckdb`` must be newer than (modification times), the tables it must hold,
        and whether a set of tables is switching now; None when that cannot be told."""
        changed: list[int] = []
        tables: set[str] = set()
        try:
            # Every query asks this: os.scandir, several times quicker than Path.glob over many tables.
            with os.scandir(self.home.lake) as catalogs:
                for catalog in catalogs:
                    # A table in a reserved catalog has no view (see ``_reserved``).
                    if catalog.name in RESERVED_SCHEMAS or not catalog.is_dir():
                        continue
                    with os.scandir(catalog.path) as entries:
                        for entry in entries:
                            try:
                                pointer = os.stat(os.path.join(entry.path, CURRENT_FILE))
                            except (FileNotFoundError, NotADirectoryError):
                                continue
                            changed.append(pointer.st_mtime_ns)
                            tables.add(f"{catalog.name}.{entry.name}")
            switching = next(self.home.lake.glob(f"{COMMITS_DIR}/*"), None) is not None
        except OSError:
            if not self.home.lake.exists():  # no lake yet: no table
                return [], set(), False
            return None
        return changed, tables, switching

    def _no_table_message(self, name: str) -> str:
        return self._rejects_view(name) or f"no table {name} in the lake at {self.home.root}; see: liberacion tables"

    def _rejects_view(self, name: str) -> str | None:
        """What ``TABLE__rejects`` is, when TABLE is in the lake: ``sql`` reads it, but it is the
        table's bad rows, not a table with snapshots of its own to ``info``, ``history`` or ``diff``."""
        owner = name.removesuffix(REJECTS_SUFFIX)
        if owner == name or not owner or not self.exists(owner):
            return None
        return self.no_bad_rows(name) or (
            f"{name} is {owner}'s bad rows (a view for sql), not a table of its own:"
            f' see liberacion info {owner}, or liberacion sql "select * from {name}"'
        )

    def no_bad_rows(self, name: str) -> str | None:
        """Why ``TABLE__rejects`` is no view at all when TABLE's current snapshot has no bad rows
        (advising ``sql "select * from TABLE__rejects"`` then sent to an error); None otherwise."""
        owner = name.removesuffix(REJECTS_SUFFIX)
        if owner == name or not owner:
            return None
        try:
            rejects = self.current(owner).rejects
        except (LiberacionError, OSError):  # no such table, or a damaged one: its own message says so
            return None
        if rejects:
            return None
        return (
            f"{owner} has no bad rows (every row of its current snapshot converted), so no view {name};"
            f" see: liberacion info {owner}"
        )

    # -- writing ---------------------------------------------------------------------------

    def lock(self, name: str, *, wait: float = 0.0) -> Any:
        """The per-table writer lock (held by ``stage``)."""
        catalog, table = self._parts(name)
        return file_lock(self.home.locks / f"{catalog}.{table}.lock", wait=wait, what=f"table {catalog}.{table}")

    @contextmanager
    def stage(self, name: str, *, wait: float = 0.0) -> Iterator[Staging]:
        """Hold the table's writer lock and a fresh staging directory for a new snapshot.

        Leaving the block without ``commit`` (or with an exception) discards everything written.
        """
        catalog, table = parse_table_name(name)
        directory = self.table_dir(name)
        with self.lock(name, wait=wait):
            self.recover()  # a set a killed run left half-switched is finished first
            directory.mkdir(parents=True, exist_ok=True)
            self._clear_debris(directory, f"{catalog}.{table}")
            staging_dir = directory / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
            staging_dir.mkdir()
            staging = Staging(self, f"{catalog}.{table}", staging_dir)
            try:
                yield staging
            finally:
                if staging_dir.exists():
                    shutil.rmtree(staging_dir, ignore_errors=True)
                if staging.snapshot is not None:
                    try:
                        self.prune(staging.table, keep=keep_default())
                    except QueryReading as err:
                        later = "the next publish or prune deletes them"
                        note(f"old snapshots of {staging.table} were kept ({err}); {later}")
                with contextlib.suppress(OSError):  # a first fetch that failed leaves no empty folder
                    directory.rmdir()  # (only an empty one goes; we hold the table's lock)

    def publish(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        provenance: Provenance | None = None,
        *,
        rejects: pa.Table | None = None,
        wait: float = 0.0,
    ) -> Snapshot:
        """Publish an Arrow table (or stream of batches) as the table's new current snapshot."""
        provenance = provenance or Provenance()
        with self.stage(name, wait=wait) as staging:
            staging.write_arrow(data, provenance)
            if rejects is not None and rejects.num_rows:
                staging.write_rejects(rejects, provenance)
            snapshot = staging.commit(provenance)
        self.update_views_db()
        return snapshot

    def commit_tables(self, staged: Sequence[tuple[Staging, Provenance]]) -> list[Snapshot]:
        """Publish staged tables as one transaction: all of them become current, or none does.

        Each snapshot is put in place first (invisible: ``current`` does not name it yet). For
        several tables a commit record naming every switch is written, the pointers switch, and
        the record goes; a run killed after the record is finished by the next one (``recover``),
        and readers take the record's snapshots as current meanwhile. Many tables are flushed to
        disk with one file-system sync each side of the record rather than an fsync per file.
        """
        from liberacion.engine import new_connection, switching

        batched = len(staged) > 1 and _CAN_SYNC
        snaps: list[Snapshot] = []
        record = None
        try:
            with new_connection() as con:  # one connection describes them all: opening one costs ~25 ms
                for staging, provenance in staged:
                    snaps.append(self._prepare(staging, provenance, con, durable=not batched))
            if batched:
                _sync_file_system(self.home.lake)  # the snapshots are on disk before the record says they are current
            with self._switching(), switching():  # a stop from here on waits for the switch
                if len(snaps) > 1:
                    record = self.home.lake / COMMITS_DIR / f"{snaps[0].id}-{secrets.token_hex(4)}.json"
                    write_json(record, {"tables": {snap.table: snap.id for snap in snaps}})
                for snap in snaps:
                    self._point(snap.table, snap.id, durable=not batched)
                if batched:
                    _sync_file_system(self.home.lake)
                self._new_generation()
                if record is not None:
                    record.unlink()
                    fsync_dir(record.parent)
        except BaseException:
            self._discard_unswitched(snaps, record)
            raise
        for (staging, _provenance), snap in zip(staged, snaps):
            staging.snapshot = snap
        return snaps

    def _discard_unswitched(self, snaps: Sequence[Snapshot], record: Path | None) -> None:
        """Remove the snapshots a failed commit put in place but never switched to: on a full disk
        they kept the disk full, and ``tables`` counted them, until the table's next writer. Past
        the commit point (a set's record written, a pointer switched) nothing is removed: the
        record's snapshots are for ``recover``, a switched one is current."""
        if record is not None and record.exists():
            return
        for snap in snaps:
            with contextlib.suppress(OSError):
                if _pointer(self.table_dir(snap.table)) != snap.id:
                    _delete_snapshot(self.table_dir(snap.table) / "snapshots" / snap.id)

    def _point(self, table: str, snapshot_id: str, *, durable: bool = True) -> None:
        """The switch: one atomic rename of the table's pointer file."""
        path = self.table_dir(table) / CURRENT_FILE
        if durable:
            atomic_write(path, snapshot_id + "\n")
            return
        tmp = path.with_name(f".{CURRENT_FILE}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(snapshot_id + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def recover(self) -> bool:
        """Finish the set commits a killed run left half-switched. True when there were any.

        Their records are the commit point: every snapshot they name is in place, so the switch is
        completed (never undone). A pointer already past the record's snapshot stays.
        """
        if not self._commit_records():
            return False
        with self._switching():  # a live writer finishes its own switch first
            records = self._commit_records()
            for record, tables in records:
                for table, snapshot_id in tables.items():
                    pointed = _pointer(self.table_dir(table))
                    if pointed is None or pointed < snapshot_id:
                        self._point(table, snapshot_id, durable=not _CAN_SYNC)
                if _CAN_SYNC:
                    _sync_file_system(self.home.lake)
                self._new_generation()
                record.unlink(missing_ok=True)
            if records:
                fsync_dir(self.home.lake / COMMITS_DIR)
        return bool(records)

    def tidy(self) -> None:
        """Clear what killed runs left, for every table no live process is writing: half-switched
        sets are finished, staging directories and snapshots never switched to are removed, and so
        is a table that was never published."""
        self.recover()
        # Temporary files of a generation or commit record being written: only under the commit
        # lock, so once it is ours the ones listed before are finished or left by a killed run.
        half_written = [
            *self.home.lake.glob(f".{GENERATION_FILE}.*.tmp"),
            *(self.home.lake / COMMITS_DIR).glob(".*.tmp"),
        ]
        if half_written:
            with self._switching():
                for path in half_written:
                    path.unlink(missing_ok=True)
        try:
            catalogs = [entry for entry in os.scandir(self.home.lake) if entry.is_dir()]
        except OSError:
            return
        for catalog in catalogs:
            if not IDENTIFIER.fullmatch(catalog.name):
                continue
            for table in os.scandir(catalog.path):
                if not IDENTIFIER.fullmatch(table.name) or not table.is_dir():
                    continue
                entries = os.listdir(table.path)
                if CURRENT_FILE in entries and not any(entry.startswith(".") for entry in entries):
                    continue  # the usual case: a published table and nothing else
                name = f"{catalog.name}.{table.name}"
                try:
                    with self.lock(name):
                        self._clear_debris(Path(table.path), name)
                        if self._current_id(name) is None:
                            for empty in (Path(table.path) / "snapshots", Path(table.path)):
                                with contextlib.suppress(OSError):
                                    empty.rmdir()
                except (Busy, LiberacionError):  # being written now, or a name no table may have
                    continue

    def _clear_debris(self, directory: Path, name: str) -> None:
        """Remove a killed run's leftovers in one table's directory (its writer lock held)."""
        for entry in os.listdir(directory):
            if entry.startswith(STAGING_PREFIX):
                shutil.rmtree(directory / entry, ignore_errors=True)
            elif entry.startswith(f".{CURRENT_FILE}.") and entry.endswith(".tmp"):
                (directory / entry).unlink(missing_ok=True)
        current = self._current_id(name)
        snapshots = directory / "snapshots"
        with contextlib.suppress(OSError):
            for entry in os.listdir(snapshots):
                # Newer than current: put in place by a publish killed before its switch.
                if _SNAPSHOT_ID.fullmatch(entry) and (current is None or entry > current):
                    shutil.rmtree(snapshots / entry, ignore_errors=True)

    def _prepare(self, staging: Staging, provenance: Provenance, con: Any, *, durable: bool) -> Snapshot:
        """Describe a staged snapshot, record it and rename it into ``snapshots/``, not yet current."""
        files = sorted(p.name for p in staging.dir.glob("data-*.parquet"))
        if not files:
            raise LiberacionError(f"nothing to publish for {staging.table}: no data files were written")
        rows, schema = describe_files(staging.dir, files, provenance, con)
        rejects = count_rows(staging.rejects_file, con) if staging.rejects_file.exists() else 0
        snapshot_id, published_at = self._new_snapshot_id(staging.table)
        snapshots_dir = self.table_dir(staging.table) / "snapshots"
        final = snapshots_dir / snapshot_id
        snap = Snapshot(
            table=staging.table,
            id=snapshot_id,
            path=final,
            published_at=published_at,
            rows=rows,
            bytes=sum(p.stat().st_size for p in staging.dir.iterdir() if p.suffix == ".parquet"),
            files=files,
            schema=schema,
            rejects=rejects,
            provenance=provenance,
            liberacion_version=__version__,
        )
        record = snap.to_dict()
        del record["path"]
        text = json.dumps(record, ensure_ascii=False, indent=2, default=str)
        (staging.dir / SNAPSHOT_FILE).write_text(text, encoding="utf-8")  # the directory is ours alone
        if durable:
            for path in staging.dir.iterdir():
                fsync_file(path)
            fsync_dir(staging.dir)
        snapshots_dir.mkdir(exist_ok=True)
        os.replace(staging.dir, final)
        if durable:
            fsync_dir(snapshots_dir)
        return snap

    def _new_snapshot_id(self, name: str) -> tuple[str, str]:
        """A new snapshot's id and ``published_at``: now, or just after the newest kept snapshot's
        when the clock is behind them (set back, or ahead when that one was made). An id before
        current's would make the old current look like a killed publish's leftover, deleted at once."""
        try:
            kept = [entry for entry in os.listdir(self.table_dir(name) / "snapshots") if _SNAPSHOT_ID.fullmatch(entry)]
        except OSError:  # a first snapshot: no folder yet
            kept = []
        newest = parse_id(max(kept)) if kept else None
        return after(newest).strftime(ID_FORMAT), stamp(after(self._published_at(name)))

    def _published_at(self, name: str) -> datetime | None:
        """When the current snapshot was published, or None (none yet, or its record unreadable)."""
        current = self._current_id(name)
        if current is None:
            return None
        try:
            return parse_stamp(Snapshot.load(self.table_dir(name) / "snapshots" / current).published_at)
        except DamagedSnapshot:
            return None

    def prune(self, name: str, *, keep: int = DEFAULT_KEEP, wait: float = 0.0) -> list[str]:
        """Delete all but the newest ``keep`` snapshots (never the current one). Returns the ids removed.

        Only while no query reads the lake (the readers' lock, exclusive): ``Busy`` when one still
        does after ``wait`` seconds, and nothing is deleted. Snapshots are told apart by their
        folders (ids are UTC times), so an old one whose record is damaged goes too. The caller
        holds the table's writer lock.
        """
        keep = max(1, keep)
        current = self.current(name).id  # a damaged table is not pruned: its old snapshots may be all that is left
        self._clear_debris(self.table_dir(name), name)  # what a prune killed while deleting left (the lock is ours)
        root = self.table_dir(name) / "snapshots"
        ids = sorted(entry for entry in os.listdir(root) if _SNAPSHOT_ID.fullmatch(entry))
        # Snapshots newer than current are leftovers of a publish killed before its switch.
        published = [i for i in ids if i <= current]
        doomed = [i for i in ids if i > current] + [i for i in published[:-keep] if i != current]
        if not doomed:
            return []
        with ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.home.locks / READERS_LOCK, wait=wait, what="the lake"))
            except Busy:
                waited = f" (waited {wait:g} s)" if wait else ""
                msg = f"a query is reading the lake{waited}; its snapshots are not deleted while it runs"
                raise QueryReading(msg) from None
            # Published ones only: a leftover of a killed publish was never part of the history.
            self._record_pruned(name, [i for i in doomed if i <= current])
            for snapshot_id in doomed:
                _delete_snapshot(root / snapshot_id)
        return doomed

    def _record_pruned(self, name: str, ids: list[str]) -> None:
        """Append what cites each snapshot about to be deleted to the table's ``pruned.jsonl``,
        so months later ``--as-of`` can say that the data of then was pruned (and which it was),
        not that the table did not exist yet."""
        lines = []
        for snapshot_id in ids:
            try:
                snap = Snapshot.load(self.table_dir(name) / "snapshots" / snapshot_id)
            except DamagedSnapshot:  # its id, a UTC time, is still worth keeping
                lines.append({"snapshot": snapshot_id, "pruned_at": utc_now()})
                continue
            lines.append(pruned_record(snap))
        if not lines:
            return
        try:
            with open(self.table_dir(name) / PRUNED_FILE, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        except OSError as err:  # a prune frees space: a full disk must not stop it (README)
            note(f"{name}: the pruned snapshots' citations were not recorded in {PRUNED_FILE}: {err.strerror or err}")

    def not_kept_then(self, name: str, when: str, oldest: str) -> str:
        """Why no kept snapshot of a table was current at ``when``, the oldest kept one being
        published at ``oldest``: the one that was is named when its prune was recorded."""
        then = [r for r in self.pruned(name) if str(r.get("published_at") or "") <= when and r.get("published_at")]
        if not then:
            return (
                f"the oldest kept one was published {oldest} (before it the table did not exist,"
                " or its older snapshots were pruned)"
            )
        return (
            f"the snapshot current then, {cite_pruned(then[-1])}, was pruned at {then[-1].get('pruned_at')}"
            f" and its data is gone; the oldest kept one was published {oldest}"
        )

    def pruned(self, name: str) -> list[dict[str, Any]]:
        """The records of a table's pruned snapshots, oldest first ([] before the first prune). One
        still kept is left out: a prune stopped before deleting it had recorded it."""
        lines: list[str] = []
        with contextlib.suppress(OSError):
            lines = (self.table_dir(name) / PRUNED_FILE).read_text(encoding="utf-8").splitlines()
        if not lines:
            return []
        kept: set[str] = set()
        with contextlib.suppress(OSError):
            kept = set(os.listdir(self.table_dir(name) / "snapshots"))
        return [record for record in pruned_records(lines) if record["snapshot"] not in kept]

    def pruned_location(self, name: str) -> str:
        """Where the records of a table's pruned snapshots are kept, as a person would look for them."""
        return str(self.table_dir(name) / PRUNED_FILE)

    def drop(self, name: str) -> None:
        """Remove a table and all its snapshots."""
        directory = self.table_dir(name)
        if not (directory / CURRENT_FILE).exists():
            raise NoTable(self._no_table_message(name))
        with self.lock(name):
            (directory / CURRENT_FILE).unlink()
            shutil.rmtree(directory, ignore_errors=True)
            self._new_generation()
        self.refresh_views_db()

    def refresh_views_db(self) -> None:
        """Rebuild ``lake.duckdb`` (views over current snapshots) and swap it in atomically.

        The old file is replaced, never written in place, so a user holding it open in the
        ``duckdb`` CLI neither blocks us nor sees a half-built database. The generation it was
        built from is stamped beside it; temporary files of rebuilds that were killed are removed.
        """
        damaged = self.views_db_damaged()
        with file_lock(self.home.locks / "views.lock", wait=60, what="the views database"):
            generation = self.generation()  # before reading the pointers: a switch meanwhile makes it stale
            for leftover in self.home.root.glob(f".{self.views_db.name}.*.tmp*"):  # only we write these
                leftover.unlink(missing_ok=True)
            write_views_db(self.views_db, self.view_statements(self.current_snapshots()), self.prepare_connection)
            # The home's path too: a copied or moved home's views name the files where it was.
            atomic_write(self._views_stamp, f"{generation}\n{self.home.root}\n")
        if damaged:
            note(f"{self.views_db} was not a DuckDB database; it was rebuilt")

    @property
    def _views_stamp(self) -> Path:
        """The lake generation ``lake.duckdb`` was built from, and the home's path then."""
        return self.home.root / f".{self.views_db.name}.generation"

    def views_db_moved(self) -> str | None:
        """The path the home had when ``lake.duckdb`` was built, if that is another directory (the
        home was copied or moved there: its views read that one's files), else None. A path that
        reaches this home too (a symbolic link) is not another; nor is a stamp without a path."""
        try:
            stamped = self._views_stamp.read_text(encoding="utf-8").splitlines()[1:2]
        except OSError:
            return None
        if not stamped or stamped[0] == str(self.home.root):
            return None
        try:
            return None if os.path.samefile(stamped[0], self.home.root) else stamped[0]
        except OSError:  # gone: moved
            return stamped[0]

    def views_db_stale(self) -> bool:
        """True when ``lake.duckdb`` was built before the last switch (two small reads) or before
        the dataset index last changed (readers do not use it then), or is missing while tables
        exist."""
        generation = self.generation()
        if not self.views_db.exists():
            return bool(generation)
        try:
            stamp = self._views_stamp.read_text(encoding="utf-8").partition("\n")[0].strip()
            index = self.home.index_file.stat().st_mtime_ns if self.home.index_file.exists() else 0
            return stamp != generation or index >= self.views_db.stat().st_mtime_ns
        except OSError:
            return True

    def update_views_db(self) -> bool:
        """Rebuild ``lake.duckdb`` when it is stale, damaged or cannot be opened, and remove the
        temporary files of killed rebuilds. Writers call it once at the end of a run. True if rebuilt."""
        rebuild = self.views_db_stale() or self.views_db_damaged() or self.views_db_moved() is not None
        if not rebuild and self.views_db.exists() and not _opens(self.views_db):
            note(f"{self.views_db} could not be opened; it was rebuilt")
            rebuild = True
        if rebuild:
            self.refresh_views_db()
            return True
        if next(self.home.root.glob(f".{self.views_db.name}.*.tmp*"), None) is not None:
            try:
                with file_lock(self.home.locks / "views.lock", what="the views database"):
                    for leftover in self.home.root.glob(f".{self.views_db.name}.*.tmp*"):
                        leftover.unlink(missing_ok=True)
            except Busy:  # a rebuild is running: it removes them
                pass
        return False

    def views_db_damaged(self) -> bool:
        """True when ``lake.duckdb`` is there but is not a DuckDB database (it is rebuilt, never read)."""
        try:
            with open(self.views_db, "rb") as fh:
                head = fh.read(12)
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return head[8:12] != b"DUCK"  # a DuckDB file: an 8-byte checksum, then its magic

    def repair_views_db(self) -> None:
        """Rebuild a damaged ``lake.duckdb``, or one a copied or moved home brought along (with a
        ``Note``); a home that cannot be written keeps it. A stale one is left to the next writer
        (``update_views_db``): readers do not use it then."""
        damaged = self.views_db_damaged()
        moved = None if damaged else self.views_db_moved()
        if not damaged and moved is None:
            return
        if moved is not None and not os.access(self.home.root, os.W_OK):
            return  # a read-only copy (a mounted snapshot): its queries build the views in memory
        try:
            self.refresh_views_db()
        except (OSError, LiberacionError) as err:
            what = "is damaged" if moved is None else f"reads the files of {moved}"
            note(f"{self.views_db} {what} and could not be rebuilt: {err}")
            return
        if moved is not None:
            note(f"this home was copied or moved from {moved}: {self.views_db.name} was rebuilt to read its own files")


# A snapshot id: its UTC time to the microsecond.
_SNAPSHOT_ID = re.compile(r"\d{8}T\d{12}Z")
SWITCH_WAIT = 120.0  # seconds to wait for another process switching pointers (a big set takes seconds)
# One file-system sync for a whole set instead of an fsync per file (2,000 tables: 10,000 fsyncs).
_CAN_SYNC = hasattr(os, "sync")


def _delete_snapshot(folder: Path) -> None:
    """Take a snapshot out of ``snapshots/`` in one rename, then delete it. A run killed while
    deleting leaves a hidden staging folder the table's next writer removes, never a snapshot
    missing some of its files, which history would list and queries would fail on."""
    hidden = folder.parent.parent / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
    try:
        os.replace(folder, hidden)
    except FileNotFoundError:
        return
    except OSError:  # cannot be renamed (a file system without it): deleted where it is
        hidden = folder
    shutil.rmtree(hidden, ignore_errors=True)


def _pointer(directory: Path) -> str | None:
    """The snapshot id a table's ``current`` file names, or None."""
    try:
        return (directory / CURRENT_FILE).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _lock_shared(
    fd: int, wait: float = SWITCH_WAIT, busy: str = "the lake's tables are being switched by another liberacion process"
) -> None:
    """A shared lock on ``fd``: many readers at once, never while a writer holds it (``busy`` says who)."""
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Busy(f"{busy}; try again later") from None
            time.sleep(0.02)


def _nothing() -> None:
    """Release of a lock that was not needed."""


def _sync_file_system(path: Path) -> None:
    """Flush what was written to the file system holding ``path`` (Linux: that one only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        fd = os.open(path, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def _opens(database: Path) -> bool:
    """Whether DuckDB can open the views database and list its views (a lock held by someone
    else's read-write connection counts as readable: we replace the file, never write it)."""
    import duckdb

    try:
        with duckdb.connect(str(database), read_only=True) as con:
            con.execute("SELECT count(*) FROM duckdb_views()").fetchall()
    except duckdb.Error as err:
        text = str(err).lower()
        return "could not set lock" in text or "conflicting lock" in text
    return True


def damaged_table(table: str, problem: str, again: str) -> DamagedSnapshot:
    """A table that cannot be read, said whole: what is wrong (kept as ``problem`` for callers that
    add their own advice), then ``again``, the fetch that replaces it."""
    damaged = DamagedSnapshot(f"table {table} is damaged: {problem}; fetch the table again to replace it: {again}")
    damaged.problem = problem
    return damaged


def refetch(provenance: Provenance) -> str | None:
    """The fetch that made a table, from its provenance: a zip's member table is remade by its set's
    fetch (its own name after --as would make new member tables of that name). None: no ref."""
    recipe = provenance.recipe
    ref = recipe.ref if recipe is not None else provenance.ref
    return fetch_again(ref, recipe.table if recipe is not None else None) if ref else None


def fetch_again(ref: str, table: str | None) -> str:
    """The fetch that replaces a damaged table, to run as printed: the ref quoted for the shell (a
    file's path with a space, a URL with ``&``)."""
    return f"liberacion fetch {shlex.quote(ref)}{f' --as {table}' if table else ''} --force"


def keep_default() -> int:
    """``LIBERACION_KEEP`` (default 3); a value that is not a whole number of at least 1 is a
    ``ConfigError``, never a guess: a wrong guess deletes snapshots."""
    text = os.environ.get(KEEP_ENV, "").strip()
    if not text:
        return DEFAULT_KEEP
    if not (text.isascii() and text.isdigit()) or int(text) < 1:  # isdigit() alone takes '²'; int() does not
        raise ConfigError(f"{KEEP_ENV}={text!r}: give the number of snapshots to keep per table, at least 1")
    return int(text)


def _write_parquet(path: Path, data: pa.Table | pa.RecordBatchReader, metadata: dict[str, str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = data.schema.with_metadata({**(data.schema.metadata or {}), **metadata})
    batches = data.to_batches() if isinstance(data, pa.Table) else data
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=256 * 1024)
    return path


def count_rows(path: Path, con: Any) -> int:
    """The rows of one Parquet file, from its footer through DuckDB (a publish needs no Arrow)."""
    return int(con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [str(path)]).fetchall()[0][0])


def describe_files(directory: Path, files: list[str], provenance: Provenance, con: Any) -> tuple[int, list[Column]]:
    """Row count and schema (DuckDB types, original names, null counts) of the staged files, from
    their footers through DuckDB: publishing a table needs no Arrow."""
    paths = [str(directory / f) for f in files]
    rows, nulls = _counts(con, paths)
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [paths]).fetchall()
    columns = []
    for name, type_, *_ in described:
        meta_col = provenance.columns.get(name, {})
        columns.append(
            Column(
                name=name,
                type=type_,
                original=meta_col.get("original"),
                description=meta_col.get("description"),
                null_count=nulls.get(name),
            )
        )
    return rows, columns


def _counts(con: Any, paths: list[str]) -> tuple[int, dict[str, int | None]]:
    """The files' rows, and the null counts of their top-level columns from their Parquet statistics,
    summed over their row groups: None where one is unknown, and for a nested column (its leaves'
    nulls are not its own). One read of the footers, and one of the schemas."""
    leaves = _leaves(con, paths)
    groups: dict[tuple[str, int], int] = {}
    counts: dict[str, int | None] = {}
    for path, group, group_rows, leaf, count in con.execute(
        "SELECT file_name, row_group_id, row_group_num_rows, column_id, stats_null_count FROM parquet_metadata(?)",
        [paths],
    ).fetchall():
        groups[path, group] = group_rows
        name, nested = leaves[path][leaf]
        previous = counts.get(name, 0)
        counts[name] = None if nested or previous is None or count is None else previous + count
    return sum(groups.values()), counts


def _leaves(con: Any, paths: list[str]) -> dict[str, list[tuple[str, bool]]]:
    """Each file's leaf columns (in the order of ``parquet_metadata``'s ``column_id``): their
    top-level column, and whether they are nested in it. Told from the schema tree, not from the
    dotted path, which a top-level name holding a dot would make look nested."""
    trees: dict[str, list[tuple[str, int | None]]] = {path: [] for path in paths}
    for path, name, children in con.execute(
        "SELECT file_name, name, num_children FROM parquet_schema(?)", [paths]
    ).fetchall():
        trees[path].append((name, children))
    return {path: _tree_leaves(tree) for path, tree in trees.items()}


def _tree_leaves(schema: list[tuple[str, int | None]]) -> list[tuple[str, bool]]:
    leaves: list[tuple[str, bool]] = []
    position = 1  # the root comes first

    def walk(top: str | None) -> None:
        nonlocal position
        name, children = schema[position]
        position += 1
        if not children:
            leaves.append((top or name, top is not None))
        for _ in range(children or 0):
            walk(top or name)

    for _ in range(schema[0][1] or 0):
        walk(None)
    return leaves


def pruned_records(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The records of pruned snapshots in ``lines`` (JSON, one a line), one per snapshot (the one
    pruned last), oldest first."""
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        with contextlib.suppress(ValueError):  # a line a full disk cut short
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("snapshot"), str):
                # A prune stopped after its record and before the snapshot went recorded it, and the
                # next one that deleted it again: the snapshot was there until then.
                seen = found.get(record["snapshot"])
                if seen is None or str(record.get("pruned_at") or "") > str(seen.get("pruned_at") or ""):
                    found[record["snapshot"]] = record
    return sorted(found.values(), key=lambda r: str(r.get("published_at") or r["snapshot"]))


def pruned_snapshot(lake: Lake, name: str, wanted: str) -> NotFound | None:
    """What to say of a snapshot id (or a prefix of one) that a prune deleted, None when it names
    none: an id copied from an analysis months ago, where "no snapshot" alone reads as a typo."""
    pruned = lake.pruned(name)
    gone = [r for r in pruned if r["snapshot"] == wanted]
    if not gone and len(wanted) >= MIN_PREFIX:
        gone = [r for r in pruned if r["snapshot"].startswith(wanted)]
    if len(gone) == 1:
        return NotFound(
            f"snapshot {cite_pruned(gone[0])} of {name} was pruned at {gone[0].get('pruned_at')} and its data"
            f" is gone; see: liberacion history {name}"
        )
    if gone:
        ids = ", ".join(r["snapshot"] for r in gone)
        return NotFound(
            f"snapshot {wanted!r} of {name} names several pruned snapshots ({ids}), whose data is gone;"
            f" see: liberacion history {name}"
        )
    return None


def cite_pruned(record: dict[str, Any]) -> str:
    """A pruned snapshot named from its record: ``ID (published ..., sha256 ...)``."""
    labels = (("published_at", "published"), ("sha256", "sha256"))
    cited = ", ".join(f"{label} {record[key]}" for key, label in labels if record.get(key))
    return f"{record['snapshot']} ({cited})" if cited else record["snapshot"]


def pruned_record(snap: Snapshot) -> dict[str, Any]:
    """What a paper cites of a snapshot, kept once its data is gone."""
    source = snap.provenance
    return {
        "snapshot": snap.id,
        "published_at": snap.published_at,
        "rows": snap.rows,
        "sha256": source.sha256,
        "source_url": source.source_url,
        "dataset_id": source.dataset_id,
        "fetched_at": source.fetched_at,
        "pruned_at": utc_now(),
    }
