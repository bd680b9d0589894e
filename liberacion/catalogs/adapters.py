"""Read the listings HHS publishes into ``Dataset`` records, one parser per kind of source.

- ``dcat-us``: a DCAT-US 1.1 or 3.0 ``data.json`` (data.cms.gov, open.fda.gov, any agency).
- ``socrata``: a Socrata site's ``data.json`` (healthdata.gov, data.cdc.gov); ids are the 4x4s,
  and one dataset's view metadata comes from ``/api/views/<4x4>.json``.
- ``dkan``: the bare JSON array of a DKAN metastore (CMS Provider Data Catalog).
- ``openfda``: ``download.json``: one dataset per endpoint, its partitions as its files.
- ``ckan``: ``package_search``, paged with ``rows``/``start`` up to a hard page cap.

Everything that comes from a server is untrusted: ids are made safe, only http(s) URLs are kept
(and ftp:// ones, to be shown, never downloaded), and a body that is not the expected JSON is a
``SourceError`` with a one-line reason. A record that is not made a dataset (not public, nothing to
name it by, not an object, a repeat) is counted in ``Listing.left_out`` by reason, never dropped
unsaid.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from liberacion.catalogs.model import Dataset, Distribution, Source, is_ftp_url, is_web_url
from liberacion.errors import SourceError
from liberacion.formats import normalize_format
from liberacion.naming import safe_id

CKAN_ROWS = 1000  # CKAN's default rows_max
CKAN_MAX_PAGES = 20
MAX_NESTING = 5  # DCAT-US 3.0 catalogs nest catalogs; stop at this depth
STREAM_BYTES = 16 * 1024 * 1024  # DCAT-US listings larger than this are parsed one dataset at a time
_NESTING_KEYS = re.compile(rb'"(?:datasetSeries|service|catalog|hasPart)"\s*:')  # DCAT-US 3.0 keys
_VIEW_ID = re.compile(r"/api/views/([a-z0-9]{4}-[a-z0-9]{4})(?:[/.?]|$)", re.I)
_FOUR_BY_FOUR = re.compile(r"[a-z0-9]{4}-[a-z0-9]{4}", re.I)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_JOINED_URLS = re.compile(r"[\s,;]+(?=(?:https?|ftps?)://)", re.I)
_DKAN_RESOURCE = re.compile(r"/resources/([0-9a-f]{32}_\d+)/", re.I)
# JSON may escape half of a UTF-16 pair alone (``\ud800``): Python decodes it to a str that no UTF-8
# index file, pipe or terminal can hold. Escapes of whole pairs (an emoji) match the search too.
_HALF_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_HALF = re.compile("[\ud800-\udfff]")
# Trailing path parts that say nothing about which dataset a URL identifies.
_GENERIC_SEGMENTS = frozenset({"data-viewer", "data", "dataset", "datasets", "index.html", "index", "api", "view"})


# Why a record of a listing is not a dataset of the index (the keys of ``Listing.left_out``).
NOT_PUBLIC = "not public"  # accessLevel non-public or restricted public
NO_IDENTIFIER = "no identifier"  # nothing stable to name it by (no identifier, landing page or file; no CKAN name)
NOT_AN_OBJECT = "not a JSON object"  # a record that is a string, a number, null
REPEATED = "repeated"  # a second copy of a record (same identifier and title): kept once
NO_FILE_URL = "no file URL"  # an openFDA endpoint none of whose partitions has an http(s) file


@dataclass
class Listing:
    """What one source said: its datasets, or ``unchanged`` after a 304; the records it did not
    make datasets, counted by reason (so the listing's count is the datasets plus these)."""

    datasets: list[Dataset]
    etag: str | None = None
    last_modified: str | None = None
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)


# -- fetching ----------------------------------------------------------------------------------


def discover_source(
    source: Source, catalog: str, *, etag: str | None = None, last_modified: str | None = None
) -> Listing:
    """Download and parse one listing; with validators, an unchanged listing costs one 304."""
    from liberacion.download.session import fetch_document

    if source.kind == "ckan":  # a paged API: its "validator" is a change token of the search
        return _discover_ckan(source, catalog, token=etag)
    doc = fetch_document(source.url, etag=etag, last_modified=last_modified, headers={"Accept": "application/json"})
    if doc.status == 304:
        if not (etag or last_modified):
            raise SourceError(f"{source.url}: the server answered 304 Not Modified to an unconditional request")
        return Listing([], etag=doc.etag or etag, last_modified=doc.last_modified or last_modified, unchanged=True)
    listing = read_listing(source.kind, doc.content, catalog, url=source.url, content_type=doc.content_type)
    listing.etag, listing.last_modified = doc.etag, doc.last_modified
    return listing


def lookup(source: Source, catalog: str, source_id: str) -> Dataset | None:
    """One dataset of a source by its id, as the source describes it now (None if absent)."""
    from liberacion.download.session import fetch_document

    if source.kind == "dkan":
        url = source.url.rstrip("/") + "/" + source_id
        doc = fetch_document(url, headers={"Accept": "application/json"})
        item = load_json(doc.content, url=url, content_type=doc.content_type)
        if not isinstance(item, dict):
            raise SourceError(f"{url}: expected a DKAN dataset item (a JSON object)")
        return _dcat_dataset(item, catalog, "dkan")
    if source.kind == "socrata":
        url = socrata_view_url(source, source_id)
        doc = fetch_document(url, headers={"Accept": "application/json"})
        view = load_json(doc.content, url=url, content_type=doc.content_type)
        if not isinstance(view, dict) or not view.get("id"):
            raise SourceError(f"{url}: expected Socrata view metadata (a JSON object with an id)")
        parts = urlsplit(url)
        return dataset_from_socrata_view(view, catalog, f"{parts.scheme}://{parts.netloc}")
    if source.kind == "ckan":
        url = _with_params(source.url.replace("package_search", "package_show"), {"id": source_id}, keep=False)
        doc = fetch_document(url, headers={"Accept": "application/json"})
        answer = load_json(doc.content, url=url, content_type=doc.content_type)
        package = answer.get("result") if isinstance(answer, dict) else None
        if isinstance(package, list):  # DKAN's CKAN-compatible package_show answers with a list
            package = package[0] if package else None
        return _ckan_dataset(package, catalog) if isinstance(package, dict) else None
    listing = discover_source(source, catalog)
    return next((d for d in listing.datasets if d.id == source_id), None)


def socrata_view_url(source: Source, view_id: str) -> str:
    """``/api/views/<4x4>.json`` on the source's host (or its ``socrata_domain``)."""
    parts = urlsplit(source.url)
    domain = source.options.get("socrata_domain") or parts.netloc
    return f"{parts.scheme}://{domain}/api/views/{view_id}.json"


def _ckan_change_token(source: Source) -> str | None:
    """How many packages the search finds and the newest ``metadata_modified`` among them.

    CKAN answers no conditional requests; this one-package query is the cheap "has it changed?":
    an added, edited or deleted package moves the count or the newest modification time.
    """
    from liberacion.download.session import fetch_document

    parts = urlsplit(source.url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("rows", "start", "sort")]
    query += [("sort", "metadata_modified desc"), ("rows", "1"), ("start", "0")]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    try:
        doc = fetch_document(url, headers={"Accept": "application/json"})
        packages, total, _ = _ckan_page(load_json(doc.content, url=url, content_type=doc.content_type), url)
    except SourceError:
        return None  # no token: the search is read whole, as it always could be
    newest = _string(packages[0].get("metadata_modified")) if packages else None
    return f"ckan:{total}:{newest}" if newest and total is not None else None


def _discover_ckan(source: Source, catalog: str, *, token: str | None = None) -> Listing:
    from liberacion.download.session import fetch_document

    if token and _ckan_change_token(source) == token:
        return Listing([], etag=token, unchanged=True)
    rows = int(source.options.get("rows", CKAN_ROWS))
    newest: str | None = None
    max_pages = int(source.options.get("max_pages", CKAN_MAX_PAGES))
    found: list[_Item] = []
    seen: set[str] = set()  # the packages read so far, by key: the count is of distinct ones
    notes: list[str] = []
    left_out: Counter[str] = Counter()
    start, total = 0, 0
    for _ in range(max_pages):
        url = _with_params(source.url, {"rows": str(rows), "start": str(start)})
        doc = fetch_document(url, headers={"Accept": "application/json"})
        answer = load_json(doc.content, url=url, content_type=doc.content_type)
        packages, total, malformed = _ckan_page(answer, url)
        for package in packages:
            modified = _string(package.get("metadata_modified"))
            newest = max(newest, modified) if newest and modified else newest or modified
        page = list(_ckan_datasets(packages, catalog))
        new = {key for key, _, _ in page} - seen
        if new or not packages:  # a page sent again adds nothing and is not counted again
            found.extend(page)
            left_out[NOT_AN_OBJECT] += malformed
        seen |= new
        # A server may answer fewer rows than asked (its rows_max): the count says when it is done.
        answered = len(packages) + malformed
        start += answered
        if start >= total:
            break
        if not packages:  # a count the pages never reach: stop rather than ask again forever
            notes.append(f"the search answered an empty page at {start:,} of {total:,} packages")
            break
        if not new:  # a server that ignores ``start`` answers its first page again, and again
            notes.append(
                f"the search answered only packages it had already sent when asked from {start - answered:,};"
                f" {len(seen):,} of {total:,} packages read (the server may ignore `start`)"
            )
            break
    else:
        notes.append(f"stopped at the page cap ({max_pages} pages, {start:,} of {total:,} packages)")
    datasets = _one_per_item(found, left_out)
    if not datasets and not total:
        raise SourceError(f"{source.url}: the search found no datasets")
    # The change token the next discover compares with (see _ckan_change_token); none when the
    # search was not read whole (the cap, an empty page), since the newest package may be unread.
    token = f"ckan:{total}:{newest}" if newest and not notes else None
    return Listing(_unique(datasets, left_out), etag=token, notes=notes, left_out=_counted(left_out))


def _with_params(url: str, params: dict[str, str], *, keep: bool = True) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if keep and k not in params]
    if keep and "sort" not in dict(query) and "rows" in params:  # a total order keeps pages stable
        query.append(("sort", "id asc"))
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# -- bodies ------------------------------------------------------------------------------------


def load_json(body: bytes, *, url: str, content_type: str | None = None) -> Any:
    """Decode a listing, refusing HTML pages, empty bodies, invalid JSON and error documents."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:  # some agency files are cp1252
        text = body.decode("cp1252", errors="replace")
    head = text[:512].lstrip()
    if not head:
        raise SourceError(f"{url}: empty response instead of a JSON listing")
    if head.startswith("<"):
        kind = "an HTML page" if "html" in head[:100].lower() or "html" in (content_type or "") else "XML/HTML"
        raise SourceError(f"{url}: got {kind} instead of a JSON listing (blocked, moved or an error page?)")
    try:
        doc = json.loads(text)
        if _HALF_ESCAPE.search(text):
            doc = _whole_characters(doc)
    except json.JSONDecodeError as err:
        # Some of the decoder's messages end in "at" ("Unterminated string starting at"): say it once.
        reason = err.msg.removesuffix(" at")
        raise SourceError(f"{url}: invalid JSON ({reason} at line {err.lineno} column {err.colno})") from None
    except RecursionError:  # Python's decoder stops at its recursion limit (about 1,000 levels)
        raise SourceError(f"{url}: JSON nested too deeply to be a listing") from None
    if isinstance(doc, dict) and doc.get("error"):
        raise SourceError(f"{url}: the server answered with an error: {_error_message(doc)}")
    if isinstance(doc, dict) and doc.get("success") is False:
        raise SourceError(f"{url}: the server answered with an error: {_error_message(doc)}")
    return doc


def _whole_characters(value: Any) -> Any:
    """``value`` with each lone half of a UTF-16 pair in its strings (keys too) as U+FFFD."""
    if isinstance(value, str):
        return _LONE_HALF.sub("\ufffd", value)
    if isinstance(value, list):
        return [_whole_characters(v) for v in value]
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    return value


def _error_message(doc: dict[str, Any]) -> str:
    error = doc.get("error")
    for candidate in (
        doc.get("message"),
        error.get("message") if isinstance(error, dict) else None,
        error if isinstance(error, str) else None,
        doc.get("code"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())[:200]
    return json.dumps(error)[:200]


def parse_listing(
    kind: str, body: bytes, catalog: str, *, url: str = "listing", content_type: str | None = None
) -> list[Dataset]:
    """Parse one listing body of ``kind``; a listing without datasets is an error."""
    return read_listing(kind, body, catalog, url=url, content_type=content_type).datasets


def read_listing(
    kind: str, body: bytes, catalog: str, *, url: str = "listing", content_type: str | None = None
) -> Listing:
    """One listing body of ``kind``: its datasets, notes and the records it left out."""
    try:
        return _parse_listing(kind, body, catalog, url=url, content_type=content_type)
    except RecursionError:  # a value nested just under the decoder's limit, met again while parsing
        raise SourceError(f"{url}: JSON nested too deeply to be a listing") from None


def _parse_listing(kind: str, body: bytes, catalog: str, *, url: str, content_type: str | None) -> Listing:
    left_out: Counter[str] = Counter()
    notes: list[str] = []
    streamed = _stream_dcat(body, catalog, url=url, left_out=left_out) if kind in ("dcat-us", "socrata") else None
    if streamed:
        return Listing(_unique(streamed, left_out), left_out=_counted(left_out))
    doc = load_json(body, url=url, content_type=content_type)
    if kind in ("dcat-us", "socrata"):
        datasets = parse_dcat(doc, catalog, url=url, left_out=left_out)
    elif kind == "dkan":
        datasets = parse_dkan(doc, catalog, url=url, left_out=left_out)
    elif kind == "openfda":
        datasets = parse_openfda(doc, catalog, url=url, left_out=left_out, notes=notes)
    elif kind == "ckan":
        packages, _, malformed = _ckan_page(doc, url)
        left_out[NOT_AN_OBJECT] += malformed
        datasets = _one_per_item(_ckan_datasets(packages, catalog), left_out)
    else:
        raise SourceError(f"{url}: unknown kind of listing {kind!r}")
    if not datasets:
        raise SourceError(f"{url}: the listing has no public datasets")
    return Listing(_unique(datasets, left_out), notes=notes, left_out=_counted(left_out))


def _counted(left_out: Counter[str]) -> dict[str, int]:
    """The reasons that left a record out (a reason met no time is no reason)."""
    return {reason: n for reason, n in left_out.items() if n > 0}


def _unique(datasets: list[Dataset], left_out: Counter[str]) -> list[Dataset]:
    """``unique_ids``, counting the exact repeats it keeps once."""
    kept = unique_ids(datasets)
    if len(kept) < len(datasets):
        left_out[REPEATED] += len(datasets) - len(kept)
    return kept


def unique_ids(datasets: list[Dataset]) -> list[Dataset]:
    """Ids unique within one listing, decided by the records alone, never by their order.

    An id that one record derives stays as it is. When several records derive the same id
    (healthdata.gov's ``<uuid>_1``, ``<uuid>_2``... all hold one UUID), none of them keeps it:
    "the first" would change when the publisher reorders the listing, and a ref, and the table
    refreshed from it, would silently switch datasets. Each is named instead by the first of these
    that no other record shares: its own identifier (``<uuid>_1``), the id with a short hash of its
    identifier, of identifier and title, of the whole record. A record that repeats another
    exactly is the same dataset and is kept once.
    """
    derived = Counter(d.id for d in datasets)
    if len(derived) == len(datasets):
        return datasets
    taken = set(derived)  # the id of a collision is retired, never handed to some other record
    copies: dict[tuple[str, str], Dataset] = {}  # (id, content) → the record; a repeat adds nothing
    for dataset in datasets:
        if derived[dataset.id] > 1:
            copies.setdefault((dataset.id, _record_digest(dataset)), dataset)
    pending = list(copies.values())
    renamed: dict[int, str] = {}
    for naming in _COLLISION_NAMES:
        names = [(d, naming(d)) for d in pending]
        counts = Counter(name for _, name in names if name)
        pending = []
        for dataset, name in names:
            if name and counts[name] == 1 and name not in taken:
                renamed[id(dataset)] = name
            else:
                pending.append(dataset)
        taken.update(renamed.values())
    for dataset in pending:  # two contents whose short hashes agree: the whole hash tells them apart
        renamed[id(dataset)] = safe_id(f"{dataset.id}-{_record_digest(dataset)}")
    result = []
    for dataset in datasets:
        if derived[dataset.id] == 1:
            result.append(dataset)
        elif id(dataset) in renamed:
            dataset.id = renamed[id(dataset)]
            result.append(dataset)
    return result


def _own_identifier(dataset: Dataset) -> str | None:
    """The publisher's identifier made an id; none for an identifier URL (a hash names those)."""
    identifier = dataset.extra.get("identifier")
    if not isinstance(identifier, str) or is_web_url(identifier):
        return None
    return safe_id(identifier)


def _short_hash(*parts: object) -> str:
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()[:8]


def _record_digest(dataset: Dataset) -> str:
    content = {k: v for k, v in dataset.to_dict().items() if k != "id"}
    # The ftp:// files kept since: a digest that names a record's id is of what was kept before.
    content["distributions"] = [d for d in content["distributions"] if is_web_url(d["url"])]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


# How unique_ids names the records of a collision, most readable first.
_COLLISION_NAMES: tuple[Callable[[Dataset], str | None], ...] = (
    _own_identifier,
    lambda d: safe_id(f"{d.id}-{_short_hash(d.extra['identifier'])}") if d.extra.get("identifier") else None,
    lambda d: safe_id(f"{d.id}-{_short_hash(d.extra.get('identifier'), d.title)}"),
    lambda d: safe_id(f"{d.id}-{_record_digest(d)[:8]}"),
)


# A record read from a listing: its key, the dataset or why it is left out, and whether it is a
# record of its own (an entry of a ``dataset`` array), not a reference to one (a DCAT-US 3.0 series
# member, a package CKAN sends again while paging): a reference is counted only as its first copy.
_Item = tuple[str, Dataset | str, bool]


def _one_per_item(found: Iterable[_Item], left_out: Counter[str] | None = None) -> list[Dataset]:
    """One dataset per key (a record repeated in one listing), whichever position each copy has.

    Copies that differ are decided by their content: the newest ``modified``, then the most files,
    then the content itself. A record that is not public or has no key is skipped on its own, so it
    never hides a public copy. ``left_out`` counts, by reason, the records not kept: each skipped
    record, and each further copy of a record (a reference to one is no copy).
    """
    left_out = Counter() if left_out is None else left_out
    chosen: dict[str, Dataset] = {}
    ranks: dict[str, tuple[str, int, str]] = {}  # of the held copy, once a second copy came
    seen: set[str] = set()  # every key met, kept or not
    records: set[str] = set()  # keys a record of its own made a dataset of
    for key, dataset, listed in found:
        first = key not in seen
        seen.add(key)
        if isinstance(dataset, str):
            if listed or first:
                left_out[dataset] += 1
            continue
        if listed:
            if key in records:
                left_out[REPEATED] += 1
            records.add(key)
        if key not in chosen:
            chosen[key] = dataset
            continue
        if dataset == chosen[key]:  # the same object again (a 3.0 series member, its first, its last)
            continue
        held = ranks.get(key) or _preference(chosen[key])
        rank = _preference(dataset)
        chosen[key], ranks[key] = (dataset, rank) if rank > held else (chosen[key], held)
    return list(chosen.values())


def _preference(dataset: Dataset) -> tuple[str, int, str]:
    content = json.dumps(dataset.to_dict(), sort_keys=True, default=str)
    return dataset.modified or "", len(dataset.distributions), content


# -- DCAT-US 1.1 and 3.0 -----------------------------------------------------------------------


def parse_dcat(doc: Any, catalog: str, *, url: str = "listing", left_out: Counter[str] | None = None) -> list[Dataset]:
    if not isinstance(doc, dict):
        raise SourceError(f"{url}: expected a DCAT-US catalog (a JSON object with a dataset array)")
    left_out = Counter() if left_out is None else left_out
    items = _dcat_items(doc, 0, left_out)
    return _one_per_item(((_item_key(i), _dcat_record(i, catalog, None), listed) for i, listed in items), left_out)


def _stream_dcat(body: bytes, catalog: str, *, url: str, left_out: Counter[str]) -> list[Dataset] | None:
    """The datasets of a large DCAT-US 1.1 listing read one item at a time (ijson), so the whole
    document is never held as Python objects (a few times its size); as fast as ``json.loads``.

    None when the whole-document parser must decide: a small listing, a DCAT-US 3.0 catalog (its
    series, services and nested catalogs), a body that is not UTF-8 JSON, or no dataset array."""
    import io

    import ijson

    if len(body) <= STREAM_BYTES or _NESTING_KEYS.search(body):
        return None
    source = io.BytesIO(body)
    if body.startswith(b"\xef\xbb\xbf"):
        source.seek(3)
    items = ijson.items(source, "dataset.item", use_float=True)
    counted: Counter[str] = Counter()  # added to ``left_out`` only when this parse stands
    try:
        datasets = _one_per_item(_listed_dcat_items(items, catalog, counted), counted)
    except ijson.JSONError:
        return None  # invalid, or another encoding: the whole-document parser says which
    if datasets:
        left_out.update(counted)
    return datasets or None


def _listed_dcat_items(items: Iterable[Any], catalog: str, left_out: Counter[str]) -> Iterator[_Item]:
    for item in items:
        if isinstance(item, dict):
            yield _item_key(item), _dcat_record(item, catalog, None), True
        else:
            left_out[NOT_AN_OBJECT] += 1


def _item_key(item: dict[str, Any]) -> str:
    """Two records of one listing are one dataset when identifier and title agree."""
    return json.dumps(item.get("identifier"), sort_keys=True) + str(item.get("title"))


def _dcat_items(doc: dict[str, Any], depth: int, left_out: Counter[str]) -> Iterator[tuple[dict[str, Any], bool]]:
    """Datasets of a 1.1 catalog, and in 3.0 also those of series, services and nested catalogs
    (the same dataset may come several times: ``_one_per_item`` keeps one), each with whether it
    is an entry of a ``dataset`` array (a record) or a reference to one. An entry that is not an
    object is counted in ``left_out``."""
    for item in _as_list(doc.get("dataset")):
        if isinstance(item, dict):
            yield item, True
        else:
            left_out[NOT_AN_OBJECT] += 1
    references: list[Any] = []
    for series in _as_list(doc.get("datasetSeries")):
        if isinstance(series, dict):
            references.extend([*_as_list(series.get("seriesMember")), series.get("first"), series.get("last")])
    for service in _as_list(doc.get("service")):
        if isinstance(service, dict):
            references.extend(_as_list(service.get("servesDataset")))
    yield from ((item, False) for item in references if isinstance(item, dict))
    if depth < MAX_NESTING:
        for child in [*_as_list(doc.get("catalog")), *_as_list(doc.get("hasPart"))]:
            if isinstance(child, dict):
                yield from _dcat_items(child, depth + 1, left_out)


def _dcat_dataset(item: dict[str, Any], catalog: str, kind: str | None) -> Dataset | None:
    found = _dcat_record(item, catalog, kind)
    return found if isinstance(found, Dataset) else None


def _dcat_record(item: dict[str, Any], catalog: str, kind: str | None) -> Dataset | str:
    """The dataset of one record, or why it is left out (``NOT_PUBLIC``, ``NO_IDENTIFIER``)."""
    access = item.get("accessLevel")
    if isinstance(access, str) and access.strip().lower() != "public":
        return NOT_PUBLIC
    identifier = _identifier(item.get("identifier"))
    distributions = [d for x in _as_list(item.get("distribution")) for d in _dcat_distributions(x)]
    # Ids and change tokens come from the files liberacion can download, as before ftp:// ones were kept.
    web = [d for d in distributions if is_web_url(d.url)]
    landing = _url(item.get("landingPage"))
    basis = identifier or landing or (web[0].url if web else None)
    if not basis:
        return NO_IDENTIFIER  # no stable key: a title is not one
    view = _VIEW_ID.search(identifier or "") or next((m for d in web if (m := _VIEW_ID.search(d.url))), None)
    source_kind = kind or ("socrata" if view else "dcat-us")
    extra: dict[str, Any] = {"identifier": identifier or basis}
    if view and source_kind == "socrata":
        host = urlsplit(identifier if _VIEW_ID.search(identifier or "") else view.string)
        extra["socrata_domain"] = f"{host.scheme}://{host.netloc}"
    for key, name in (
        ("temporal", "temporal"),
        ("accrualPeriodicity", "accrual_periodicity"),
        ("issued", "issued"),
        ("released", "released"),
        ("nextUpdateDate", "next_update"),
    ):
        value = item.get(key)
        if isinstance(value, str) and value:
            extra[name] = value
    if described := _url(item.get("describedBy")):
        extra["described_by"] = described
    modified = _string(item.get("modified"))
    title = _display(item.get("title")) or basis
    return Dataset(
        catalog=catalog,
        id=_dataset_id(identifier, view.group(1) if view else None, basis),
        title=title,
        distributions=distributions,
        description=_display(item.get("description")),
        publisher=_publisher(item.get("publisher")),
        keywords=_keywords(item.get("keyword")),
        modified=_iso_time(modified),
        landing_page=landing,
        source_kind=source_kind,
        change_token=_change_token(source_kind, item, web, modified),
        extra=extra,
    )


def _dcat_distributions(raw: Any) -> list[Distribution]:
    """One listing entry as files: each URL of a ``downloadURL`` (some join two with a comma), and
    the ``accessURL`` too when it differs (old DKAN listings put the file itself there)."""
    if not isinstance(raw, dict):
        return []
    if isinstance(raw.get("data"), dict):  # DKAN with show-reference-ids wraps each distribution
        raw = raw["data"]
    downloads, accesses = _urls(raw.get("downloadURL")), _urls(raw.get("accessURL"))
    media_type = _string(raw.get("mediaType"))
    label = _string(raw.get("format"))
    common = {
        "title": _display(raw.get("title")) or _display(raw.get("description")),
        "byte_size": _int(raw.get("byteSize")),
        "modified": _string(raw.get("modified")),
        "temporal": _string(raw.get("temporal")),
        "issued": _string(raw.get("issued")),
    }
    found = [
        Distribution(url=url, media_type=media_type, format=normalize_format(url, media_type, label), **common)
        for url in downloads
    ]
    is_api = (label or "").strip().upper() == "API"
    for url in accesses:
        if url in downloads:
            continue
        # The media type and label describe the download when there is one; an access URL alone
        # is described by them (an API, a landing page, or a file).
        fmt = normalize_format(url) if downloads else normalize_format(url, media_type, label)
        if is_api and not downloads:
            fmt = "api"
        found.append(
            Distribution(url=url, media_type=None if downloads else media_type, format=fmt, kind="access", **common)
        )
    return found


def _change_token(kind: str, item: dict[str, Any], dists: list[Distribution], modified: str | None) -> str | None:
    if kind == "dkan":  # the file path carries <md5>_<epoch> and changes with every refresh
        for dist in dists:
            if match := _DKAN_RESOURCE.search(dist.url):
                return match.group(1)
        released = _string(item.get("released"))
        return f"{modified}/{released}" if released else modified
    return modified


def _dataset_id(identifier: str | None, view_id: str | None, basis: str) -> str:
    """Stable ids: the Socrata 4x4, a UUID, the identifier itself, or a slug of an identifier URL."""
    if view_id:
        return view_id.lower()
    text = identifier or basis
    if match := _UUID.search(text):
        return match.group(0).lower()
    if not is_web_url(text):
        return safe_id(text)
    parts = urlsplit(text)
    segments = [s for s in parts.path.split("/") if s]
    while segments and segments[-1].lower() in _GENERIC_SEGMENTS:
        segments.pop()
    return safe_id(segments[-1] if segments else parts.netloc)


# -- DKAN --------------------------------------------------------------------------------------


def parse_dkan(doc: Any, catalog: str, *, url: str = "listing", left_out: Counter[str] | None = None) -> list[Dataset]:
    if not isinstance(doc, list):
        raise SourceError(f"{url}: expected a DKAN metastore listing (a JSON array of dataset items)")
    left_out = Counter() if left_out is None else left_out
    if malformed := sum(not isinstance(i, dict) for i in doc):
        left_out[NOT_AN_OBJECT] += malformed
    items = ((_item_key(i), _dcat_record(i, catalog, "dkan"), True) for i in doc if isinstance(i, dict))
    return _one_per_item(items, left_out)


# -- openFDA -----------------------------------------------------------------------------------


def parse_openfda(
    doc: Any,
    catalog: str,
    *,
    url: str = "listing",
    left_out: Counter[str] | None = None,
    notes: list[str] | None = None,
) -> list[Dataset]:
    """One dataset per endpoint. An endpoint is left out (and counted) when none of its partitions
    has an http(s) file; the partitions without one are said in ``notes``, since the endpoint's
    table lacks their records."""
    if isinstance(doc, dict) and isinstance(doc.get("downloadQuery"), dict):  # FDA's documented excerpt
        doc = doc["downloadQuery"]
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict):
        raise SourceError(f"{url}: expected openFDA download.json (an object with results.<category>.<endpoint>)")
    left_out = Counter() if left_out is None else left_out
    notes = [] if notes is None else notes
    datasets = []
    for category, endpoints in results.items():
        if not isinstance(endpoints, dict):
            left_out[NOT_AN_OBJECT] += 1
            continue
        for endpoint, info in endpoints.items():
            if not isinstance(info, dict):
                left_out[NOT_AN_OBJECT] += 1
                continue
            dataset = _openfda_dataset(str(category), str(endpoint), info, catalog)
            if missing := dataset.extra.get("partitions_without_url"):
                notes.append(_missing_partitions_note(dataset, missing))
            if dataset.distributions:
                datasets.append(dataset)
            else:
                left_out[NO_FILE_URL] += 1
    return datasets


def _missing_partitions_note(dataset: Dataset, missing: int) -> str:
    endpoint, kept = dataset.extra["endpoint"], len(dataset.distributions)
    if kept:
        listed = f"{missing:,} of its {missing + kept:,} partitions"
        outcome = f"fetch takes the other {kept:,}, so its table lacks their records"
    else:
        listed, outcome = ("its partition" if missing == 1 else f"its {missing:,} partitions"), "it is left out"
    verb = "has" if missing == 1 else "have"
    return f"openFDA {endpoint}: {listed} {verb} no http(s) file URL: {outcome}"


def _openfda_dataset(category: str, endpoint: str, info: dict[str, Any], catalog: str) -> Dataset:
    parts = []
    listed = info["partitions"] if isinstance(info.get("partitions"), list) else []
    for raw in listed:
        if not isinstance(raw, dict) or not is_web_url(raw.get("file")):
            continue  # counted below (FDA's own examples carry a {"…": "…"} placeholder)
        size_mb = _float(raw.get("size_mb"))
        parts.append(
            Distribution(
                url=raw["file"].strip(),
                media_type="application/zip",
                format=normalize_format(raw["file"]),
                title=_display(raw.get("display_name")),
                byte_size=int(size_mb * 1_000_000) if size_mb is not None else None,
            )
        )
    export_date = _string(info.get("export_date"))
    total = _int(info.get("total_records"))
    records = f"{total:,} records in " if total is not None else ""
    missing = len(listed) - len(parts)
    partitions = f"{len(parts)} partition(s)." + (f" {missing:,} more listed without a file URL." if missing else "")
    extra: dict[str, Any] = {"endpoint": f"{category}/{endpoint}", "total_records": total, "partitions": len(parts)}
    if missing:
        extra["partitions_without_url"] = missing
    return Dataset(
        catalog=catalog,
        id=safe_id(f"{category}-{endpoint}"),
        title=f"openFDA {category} {endpoint}",
        distributions=parts,
        description=f"openFDA bulk download of the {category}/{endpoint} endpoint: {records}{partitions}",
        publisher="U.S. Food and Drug Administration",
        keywords=[category, endpoint],
        modified=export_date,
        source_kind="openfda",
        change_token=export_date,
        extra=extra,
    )


# -- CKAN --------------------------------------------------------------------------------------


def _ckan_page(answer: Any, url: str) -> tuple[list[dict[str, Any]], int, int]:
    """A page's packages (those that are objects), the search's count, and how many of the page's
    results are not objects."""
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("results"), list):
        raise SourceError(f"{url}: expected a CKAN package_search answer (result.results)")
    packages = [p for p in result["results"] if isinstance(p, dict)]
    count = _int(result.get("count"))
    return packages, count if count is not None else len(packages), len(result["results"]) - len(packages)


def _ckan_datasets(packages: list[dict[str, Any]], catalog: str) -> Iterator[_Item]:
    """Each package with the key that says it is the same package again (counts shift while
    paging, so one may come twice: a copy is not counted as a record left out; a package without
    a key is one of its own)."""
    for package in packages:
        key = _string(package.get("id")) or _string(package.get("name")) or ""
        yield key, _ckan_record(package, catalog), not key


def _ckan_dataset(package: dict[str, Any], catalog: str) -> Dataset | None:
    found = _ckan_record(package, catalog)
    return found if isinstance(found, Dataset) else None


def _ckan_record(package: dict[str, Any], catalog: str) -> Dataset | str:
    """The dataset of one package, or why it is left out (``NOT_PUBLIC``, ``NO_IDENTIFIER``)."""
    raw_extras = package.get("extras")
    if isinstance(raw_extras, dict):
        extras = raw_extras
    else:
        extras = {e["key"]: e.get("value") for e in _as_list(raw_extras) if isinstance(e, dict) and "key" in e}
    access = extras.get("accessLevel")
    if isinstance(access, str) and access.strip().lower() != "public":
        return NOT_PUBLIC
    name = _string(package.get("name")) or _string(package.get("id"))
    if not name:
        return NO_IDENTIFIER
    distributions = [d for r in _as_list(package.get("resources")) for d in _ckan_resources(r)]
    organization = package.get("organization") if isinstance(package.get("organization"), dict) else {}
    modified = _string(extras.get("modified")) or _string(package.get("metadata_modified"))
    tags = [t.get("name") if isinstance(t, dict) else t for t in _as_list(package.get("tags"))]
    return Dataset(
        catalog=catalog,
        id=safe_id(name),
        title=_display(package.get("title")) or name,
        distributions=distributions,
        description=_display(package.get("notes")),
        publisher=_display(extras.get("publisher"))
        or _display(organization.get("title"))
        or _display(package.get("author")),
        keywords=_keywords(tags),
        modified=_iso_time(modified),
        landing_page=_url(extras.get("landingPage")) or _url(package.get("url")),
        source_kind="ckan",
        change_token=modified,  # as published: a token a snapshot recorded must not change
        extra={"identifier": _string(extras.get("identifier")) or name, "ckan_id": _string(package.get("id"))},
    )


def _ckan_resources(raw: Any) -> list[Distribution]:
    if not isinstance(raw, dict):
        return []
    label, media_type = _string(raw.get("format")), _string(raw.get("mimetype"))
    found = []
    for url in _urls(raw.get("url")):
        fmt = normalize_format(url, media_type, label)
        if (label or "").strip().upper() == "API":
            fmt = "api"
        found.append(
            Distribution(
                url=url,
                media_type=media_type,
                format=fmt,
                title=_display(raw.get("name")),
                kind="access" if fmt in ("api", "html") else "download",
                byte_size=_int(raw.get("size")),
                modified=None,  # CKAN's resource dates are harvest times, not releases
            )
        )
    return found


# -- Socrata view metadata ---------------------------------------------------------------------


def dataset_from_socrata_view(view: dict[str, Any], catalog: str, origin: str) -> Dataset:
    """A dataset from ``/api/views/<4x4>.json`` (also embedded as ``meta.view`` in rows.json exports).

    ``origin`` is ``scheme://host`` of the Socrata site.
    """
    view_id = safe_id(str(view.get("id")))
    base = f"{origin}/api/views/{view_id}"
    tabular = view.get("viewType", "tabular") == "tabular"
    distributions = []
    if tabular:
        distributions = [
            Distribution(f"{base}/rows.csv?accessType=DOWNLOAD", "text/csv", "csv", "bulk CSV export"),
            Distribution(f"{base}/rows.json?accessType=DOWNLOAD", "application/json", "json", "bulk JSON export"),
        ]
    elif view.get("blobId"):
        filename = str(view.get("blobFilename") or view_id)
        url = f"{base}/files/{view['blobId']}?download=true&filename={filename}"
        distributions = [Distribution(url, _string(view.get("blobMimeType")), normalize_format(filename), filename)]
    rows_updated = _int(view.get("rowsUpdatedAt"))
    columns = [
        {
            "field_name": c.get("fieldName"),
            "name": c.get("name"),
            "type": c.get("dataTypeName"),
            "description": _display(c.get("description")),
        }
        for c in _as_list(view.get("columns"))
        if isinstance(c, dict)
        and not str(c.get("fieldName", "")).startswith(":")
        and "hidden" not in (c.get("flags") or [])
    ]
    tags = _keywords(view.get("tags"))
    return Dataset(
        catalog=catalog,
        id=view_id,
        title=_display(view.get("name")) or view_id,
        distributions=distributions,
        description=_display(view.get("description")),
        publisher=_display(view.get("attribution")),
        keywords=tags,
        modified=_epoch(rows_updated or _int(view.get("viewLastModified"))),
        landing_page=f"{origin}/d/{view_id}",
        source_kind="socrata",
        change_token=str(rows_updated) if rows_updated is not None else None,
        extra={
            "identifier": base,
            "socrata_domain": origin,
            "columns": columns,
            "rows_updated_at": rows_updated,
            "view_last_modified": _int(view.get("viewLastModified")),
            "category": _display(view.get("category")),
        },
    )


# -- lenient field readers ---------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    """Publishers give a single value where the spec says array: accept both."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _string(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _display(value: Any) -> str | None:
    """Display text: HTML entities unescaped (HHS writes ``&amp;``), tags taken out (CKAN's notes
    are HTML: ``<p>The following dataset ... <strong>``), non-breaking and zero-width spaces as a
    space and nothing."""
    text = _string(value)
    if text is None:
        return None
    text = html.unescape(text).replace("\u00a0", " ")
    if "<" in text:  # a paragraph's or a line's tag parts words; <strong> and <a> do not
        text = _SPACES.sub(" ", _TAGS.sub(lambda tag: " " if tag.group(1).lower() in _BLOCKS else "", text))
    return text.translate(_INVISIBLE).strip() or None


_TAGS = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)[^<>]*>")  # a tag, not "<5 years"
_BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5", "h6"})
_SPACES = re.compile(r"[ \t]{2,}")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _iso_time(text: str | None) -> str | None:
    """A listing's date as ISO 8601, so that the index sorts by it: Drupal's ``Sun, 12/13/2020 -
    22:40`` (healthdata.gov's old CKAN), ``12/13/2020``, an e-mail date. ISO text, and anything
    else (``R/P1W``), is kept as published."""
    if text is None or _ISO_START.match(text):
        return text
    for spelling in ("%a, %m/%d/%Y - %H:%M", "%m/%d/%Y - %H:%M", "%m/%d/%Y"):
        try:
            when = datetime.strptime(text.strip(), spelling)
        except ValueError:
            continue
        return when.isoformat() if "%H" in spelling else when.date().isoformat()
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError):
        return text


_ISO_START = re.compile(r"\d{4}-\d{2}")


def _url(value: Any) -> str | None:
    if isinstance(value, list):  # DCAT-US 3.0 allows arrays of URLs
        value = next((v for v in value if _url(v)), None)
    if isinstance(value, dict):  # 3.0 Document {accessURL, title} or an object with @id
        value = value.get("accessURL") or value.get("@id") or value.get("downloadURL")
    if not is_web_url(value):
        return None
    return html.unescape(value.strip())


def _urls(value: Any) -> list[str]:
    """Every http(s) or ftp URL of a field: a list (DCAT-US 3.0), an object, or a string in which a
    comma or whitespace joins several URLs (each part is judged on its own). An ftp:// file is kept
    to be shown and said (``choose_files`` never takes one)."""
    if isinstance(value, list):
        return list(dict.fromkeys(u for v in value for u in _urls(v)))
    if isinstance(value, dict):
        value = value.get("accessURL") or value.get("@id") or value.get("downloadURL")
    if not isinstance(value, str):
        return []
    parts = _JOINED_URLS.split(value.strip()) if "http" in value[1:] or "ftp" in value[1:] else [value]
    return list(dict.fromkeys(html.unescape(p.strip()) for p in parts if is_web_url(p) or is_ftp_url(p)))


def _identifier(value: Any) -> str | None:
    if isinstance(value, dict):  # DCAT-US 3.0 Identifier object
        value = value.get("@id") or value.get("notation") or value.get("identifier")
    text = _string(value)
    return html.unescape(text) if text else None


def _publisher(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("prefLabel") or value.get("fn")
    return _display(value)


def _keywords(value: Any) -> list[str]:
    words = []
    for item in _as_list(value):
        text = _display(item if not isinstance(item, dict) else item.get("prefLabel") or item.get("name"))
        if text and text not in words:
            words.append(text)
    return words


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).replace(",", "")))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ""))
    except (TypeError, ValueError):
        return None


def _epoch(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
