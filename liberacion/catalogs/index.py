"""The local dataset index: ``discover`` builds it from the catalogs' listings, ``search`` reads it.

Layout under the home::

    index/parts/<catalog>.json     the datasets each source of a catalog listed (kept when a listing fails)
    index/datasets.parquet         every catalog's datasets, for SQL as liberacion.datasets
    index/search.json              the few fields search needs, small enough to load in milliseconds
    index/coverage.json            per catalog: datasets, fetchable, why not; the manifests' fingerprint
                                   and the parts' stamps the index was built from; each catalog's
                                   curated datasets and listings as its manifest had them
    index/curated.json             per catalog: the listing's records its curated datasets point at
                                   or share an id with, and the listings its part holds, so search
                                   and liberacion.datasets take a manifest edited since the index
                                   was built without reading the listings
    state/catalogs/<catalog>.json  per source: validators (ETag, Last-Modified), status, error, counts
    state/manifests.json           the manifests' TOML as parsed, by the sha256 of their text

Every file is written to a temporary name and renamed into place, so a reader sees the old index or
the new one. ``discover`` holds one lock for the whole run, reads the catalogs' listings a few at a
time, and rebuilds the index unless every listing answered 304, no manifest changed and no part
changed since the last rebuild.

The index holds every catalog the home has discovered, loaded now or not (a manifest taken away
keeps its part); readers (``search``, ``show``) show the loaded catalogs only, so a manifest taken
away is gone at once and one put back is found again without a discover.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liberacion.catalogs.adapters import discover_source
from liberacion.catalogs.manifests import curated_fingerprint, index_changes, load_catalogs, sources_fingerprint
from liberacion.catalogs.manifests import manifest_problems as _manifest_problems
from liberacion.catalogs.model import (
    WHY_NOT,
    Catalog,
    Choice,
    Dataset,
    Distribution,
    Source,
    choose_files,
    merge_curated,
)
from liberacion.errors import ConfigError, NotFound, SourceError, note
from liberacion.files import atomic_path, fsync_file, naming, read_json, write_json
from liberacion.home import Home, file_lock
from liberacion.naming import redact_url
from liberacion.timestamps import utc_now

SEARCH_FILE = "search.json"
COVERAGE_FILE = "coverage.json"
CURATED_FILE = "curated.json"
MANIFEST_CACHE = "manifests.json"  # parsed manifests, see manifests.ParsedManifests
INDEX_FILES = ("datasets.parquet", SEARCH_FILE, CURATED_FILE, COVERAGE_FILE)  # under index/, written only by discover
INDEX_VERSION = 7  # part of the fingerprint: a new column or choice rule rebuilds an unchanged index
PART_VERSION = 3  # what the adapters keep of a listing (3: ftp:// files); an older part is downloaded and parsed again
DISCOVER_JOBS = 4  # catalogs read at a time: a dead host costs only its own catalog's time
SEARCH_VERSION = 2
SEARCH_COLUMNS = ("ref", "title", "publisher", "keywords", "description", "modified", "formats", "catalog")
KEYWORD_SEPARATOR = " | "
Progress = Callable[[str], None]


@dataclass
class SourceState:
    """The outcome of the last discover of one listing, and the validators for the next one."""

    url: str
    kind: str
    status: str  # updated | unchanged | failed
    checked_at: str
    updated_at: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    datasets: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # The listing's records that are not datasets, by reason (adapters' NOT_PUBLIC...): its own
    # count is ``datasets`` plus these. Kept from the last read while the listing is unchanged.
    left_out: dict[str, int] = field(default_factory=dict)


@dataclass
class CatalogReport:
    name: str
    sources: list[SourceState]
    datasets: int  # indexed now (curated + discovered)
    seconds: float
    fetchable: int | None = None  # of ``datasets``, those fetch can download (from the index)
    why_not: dict[str, int] = field(default_factory=dict)  # the others, counted by reason
    # The records its listings hold that are not datasets, by reason, most first (its sources' summed).
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(s.status == "failed" for s in self.sources)


@dataclass
class DiscoverReport:
    catalogs: list[CatalogReport]
    problems: list[ConfigError]
    rebuilt: bool = True  # False: every listing was unchanged and the index was kept as it was

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.catalogs)


@dataclass
class CatalogStatus:
    name: str
    title: str
    kinds: list[str]
    datasets: int
    curated: int
    last_discovered: str | None
    status: str
    manifest: str


# -- paths and small files ---------------------------------------------------------------------


def _part_path(home: Home, catalog: str) -> Path:
    return home.index / "parts" / f"{catalog}.json"


def _state_path(home: Home, catalog: str) -> Path:
    return home.state / "catalogs" / f"{catalog}.json"


def _manifest_cache(home: Home) -> Path | None:
    """The home's cache of parsed manifests; None before the home exists: reading the catalogs
    (``catalogs``, ``search``) is not the first write that creates it."""
    return home.state / MANIFEST_CACHE if home.root.is_dir() else None


def manifest_problems(home: Home, extra_paths: Sequence[Path] = ()) -> list[ConfigError]:
    """Every manifest that cannot be used (read through the home's cache of parsed manifests)."""
    return _manifest_problems(extra_paths, cache=_manifest_cache(home))


def has_part(home: Home, catalog: str) -> bool:
    return _part_path(home, catalog).is_file()


def read_part(home: Home, catalog: str) -> dict[str, list[dict[str, Any]]]:
    """The datasets each source of ``catalog`` listed at its last successful discover, by URL."""
    return _sources_of(read_json(_part_path(home, catalog)))


def _sources_of(data: Any) -> dict[str, list[dict[str, Any]]]:
    sources = data.get("sources") if isinstance(data, dict) else None
    return sources if isinstance(sources, dict) else {}


def read_state(home: Home, catalog: str) -> dict[str, Any]:
    data = read_json(_state_path(home, catalog))
    return data if isinstance(data, dict) else {}


def indexed_curated_refs(home: Home, catalog: str) -> list[str]:
    """The refs of the curated datasets ``catalog``'s manifest had when the index was last built."""
    stored = read_json(home.index / COVERAGE_FILE)
    manifests = stored.get("manifests") if isinstance(stored, dict) else None
    kept = manifests.get(catalog) if isinstance(manifests, dict) else None
    refs = kept.get("refs") if isinstance(kept, dict) else None
    return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []


def find(home: Home, catalog: str, dataset_id: str) -> Dataset | None:
    """A discovered dataset by id, from the catalog's index part."""
    for records in read_part(home, catalog).values():
        for record in records:
            if record.get("id") == dataset_id:
                return Dataset.from_dict(record)
    return None


# -- discover ----------------------------------------------------------------------------------


def discover(
    home: Home, names: Sequence[str] = (), extra_paths: Sequence[Path] = (), *, progress: Progress | None = None
) -> DiscoverReport:
    """Download the listings of the named catalogs (all when none) and rebuild the index.

    Catalogs are read ``DISCOVER_JOBS`` at a time; reports keep the catalogs' order. A listing that
    fails keeps what that source listed before; the others are still updated. When every listing
    answered 304 and no manifest changed, the index is kept as it is.
    """
    problems: list[ConfigError] = []
    catalogs = load_catalogs(extra_paths, problems=problems, cache=_manifest_cache(home))
    try:
        chosen = _choose(catalogs, names)
    except NotFound:
        if problems:  # the one asked for may be the broken one: its error, not "no such catalog"
            raise _problem_of(problems, names) from None
        raise
    with file_lock(home.locks / "index.lock", what="the dataset index"):
        _remove_temporaries(home)
        reports = _read_listings(home, chosen, progress)
        unchanged = all(s.status == "unchanged" for r in reports for s in r.sources)
        rebuilt = not (unchanged and _index_is_current(home, catalogs))
        if rebuilt:
            rebuild(home, catalogs)
    coverage = read_coverage(home)
    for report in reports:
        counts = coverage.get(report.name, {})
        report.fetchable = counts.get("fetchable")
        report.why_not = dict(counts.get("why_not", {}))
    return DiscoverReport(reports, problems, rebuilt)


def _remove_temporaries(home: Home) -> None:
    """Remove the temporary files of a discover that was killed (kill -9, the OOM killer) while it
    wrote the index: the lock is ours, so no live discover is writing them. An index of a whole
    catalog can be hundreds of MB, and each kill would leave another copy. Files other commands
    write here (the names file completion keeps) are not touched."""
    leftovers = [
        *(path for name in INDEX_FILES for path in home.index.glob(f".{name}.*.tmp*")),
        *home.index.joinpath("parts").glob(".*.tmp*"),
        *home.state.joinpath("catalogs").glob(".*.tmp*"),
    ]
    for path in leftovers:
        with contextlib.suppress(OSError):
            path.unlink()


def _problem_of(problems: list[ConfigError], names: Sequence[str]) -> ConfigError:
    """The broken manifest of a catalog asked for by name, else the first problem."""
    for problem in problems:
        if getattr(problem, "catalog", None) in names:
            return problem
    return problems[0]


def _read_listings(home: Home, chosen: Sequence[Catalog], progress: Progress | None) -> list[CatalogReport]:
    """Each catalog's listings, ``DISCOVER_JOBS`` catalogs at a time, reports in the catalogs' order.

    Ctrl-C stops at once: catalogs not started are cancelled and one still being read (a stalled
    host can hold a read for minutes) is not waited for; the CLI exits without joining its thread.
    Nothing is rebuilt, and a part a worker finishes meanwhile makes the next discover rebuild
    (see ``_index_is_current``).
    """
    pool = ThreadPoolExecutor(max_workers=max(1, min(DISCOVER_JOBS, len(chosen))))
    try:
        reports = list(pool.map(lambda catalog: _discover_catalog(home, catalog, progress), chosen))
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return reports


def manifest_fingerprint(catalogs: Sequence[Catalog]) -> str:
    """What the index is built from besides the listings: every catalog's sources and curated datasets."""
    doc = [
        INDEX_VERSION,
        [
            {"name": c.name, "sources": [asdict(s) for s in c.sources], "datasets": [d.to_dict() for d in c.datasets]}
            for c in catalogs
        ],
    ]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _index_is_current(home: Home, catalogs: Sequence[Catalog]) -> bool:
    """Built from these manifests and from the parts as they are now (a discover stopped before
    its rebuild may have left a new part behind)."""
    stored = read_json(home.index / COVERAGE_FILE)
    return (
        isinstance(stored, dict)
        and stored.get("fingerprint") == manifest_fingerprint(catalogs)
        and stored.get("parts") == _part_stamps(home)
        and home.index_file.is_file()
        and (home.index / SEARCH_FILE).is_file()
    )


def _part_stamps(home: Home) -> dict[str, list[int]]:
    """Each part's modification time and size: one directory scan, cheap enough for every discover."""
    stamps: dict[str, list[int]] = {}
    try:
        with os.scandir(home.index / "parts") as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):  # not a temporary file
                    info = entry.stat()
                    stamps[entry.name[: -len(".json")]] = [info.st_mtime_ns, info.st_size]
    except FileNotFoundError:
        pass
    return stamps


def read_coverage(home: Home) -> dict[str, dict[str, Any]]:
    """Per catalog, from the last rebuild: ``datasets``, ``fetchable`` and ``why_not`` counts."""
    stored = read_json(home.index / COVERAGE_FILE)
    catalogs = stored.get("catalogs") if isinstance(stored, dict) else None
    return catalogs if isinstance(catalogs, dict) else {}


def _choose(catalogs: list[Catalog], names: Sequence[str]) -> list[Catalog]:
    if not names:
        return catalogs
    by_name = {c.name: c for c in catalogs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise NotFound(f"no catalog named {unknown[0]!r} (known: {known}); see: liberacion catalogs")
    return [by_name[n] for n in dict.fromkeys(names)]


def _discover_catalog(home: Home, catalog: Catalog, progress: Progress | None) -> CatalogReport:
    started = time.monotonic()
    state = read_state(home, catalog.name)
    previous_state = {s.get("url"): s for s in state.get("sources", []) if isinstance(s, dict)}
    # The state says which listings the part holds, so an unchanged catalog never reads its part
    # (megabytes of JSON); without that record (an older home) the part itself is read.
    held = state.get("part") if isinstance(state.get("part"), dict) else None
    fingerprint = manifest_fingerprint([catalog])
    part_exists = has_part(home, catalog.name)
    stored: Any = None if held is not None and part_exists else read_json(_part_path(home, catalog.name))
    # A part that is gone (deleted, lost) holds nothing, whatever the state says: its listings are
    # read again in full, without validators, so a 304 cannot keep datasets the index no longer has.
    if stored is not None or held is None or not part_exists:
        held = {
            "version": stored.get("version") if isinstance(stored, dict) else None,
            "sources": list(_sources_of(stored)),
        }
    previous_part: dict[str, list[dict[str, Any]]] | None = _sources_of(stored) if stored is not None else None
    part_version = held.get("version")
    part: dict[str, list[dict[str, Any]] | None] = {}
    states: list[SourceState] = []
    for source in catalog.sources:
        before = previous_state.get(source.url, {})
        kept: list[dict[str, Any]] | None = None
        if previous_part is not None:
            kept = previous_part.get(source.url)
        elif source.url in (held.get("sources") or []):
            kept = []  # held in the part, not read (yet): see below
        # Validators only help when we still hold what they describe, parsed as this version parses
        # and as this kind reads it: a manifest whose `kind` was corrected must not keep, on a 304,
        # the datasets the old kind made of the listing.
        current = kept is not None and part_version == PART_VERSION and before.get("kind") == source.kind
        etag, last_modified = (before.get("etag"), before.get("last_modified")) if current else (None, None)
        if progress:
            progress(f"{catalog.name}: reading the {source.kind} listing {source.url}")
        now = utc_now()
        try:
            listing = discover_source(source, catalog.name, etag=etag, last_modified=last_modified)
        except SourceError as err:
            if kept is not None:
                part[source.url] = None  # what the part holds, read below
            # The validators stay only while they describe what the part holds as this source
            # reads it: else the next discover would take a 304 for that stale parse and hide this error.
            etag, last_modified = (etag, last_modified) if current else (None, None)
            held_count = _held_count(kept if previous_part is not None else None, before)
            states.append(
                SourceState(
                    source.url, source.kind, "failed", now, before.get("updated_at"), etag, last_modified,
                    held_count, str(err), left_out=_held_left_out(before) if held_count else {},
                )
            )  # fmt: skip
            continue
        if listing.unchanged:
            part[source.url] = None if kept is not None else []
            status, updated_at, left_out = "unchanged", before.get("updated_at"), _held_left_out(before)
        else:
            part[source.url] = [d.to_dict() for d in listing.datasets]
            status, updated_at, left_out = "updated", now, listing.left_out
        states.append(
            SourceState(
                source.url, source.kind, status, now, updated_at, listing.etag, listing.last_modified,
                _held_count(part[source.url], before), None, listing.notes, left_out,
            )
        )  # fmt: skip
    same = all(records is None for records in part.values()) and part_version == PART_VERSION
    if same and state.get("fingerprint") == fingerprint and isinstance(state.get("datasets"), int):
        count = state["datasets"]  # every listing unchanged, the manifest too: the part stays as it is
    else:
        if previous_part is None:
            previous_part = read_part(home, catalog.name)
        whole = {url: previous_part.get(url, []) if records is None else records for url, records in part.items()}
        count = len(catalog_datasets(catalog, whole))
        if catalog.sources and not (same and state.get("fingerprint") == fingerprint):
            write_json(
                _part_path(home, catalog.name), {"catalog": catalog.name, "version": PART_VERSION, "sources": whole}
            )
    write_json(
        _state_path(home, catalog.name),
        {
            "catalog": catalog.name,
            "discovered_at": utc_now(),
            "datasets": count,
            "fingerprint": fingerprint,
            # The listings as this discover read them: the index says a manifest naming others since.
            "listings": sources_fingerprint(catalog),
            "part": {"version": PART_VERSION, "sources": list(part)},
            "sources": [asdict(s) for s in states],
            # Kept for the index while this catalog's manifest is not loaded (see ``rebuild``).
            "curated": [d.to_dict() for d in catalog.datasets],
        },
    )
    return CatalogReport(catalog.name, states, count, time.monotonic() - started, left_out=_left_out_of(states))


def _left_out_of(states: list[SourceState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in states:
        for reason, n in state.left_out.items():
            counts[reason] = counts.get(reason, 0) + n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _held_count(records: list[dict[str, Any]] | None, before: dict[str, Any]) -> int:
    """Datasets a source lists: counted when read now, else as the last discover counted them."""
    if records:
        return len(records)
    count = before.get("datasets")
    return count if records is None and isinstance(count, int) else 0


def _held_left_out(before: dict[str, Any]) -> dict[str, int]:
    """What the last read of a listing left out, for the datasets kept from it."""
    counts = before.get("left_out")
    if not isinstance(counts, dict):
        return {}
    return {str(k): v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}


def catalog_datasets(catalog: Catalog, part: dict[str, list[dict[str, Any]]]) -> list[Dataset]:
    """Curated datasets first (a curated pointer enriched by the listing), then the discovered ones."""
    discovered: dict[str, Dataset] = {}
    for records in part.values():
        for record in records:
            discovered.setdefault(record["id"], Dataset.from_dict(record))
    result = []
    for curated in catalog.datasets:
        twin = discovered.get(str(curated.extra.get("source_id", "")))
        result.append(merge_curated(curated, twin) if twin is not None else curated)
    taken = {d.id for d in result}
    result.extend(d for d in discovered.values() if d.id not in taken)
    return result


# -- the combined index ------------------------------------------------------------------------


def rebuild(home: Home, catalogs: Sequence[Catalog]) -> Path:
    """Write ``datasets.parquet``, ``search.json`` and ``coverage.json`` from every catalog's part
    and curated datasets. Which file each dataset would fetch is decided by ``choose_files``, the
    rule ``fetch`` uses.

    Besides the loaded ``catalogs``, every catalog this home discovered whose manifest is not loaded
    now (another ``--catalogs``, a manifest taken away) keeps its rows, from its part and the
    curated datasets its last discover saw: readers show only the loaded catalogs, so putting the
    manifest back shows them again at once.
    """
    stamps = _part_stamps(home)
    everyone = [*catalogs, *_unloaded(home, catalogs, stamps)]
    datasets: list[Dataset] = []
    choices: list[Choice] = []
    listed: dict[str, dict[str, Any]] = {}
    for catalog in everyone:
        part = read_part(home, catalog.name)
        for dataset in catalog_datasets(catalog, part):
            datasets.append(dataset)
            choices.append(choose_files(dataset, listing_read=_pointer_listing_read(catalog, dataset, part)))
        listed[catalog.name] = {"listed": _listed_for_curated(catalog, part), "read": list(part)}
    curated_refs = {d.ref for c in everyone for d in c.datasets}
    # The four files are written whole before any replaces the old one, then replaced in a row,
    # the coverage (what says the index is current) last: a failure while writing (a full disk)
    # leaves the old index whole, and `search` never disagrees with liberacion.datasets for longer
    # than four renames.
    with contextlib.ExitStack() as stack:
        coverage, parquet, search, curated = (
            stack.enter_context(atomic_path(home.index / name))
            for name in (COVERAGE_FILE, home.index_file.name, SEARCH_FILE, CURATED_FILE)
        )
        with naming(home.index / SEARCH_FILE):
            _write_search(search, datasets)
        with naming(home.index_file):
            _write_parquet(parquet, datasets, curated_refs, choices)
        with naming(home.index / CURATED_FILE):
            text = json.dumps({"version": INDEX_VERSION, "catalogs": listed}, ensure_ascii=False, default=str)
            curated.write_text(text, encoding="utf-8")
        with naming(home.index / COVERAGE_FILE):
            _write_coverage(home, coverage, catalogs, everyone, datasets, choices, stamps)
        for written in (search, parquet, curated, coverage):
            fsync_file(written)  # before the first rename, not between them
    return home.index_file


def _unloaded(home: Home, catalogs: Sequence[Catalog], stamps: dict[str, list[int]]) -> list[Catalog]:
    """The catalogs this home has a part or a discover state of, whose manifest is not loaded now:
    rebuilt from what the home kept (their curated datasets as their last discover saw them)."""
    loaded = {c.name for c in catalogs}
    states = home.state / "catalogs"
    named = set(stamps) | {p.stem for p in states.glob("*.json") if not p.name.startswith(".")}
    kept = []
    for name in sorted(named - loaded):
        state = read_state(home, name)
        sources = [
            Source(str(s.get("kind")), str(s.get("url"))) for s in state.get("sources", []) if isinstance(s, dict)
        ]
        curated = [Dataset.from_dict(d) for d in state.get("curated", []) if isinstance(d, dict) and "id" in d]
        kept.append(Catalog(name=name, title=name, path=Path(), sources=sources, datasets=curated))
    return kept


def _listed_for_curated(catalog: Catalog, part: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The listing's records a curated dataset points at (``source_id``) or hides (the same id), by
    id: what search merges a curated dataset edited since with, or shows again once it is gone."""
    wanted = {d.id for d in catalog.datasets}
    wanted.update(str(d.extra["source_id"]) for d in catalog.datasets if "source_id" in d.extra)
    found: dict[str, dict[str, Any]] = {}
    for records in part.values():
        for record in records:
            if record.get("id") in wanted:
                found.setdefault(record["id"], record)
    return found


def _pointer_listing_read(catalog: Catalog, dataset: Dataset, part: dict[str, list[dict[str, Any]]]) -> bool:
    """For a curated ``source_id`` pointer: whether every listing it is looked up in was read (the
    part holds it). Then a pointer the index could not match is not in the listing."""
    if "source_id" not in dataset.extra:
        return False
    sources = catalog.pointer_sources(dataset)
    return bool(sources) and all(s.url in part for s in sources)


def _write_coverage(
    home: Home,
    target: Path,
    catalogs: Sequence[Catalog],
    everyone: Sequence[Catalog],
    datasets: list[Dataset],
    choices: list[Choice],
    stamps: dict[str, list[int]],
) -> None:
    """Counts for every catalog in the index; the fingerprint of the loaded ones (``catalogs``)."""
    counts: dict[str, dict[str, Any]] = {
        c.name: {"datasets": 0, "fetchable": 0, "why_not": dict.fromkeys(WHY_NOT, 0)} for c in everyone
    }
    for dataset, choice in zip(datasets, choices):
        entry = counts[dataset.catalog]
        entry["datasets"] += 1
        if choice.fetchable:
            entry["fetchable"] += 1
        elif choice.why_not:
            entry["why_not"][choice.why_not] = entry["why_not"].get(choice.why_not, 0) + 1
    for entry in counts.values():
        entry["why_not"] = {k: v for k, v in entry["why_not"].items() if v}
    # What the index holds of each catalog's manifest: a reader tells an edit since
    # (manifests.index_changes). Its listings are those its last discover read (another catalog's
    # discover rebuilds the index without reading them); none before its first discover.
    manifests = {
        c.name: {
            "datasets": curated_fingerprint(c),
            "sources": read_state(home, c.name).get("listings"),
            "refs": [d.ref for d in c.datasets],
        }
        for c in everyone
    }
    document = {
        "version": INDEX_VERSION,
        "fingerprint": manifest_fingerprint(catalogs),
        "parts": stamps,
        "catalogs": counts,
        "manifests": manifests,
    }
    target.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str), encoding="utf-8")


def _write_search(target: Path, datasets: list[Dataset]) -> None:
    """Columns of plain strings (lists joined): the fewest objects for ``json.loads`` to build."""
    rows = [_search_row(d) for d in datasets]
    columns = {name: [row[i] for row in rows] for i, name in enumerate(SEARCH_COLUMNS)}
    document = {"version": SEARCH_VERSION, "columns": columns}
    target.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str), encoding="utf-8")


def _search_row(d: Dataset) -> tuple[Any, ...]:
    keywords = KEYWORD_SEPARATOR.join(d.keywords)
    return (d.ref, d.title, d.publisher, keywords, d.description, d.modified, ",".join(d.formats), d.catalog)


def _write_parquet(target: Path, datasets: list[Dataset], curated_refs: set[str], choices: list[Choice]) -> None:
    import pyarrow.parquet as pq

    pq.write_table(_arrow_table(datasets, curated_refs, choices), target, compression="zstd")


def _arrow_table(datasets: list[Dataset], curated_refs: set[str], choices: list[Choice]) -> Any:
    """The rows of ``liberacion.datasets`` for ``datasets`` (a ``pyarrow.Table``)."""
    import pyarrow as pa

    dist_type = pa.struct(
        [
            ("url", pa.string()),
            ("media_type", pa.string()),
            ("format", pa.string()),
            ("title", pa.string()),
            ("kind", pa.string()),
            ("byte_size", pa.int64()),
            ("modified", pa.string()),
            ("temporal", pa.string()),
            ("issued", pa.string()),
        ]
    )
    choice_of = {id(d): c for d, c in zip(datasets, choices)}

    def chosen(d: Dataset) -> Any:
        files = choice_of[id(d)].files
        return files[0] if files else None

    columns: dict[str, tuple[pa.DataType, Callable[[Dataset], Any]]] = {
        "catalog": (pa.string(), lambda d: d.catalog),
        "id": (pa.string(), lambda d: d.id),
        "ref": (pa.string(), lambda d: d.ref),
        "title": (pa.string(), lambda d: d.title),
        "description": (pa.string(), lambda d: d.description),
        "publisher": (pa.string(), lambda d: d.publisher),
        "keywords": (pa.list_(pa.string()), lambda d: d.keywords),
        "modified": (pa.string(), lambda d: d.modified),
        "formats": (pa.list_(pa.string()), lambda d: d.formats),
        "landing_page": (pa.string(), lambda d: redact_url(d.landing_page) if d.landing_page else None),
        "source_kind": (pa.string(), lambda d: d.source_kind),
        "curated": (pa.bool_(), lambda d: d.ref in curated_refs),
        "table_name": (pa.string(), lambda d: d.table),
        "change_token": (pa.string(), lambda d: d.change_token),
        # Shown by `sql`: secrets in URLs redacted (fetch reads the catalog's own part, unredacted).
        "distributions": (
            pa.list_(dist_type),
            lambda d: [{**x.__dict__, "url": redact_url(x.url)} for x in d.distributions],
        ),
        # What fetch would take (the same rule): the first file, its format; or why nothing.
        "fetchable": (pa.bool_(), lambda d: choice_of[id(d)].fetchable),
        "fetch_url": (pa.string(), lambda d: redact_url(f.url) if (f := chosen(d)) else None),
        "fetch_format": (pa.string(), lambda d: f.format if (f := chosen(d)) else None),
        "why_not": (pa.string(), lambda d: choice_of[id(d)].why_not),
    }
    return pa.table({name: pa.array([get(d) for d in datasets], type=dtype) for name, (dtype, get) in columns.items()})


# -- search ------------------------------------------------------------------------------------


@dataclass
class SearchHit:
    ref: str
    title: str
    publisher: str | None
    modified: str | None
    formats: list[str]
    catalog: str
    score: int


def search(
    home: Home,
    terms: Sequence[str],
    *,
    catalog: str | None = None,
    publisher: str | None = None,
    data_format: str | None = None,
    limit: int | None = 50,
    extra_paths: Sequence[Path] = (),
    problems: list[ConfigError] | None = None,
) -> list[SearchHit]:
    """Datasets matching every term, best first: an exact title, then title words, then keywords,
    then descriptions. Filters narrow by catalog name, publisher (substring) and file format."""
    broken: list[ConfigError] = []
    catalogs = load_catalogs(extra_paths, problems=broken, cache=_manifest_cache(home))
    if problems is not None:
        problems.extend(broken)
    known = {c.name for c in catalogs}
    if catalog is not None and catalog not in known:
        if any(getattr(p, "catalog", None) == catalog for p in broken):  # its manifest's error, not "no such"
            raise _problem_of(broken, [catalog])
        raise NotFound(
            f"no catalog named {catalog!r} (known: {', '.join(sorted(known)) or 'none'}); see: liberacion catalogs"
        )
    rows = _search_rows(home, catalogs)
    words, quoted = _query_words(terms)
    phrase = " ".join(words)
    wanted_publisher = publisher.casefold() if publisher else None
    wanted_format = data_format.casefold().lstrip(".") if data_format else None
    hits = []
    for ref, title, pub, keywords, description, modified, formats, cat in rows:
        if cat not in known or (catalog is not None and cat != catalog):
            continue
        if wanted_publisher is not None and wanted_publisher not in (pub or "").casefold():
            continue
        format_list = formats.split(",") if formats else []
        if wanted_format is not None and wanted_format not in format_list:
            continue
        score = _score(words, phrase, ref, title, keywords, description, quoted)
        if score:
            hits.append(SearchHit(ref, title, pub, modified, format_list, cat, score))
    hits.sort(key=lambda h: (-h.score, len(h.title), h.ref))
    return hits[:limit] if limit else hits


def _search_rows(home: Home, catalogs: Sequence[Catalog]) -> list[tuple[Any, ...]]:
    """The index's rows, with every catalog's curated datasets as its manifest has them now: one
    edited, renamed, removed or added since the index was built (or before any discover) is
    searched as it stands, without reading the listings. A catalog whose listings changed keeps
    what its last discover found, with a ``Note`` saying so."""
    data = read_json(home.index / SEARCH_FILE)
    rows: list[tuple[Any, ...]] = []
    if isinstance(data, dict) and data.get("version") == SEARCH_VERSION:
        columns = data["columns"]
        rows = list(zip(*(columns[name] for name in SEARCH_COLUMNS)))
    coverage = read_json(home.index / COVERAGE_FILE)
    indexed = coverage.get("manifests") if isinstance(coverage, dict) and rows else None
    changes = index_changes(indexed, catalogs)
    for name, changed in changes.items():
        if "listings" in changed:
            note(
                f"the manifest of {name} names other listings than its last discover read: search shows"
                f" what that discover found; run: liberacion discover {name}"
            )
    edits = _edits(home, catalogs, indexed, changes)
    if edits is not None:
        wanted = edits.pointed()
        by_ref = {row[0]: row for row in rows if row[0] in wanted} if wanted else {}
        now = [_search_row(d) for d in edits.datasets(by_ref)]
        replaced = edits.before | {row[0] for row in now}
        rows = [row for row in rows if row[0] not in replaced] + now
    present = {row[0] for row in rows}
    rows.extend(_search_row(d) for cat in catalogs for d in cat.datasets if d.ref not in present)
    return rows


@dataclass
class _Edits:
    """The loaded catalogs whose curated datasets changed since the index was built, and what the
    index kept to make their rows as a rebuild would, without reading their listings."""

    catalogs: list[Catalog]
    before: set[str]  # the refs of their curated datasets when the index was built
    kept: dict[str, Any]  # curated.json's catalogs: per catalog, "listed" records and "read" listings

    def pointed(self) -> set[str]:
        """The refs their curated ``source_id`` pointers name in the listings, of the datasets the
        index kept nothing for (a pointer moved to another of the listing's datasets)."""
        return {
            f"{c.name}/{d.extra['source_id']}"
            for c in self.catalogs
            for d in c.datasets
            if "source_id" in d.extra and str(d.extra["source_id"]) not in self._kept(c.name, "listed")
        }

    def _kept(self, catalog: str, key: str) -> Any:
        entry = self.kept.get(catalog)
        value = entry.get(key) if isinstance(entry, dict) else None
        return value if isinstance(value, (dict, list)) else {}

    def datasets(self, by_ref: dict[str, tuple[Any, ...]], records: dict[str, Dataset] | None = None) -> list[Dataset]:
        """The edited catalogs' curated datasets as ``catalog_datasets`` makes them. A ``source_id``
        pointing at a listing's dataset the index kept nothing for is taken from ``records`` (its
        row in datasets.parquet, by ref) or else its search row in ``by_ref``."""
        result = []
        for catalog in self.catalogs:
            listed = self._kept(catalog.name, "listed")
            for curated in catalog.datasets:
                source_id = str(curated.extra.get("source_id", ""))
                ref = f"{catalog.name}/{source_id}"
                twin = Dataset.from_dict(listed[source_id]) if isinstance(listed.get(source_id), dict) else None
                if twin is None and source_id:
                    twin = (records or {}).get(ref) or (
                        _dataset_of_row(catalog.name, source_id, by_ref[ref]) if ref in by_ref else None
                    )
                result.append(merge_curated(curated, twin) if twin is not None else curated)
            # The listing's datasets a curated one of the same id hid, and no longer does.
            taken = {d.id for d in catalog.datasets}
            for dataset_id, record in listed.items():
                hidden = f"{catalog.name}/{dataset_id}" in self.before
                if hidden and dataset_id not in taken and isinstance(record, dict):
                    result.append(Dataset.from_dict(record))
        return result

    def choices(self, datasets: list[Dataset]) -> list[Choice]:
        """Which file each would fetch, as a rebuild decides it (``choose_files``)."""
        by_name = {c.name: c for c in self.catalogs}
        result = []
        for dataset in datasets:
            read = {url: [] for url in self._kept(dataset.catalog, "read") if isinstance(url, str)}
            catalog = by_name[dataset.catalog]
            result.append(choose_files(dataset, listing_read=_pointer_listing_read(catalog, dataset, read)))
        return result


def _edits(home: Home, catalogs: Sequence[Catalog], indexed: Any, changes: dict[str, list[str]]) -> _Edits | None:
    """What ``_Edits`` says of ``catalogs``, given the ``changes`` of their manifests against what
    the index recorded (``indexed``, ``index_changes``); None when no curated dataset changed since
    the index was built (or the index is older than this version and recorded nothing)."""
    edited = [c for c in catalogs if "datasets" in changes.get(c.name, ())]
    if not edited or not isinstance(indexed, dict):
        return None
    before: set[str] = set()
    for catalog in edited:
        entry = indexed.get(catalog.name)
        refs = entry.get("refs") if isinstance(entry, dict) else None
        if isinstance(refs, list):
            before.update(r for r in refs if isinstance(r, str))
    stored = read_json(home.index / CURATED_FILE)
    kept = stored.get("catalogs") if isinstance(stored, dict) and stored.get("version") == INDEX_VERSION else None
    return _Edits(edited, before, kept if isinstance(kept, dict) else {})


def datasets_edits(
    home: Home, catalogs: Sequence[Catalog], indexed: Any, changes: dict[str, list[str]]
) -> tuple[list[str], Any] | None:
    """For ``liberacion.datasets``: the refs of the index's rows to leave out and an Arrow table of
    the rows to show instead, for the loaded ``catalogs`` whose curated datasets changed since the
    index was built (the rows a rebuild would write for them; ``indexed`` and ``changes`` as for
    ``_edits``); None when none changed."""
    edits = _edits(home, catalogs, indexed, changes)
    if edits is None:
        return None
    datasets = edits.datasets({}, _index_records(home, edits.pointed()))
    choices = edits.choices(datasets)
    curated_refs = {d.ref for c in edits.catalogs for d in c.datasets}
    return sorted(edits.before | {d.ref for d in datasets}), _arrow_table(datasets, curated_refs, choices)


def _index_records(home: Home, refs: set[str]) -> dict[str, Dataset]:
    """The datasets of ``refs`` as datasets.parquet holds them (URLs redacted as shown there)."""
    if not refs:
        return {}
    from liberacion.engine import new_connection
    from liberacion.naming import quote_literal

    with new_connection() as con:
        result = con.execute(
            f"SELECT * FROM read_parquet({quote_literal(str(home.index_file))}) WHERE ref IN (SELECT unnest(?))",
            [sorted(refs)],
        )
        names = [column[0] for column in result.description]
        rows = [dict(zip(names, values)) for values in result.fetchall()]
    return {row["ref"]: Dataset.from_dict(row) for row in rows}


def _dataset_of_row(catalog: str, dataset_id: str, row: tuple[Any, ...]) -> Dataset:
    """A listing's dataset from its search row: the fields search reads, its formats as files."""
    _ref, title, publisher, keywords, description, modified, formats, _cat = row
    return Dataset(
        catalog=catalog,
        id=dataset_id,
        title=title,
        distributions=[Distribution(url="", format=f) for f in formats.split(",") if f],
        description=description,
        publisher=publisher,
        keywords=keywords.split(KEYWORD_SEPARATOR) if keywords else [],
        modified=modified,
    )


# Points for a term found in a field; within a field a whole word ("flu" in "Vaccines.gov: Flu")
# beats the start of one ("vacc" in "Vaccines"), which beats a piece inside one ("flu" in
# "Influenza", "men" in "Enrollments"). The field still comes first: any title hit beats a keyword.
TITLE, KEYWORDS, DESCRIPTION = 300, 30, 3
WHOLE_WORD, WORD_START, INSIDE_A_WORD = 3, 2, 1


def _query_words(terms: Sequence[str]) -> tuple[list[str], list[str]]:
    """The query's words, without quotes, and its quoted phrases of two words or more:
    ``'"hospital readmissions" state'`` → (hospital, readmissions, state), (hospital readmissions)."""
    text = " ".join(terms).casefold()
    quoted = [" ".join(q.split()) for q in re.findall(r'"([^"]*)"', text)]
    return text.replace('"', " ").split(), [q for q in quoted if " " in q]


def _score(
    words: list[str],
    phrase: str,
    ref: str,
    title: str,
    keywords: str,
    description: str | None,
    quoted: Sequence[str] = (),
) -> int:
    if not words:
        return 1  # no terms: every dataset that passes the filters
    title_cf = title.casefold()
    if title_cf == phrase or ref.split("/", 1)[1] == phrase:
        return 100_000
    keywords_cf = keywords.casefold()
    description_cf = (description or "").casefold()
    score = 0
    for word in words:
        for weight, text in ((TITLE, title_cf), (KEYWORDS, keywords_cf), (DESCRIPTION, description_cf)):
            if word in text:  # the plain test first: most rows hold no term at all
                score += weight * _how_whole(word, text)
                break
        else:
            return 0  # every term must match somewhere
    if len(words) > 1 and phrase in title_cf:
        score += 5 * TITLE
    for part in quoted:  # a quoted phrase must stand as written, and ranks as a phrase in the title
        if part in title_cf:
            score += 0 if part == phrase else 5 * TITLE  # the whole query's phrase is counted above
        elif part not in keywords_cf and part not in description_cf:
            return 0
    return score


def _how_whole(word: str, text: str) -> int:
    """``WHOLE_WORD``, ``WORD_START`` or ``INSIDE_A_WORD``: the best way ``word`` stands in ``text``.
    A plural is the word itself: ``hospital`` is whole in "Hospitals"."""
    best = INSIDE_A_WORD
    start = text.find(word)
    while start >= 0:
        if start == 0 or not text[start - 1].isalnum():
            end = start + len(word)
            for ending in ("", "s", "es"):
                tail = end + len(ending)
                if text.startswith(ending, end) and (tail == len(text) or not text[tail].isalnum()):
                    return WHOLE_WORD
            best = WORD_START
        start = text.find(word, start + 1)
    return best


# -- catalog status ----------------------------------------------------------------------------


def catalog_status(
    home: Home, extra_paths: Sequence[Path] = (), *, problems: list[ConfigError] | None = None
) -> list[CatalogStatus]:
    """Each loaded catalog with what the index holds for it and how its last discover went."""
    result = []
    indexed = _indexed_parts(home)
    for catalog in load_catalogs(extra_paths, problems=problems, cache=_manifest_cache(home)):
        state = read_state(home, catalog.name)
        edited = bool(state) and state.get("fingerprint") != manifest_fingerprint([catalog])
        if edited and state.get("listings") != sources_fingerprint(catalog):
            # The last discover read other listings (an override since dropped, an edited
            # [[source]]): its counts and outcome are not this manifest's.
            state = {"changed": True}
        sources = [s for s in state.get("sources", []) if isinstance(s, dict)]
        failed = [s for s in sources if s.get("status") == "failed"]
        if edited and not state.get("changed"):
            # Only curated datasets changed: search and liberacion.datasets take them at once, so
            # the count is theirs, the listings that discover read with these curated datasets.
            datasets = len(catalog_datasets(catalog, read_part(home, catalog.name)))
        else:
            datasets = int(state.get("datasets") or len(catalog.datasets))
        unindexed = bool(catalog.sources and state and not state.get("changed")) and _unindexed(home, catalog, indexed)
        if not catalog.sources:
            status = "curated"
        elif state.get("changed"):
            status = f"listings changed: run liberacion discover {catalog.name}"
        elif not state:
            status = "not discovered"
        elif unindexed:
            # Its listing was read, then the index could not be written (a full disk, a kill):
            # search and liberacion.datasets still hold what the index held before.
            status = f"listing read, but the index was not rebuilt: run liberacion discover {catalog.name}"
            datasets = int(indexed.get("catalogs", {}).get(catalog.name, {}).get("datasets") or 0)
        elif failed:
            status = f"failed: {failed[0].get('error')}"
        else:
            status = "ok"
        result.append(
            CatalogStatus(
                name=catalog.name,
                title=catalog.title,
                kinds=catalog.kinds,
                datasets=datasets,
                curated=len(catalog.datasets),
                last_discovered=state.get("discovered_at"),
                status=status,
                manifest=str(catalog.path),
            )
        )
    return result


def _indexed_parts(home: Home) -> dict[str, Any]:
    """What the last rebuild of the index recorded: the parts' stamps and each catalog's counts."""
    stored = read_json(home.index / COVERAGE_FILE)
    if not isinstance(stored, dict):
        return {}
    parts, catalogs = stored.get("parts"), stored.get("catalogs")
    return {
        "parts": parts if isinstance(parts, dict) else {},
        "catalogs": catalogs if isinstance(catalogs, dict) else {},
    }


def _unindexed(home: Home, catalog: Catalog, indexed: dict[str, Any]) -> bool:
    """Whether the catalog's part changed after the index was last built from it: a discover read
    the listing, then did not finish writing the index."""
    try:
        info = _part_path(home, catalog.name).stat()
    except OSError:
        return False
    return indexed.get("parts", {}).get(catalog.name) != [info.st_mtime_ns, info.st_size]
