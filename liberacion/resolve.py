"""From a reference to the files to fetch: ``cms/<id>`` → a dataset → the file(s) ``fetch`` takes.

A reference names a curated dataset of a manifest or one the index holds. A curated ``source_id``
pointer is looked up at its source now, so the file is the current one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.catalogs import adapters, index
from liberacion.catalogs.manifests import find_catalog
from liberacion.catalogs.model import Catalog, Dataset, Distribution, Source, choose_files, is_web_url, merge_curated
from liberacion.errors import ConfigError, Gone, LiberacionError, NoDataset, NotFound, SourceError, UsageError
from liberacion.home import Home
from liberacion.naming import safe_id, sanitize_identifier

if TYPE_CHECKING:
    from liberacion.snapshots import Provenance


class NotDiscovered(NoDataset):
    """The catalog may well list the dataset: this home has not read its listing (``discover``) yet.
    Not the catalog's decision, so a refresh counts it as a failure, never as ``retired``."""


def split_ref(ref: str) -> tuple[str, str]:
    """``cms/hospital-general-information`` → (catalog, id)."""
    catalog, sep, dataset_id = ref.strip().partition("/")
    if not sep or not catalog or not dataset_id:
        raise UsageError(f"invalid dataset reference {ref!r}: use CATALOG/ID, e.g. cms/hospital-general-information")
    return sanitize_identifier(catalog, fallback="c"), safe_id(dataset_id)


def resolve_ref(ref: str, home: Home, extra_paths: Sequence[Path] = (), *, follow: bool = True) -> Dataset:
    """The dataset a reference names: a curated manifest dataset or one from the discovered index.

    A curated ``source_id`` pointer is resolved to the source's current file now (one small HTTP
    request for DKAN and Socrata; the listing otherwise), falling back to the local index if the
    server cannot be reached. A dataset the catalog does not list is ``NoDataset``. ``follow``
    False: the curated dataset as the manifest has it, its pointer not followed (no request: its
    table is the same, its file unknown).
    """
    catalog_name, dataset_id = split_ref(ref)
    try:
        catalog = find_catalog(catalog_name, extra_paths)
    except NotFound as err:
        if _looks_like_path(ref):
            # ``fx/nosuch.csv``: a file's path with a typo, far likelier than an unknown catalog.
            raise NotFound(f"no such file {ref}; check the path (as a CATALOG/DATASET ref: {err})") from None
        raise
    curated = catalog.curated(dataset_id)
    if curated is not None:
        if "source_id" not in curated.extra or not follow:
            return curated
        return _resolve_pointer(catalog, curated, home)
    found = index.find(home, catalog.name, dataset_id)
    if found is not None:
        return found
    if not index.has_part(home, catalog.name) and catalog.sources:
        raise NotDiscovered(
            f"no dataset {ref!r} among the curated datasets of {catalog.name}, and this home has not read"
            f" its listing; run: liberacion discover {catalog.name}, then this command again"
        )
    words = dataset_id.replace("-", " ").replace("_", " ")
    see = f"see: liberacion search {words} --catalog {catalog.name}"
    if f"{catalog.name}/{dataset_id}" in index.indexed_curated_refs(home, catalog.name):
        # Taken out of (or renamed in) the manifest since the last discover: say so, not just "no such".
        raise NoDataset(f"{catalog.name}/{dataset_id} is no longer a dataset of the manifest {catalog.path}; {see}")
    raise NoDataset(f"no dataset {ref!r} in catalog {catalog.name}; {see}")


def _looks_like_path(ref: str) -> bool:
    """A ref whose last part has a file extension (``.csv``, ``.json.gz``), or whose first part is
    an existing directory: meant as a file's path."""
    first, _, rest = ref.strip().partition("/")
    last = rest.rsplit("/", 1)[-1]
    return bool(re.search(r"\.[A-Za-z][A-Za-z0-9]{0,7}$", last)) or Path(first).expanduser().is_dir()


def _resolve_pointer(catalog: Catalog, curated: Dataset, home: Home) -> Dataset:
    source_id = safe_id(curated.extra["source_id"])
    sources = _pointer_sources(catalog, curated)
    errors: list[str] = []
    for source in sources:
        try:
            found = adapters.lookup(source, catalog.name, source_id)
        except SourceError as err:
            errors.append(_lookup_error(source, source_id, err, catalog))
            found = index.find(home, catalog.name, source_id)
            if found is not None:
                found.extra["resolved_from"] = "index"
        if found is not None:
            return merge_curated(curated, found)
    if errors:
        raise SourceError(f"cannot resolve {curated.ref} (source id {source_id}): {errors[0]}")
    where = ", ".join(s.url for s in sources) or "no source"
    raise NoDataset(f"{curated.ref}: source id {source_id!r} not found in {where}; check the manifest {catalog.path}")


def _lookup_error(source: Source, source_id: str, err: SourceError, catalog: Catalog) -> str:
    """A 404 for a DKAN item, a Socrata view or a CKAN package means the source does not know the
    manifest's ``source_id`` (or the host it is looked up on): that is what to check, not a file."""
    if not isinstance(err, Gone) or source.kind not in ("dkan", "socrata", "ckan"):
        return str(err)
    answered = str(err).split("; the file may have moved", 1)[0]
    host = " and `socrata_domain`" if source.kind == "socrata" else ""
    what = f"the {source.kind} source has no dataset {source_id!r} ({answered})"
    return f"{what}; check `source_id`{host} in {catalog.path}"


def _pointer_sources(catalog: Catalog, curated: Dataset) -> list[Source]:
    wanted = curated.extra.get("source")
    if wanted is None:
        return catalog.sources
    chosen = [s for s in catalog.sources if wanted in (s.kind, s.url)]
    if not chosen:
        raise ConfigError(f"{catalog.path}: {curated.ref}: `source = {wanted!r}` matches no [[source]]")
    return chosen


# -- is it still the same dataset ------------------------------------------------------------


def indexed_dataset(ref: str, home: Home, extra_paths: Sequence[Path] = ()) -> Dataset | None:
    """The discovered dataset a catalog ref names, read from the index alone (no network); None for
    a manifest's own dataset (a person named its source) or a ref that names nothing now (``fetch``
    says why in its own words)."""
    try:
        catalog_name, dataset_id = split_ref(ref)
        catalog = find_catalog(catalog_name, extra_paths)
    except LiberacionError:
        return None
    if catalog.curated(dataset_id) is not None:
        return None
    return index.find(home, catalog.name, dataset_id)


def listed_identifier(dataset: Dataset) -> str | None:
    """The publisher's identifier of the listing record a dataset came from (DCAT ``identifier``,
    a CKAN package's, a Socrata view's): what a table's snapshot records as its dataset."""
    identifier = dataset.extra.get("identifier")
    return identifier if isinstance(identifier, str) and identifier else None


def identity_conflict(dataset: Dataset, recorded: Provenance, table: str) -> str | None:
    """Why ``dataset`` is not the dataset ``table``'s snapshot was fetched from, or None.

    A ref stays with the records that derive it: healthdata.gov's ``<uuid>_1`` alone is named by
    the bare ``<uuid>``, and when it leaves the listing and a sibling ``<uuid>_2`` comes alone, the
    same ref names the sibling. The snapshot's recorded identifier tells them apart. A snapshot
    that recorded none (an older fetch) is compared by title, and only when the ref holds part of
    the identifier (the one case where another record can come to hold it): a title the publisher
    edits makes a false alarm at worst, never another dataset's rows in the table.
    """
    now = listed_identifier(dataset)
    was = recorded.extra.get("identifier")
    if now is None:
        return None
    if isinstance(was, str) and was:
        if was == now:
            return None
        evidence = f"identifier {now}, was {was}"
    else:
        shared = not is_web_url(now) and safe_id(now) != dataset.id
        old_title = recorded.extra.get("title")
        if not shared or not isinstance(old_title, str) or old_title == dataset.title:
            return None
        evidence = f"identifier {now}, titled {dataset.title!r}, was {old_title!r}"
    return (
        f"{dataset.ref} now names another dataset in the listing ({evidence}); {table} keeps its last"
        f" snapshot: fetch the new one under a new table with `liberacion fetch {dataset.ref} --as"
        f" {dataset.catalog}.NEW_NAME`, or see what the old one is called now with `liberacion search`"
    )


# -- which file to fetch -----------------------------------------------------------------------


def choose_distributions(dataset: Dataset) -> tuple[list[Distribution], str]:
    """The file(s) ``fetch`` should download and a one-line reason (``catalogs.model.choose_files``:
    the index's ``fetchable`` column uses the same rule).

    The newest release by data period, CSV-like text over other formats, a bulk file over a paged
    API, never a page, a document, a feed or the catalog itself, every partition for openFDA.
    """
    choice = choose_files(dataset)
    if choice.files:
        return choice.files, choice.reason
    if choice.reason:  # a reason of its own: what to change
        raise NotFound(f"{dataset.ref}: {choice.reason}; see: liberacion show {dataset.ref}")
    offered = ", ".join(sorted({d.format or d.kind for d in dataset.distributions})) or "nothing"
    raise NotFound(
        f"{dataset.ref} has no downloadable data file: {choice.why_not} (it lists: {offered});"
        f" see: liberacion show {dataset.ref}"
    )


# -- show --------------------------------------------------------------------------------------


@dataclass
class Description:
    """Everything ``show`` tells about a dataset."""

    dataset: Dataset
    chosen: list[Distribution]
    reason: str
    lake: dict[str, Any] = field(default_factory=dict)  # the dataset's table in the lake, when known
    # Why the current file could not be looked up (offline): ``show`` still shows the manifest's
    # side, then exits with this error's code.
    error: SourceError | None = None

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
        return Description(curated, [], f"its current file could not be looked up: {err}", error=err)
    try:
        chosen, reason = choose_distributions(dataset)
    except NotFound as err:
        chosen, reason = [], str(err)
    return Description(dataset, chosen, reason)
