"""The catalog data model: catalogs, their sources, datasets and the files datasets offer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liberacion.naming import sanitize_identifier


@dataclass
class Distribution:
    url: str
    media_type: str | None = None
    format: str | None = None  # normalized lower-case: csv, zip, json, jsonl, xlsx, xls, xpt, xml, rdf, pdf, api, html
    title: str | None = None
    kind: str = "download"  # "download" (downloadURL: a file) | "access" (accessURL: API/landing page)
    byte_size: int | None = None
    modified: str | None = None


@dataclass
class Dataset:
    catalog: str  # sanitized catalog name (SQL schema)
    id: str  # stable id within the catalog (4x4, DKAN id, CMS UUID, slug); safe for refs
    title: str
    distributions: list[Distribution]
    description: str | None = None
    publisher: str | None = None
    keywords: list[str] = field(default_factory=list)
    modified: str | None = None
    landing_page: str | None = None
    source_kind: str | None = None  # dcat-us | socrata | dkan | openfda | ckan | manifest
    format: str | None = None  # manifest override
    columns: dict[str, str] = field(default_factory=dict)  # manifest [dataset.columns] type overrides
    change_token: str | None = None  # cheapest change signal (rowsUpdatedAt, export_date, modified...)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.catalog}/{self.id}"

    @property
    def table(self) -> str:
        return f"{self.catalog}.{sanitize_identifier(self.id)}"

    @property
    def formats(self) -> list[str]:
        """The distinct formats of the files (downloads) on offer, in order of appearance."""
        seen: list[str] = []
        for dist in self.distributions:
            fmt = dist.format if dist.kind == "download" else None
            if fmt and fmt not in seen:
                seen.append(fmt)
        return seen

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies recursively and dominates discover's time.
        data = dict(self.__dict__)
        data["distributions"] = [dict(d.__dict__) for d in self.distributions]
        data["keywords"] = list(self.keywords)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dataset:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["distributions"] = [Distribution(**d) for d in known.get("distributions") or []]
        return cls(**known)


@dataclass
class Source:
    """One listing of a catalog: ``kind`` says how to read ``url``; ``options`` holds extra keys."""

    kind: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Catalog:
    name: str
    title: str
    path: Path
    homepage: str | None = None
    description: str | None = None
    sources: list[Source] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)  # curated in the manifest
    shipped: bool = False

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.sources} or {"manifest"})

    def curated(self, dataset_id: str) -> Dataset | None:
        for dataset in self.datasets:
            if dataset.id == dataset_id:
                return dataset
        return None


def is_web_url(url: Any) -> bool:
    """Only http(s) URLs with a host are followed (never file:, javascript:, data: ...)."""
    if not isinstance(url, str):
        return False
    scheme, sep, rest = url.strip().partition("://")
    # A plain string test: this runs for every URL of a listing, and urlsplit is slow.
    return (
        bool(sep)
        and scheme.lower() in ("http", "https")
        and rest[:1] not in ("", "/", "\\")
        and not any(c.isspace() for c in rest.split("/", 1)[0])
    )


def merge_curated(curated: Dataset, found: Dataset) -> Dataset:
    """The source's current metadata and files under the curated id, with the manifest's overrides."""
    extra = {**found.extra, **curated.extra, "source_ref": found.ref}
    return Dataset(
        catalog=curated.catalog,
        id=curated.id,
        title=curated.title if curated.title != curated.id else found.title,
        distributions=found.distributions,
        description=curated.description or found.description,
        publisher=found.publisher or curated.publisher,
        keywords=curated.keywords or found.keywords,
        modified=found.modified,
        landing_page=curated.landing_page or found.landing_page,
        source_kind=found.source_kind,
        format=curated.format,
        columns=curated.columns,
        change_token=found.change_token,
        extra=extra,
    )
