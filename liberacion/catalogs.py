"""Catalog manifests, the dataset model, references (``cms/<id>``) and the choice of file to fetch.

A catalog is one TOML manifest: where its listings are (``[[source]]``) and a few curated datasets
(``[[dataset]]``). Shipped manifests live in ``catalogs/`` at the top of the repository (installed
as ``liberacion/catalogs``); users add or replace them with ``LIBERACION_CATALOGS`` and
``--catalogs``. The listings themselves are parsed in ``adapters.py``; the local index that
``discover`` builds lives in ``index.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from liberacion.errors import ConfigError, NotFound
from liberacion.formats import normalize_format
from liberacion.home import Home
from liberacion.naming import safe_catalog_name, safe_id, sanitize_identifier

CATALOGS_ENV = "LIBERACION_CATALOGS"
KINDS = ("dcat-us", "socrata", "dkan", "openfda", "ckan")
_PACKAGE_DIR = Path(__file__).resolve().parent


# -- the model ---------------------------------------------------------------------------------


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


# -- safe names --------------------------------------------------------------------------------


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


# -- manifests ---------------------------------------------------------------------------------


def shipped_catalogs_dir() -> Path:
    """``liberacion/catalogs`` when installed (a link to ``catalogs/`` in a checkout)."""
    inside = _PACKAGE_DIR / "catalogs"
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / "catalogs"


def manifest_paths(extra_paths: Sequence[Path] = ()) -> list[tuple[Path, bool]]:
    """Every manifest to read, lowest precedence first, each flagged ``shipped`` or not.

    Order: shipped, then ``LIBERACION_CATALOGS`` (os.pathsep-separated), then ``extra_paths``; a later
    manifest with the same ``name`` replaces an earlier one.
    """
    found: list[tuple[Path, bool]] = [(p, True) for p in sorted(shipped_catalogs_dir().glob("*.toml"))]
    env = os.environ.get(CATALOGS_ENV, "")
    user = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    for path in [*user, *(Path(p).expanduser() for p in extra_paths)]:
        if path.is_dir():
            found.extend((p, False) for p in sorted(path.glob("*.toml")))
        else:  # a missing file is reported when it is read
            found.append((path, False))
    return found


def load_catalogs(extra_paths: Sequence[Path] = (), *, problems: list[ConfigError] | None = None) -> list[Catalog]:
    """Shipped manifests, then ``LIBERACION_CATALOGS``, then ``extra_paths``, sorted by name.

    A manifest that cannot be read is left out and its one-line ``ConfigError`` is appended to
    ``problems`` when given; the other catalogs still load.
    """
    by_name: dict[str, Catalog] = {}
    for path, shipped in manifest_paths(extra_paths):
        try:
            catalog = read_manifest(path, shipped=shipped)
        except ConfigError as err:
            if problems is not None:
                problems.append(err)
            continue
        by_name[catalog.name] = catalog
    return [by_name[name] for name in sorted(by_name)]


def find_catalog(name: str, extra_paths: Sequence[Path] = ()) -> Catalog:
    problems: list[ConfigError] = []
    catalogs = load_catalogs(extra_paths, problems=problems)
    for problem in problems:  # a broken manifest of this name must not silently fall back to another
        declared = getattr(problem, "catalog", None)
        if declared is not None and safe_catalog_name(declared) == name:
            raise problem
    for catalog in catalogs:
        if catalog.name == name:
            return catalog
    if problems:  # the one asked for may be the broken one: say so rather than "not found"
        raise problems[0]
    known = ", ".join(c.name for c in catalogs) or "none"
    raise NotFound(f"no catalog named {name!r} (known: {known}); see: liberacion catalogs")


def read_manifest(path: Path, *, shipped: bool = False) -> Catalog:
    """Parse and check one manifest; any problem is a one-line ``ConfigError`` naming the file."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such catalog manifest") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the manifest: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    try:
        return _catalog_from_toml(data, path, shipped=shipped)
    except (ValueError, TypeError) as err:
        problem = ConfigError(f"{path}: {err}")
        problem.catalog = data.get("name") if isinstance(data.get("name"), str) else None  # type: ignore[attr-defined]
        raise problem from None


def _catalog_from_toml(data: dict[str, Any], path: Path, *, shipped: bool) -> Catalog:
    raw_name = data.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ValueError('missing `name` (the catalog name, e.g. name = "cms")')
    name = safe_catalog_name(raw_name)
    sources = [_source(entry, i) for i, entry in enumerate(_tables(data, "source"))]
    datasets: list[Dataset] = []
    publisher = _text(data.get("publisher"), "publisher")
    for i, entry in enumerate(_tables(data, "dataset")):
        dataset = _curated(entry, i, name)
        dataset.publisher = dataset.publisher or publisher
        if any(d.id == dataset.id for d in datasets):
            raise ValueError(f"[[dataset]] #{i + 1}: duplicate id {dataset.id!r}")
        datasets.append(dataset)
    homepage = data.get("homepage")
    if homepage is not None and not is_web_url(homepage):
        raise ValueError("`homepage` must be an http(s) URL")
    return Catalog(
        name=name,
        title=_text(data.get("title"), "title") or name,
        path=path,
        homepage=homepage,
        description=_text(data.get("description"), "description"),
        sources=sources,
        datasets=datasets,
        shipped=shipped,
    )


def _tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"`{key}` must be an array of tables: [[{key}]]")
    return value


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"`{key}` must be a string")
    return value.strip() or None


def _source(entry: dict[str, Any], index: int) -> Source:
    where = f"[[source]] #{index + 1}"
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r} (use one of: {', '.join(KINDS)})")
    url = entry.get("url")
    if not is_web_url(url):
        raise ValueError(f"{where}: `url` must be an http(s) URL")
    options = {k: v for k, v in entry.items() if k not in ("kind", "url")}
    for key in ("rows", "max_pages"):
        if key in options and (not isinstance(options[key], int) or options[key] < 1):
            raise ValueError(f"{where}: `{key}` must be a positive integer")
    return Source(kind=kind, url=url.strip(), options=options)


def _curated(entry: dict[str, Any], index: int, catalog: str) -> Dataset:
    where = f"[[dataset]] #{index + 1}"
    raw_id = entry.get("id")
    if not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        raise ValueError(f"{where}: missing `id` (it names the dataset: {catalog}/<id>)")
    dataset_id = safe_id(str(raw_id))
    url, urls, source_id = entry.get("url"), entry.get("urls"), entry.get("source_id")
    if sum(x is not None for x in (url, urls, source_id)) != 1:
        raise ValueError(f"{where} ({dataset_id}): give exactly one of `url`, `urls` or `source_id`")
    if url is not None and not is_web_url(url):
        raise ValueError(f"{where} ({dataset_id}): `url` must be an http(s) URL")
    if urls is not None and (not isinstance(urls, list) or not urls or not all(is_web_url(u) for u in urls)):
        raise ValueError(f"{where} ({dataset_id}): `urls` must be a non-empty array of http(s) URLs")
    columns = entry.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ValueError(f"{where} ({dataset_id}): [dataset.columns] must map column names to type names")
    fmt = _text(entry.get("format"), "format")
    keywords = entry.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError(f"{where} ({dataset_id}): `keywords` must be an array of strings")
    extra: dict[str, Any] = {}
    if source_id is not None:
        extra["source_id"] = str(source_id)
    for key in ("source", "keys", "member", "sheet"):
        if key in entry:
            extra[key] = entry[key]
    distributions = []
    for one in [url] if url is not None else urls or []:
        one = one.strip()
        distributions.append(Distribution(url=one, format=fmt.lower() if fmt else normalize_format(one)))
    if urls is not None:
        extra["all_files"] = True  # the files are parts of one table (e.g. yearly or partitioned files)
    return Dataset(
        catalog=catalog,
        id=dataset_id,
        title=_text(entry.get("title"), "title") or dataset_id,
        distributions=distributions,
        description=_text(entry.get("description"), "description"),
        publisher=_text(entry.get("publisher"), "publisher"),
        keywords=list(keywords),
        modified=None,
        landing_page=entry.get("landing_page") if is_web_url(entry.get("landing_page")) else None,
        source_kind="manifest",
        format=fmt.lower() if fmt else None,
        columns=dict(columns),
        extra=extra,
    )


# -- references --------------------------------------------------------------------------------


def split_ref(ref: str) -> tuple[str, str]:
    """``cms/hospital-general-information`` → (catalog, id)."""
    from liberacion.errors import UsageError

    catalog, sep, dataset_id = ref.strip().partition("/")
    if not sep or not catalog or not dataset_id:
        raise UsageError(f"invalid dataset reference {ref!r}: use CATALOG/ID, e.g. cms/hospital-general-information")
    return sanitize_identifier(catalog, fallback="c"), safe_id(dataset_id)


def resolve_ref(ref: str, home: Home, extra_paths: Sequence[Path] = ()) -> Dataset:
    """The dataset a reference names: a curated manifest dataset or one from the discovered index.

    A curated ``source_id`` pointer is resolved to the source's current file now (one small HTTP
    request for DKAN and Socrata; the listing otherwise), falling back to the local index if the
    server cannot be reached.
    """
    from liberacion import index

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
    raise NotFound(msg)


def _resolve_pointer(catalog: Catalog, curated: Dataset, home: Home) -> Dataset:
    from liberacion import adapters, index
    from liberacion.errors import SourceError

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
    raise NotFound(f"{curated.ref}: source id {source_id!r} not found in {where}; check the manifest {catalog.path}")


def _pointer_sources(catalog: Catalog, curated: Dataset) -> list[Source]:
    wanted = curated.extra.get("source")
    if wanted is None:
        return catalog.sources
    chosen = [s for s in catalog.sources if wanted in (s.kind, s.url)]
    if not chosen:
        raise ConfigError(f"{catalog.path}: {curated.ref}: `source = {wanted!r}` matches no [[source]]")
    return chosen


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
    lake: dict[str, Any]

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
    """A dataset with the file(s) fetch would choose (and why) and its table's state in the lake."""
    from liberacion.errors import SourceError

    try:
        dataset = resolve_ref(ref, home, extra_paths)
    except SourceError as err:  # offline: still show what the manifest says
        catalog_name, dataset_id = split_ref(ref)
        curated = find_catalog(catalog_name, extra_paths).curated(dataset_id)
        if curated is None:
            raise
        return _describe_state(home, curated, [], f"its current file could not be looked up: {err}")
    try:
        chosen, reason = choose_distributions(dataset)
    except NotFound as err:
        chosen, reason = [], str(err)
    return _describe_state(home, dataset, chosen, reason)


def _describe_state(home: Home, dataset: Dataset, chosen: list[Distribution], reason: str) -> Description:
    from liberacion.lake import Lake

    lake = Lake(home)
    state: dict[str, Any] = {"table": dataset.table, "present": False}
    if lake.exists(dataset.table):
        current = lake.current(dataset.table)
        state.update(present=True, snapshot=current.id, published_at=current.published_at, rows=current.rows)
    return Description(dataset, chosen, reason, state)
