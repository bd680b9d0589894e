"""The catalog data model: catalogs, their sources, datasets and the files datasets offer, and
which of those files is the data (``choose_files``: one rule for fetch, show and the index)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from liberacion.naming import redact_url, sanitize_identifier


@dataclass
class Distribution:
    url: str
    media_type: str | None = None
    format: str | None = None  # normalized lower-case: csv, zip, json, jsonl, xlsx, xls, xpt, xml, rdf, pdf, api, html
    title: str | None = None
    kind: str = "download"  # "download" (downloadURL: a file) | "access" (accessURL: API/landing page)
    byte_size: int | None = None
    modified: str | None = None
    temporal: str | None = None  # the period this file's data covers (DCAT ``temporal``: start/end)
    issued: str | None = None


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
        # Keys a newer version added are left aside (a home used again after a downgrade).
        fields = Distribution.__dataclass_fields__
        known["distributions"] = [
            Distribution(**{k: v for k, v in d.items() if k in fields}) for d in known.get("distributions") or []
        ]
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

    def pointer_sources(self, dataset: Dataset) -> list[Source]:
        """The listings a curated ``source_id`` pointer is looked up in: the one its ``source`` names
        (a kind or a url), else every one."""
        wanted = dataset.extra.get("source")
        if wanted is None:
            return list(self.sources)
        return [s for s in self.sources if wanted in (s.kind, s.url)]


def is_web_url(url: Any) -> bool:
    """Only http(s) URLs with a host are followed (never file:, javascript:, data: ...)."""
    return _has_scheme(url, ("http", "https"))


def is_ftp_url(url: Any) -> bool:
    """An ``ftp://`` URL with a host: listed and shown (NLM and NCBI publish there), never downloaded."""
    return _has_scheme(url, ("ftp", "ftps"))


def _has_scheme(url: Any, schemes: tuple[str, ...]) -> bool:
    if not isinstance(url, str):
        return False
    scheme, sep, rest = url.strip().partition("://")
    # A plain string test: this runs for every URL of a listing, and urlsplit is slow.
    return (
        bool(sep)
        and scheme.lower() in schemes
        and rest[:1] not in ("", "/", "\\")
        and not any(c.isspace() for c in rest.split("/", 1)[0])
    )


CATALOG_PUBLISHER = "publisher_from_catalog"  # Dataset.extra: its publisher is the manifest's top-level default


def merge_curated(curated: Dataset, found: Dataset) -> Dataset:
    """The source's current metadata and files under the curated id, with the manifest's overrides.

    A ``publisher`` the dataset itself names wins, as its description and keywords do; the
    manifest's top-level one is a default that yields to the listing's."""
    extra = {**found.extra, **curated.extra, "source_ref": found.ref}
    if curated.extra.get(CATALOG_PUBLISHER):
        publisher = found.publisher or curated.publisher
    else:
        publisher = curated.publisher or found.publisher
    return Dataset(
        catalog=curated.catalog,
        id=curated.id,
        title=curated.title if curated.title != curated.id else found.title,
        distributions=found.distributions,
        description=curated.description or found.description,
        publisher=publisher,
        keywords=curated.keywords or found.keywords,
        modified=found.modified,
        landing_page=curated.landing_page or found.landing_page,
        source_kind=found.source_kind,
        format=curated.format,
        columns=curated.columns,
        change_token=found.change_token,
        extra=extra,
    )


# -- which file is the data --------------------------------------------------------------------

# Lower is better: CSV-like text first (zipped or not), then other tabular files, JSON last.
DATA_RANK = {
    "csv": 0,
    "tsv": 1,
    "txt": 2,
    "zip": 3,
    "gz": 4,
    "parquet": 5,
    "xlsx": 6,
    "xpt": 7,
    "sas7bdat": 8,
    "dta": 9,
    "sav": 10,
    "xls": 11,
    "ods": 12,
    "jsonl": 13,
    "json": 14,
    "geojson": 15,
}
UNKNOWN_RANK = 99  # a download whose format no listing field names: the converter sniffs its bytes
DOCUMENTS = frozenset({"pdf", "doc", "docx", "rtf", "ppt", "pptx", "image"})
PAGES = frozenset({"html", "rss", "atom"})
WHY_NOT = (
    "no distribution",
    "only on FTP",  # its data files are ftp:// URLs, which liberacion does not download
    "only a landing page",
    "only documents",
    "API only",
    "unsupported format",
    "listing not read",  # a curated pointer whose catalog listing could not be read (offline)
    "not in the listing",  # a curated pointer its listing, read fine, does not list (a wrong source_id)
    "not in the manifest's format",  # a curated pointer whose source offers no file of its `format`
)


@dataclass
class Choice:
    """The file(s) ``fetch`` takes from a dataset and why; or, when none, why not (one of ``WHY_NOT``)."""

    files: list[Distribution]
    reason: str
    why_not: str | None = None

    @property
    def fetchable(self) -> bool:
        return bool(self.files)


def choose_files(dataset: Dataset, *, listing_read: bool = False) -> Choice:
    """Which file(s) are the dataset's data: one rule for ``fetch``, ``show`` and the index.

    Data files only (never a page, a document, a feed or the catalog itself), the newest release
    by its data period (then by its dates), CSV-like text over other formats, a bulk file over a
    paged API, every partition for openFDA. Data files only on FTP are never taken: the reason says
    what to do. ``listing_read``: for a curated pointer the index could not match, whether its
    listing was read (then the listing does not list it).
    """
    files = [d for d in dataset.distributions if is_web_url(d.url)]
    candidates = [d for d in files if is_data_file(d)]
    documents: list[Distribution] = []
    if dataset.source_kind != "manifest":  # a manifest's own URLs were chosen by a person
        documents = [d for d in candidates if names_a_document(d, dataset.title)]
        if len(documents) < len(candidates):
            candidates = [d for d in candidates if d not in documents]
        else:  # every data file reads as a document: they are the data all the same, never nothing
            documents = []
    if (unmet := _unmet_format(dataset, candidates)) is not None:
        return unmet
    if dataset.source_kind == "openfda" and candidates:
        when = f" of the {dataset.change_token} export" if dataset.change_token else ""
        note = "(openFDA publishes an endpoint as partitions)"
        return Choice(candidates, f"all {len(candidates)} partition(s){when} {note}{_unlisted_partitions(dataset)}")
    if dataset.extra.get("all_files") and candidates:
        return Choice(candidates, f"all {len(candidates)} file(s) the manifest lists, as one table")
    if dataset.format and any(d.format == dataset.format for d in candidates):
        candidates = [d for d in candidates if d.format == dataset.format]
        if len(candidates) == 1:
            return Choice(candidates, f"the {dataset.format} file the manifest asks for")
    if candidates:
        latest, note = latest_release(candidates, dataset.title)
        best, tie_note = _best_of(latest)
        return Choice([best], _reason(best, _joined(note, tie_note, _set_aside(documents))))
    apis = [d for d in files if is_paged_api(d.url)]
    if apis:
        return Choice([apis[0]], "no bulk file is listed: the paged API")
    if dataset.source_kind == "manifest" and not dataset.distributions:
        # A pointer the index could not match; fetch looks its file up from the source, online.
        return Choice([], "", "not in the listing" if listing_read else "listing not read")
    ftp = [d for d in dataset.distributions if is_ftp_url(d.url)]
    if on_ftp := [d for d in ftp if not names_a_document(d, dataset.title)]:
        return Choice([], _ftp_reason(dataset, on_ftp), "only on FTP")
    return Choice([], "", _why_not(files + ftp))


def _unlisted_partitions(dataset: Dataset) -> str:
    """The partitions download.json lists without a file URL: the table will lack their records."""
    missing = dataset.extra.get("partitions_without_url")
    if not isinstance(missing, int) or missing <= 0:
        return ""
    return f"; {missing} more listed without a file URL, so the table lacks their records"


def _ftp_reason(dataset: Dataset, on_ftp: list[Distribution]) -> str:
    """What to do about data liberacion cannot download: get it by hand, then fetch the file."""
    if len(on_ftp) == 1:  # often a folder (ftp://ftp.ncbi.nlm.nih.gov/gene/): named whole
        where = redact_url(on_ftp[0].url.strip())
    else:
        hosts = sorted({urlsplit(d.url.strip()).hostname or "" for d in on_ftp} - {""})
        where = f"{len(on_ftp)} files on {', '.join(hosts)}"
    return (
        f"its data is only on FTP ({where}), which liberacion does not download: download the file you"
        f" want by hand, then run: liberacion fetch FILE --as {dataset.table}"
    )


def _unmet_format(dataset: Dataset, candidates: list[Distribution]) -> Choice | None:
    """A manifest's ``format`` its source offers no file of (``xlsx`` where a Socrata view has CSV
    and JSON): never another format in its place, which would ignore what the manifest says. Files
    whose format no listing field names may be of any format: they are sniffed, as before."""
    if not dataset.format or not candidates or any(d.format in (dataset.format, None) for d in candidates):
        return None
    offered = ", ".join(sorted({d.format for d in candidates if d.format}))
    reason = f"the manifest asks for format {dataset.format} and the source offers {offered}: change or remove `format`"
    return Choice([], reason, "not in the manifest's format")


def is_data_file(dist: Distribution) -> bool:
    """A file liberacion can convert: a ``downloadURL`` of a data format (or of none named), or an
    ``accessURL`` whose own file name is one (old DKAN listings put files there)."""
    if not _names_a_file(dist.url):
        return False
    if dist.kind == "download":
        return dist.format is None or dist.format in DATA_RANK
    from liberacion.formats import extension_format

    return extension_format(dist.url) in DATA_RANK


def names_a_document(dist: Distribution, dataset_title: str | None = None) -> bool:
    """A file its title or name calls a document about the data (a data dictionary, a record
    layout, a codebook, a methodology, a user guide, a readme, technical notes), whatever its
    format: a CSV record layout is no more the data than a PDF one.

    A word the dataset's own title holds does not count: data.cms.gov repeats the dataset's title
    in each file's ("Star Ratings Methodology Scores 2024"), and so does a file name now and then
    (``CERT_Insufficient_Documentation_2023.csv``)."""
    if dist.format in DOCUMENTS:
        return True
    terms = _document_terms(dist.title or "") | _file_name_terms(_file_stem(dist.url))
    if terms and dataset_title:
        terms -= _document_terms(dataset_title)
    return bool(terms)


def _document_terms(text: str) -> set[str]:
    """The document words standing as words in a title ("Data Dictionary", "Record layouts")."""
    return {_document_term(m.group(0)) for m in _patterns().document.finditer(text.lower())}


def _file_name_terms(stem: str) -> set[str]:
    """The document words of a file name: a phrase of its words (``code_book``, ``users_guide``),
    or a word of it that ends in one, its last part naming what the file is: ``record_layout``,
    ``DataDictionary``, ``recordlayout``, never ``PageLayoutMetrics`` (metrics)."""
    pats = _patterns()
    words = re.findall(r"[a-z]+", stem.lower())  # digits part words too: ``Layout2024``
    terms = {_document_term(m.group(0)) for m in pats.document_phrase.finditer(" ".join(words))}
    return terms | {_document_term(m.group(0)) for w in words if (m := pats.document_tail.search(w))}


def _document_term(text: str) -> str:
    """One key per document word, whatever its form: ``Dictionaries`` and ``dictionary``, ``code
    book`` and ``codebook``, so a file's words compare with its dataset title's."""
    squashed = re.sub(r"[^a-z]", "", text.lower())
    for key in _DOCUMENT_KEYS:
        if squashed.startswith(key) or (key == "userguide" and squashed.startswith("usersguide")):
            return key
    return squashed


_DOCUMENT_KEYS = ("dictionar", "layout", "codebook", "methodolog", "readme", "documentation", "userguide", "technical")


def is_paged_api(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return any(p.search(path) for p in _patterns().paged_apis)


def _names_a_file(url: str) -> bool:
    """Not a bare host (a site's home page) and not a catalog listing (``data.json``)."""
    path = urlsplit(url.strip()).path.lower().rstrip("/")
    return bool(path) and not path.endswith("/data.json")


def _why_not(files: list[Distribution]) -> str:
    if not files:
        return "no distribution"
    found = {_what_it_is(d) for d in files}
    for label in ("unsupported format", "API only", "only documents"):
        if label in found:
            return label
    return "only a landing page"


def _what_it_is(dist: Distribution) -> str:
    fmt = dist.format
    if not _names_a_file(dist.url) or fmt in PAGES:
        return "only a landing page"
    if fmt == "api" or is_paged_api(dist.url):
        return "API only"
    if names_a_document(dist):
        return "only documents"
    if dist.kind != "download" or fmt is None:  # an accessURL that names no data file is a landing page
        return "only a landing page"
    return "unsupported format"


def _file_rank(dist: Distribution) -> tuple[int, int, int]:
    bulk = 0 if _patterns().socrata_bulk.search(dist.url.lower()) else 1
    return (DATA_RANK.get(dist.format or "", UNKNOWN_RANK), 0 if dist.kind == "download" else 1, bulk)


def _set_aside(documents: list[Distribution]) -> str:
    """Says which files in a data format were not taken as documents (a CSV record layout)."""
    if not documents:
        return ""
    names = [unquote(urlsplit(d.url).path).rsplit("/", 1)[-1] or d.url for d in documents[:2]]
    more = f" and {len(documents) - 2} more" if len(documents) > 2 else ""
    return f"set aside as documents: {', '.join(names)}{more}"


def _best_of(files: list[Distribution]) -> tuple[Distribution, str]:
    """The best format among files of one release; among equals (two CSVs of one data period) the
    one the files themselves place latest, never the one the listing happens to put first: the
    latest date it carries besides its data period (``_made_at``), then its data period (an undated
    file beside a dated one), then a date in its title (data.cms.gov's ``: 2023-12-03oc2``), and
    when nothing tells them apart, its URL's text.

    Returns the file and a note for the reason ("" when the format alone decided)."""
    ranks = [_file_rank(d) for d in files]
    tied = [d for d, r in zip(files, ranks) if r == min(ranks)]
    if len(tied) < 2:
        return tied[0], ""
    keys = {id(d): _tie_key(d) for d in tied}
    best = max(tied, key=lambda d: keys[id(d)])
    return best, _tie_note(len(tied), keys[id(best)], [keys[id(d)] for d in tied])


Day = tuple[int, int, int]
_NO_DAY: Day = (0, 0, 0)  # below every date: a file that carries none


def _tie_key(dist: Distribution) -> tuple[Day, Day, Day, str]:
    return (_made_at(dist) or _NO_DAY, _period_end(dist) or _NO_DAY, _title_date(dist) or _NO_DAY, dist.url)


# What decided a tie, by the position in ``_tie_key`` where the best file first stands apart.
_TIE_REASONS = (
    "the latest by its file name, folder or dates",
    "the latest data period",
    "the latest date in its title",
)


def _tie_note(count: int, best: tuple[Day, Day, Day, str], keys: list[tuple[Day, Day, Day, str]]) -> str:
    for position, reason in enumerate(_TIE_REASONS):
        keys = [k for k in keys if k[position] == best[position]]
        if len(keys) == 1:  # the best file alone is left: this date decided
            day = best[position]
            return f"of {count} such files, {reason} ({day[0]:04d}-{day[1]:02d}-{day[2]:02d})"
    return f"of {count} such files, the last by URL (no date tells them apart)"


def _period_end(dist: Distribution) -> Day | None:
    period = data_period(dist)
    return period[0] if period else None


def _title_date(dist: Distribution) -> Day | None:
    """The latest full date a file's title names, also one run into a suffix (``2023-12-03oc2``,
    where the year alone would read as its last day), else its latest period."""
    if not dist.title:
        return None
    days = [
        day
        for match in _patterns().title_date.finditer(dist.title)
        if (day := _valid(int(match[1]), int(match[2]), int(match[3])))
    ]
    if days:
        return max(days)
    period = period_in_text(dist.title)
    return period[0] if period else None


def _made_at(dist: Distribution) -> Day | None:
    """The latest date a file carries besides its data period: its ``modified`` or ``issued``, a
    date or year in its file name, the upload folder data.cms.gov files it under (``/2021-09/``).
    Never the data period itself: it breaks ties between files of one period.

    A year or month (``2024`` in ``..._2024_Starters.csv``, the folder ``/2024-12/``) says only
    that the file is of that year: when the file's own date falls in that year, the year's last
    day would be an invented date later than the file, so the file's own date stands for it."""
    exact = [day for text in (dist.modified, dist.issued) if text and (day := _iso_date(text, last=True))]
    coarse: list[Day] = []
    if period := period_in_text(_file_stem(dist.url)):
        coarse.append(period[0])
    for folder in unquote(urlsplit(dist.url).path).split("/")[:-1]:
        match = _patterns().folder.fullmatch(folder)
        if match and (valid := _valid(int(match.group(1)), int(match.group(2) or 12))):
            coarse.append(valid)
    kept = [day for day in coarse if not any(own[0] == day[0] and own <= day for own in exact)]
    return max(exact + kept, default=None)


def _reason(best: Distribution, release_note: str) -> str:
    if _patterns().socrata_bulk.search(best.url.lower()):
        text = "Socrata bulk CSV export (all rows in one file)"
    elif best.format == "csv":
        text = "the CSV file"
    else:
        text = f"no CSV: the {best.format or 'unknown-format'} file"
    if best.kind != "download":
        text += " its accessURL names"
    return f"{text}; {release_note}" if release_note else text


# -- releases ----------------------------------------------------------------------------------

Period = tuple[tuple[int, int, int], str]  # (the period's last day, how to show it)


def latest_release(files: list[Distribution], dataset_title: str | None = None) -> tuple[list[Distribution], str]:
    """Datasets that list every release as its own files (data.cms.gov, yearly files elsewhere):
    the files of the newest one. An undated file titled or named current or latest is the newest
    (unless a dated release is newer than the file itself); an archived one never is while another
    is not; then the data period decides, and only then ``modified``/``issued``.

    Returns the files and a note for the reason ("" when the files are not releases)."""
    files, standing_note = _by_standing(files, dataset_title)
    periods = [data_period(d) for d in files]
    distinct = {p[0] for p in periods if p}
    if len(distinct) >= 2:
        newest = max(distinct)
        label = min(p[1] for p in periods if p and p[0] == newest)  # min: the same label in any order
        kept = [d for d, p in zip(files, periods) if p and p[0] == newest]
        return kept, _joined(standing_note, f"latest of {len(distinct)} releases by data period ({label})")
    # A date out of range (9999-12-31, a placeholder) is no date.
    dates = [x if x and _iso_date(x, last=True) else None for x in (d.modified or d.issued for d in files)]
    distinct_dates = {x for x in dates if x}
    if len(distinct_dates) >= 2:
        newest_date = max(distinct_dates)
        kept = [d for d, x in zip(files, dates) if x == newest_date]
        note = f"latest of {len(distinct_dates)} releases by modified date ({newest_date})"
        return kept, _joined(standing_note, note)
    return files, standing_note


CURRENT, PLAIN, ARCHIVED = 2, 1, 0


def _by_standing(files: list[Distribution], dataset_title: str | None = None) -> tuple[list[Distribution], str]:
    """The undated files titled or named current/latest when there are any, else those not archived."""
    if len(files) < 2:
        return files, ""
    standing = [_standing(d, dataset_title) for d in files]
    if CURRENT in standing:
        standing = _outdated_current(files, standing)
    top = max(standing)
    if min(standing) == top:
        return files, ""
    kept = [d for d, s in zip(files, standing) if s == top]
    others = len(files) - len(kept)
    if top == CURRENT:
        return kept, f"marked current, over {others} other file(s)"
    return kept, f"{others} archived file(s) set aside"


def _outdated_current(files: list[Distribution], standing: list[int]) -> list[int]:
    """A file marked current is plain when a dated release is newer than everything the marked file
    carries (its upload folder, its dates): ``/2019-01/SFPUF_Data.csv`` is not current beside
    ``/2024-10/SFPUF2022_Data.csv``."""
    dated = [max(_period_end(d) or _NO_DAY, _made_at(d) or _NO_DAY) for d, s in zip(files, standing) if s == PLAIN]
    newest = max(dated, default=_NO_DAY)
    return [
        PLAIN if s == CURRENT and (made := _made_at(d)) is not None and newest > made else s
        for d, s in zip(files, standing)
    ]


# Words a file's title or name may hold beside "current" or "latest" and still be marked by it.
_PLAIN_WORDS = frozenset({"data", "file", "files", "dataset", "release", "version", "the", "download", "csv"})


def _standing(dist: Distribution, dataset_title: str | None = None) -> int:
    """``ARCHIVED``, ``CURRENT`` or ``PLAIN``, from the words of the file's own title and name: the
    words of the dataset's title do not count ("Medicare Current Beneficiary Survey" marks no file
    current), and current/latest marks a file only standing alone ("Current data", ``latest.csv``;
    never "Latest changes"), and only an undated one: a dated one is named, not marked."""
    shared = set(_words(dataset_title or ""))
    titled = [w for w in _words(dist.title or "") if w not in shared]
    named = [w for w in _words(_file_stem(dist.url)) if w not in shared]
    if _patterns().archived.search(" ".join(titled) + " / " + " ".join(named)):
        return ARCHIVED
    if data_period(dist) is None and (_marks_current(titled) or _marks_current(named)):
        return CURRENT
    return PLAIN


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _marks_current(words: list[str]) -> bool:
    rest = " ".join(w for w in words if w not in _PLAIN_WORDS)
    return bool(_patterns().current.fullmatch(rest))


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def data_period(dist: Distribution) -> Period | None:
    """The period a file's data covers: its ``temporal``, else a date, quarter, month or year in its
    title, else in its file name. Never from a folder (data.cms.gov's upload month), a UUID, a hash
    or URL-encoding (``%2027`` is a space and 27)."""
    if dist.temporal and (period := _temporal_end(dist.temporal)):
        return period
    if dist.title and (period := period_in_text(dist.title)):
        return period
    return period_in_text(_file_stem(dist.url))


def period_in_text(text: str) -> Period | None:
    """The latest period named in ``text`` in whole tokens: 2023-12-31, 12.31.2023, Dec 31 2023,
    2023 Q4, June 2023, DEC23, FY2023/CY2023/PY2023 or a bare year (1990 to next year)."""
    pats = _patterns()
    flat = pats.hex_run.sub(" ", pats.uuid.sub(" ", text.lower()))
    flat = " " + pats.separators.sub(" ", flat) + " "
    found: list[Period] = []
    for pattern, build in pats.periods:

        def take(match: re.Match[str], build: Any = build) -> str:
            period = build(match)
            if period is None:
                return match.group(0)
            found.append(period)
            return " " * len(match.group(0))  # a finer match hides the bare year inside it

        flat = pattern.sub(take, flat)
    return max(found, key=lambda p: p[0]) if found else None


def _file_stem(url: str) -> str:
    # By hand rather than urlsplit: this runs for every file of every listing, and urlsplit is slow.
    _, sep, rest = url.partition("://")
    path = (rest.partition("/")[2] if sep else url).split("?", 1)[0].split("#", 1)[0]  # no host, query
    name = unquote(path.rsplit("/", 1)[-1])
    return name.rsplit(".", 1)[0] if "." in name else name


def _temporal_end(text: str) -> Period | None:
    start_text, _, end_text = text.partition("/")
    end = _iso_date(end_text or start_text, last=True)
    if end is None:
        return None
    start = _iso_date(start_text, last=False)
    if start == (end[0], 1, 1) and end[1:] == (12, 31):
        return end, str(end[0])
    return end, f"{end[0]:04d}-{end[1]:02d}-{end[2]:02d}"


EARLIEST_YEAR = 1800  # temporal coverage goes back to the 1880s in the listings; no date before this


def _iso_date(text: str, *, last: bool) -> tuple[int, int, int] | None:
    from datetime import date

    match = _patterns().iso_prefix.match(text.strip())
    if not match:
        return None
    year = int(match.group(1))
    if not EARLIEST_YEAR <= year <= date.today().year + 1:  # 9999-12-31 is a placeholder, not a date
        return None
    month = int(match.group(2) or (12 if last else 1))
    day = int(match.group(3) or (_days_in(year, month) if last else 1))
    return (year, month, day) if 1 <= month <= 12 and 1 <= day <= _days_in(year, month) else None


def _days_in(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]


def _valid(year: int, month: int = 12, day: int | None = None) -> tuple[int, int, int] | None:
    from datetime import date

    if not 1990 <= year <= date.today().year + 1 or not 1 <= month <= 12:
        return None
    last = _days_in(year, month)
    if day is None:
        day = last
    return (year, month, day) if 1 <= day <= last else None


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}


def _as_date(year: str, month: str | int, day: str | None) -> Period | None:
    valid = _valid(int(year), int(month), int(day) if day is not None else None)
    if valid is None:
        return None
    if day is None:
        return valid, f"{valid[0]:04d}-{valid[1]:02d}"
    return valid, f"{valid[0]:04d}-{valid[1]:02d}-{valid[2]:02d}"


def _as_quarter(year: str, quarter: str) -> Period | None:
    valid = _valid(int(year), int(quarter) * 3)
    return (valid, f"{year} Q{quarter}") if valid else None


def _as_year(year: str, prefix: str = "") -> Period | None:
    valid = _valid(int(year))
    return (valid, f"{prefix.upper()}{year}") if valid else None


@dataclass(frozen=True)
class _Patterns:
    uuid: re.Pattern[str]
    hex_run: re.Pattern[str]
    separators: re.Pattern[str]
    iso_prefix: re.Pattern[str]
    periods: list[tuple[re.Pattern[str], Any]]
    socrata_bulk: re.Pattern[str]
    paged_apis: tuple[re.Pattern[str], ...]
    document: re.Pattern[str]
    document_phrase: re.Pattern[str]
    document_tail: re.Pattern[str]
    current: re.Pattern[str]
    archived: re.Pattern[str]
    folder: re.Pattern[str]
    title_date: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    """Compiled on first use: importing the model stays cheap for ``--help``."""
    year = r"((?:19|20)\d\d)"
    month = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
    periods: list[tuple[str, Any]] = [
        # Numeric dates need two-digit months and days: "1-5 2019" is a file range and a year, and a
        # run of eight digits (20200819) is when the file was made, not the data's period.
        (rf"\b{year} (\d\d) (\d\d)\b", lambda m: _as_date(m[1], m[2], m[3])),  # 2021 06 30
        (rf"\b(\d\d) (\d\d) {year}\b", lambda m: _as_date(m[3], m[1], m[2])),  # 11 28 2021
        (rf"\b{month} (\d\d?) {year}\b", lambda m: _as_date(m[3], _MONTHS[m[1]], m[2])),  # dec 29 2024
        (rf"\b(\d\d?) {month} {year}\b", lambda m: _as_date(m[3], _MONTHS[m[2]], m[1])),  # 31 december 2020
        (rf"\bq([1-4]) {year}\b", lambda m: _as_quarter(m[2], m[1])),  # q4 2019
        (rf"\b{year} ?q([1-4])\b", lambda m: _as_quarter(m[1], m[2])),  # 2021 q3
        (rf"\b{month} {year}\b", lambda m: _as_date(m[2], _MONTHS[m[1]], None)),  # june 2020
        (rf"\b{month}(\d\d)\b", lambda m: _as_date(f"20{m[2]}", _MONTHS[m[1]], None)),  # sep21
        (rf"\b(fy|cy|py) ?{year}\b", lambda m: _as_year(m[2], m[1])),  # fy2024, py 2025
        (r"\b(fy|cy|py) ?(\d\d)\b", lambda m: _as_year(f"20{m[2]}", m[1])),  # fy24
        (rf"\b{year}\b", lambda m: _as_year(m[1])),
    ]
    return _Patterns(
        uuid=re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        hex_run=re.compile(r"[0-9a-f]{16,}"),
        separators=re.compile(r"[^a-z0-9]+"),
        iso_prefix=re.compile(r"(\d{4})(?:-(\d\d)(?:-(\d\d))?)?"),
        periods=[(re.compile(p), build) for p, build in periods],
        socrata_bulk=re.compile(r"/api/views/[a-z0-9]{4}-[a-z0-9]{4}/rows\.csv"),
        paged_apis=(
            re.compile(r"/data-api/v1/dataset/[0-9a-f-]{36}/data$"),  # CMS data API
            re.compile(r"/resource/[a-z0-9]{4}-[a-z0-9]{4}\.(csv|json)$"),  # Socrata SODA
            re.compile(r"/datastore/query/[^/]+/\d+"),  # DKAN datastore
        ),
        # In a lower-case title: words standing as words, phrases with any separators between.
        document=re.compile(
            r"(?<![a-z])(?:dictionar(?:y|ies)|layouts?|code[\W_]*books?|methodolog(?:y|ies)|read[\W_]*me"
            r"|documentation|users?[\W_]*guides?|user[\W_]+s[\W_]+guides?|technical[\W_]*notes?)(?![a-z])"
        ),
        # In a file name's words (lower-case, single spaces): the phrases, and a word ending in one.
        document_phrase=re.compile(
            r"(?<![a-z])(?:code book|read me|users? guides?|user s guides?|technical notes?)(?![a-z])"
        ),
        document_tail=re.compile(
            r"(?:dictionar(?:y|ies)|layouts?|codebooks?|methodolog(?:y|ies)|readme|documentation|users?guides?"
            r"|technicalnotes?)$"
        ),
        current=re.compile(r"current|latest|most recent"),  # the whole of a file's own words
        archived=re.compile(r"(?<![a-z])(?:archived?|archives|historical)(?![a-z])"),
        folder=re.compile(r"((?:19|20)\d\d)(?:-(0[1-9]|1[0-2]))?"),  # /2021-09/ or /2021/
        title_date=re.compile(r"(?<!\d)((?:19|20)\d\d)-(\d\d)-(\d\d)(?!\d)"),  # 2023-12-03, 2023-12-03oc2
    )
