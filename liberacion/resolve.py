"""From a reference to the files to fetch: ``cms/<id>`` → a dataset → the file(s) ``fetch`` takes.

A reference names a curated dataset of a manifest or one the index holds. A curated ``source_id``
pointer is looked up at its source now, so the file is the current one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from liberacion.catalogs import adapters, index
from liberacion.catalogs.manifests import find_catalog
from liberacion.catalogs.model import Catalog, Dataset, Distribution, Source, is_web_url, merge_curated
from liberacion.errors import ConfigError, NoDataset, NotFound, SourceError, UsageError
from liberacion.home import Home
from liberacion.naming import safe_id, sanitize_identifier


def split_ref(ref: str) -> tuple[str, str]:
    """``cms/hospital-general-information`` → (catalog, id)."""
    catalog, sep, dataset_id = ref.strip().partition("/")
    if not sep or not catalog or not dataset_id:
        raise UsageError(f"invalid dataset reference {ref!r}: use CATALOG/ID, e.g. cms/hospital-general-information")
    return sanitize_identifier(catalog, fallback="c"), safe_id(dataset_id)


def resolve_ref(ref: str, home: Home, extra_paths: Sequence[Path] = ()) -> Dataset:
    """The dataset a reference names: a curated manifest dataset or one from the discovered index.

    A curated ``source_id`` pointer is resolved to the source's current file now (one small HTTP
    request for DKAN and Socrata; the listing otherwise), falling back to the local index if the
    server cannot be reached. A dataset the catalog does not list is ``NoDataset``.
    """
    catalog_name, dataset_id = split_ref(ref)
    catalog = find_catalog(catalog_name, extra_paths)
    curated = catalog.curated(dataset_id)
    if curated is not None:
        if "source_id" not in curated.extra:
            return curated
        return _resolve_pointer(catalog, curated, home)
    found = index.find(home, catalog.name, dataset_id)
    if found is not None:
        return found
    if not index.has_part(home, catalog.name) and catalog.sources:
        msg = (
            f"no dataset {ref!r} among the curated datasets of {catalog.name}; run: liberacion discover {catalog.name}"
        )
    else:
        words = dataset_id.replace("-", " ").replace("_", " ")
        msg = f"no dataset {ref!r} in catalog {catalog.name}; see: liberacion search {words} --catalog {catalog.name}"
    raise NoDataset(msg)


def _resolve_pointer(catalog: Catalog, curated: Dataset, home: Home) -> Dataset:
    source_id = safe_id(curated.extra["source_id"])
    sources = _pointer_sources(catalog, curated)
    errors: list[str] = []
    for source in sources:
        try:
            found = adapters.lookup(source, catalog.name, source_id)
        except SourceError as err:
            errors.append(str(err))
            found = index.find(home, catalog.name, source_id)
            if found is not None:
                found.extra["resolved_from"] = "index"
        if found is not None:
            return merge_curated(curated, found)
    if errors:
        raise SourceError(f"cannot resolve {curated.ref} (source id {source_id}): {errors[0]}")
    where = ", ".join(s.url for s in sources) or "no source"
    raise NoDataset(f"{curated.ref}: source id {source_id!r} not found in {where}; check the manifest {catalog.path}")


def _pointer_sources(catalog: Catalog, curated: Dataset) -> list[Source]:
    wanted = curated.extra.get("source")
    if wanted is None:
        return catalog.sources
    chosen = [s for s in catalog.sources if wanted in (s.kind, s.url)]
    if not chosen:
        raise ConfigError(f"{catalog.path}: {curated.ref}: `source = {wanted!r}` matches no [[source]]")
    return chosen


# -- which file to fetch -----------------------------------------------------------------------

# Lower is better: CSV first (the rule users expect), then other tabular files, documents last.
_FORMAT_RANK = {
    "csv": 0,
    "parquet": 1,
    "tsv": 2,
    "txt": 3,
    "zip": 4,
    "xpt": 5,
    "xlsx": 6,
    "xls": 7,
    "jsonl": 8,
    "json": 9,
    "geojson": 10,
    "gz": 11,
    "sas7bdat": 12,
    "xml": 13,
    "rdf": 14,
}
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_NEVER = frozenset({"html", "pdf", "api"})
# Matched against lower-cased URL paths (no re.IGNORECASE: it costs start-up time on import).
_SOCRATA_BULK = re.compile(r"/api/views/[a-z0-9]{4}-[a-z0-9]{4}/rows\.csv")
_PAGED_APIS = (
    re.compile(r"/data-api/v1/dataset/[0-9a-f-]{36}/data$"),  # CMS data API
    re.compile(r"/resource/[a-z0-9]{4}-[a-z0-9]{4}\.(csv|json)$"),  # Socrata SODA
    re.compile(r"/datastore/query/[^/]+/\d+"),  # DKAN datastore
)


def choose_distributions(dataset: Dataset) -> tuple[list[Distribution], str]:
    """The file(s) ``fetch`` should download and a one-line reason.

    Bulk files over paged APIs, CSV over other formats, never an HTML page or a PDF, the latest
    release when a dataset lists several (data.cms.gov), every partition for openFDA.
    """
    files = [d for d in dataset.distributions if d.kind == "download" and is_web_url(d.url)]
    if dataset.source_kind == "openfda":
        parts = [d for d in files if d.format not in _NEVER]
        if parts:
            when = f" of the {dataset.change_token} export" if dataset.change_token else ""
            return parts, f"all {len(parts)} partition(s){when} (openFDA publishes an endpoint as partitions)"
    usable = [d for d in files if d.format not in _NEVER]
    if dataset.extra.get("all_files") and usable:
        return usable, f"all {len(usable)} file(s) the manifest lists, as one table"
    if dataset.format and any(d.format == dataset.format for d in usable):
        usable = [d for d in usable if d.format == dataset.format]
        if len(usable) == 1:
            return usable, f"the {dataset.format} file the manifest asks for"
    if usable:
        latest, release_note = _latest_release(usable)
        best = min(latest, key=_file_rank)
        return [best], _reason(best, release_note)
    apis = [d for d in dataset.distributions if any(p.search(urlsplit(d.url).path.lower()) for p in _PAGED_APIS)]
    if apis:
        return [apis[0]], "no bulk file is listed: the paged API"
    offered = ", ".join(sorted({d.format or d.kind for d in dataset.distributions})) or "nothing"
    raise NotFound(
        f"{dataset.ref} has no downloadable data file (it lists: {offered}); see: liberacion show {dataset.ref}"
    )


def _file_rank(dist: Distribution) -> tuple[int, int]:
    bulk = 0 if _SOCRATA_BULK.search(dist.url.lower()) else 1
    return (_FORMAT_RANK.get(dist.format or "", 50), bulk)


def _latest_release(files: list[Distribution]) -> tuple[list[Distribution], str]:
    """Some datasets list every release as its own files (data.cms.gov; yearly files elsewhere):
    keep those of the newest release, by the file's ``modified`` or else the latest year it names."""
    keys = {id(d): _release_key(d) for d in files}
    distinct = {k for k in keys.values() if k}
    if len(distinct) < 2:
        return files, ""
    newest = max(distinct)
    return [d for d in files if keys[id(d)] == newest], f"latest of {len(distinct)} releases ({newest})"


def _release_key(dist: Distribution) -> str | None:
    if dist.modified:
        return dist.modified
    years = _YEAR.findall(f"{dist.title or ''} {urlsplit(dist.url).path}")
    return max(years) if years else None


def _reason(best: Distribution, release_note: str) -> str:
    if _SOCRATA_BULK.search(best.url.lower()):
        text = "Socrata bulk CSV export (all rows in one file)"
    elif best.format == "csv":
        text = "the CSV file"
    else:
        text = f"no CSV: the {best.format or 'unknown-format'} file"
    return f"{text}; {release_note}" if release_note else text


# -- show --------------------------------------------------------------------------------------


@dataclass
class Description:
    """Everything ``show`` tells about a dataset."""

    dataset: Dataset
    chosen: list[Distribution]
    reason: str
    lake: dict[str, Any] = field(default_factory=dict)  # the dataset's table in the lake, when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.dataset.ref,
            "table": self.dataset.table,
            **self.dataset.to_dict(),
            "formats": self.dataset.formats,
            "fetch": {"files": [d.url for d in self.chosen], "reason": self.reason},
            "lake": self.lake,
        }


def describe(home: Home, ref: str, extra_paths: Sequence[Path] = ()) -> Description:
    """A dataset with the file(s) fetch would choose, and why."""
    try:
        dataset = resolve_ref(ref, home, extra_paths)
    except SourceError as err:  # offline: still show what the manifest says
        catalog_name, dataset_id = split_ref(ref)
        curated = find_catalog(catalog_name, extra_paths).curated(dataset_id)
        if curated is None:
            raise
        return Description(curated, [], f"its current file could not be looked up: {err}")
    try:
        chosen, reason = choose_distributions(dataset)
    except NotFound as err:
        chosen, reason = [], str(err)
    return Description(dataset, chosen, reason)
