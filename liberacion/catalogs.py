"""Catalog manifests and dataset resolution (a minimal stand-in for the catalogs module).

Only what ``fetch`` needs: read TOML manifests given with ``--catalogs`` and resolve
``catalog/id``. The full module (shipped catalogs, adapters, discovery) replaces this file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liberacion.errors import ConfigError, NotFound
from liberacion.home import Home
from liberacion.lake import sanitize_identifier


@dataclass
class Distribution:
    url: str
    media_type: str | None = None
    format: str | None = None
    title: str | None = None
    kind: str = "download"
    byte_size: int | None = None
    modified: str | None = None


@dataclass
class Dataset:
    catalog: str
    id: str
    title: str
    distributions: list[Distribution]
    description: str | None = None
    publisher: str | None = None
    keywords: list[str] = field(default_factory=list)
    modified: str | None = None
    landing_page: str | None = None
    source_kind: str | None = None
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    change_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.catalog}/{self.id}"

    @property
    def table(self) -> str:
        return f"{self.catalog}.{sanitize_identifier(self.id)}"


def resolve_ref(ref: str, home: Home, extra_paths: Sequence[Path] = ()) -> Dataset:
    """The dataset ``catalog/id`` from the manifests in ``extra_paths``; ``NotFound`` otherwise."""
    catalog, _, dataset_id = ref.partition("/")
    for manifest in _manifests(extra_paths):
        data = _load(manifest)
        if data.get("name") != catalog:
            continue
        for entry in data.get("dataset", []):
            if entry.get("id") == dataset_id:
                return _dataset(catalog, entry)
    raise NotFound(f"no dataset {ref} in the catalogs; check the name or pass --catalogs")


def choose_distributions(dataset: Dataset) -> tuple[list[Distribution], str]:
    """The files to download and why: here simply every download distribution."""
    chosen = [d for d in dataset.distributions if d.kind == "download"]
    if not chosen:
        raise NotFound(f"dataset {dataset.ref} has no downloadable file")
    return chosen, "the manifest's download URL"


def _manifests(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.toml")) if path.is_dir() else [path])
    return found


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read catalog manifest {path}: {err}") from None


def _dataset(catalog: str, entry: dict[str, Any]) -> Dataset:
    urls = entry.get("urls") or [entry["url"]]
    return Dataset(
        catalog=catalog,
        id=entry["id"],
        title=entry.get("title", entry["id"]),
        distributions=[Distribution(url=u, format=entry.get("format")) for u in urls],
        format=entry.get("format"),
        columns=dict(entry.get("columns", {})),
        change_token=entry.get("change_token"),
    )
