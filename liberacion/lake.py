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
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion import __version__
from liberacion.errors import LiberacionError, NoTable, UsageError
from liberacion.home import Home, file_lock

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_KEEP = 3
KEEP_ENV = "LIBERACION_KEEP"
SNAPSHOT_FILE = "snapshot.json"
CURRENT_FILE = "current"
REJECTS_FILE = "rejects.parquet"
REJECTS_SUFFIX = "__rejects"
PROVENANCE_KEY = "liberacion.provenance"
# Schemas DuckDB or liberacion itself own: a catalog may never take these names.
RESERVED_SCHEMAS = frozenset({"main", "liberacion", "information_schema", "pg_catalog", "temp", "system"})
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_STRICT_NAME = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def sanitize_identifier(text: str, *, fallback: str = "t") -> str:
    """Turn any text (a title, a remote id) into a safe lower-case SQL identifier and path part."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ident = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    return ident[:63].rstrip("_")


def parse_table_name(name: str) -> tuple[str, str]:
    """Split ``catalog.table`` (letters, digits, underscores) or raise a usage error."""
    if not _STRICT_NAME.fullmatch(name):
        msg = f"invalid table name {name!r}: use CATALOG.TABLE made of letters, digits and underscores"
        raise UsageError(msg)
    catalog, table = name.lower().split(".")
    if not _IDENTIFIER.fullmatch(catalog) or not _IDENTIFIER.fullmatch(table):
        msg = f"invalid table name {name!r}: each part must start with a letter or underscore"
        raise UsageError(msg)
    if catalog in RESERVED_SCHEMAS:
        raise UsageError(f"invalid table name {name!r}: the catalog name {catalog!r} is reserved")
    return catalog, table


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Provenance:
    """Where a snapshot came from. The fetch step fills what it knows; every field is optional."""

    source_url: str | None = None
    dataset_id: str | None = None
    ref: str | None = None
    fetched_at: str | None = None
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    raw_bytes: int | None = None
    format: str | None = None
    # Per output column: {"original": ..., "description": ..., "markers": {...}, ...}
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Anything else worth keeping: conversion notes, change tokens, reject counts.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Column:
    name: str
    type: str
    original: str | None = None
    description: str | None = None
    null_count: int | None = None


@dataclass
class Snapshot:
    """One published version of a table, as recorded in its ``snapshot.json``."""

    table: str
    id: str
    path: Path
    published_at: str
    rows: int
    bytes: int
    files: list[str]
    schema: list[Column]
    rejects: int
    provenance: Provenance
    liberacion_version: str

    @property
    def catalog(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def data_paths(self) -> list[Path]:
        return [self.path / name for name in self.files]

    @property
    def rejects_path(self) -> Path | None:
        path = self.path / REJECTS_FILE
        return path if self.rejects and path.exists() else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        data = json.loads((path / SNAPSHOT_FILE).read_text(encoding="utf-8"))
        return cls(
            table=data["table"],
            id=path.name,  # the directory is the truth, whatever the file says
            path=path,
            published_at=data["published_at"],
            rows=data["rows"],
            bytes=data["bytes"],
            files=data["files"],
            schema=[Column(**c) for c in data["schema"]],
            rejects=data.get("rejects", 0),
            provenance=Provenance.from_dict(data.get("provenance", {})),
            liberacion_version=data.get("liberacion_version", "?"),
        )


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
            if _IDENTIFIER.fullmatch(catalog) and _IDENTIFIER.fullmatch(table):
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
        _write_atomic(staging.dir / SNAPSHOT_FILE, json.dumps(record, indent=2, default=str))
        for path in staging.dir.iterdir():
            _fsync_file(path)
        snapshots_dir.mkdir(exist_ok=True)
        os.replace(staging.dir, final)
        _fsync_dir(snapshots_dir)
        # The switch: one atomic rename of the pointer file.
        _write_atomic(self.table_dir(staging.table) / CURRENT_FILE, snapshot_id + "\n")
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
        from liberacion.query import write_views_db

        with file_lock(self.home.locks / "views.lock", wait=60, what="the views database"):
            write_views_db(self)


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

    from liberacion.query import new_connection

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


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
