"""The record of a published snapshot: its schema, its provenance and how to make it again.

These dataclasses are the hand-offs between the stages: ``fetch`` fills them, ``lake`` stores them
in ``snapshot.json`` (and the Parquet metadata), ``refresh``, ``history`` and ``diff`` read them back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liberacion.errors import DamagedSnapshot, one_line

SNAPSHOT_FILE = "snapshot.json"
CURRENT_FILE = "current"
REJECTS_FILE = "rejects.parquet"
REJECTS_SUFFIX = "__rejects"
PROVENANCE_KEY = "liberacion.provenance"


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
    recipe: Recipe | None = None  # how to fetch it again (refresh replays it)
    downloads: list[Download] = field(default_factory=list)  # the files it was built from
    target: str | None = None  # the table its ref fetches into (a zip's member tables share one)
    # The conversion settings in effect (the user's and the manifest's): a change means convert again.
    settings: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # seconds each stage of the fetch took
    # Anything else worth keeping: conversion notes, change tokens, reject counts.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        extra = dict(known.get("extra") or {})
        if "recipe" not in known and isinstance(extra.get("recipe"), dict):
            _upgrade(known, extra)  # written by liberacion 0.1, where the stages shared one dict
        known["extra"] = extra
        recipe = known.get("recipe")
        known["recipe"] = Recipe.from_dict(recipe) if isinstance(recipe, dict) else None
        known["downloads"] = [Download.from_dict(d) for d in known.get("downloads") or [] if isinstance(d, dict)]
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _upgrade(known: dict[str, Any], extra: dict[str, Any]) -> None:
    """Read provenance of the first version: ``extra`` held the recipe, downloads and target.

    Its recipe mixed the user's ``--type`` with the manifest's columns; for a catalog ref only the
    manifest can say which were which, so the manifest's current columns apply from now on.
    """
    old = extra.pop("recipe")
    ref = str(known.get("ref") or "")
    catalog_ref = "://" not in ref and not ref.startswith(("/", ".", "~"))
    known["target"] = extra.pop("target", None)
    known["settings"] = old
    known["downloads"] = extra.pop("downloads", None) or []
    known["recipe"] = {
        "ref": ref,
        "table": known["target"],
        "types": {} if catalog_ref else dict(old.get("columns") or {}),
        "raw": bool(old.get("raw")),
        "member": old.get("member"),
        "max_bad_rows": old.get("max_bad_rows"),
    }


@dataclass
class Recipe:
    """What to fetch and how to convert it, as the user asked for it.

    ``fetch`` records it in every snapshot and ``refresh`` hands it back unchanged. Only the
    user's own choices live here: the manifest's column types, keys and URL are read again from
    the catalog on every fetch, so a fixed manifest reaches the next refresh.
    """

    ref: str  # CATALOG/ID, an http(s) URL or a local file
    table: str | None = None  # --as CATALOG.TABLE
    types: dict[str, str] = field(default_factory=dict)  # --type COLUMN=TYPE (never the manifest's)
    raw: bool = False  # --raw
    member: str | None = None  # --member
    max_bad_rows: int | None = None  # --max-bad-rows

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Download:
    """One file a snapshot was built from, and what the server said about that version of it."""

    url: str
    sha256: str | None = None
    bytes: int = 0
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Download:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Column:
    name: str
    type: str
    original: str | None = None
    description: str | None = None
    null_count: int | None = None


_COLUMN_KEYS = frozenset(Column.__dataclass_fields__)


@dataclass(repr=False)
class Snapshot:
    """One published version of a table, as recorded in its ``snapshot.json``."""

    table: str
    id: str
    path: Path | str  # a directory, or the URI of its folder in an object store (``s3://...``)
    published_at: str
    rows: int
    bytes: int
    files: list[str]
    schema: list[Column]
    rejects: int
    provenance: Provenance
    liberacion_version: str
    iceberg_id: int | None = None  # the Iceberg snapshot id, in a lake that is an Iceberg lake

    def __repr__(self) -> str:
        # Short: a notebook shows a list of tables' snapshots, whose provenance (every column's
        # rule and markers, the download's headers) ran to thousands of lines. ``to_dict`` has it all.
        return (
            f"Snapshot(table={self.table!r}, id={self.id!r}, published_at={self.published_at!r},"
            f" rows={self.rows}, columns={len(self.schema)}, rejects={self.rejects})"
        )

    @property
    def catalog(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def data_paths(self) -> list[Path | str]:
        return [_under(self.path, name) for name in self.files]

    @property
    def rejects_path(self) -> Path | str | None:
        if not self.rejects:
            return None
        path = _under(self.path, REJECTS_FILE)
        return path if isinstance(path, str) or path.exists() else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """The snapshot in folder ``path``; ``DamagedSnapshot`` when its record is unreadable or
        gone (a folder removed by hand is damage, not a table that never existed)."""
        record = path / SNAPSHOT_FILE
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            data["id"] = path.name  # the directory is the truth, whatever the file says
            return cls.from_record(data, path)
        except (FileNotFoundError, NotADirectoryError):
            raise _damaged(f"{record} is missing" if path.is_dir() else f"{path} is missing", path) from None
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # not JSON, or not a snapshot's
            problem = f"{record} is damaged ({type(err).__name__}: {one_line(err, lines=1, limit=120)})"
            raise _damaged(problem, path) from None

    @classmethod
    def from_record(cls, data: dict[str, Any], path: Path | str) -> Snapshot:
        """A snapshot from its record (``snapshot.json``, or an Iceberg snapshot's summary)."""
        return cls(
            table=data["table"],
            id=data["id"],
            path=path,
            published_at=data["published_at"],
            rows=data["rows"],
            bytes=data["bytes"],
            files=data["files"],
            # A newer version's column keys are left aside, as its provenance keys are: one
            # analyst's upgrade must not make every command of the others fail on a shared lake.
            schema=[Column(**{k: v for k, v in c.items() if k in _COLUMN_KEYS}) for c in data["schema"]],
            rejects=data.get("rejects", 0),
            provenance=Provenance.from_dict(data.get("provenance", {})),
            liberacion_version=data.get("liberacion_version", "?"),
            iceberg_id=data.get("iceberg_id"),
        )


def _damaged(problem: str, path: Path) -> DamagedSnapshot:
    err = DamagedSnapshot(
        f"{problem}; restore it from a backup, or remove {path.parent.parent} and fetch the table again"
    )
    err.problem = problem
    return err


def _under(folder: Path | str, name: str) -> Path | str:
    """A file in a snapshot's folder: a path for a directory, a URI for an object store."""
    return folder / name if isinstance(folder, Path) else f"{folder.rstrip('/')}/{name}"
