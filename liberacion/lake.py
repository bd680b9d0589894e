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
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion import __version__
from liberacion.errors import LiberacionError, NoTable, Note
from liberacion.files import atomic_write, fsync_dir, fsync_file, write_json
from liberacion.home import Home, file_lock
from liberacion.naming import IDENTIFIER, parse_table_name
from liberacion.snapshots import (
    CURRENT_FILE,
    PROVENANCE_KEY,
    REJECTS_FILE,
    SNAPSHOT_FILE,
    Column,
    Provenance,
    Snapshot,
)
from liberacion.timestamps import utc_now
from liberacion.views import write_views_db

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_KEEP = 3
KEEP_ENV = "LIBERACION_KEEP"


@dataclass
class TableInfo:
    """A table in the lake: its current snapshot and how many snapshots are kept."""

    name: str
    current: Snapshot
    snapshot_count: int
    size_on_disk: int


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
        files = sorted(p.name for p in self.dir.glob("data-*.parquet"))
        return _describe(self.dir, files, Provenance())[1] if files else []

    def commit(self, provenance: Provenance) -> Snapshot:
        """Publish what was written: the table's current snapshot becomes this one."""
        self.snapshot = self.lake._commit(self, provenance)
        return self.snapshot


class Lake:
    """The Parquet lake under one home. Cheap to create: touches nothing until used."""

    def __init__(self, home: Path | Home) -> None:
        self.home = home if isinstance(home, Home) else Home(Path(home))

    # -- reading ---------------------------------------------------------------------------

    def table_dir(self, name: str) -> Path:
        catalog, table = parse_table_name(name)
        return self.home.lake / catalog / table

    def names(self) -> list[str]:
        """Every table that has a current snapshot, sorted."""
        if not self.home.lake.is_dir():
            return []
        found = []
        for pointer in self.home.lake.glob(f"*/*/{CURRENT_FILE}"):
            catalog, table = pointer.parent.parent.name, pointer.parent.name
            if IDENTIFIER.fullmatch(catalog) and IDENTIFIER.fullmatch(table):
                found.append(f"{catalog}.{table}")
        return sorted(found)

    def exists(self, name: str) -> bool:
        return (self.table_dir(name) / CURRENT_FILE).is_file()

    def current(self, name: str) -> Snapshot:
        """The table's current snapshot, or ``NoTable``."""
        directory = self.table_dir(name)
        try:
            snapshot_id = (directory / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NoTable(self._no_table_message(name)) from None
        return Snapshot.load(directory / "snapshots" / snapshot_id)

    def snapshots(self, name: str) -> list[Snapshot]:
        """Every kept snapshot of a table, oldest first."""
        if not self.exists(name):
            raise NoTable(self._no_table_message(name))
        root = self.table_dir(name) / "snapshots"
        found = [Snapshot.load(p) for p in sorted(root.iterdir()) if (p / SNAPSHOT_FILE).is_file()]
        return sorted(found, key=lambda s: (s.published_at, s.id))

    def snapshot(self, name: str, snapshot_id: str) -> Snapshot:
        for snap in self.snapshots(name):
            if snap.id == snapshot_id:
                return snap
        msg = f"table {name} has no snapshot {snapshot_id!r}; see: liberacion info {name}"
        from liberacion.errors import NotFound

        raise NotFound(msg)

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
        infos = []
        for name in self.names():
            try:
                infos.append(self.info(name))
            except (NoTable, FileNotFoundError):  # removed while we looked
                continue
        return infos

    def current_snapshots(self, *, as_of: str | None = None) -> list[Snapshot]:
        """The snapshot of every table that is current now, or was current at ``as_of``."""
        snaps = []
        for name in self.names():
            try:
                snap = self.current(name) if as_of is None else self.as_of(name, as_of)
            except FileNotFoundError:  # dropped while we looked
                continue
            if snap is not None:
                snaps.append(snap)
        return snaps

    def _no_table_message(self, name: str) -> str:
        return f"no table {name} in the lake at {self.home.root}; see: liberacion tables"

    # -- writing ---------------------------------------------------------------------------

    def lock(self, name: str, *, wait: float = 0.0) -> Any:
        """The per-table writer lock (held by ``stage``)."""
        catalog, table = parse_table_name(name)
        return file_lock(self.home.locks / f"{catalog}.{table}.lock", wait=wait, what=f"table {catalog}.{table}")

    @contextmanager
    def stage(self, name: str, *, wait: float = 0.0) -> Iterator[Staging]:
        """Hold the table's writer lock and a fresh staging directory for a new snapshot.

        Leaving the block without ``commit`` (or with an exception) discards everything written.
        """
        catalog, table = parse_table_name(name)
        directory = self.table_dir(name)
        with self.lock(name, wait=wait):
            directory.mkdir(parents=True, exist_ok=True)
            for leftover in directory.glob(".staging-*"):  # from a run that was killed
                shutil.rmtree(leftover, ignore_errors=True)
            staging_dir = directory / f".staging-{secrets.token_hex(6)}"
            staging_dir.mkdir()
            staging = Staging(self, f"{catalog}.{table}", staging_dir)
            try:
                yield staging
            finally:
                if staging_dir.exists():
                    shutil.rmtree(staging_dir, ignore_errors=True)
                if staging.snapshot is not None:
                    self.prune(staging.table, keep=keep_default())
                    self.refresh_views_db()

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
            return staging.commit(provenance)

    def _commit(self, staging: Staging, provenance: Provenance) -> Snapshot:
        files = sorted(p.name for p in staging.dir.glob("data-*.parquet"))
        if not files:
            raise LiberacionError(f"nothing to publish for {staging.table}: no data files were written")
        rows, schema = _describe(staging.dir, files, provenance)
        rejects = _count_rows(staging.rejects_file) if staging.rejects_file.exists() else 0
        snapshot_id = self._new_snapshot_id(staging.table)
        snapshots_dir = self.table_dir(staging.table) / "snapshots"
        final = snapshots_dir / snapshot_id
        snap = Snapshot(
            table=staging.table,
            id=snapshot_id,
            path=final,
            published_at=utc_now(),
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
        write_json(staging.dir / SNAPSHOT_FILE, record, indent=2)
        for path in staging.dir.iterdir():
            fsync_file(path)
        snapshots_dir.mkdir(exist_ok=True)
        os.replace(staging.dir, final)
        fsync_dir(snapshots_dir)
        # The switch: one atomic rename of the pointer file.
        atomic_write(self.table_dir(staging.table) / CURRENT_FILE, snapshot_id + "\n")
        return snap

    def _new_snapshot_id(self, name: str) -> str:
        root = self.table_dir(name) / "snapshots"
        while True:
            snapshot_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            if not (root / snapshot_id).exists():
                return snapshot_id

    def prune(self, name: str, *, keep: int = DEFAULT_KEEP) -> list[str]:
        """Delete all but the newest ``keep`` snapshots (never the current one). Returns the ids removed."""
        keep = max(1, keep)
        current = self.current(name)
        snaps = self.snapshots(name)
        # Snapshots newer than current are leftovers of a publish killed before its switch.
        unpublished = [s for s in snaps if s.id > current.id]
        published = [s for s in snaps if s.id <= current.id]
        doomed = unpublished + [s for s in published[:-keep] if s.id != current.id]
        for snap in doomed:
            shutil.rmtree(snap.path, ignore_errors=True)
        return [s.id for s in doomed]

    def drop(self, name: str) -> None:
        """Remove a table and all its snapshots."""
        directory = self.table_dir(name)
        if not (directory / CURRENT_FILE).exists():
            raise NoTable(self._no_table_message(name))
        with self.lock(name):
            (directory / CURRENT_FILE).unlink()
            shutil.rmtree(directory, ignore_errors=True)
        self.refresh_views_db()

    def refresh_views_db(self) -> None:
        """Rebuild ``lake.duckdb`` (views over current snapshots) and swap it in atomically.

        The old file is replaced, never written in place, so a user holding it open in the
        ``duckdb`` CLI neither blocks us nor sees a half-built database.
        """
        damaged = self.views_db_damaged()
        with file_lock(self.home.locks / "views.lock", wait=60, what="the views database"):
            write_views_db(self.home, self.current_snapshots())
        if damaged:
            warnings.warn(f"{self.home.views_db} was not a DuckDB database; it was rebuilt", Note, stacklevel=2)

    def views_db_damaged(self) -> bool:
        """True when ``lake.duckdb`` is there but is not a DuckDB database (it is rebuilt, never read)."""
        try:
            with open(self.home.views_db, "rb") as fh:
                head = fh.read(12)
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return head[8:12] != b"DUCK"  # a DuckDB file: an 8-byte checksum, then its magic

    def repair_views_db(self) -> None:
        """Rebuild a damaged ``lake.duckdb`` (with a ``Note``); a home that cannot be written keeps it."""
        if not self.views_db_damaged():
            return
        try:
            self.refresh_views_db()
        except (OSError, LiberacionError) as err:
            warnings.warn(f"{self.home.views_db} is damaged and could not be rebuilt: {err}", Note, stacklevel=2)


def keep_default() -> int:
    try:
        return max(1, int(os.environ.get(KEEP_ENV, DEFAULT_KEEP)))
    except ValueError:
        return DEFAULT_KEEP


def _write_parquet(path: Path, data: pa.Table | pa.RecordBatchReader, metadata: dict[str, str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = data.schema.with_metadata({**(data.schema.metadata or {}), **metadata})
    batches = data.to_batches() if isinstance(data, pa.Table) else data
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=256 * 1024)
    return path


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _describe(directory: Path, files: list[str], provenance: Provenance) -> tuple[int, list[Column]]:
    """Row count and schema (DuckDB types, original names, null counts) of the staged files."""
    import pyarrow.parquet as pq

    from liberacion.engine import new_connection

    paths = [str(directory / f) for f in files]
    rows = 0
    nulls: dict[str, int | None] = {}
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        for name, count in _null_counts(meta).items():
            if name in nulls and (nulls[name] is None or count is None):
                nulls[name] = None
            else:
                nulls[name] = nulls.get(name, 0) + count if count is not None else None  # type: ignore[operator]
    with new_connection() as con:
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


def _null_counts(meta: Any) -> dict[str, int | None]:
    """Null counts of top-level columns from Parquet statistics (None where unknown)."""
    counts: dict[str, int | None] = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for i in range(group.num_columns):
            chunk = group.column(i)
            path = chunk.path_in_schema
            if "." in path:  # a nested leaf: its nulls are not the column's nulls
                counts[path.split(".", 1)[0]] = None
                continue
            stats = chunk.statistics
            count = stats.null_count if stats is not None and stats.has_null_count else None
            previous = counts.get(path, 0)
            counts[path] = None if previous is None or count is None else previous + count
    return counts
