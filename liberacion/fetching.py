"""Fetch datasets into the lake: resolve each REF, download (in parallel), convert, publish.

For every REF, ``fetch`` holds the table's writer lock for the whole job, so two processes
fetching one table never both write it: the second waits (``wait`` seconds), then finds the
table fresh. A table's files download in parallel with the other datasets' (``jobs`` at a time,
at most two connections per host), and conversion runs one file at a time because DuckDB
already uses every core.

Each REF becomes a ``Recipe`` (the user's choices), stored in the snapshot so ``refresh`` can
hand it back unchanged; the catalog's part (URLs, column types, keys) is resolved again on every
run. ``unchanged`` is the one rule for "nothing to publish": the same bytes, converted with the
same settings. A failure names the stage it happened in (resolve, download, convert, publish).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from liberacion.download import (
    HttpClient,
    ProgressCallback,
    ProgressEvent,
    Transfer,
    Validators,
    check_url,
    file_name_from_url,
    url_key,
)
from liberacion.download.state import load_url_state, save_url_state
from liberacion.engine import Run
from liberacion.errors import (
    CWD_GONE,
    Busy,
    ConfigError,
    ConversionError,
    DamagedSnapshot,
    ExitCode,
    LiberacionError,
    NoTable,
    Note,
    NotFound,
    SourceError,
    StorageError,
    UsageError,
    cwd_gone,
    no_room,
    note,
    one_line,
    option,
)
from liberacion.home import Home, file_lock
from liberacion.iceberg_lake import open_lake, orphan_hours
from liberacion.lake import Lake, Staging, keep_default
from liberacion.limits import check_limits
from liberacion.naming import bounded, parse_table_name, quote_literal, redact_url, sanitize_identifier
from liberacion.snapshots import REJECTS_FILE, REJECTS_SUFFIX, Provenance, Recipe, Snapshot
from liberacion.storage import StoreRetry, reporting_store_retries
from liberacion.timestamps import utc_now

if TYPE_CHECKING:
    from liberacion.catalogs.model import Dataset
    from liberacion.convert import ConversionReport, ConvertOptions, Part

DEFAULT_JOBS = 4
DEFAULT_WAIT = 300.0
# Open files a run needs besides one writer lock per table: at least FILES_BESIDE_LOCKS (a fetch of
# ten files with --jobs 4 runs within 16), and the soft limit is raised to ROOMY_BESIDE_LOCKS when
# the hard one allows. Asking 256 of every run refused every fetch under `ulimit -n 64`.
FILES_BESIDE_LOCKS = 32
ROOMY_BESIDE_LOCKS = 256
STOP_GRACE = 0.3  # seconds a Ctrl-C waits for workers to tidy up before leaving them behind
LOCAL_CATALOG = "local"
NO_ROWS = "no data rows, beside members that have rows"  # why a header-only zip member is skipped
_CATALOG_REF = re.compile(r"[A-Za-z0-9_-]+/[^/\s]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# One conversion at a time: DuckDB already uses every core, and two at once double the memory.
_CONVERSIONS = threading.Semaphore(1)
_Held = TypeVar("_Held")
_Given = TypeVar("_Given")


@dataclass
class FetchOptions:
    """What ``liberacion fetch`` takes besides the refs (see its --help)."""

    table: str | None = None  # --as CATALOG.TABLE (one ref only)
    jobs: int = DEFAULT_JOBS
    force: bool = False  # download even when the server says the file has not changed
    wait: float = DEFAULT_WAIT  # seconds to wait for another process writing the same table
    types: dict[str, str] = field(default_factory=dict)  # --type COLUMN=TYPE
    raw: bool = False
    member: str | None = None
    max_bad_rows: int | None = None
    allow_empty: bool = False  # publish a file without data rows over a table that has rows
    catalog_paths: Sequence[Path] = ()
    # Called for every table after conversion and before anything is published; raising a
    # LiberacionError publishes nothing (refresh's --on-schema-change fail uses it).
    before_publish: Callable[[str, Staging, Provenance], None] | None = None
    # Clear killed runs' leftovers first and bring lake.duckdb up to date at the end, once for the
    # whole run; refresh, which fetches table by table, does both once itself.
    housekeeping: bool = True

    def recipe(self, ref: str) -> Recipe:
        """The user's choices for one REF, as a snapshot records them (a local file by its absolute
        path, so a refresh from cron, in another directory, finds it)."""
        local = Path(ref).expanduser()
        if not _SCHEME.match(ref) and local.is_file():
            ref = str(local.resolve())
        return Recipe(
            ref=ref,
            table=self.table,
            types=dict(self.types),
            raw=self.raw,
            member=self.member,
            max_bad_rows=self.max_bad_rows,
        )


@dataclass
class FetchResult:
    """What happened to one REF."""

    ref: str
    table: str | None
    status: str  # "fetched", "unchanged" or "failed"
    rows: int | None = None
    rejects: int | None = None  # bad rows set aside in TABLE__rejects
    bytes: int = 0  # downloaded by this run (a resumed download counts only the new bytes)
    snapshot: str | None = None
    seconds: float = 0.0
    error: str | None = None
    tables: list[str] = field(default_factory=list)  # every table written (several for zip members)
    table_rows: dict[str, int] = field(default_factory=dict)  # each table's rows (``rows`` is their total)
    error_code: int | None = None  # the exit code of the error (75 when the table was busy)
    stage: str | None = None  # where it failed: resolve, download, convert or publish
    error_type: str | None = None  # the class of the error: Gone (HTTP 404/410), NoDataset, ConversionError...
    stages: dict[str, float] = field(default_factory=dict)  # seconds each stage took
    # The change token of the catalog listing this fetch resolved (None for a URL or a file): of an
    # unchanged result, the token now names the snapshot's bytes (refresh records it for --check).
    change_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        hidden = ("tables", "table_rows", "error_code", "stages", "change_token")
        record = {k: v for k, v in asdict(self).items() if k not in hidden}
        record["seconds"] = round(self.seconds, 3)
        record["stages"] = {name: round(seconds, 3) for name, seconds in self.stages.items()}
        if len(self.tables) > 1:
            record["tables"] = self.tables
            if self.table_rows:
                record["table_rows"] = self.table_rows
        return record


# What ``fetch(on_result=...)`` is given: each dataset's result as it is done.
ResultCallback = Callable[[FetchResult], None]


@dataclass
class Target:
    """A resolved REF: the files to get and the table they land in."""

    ref: str
    table: str
    recipe: Recipe
    urls: list[str] = field(default_factory=list)
    path: Path | None = None  # a local file instead of URLs
    dataset: Dataset | None = None
    reason: str = ""
    options: ConvertOptions | None = None
    # A URL that names no dataset (``…/download``): its first fetch names the table after the
    # download, from the server's file name (``table`` is the URL's name until then) ...
    provisional: bool = False
    # ... and the URL's state keeps that table, for the next fetch and refresh.
    named: bool = False


@dataclass
class _Received:
    """Bytes this run received for one ref, over all its files, whether the fetch ends well or not."""

    bytes: int = 0


@dataclass
class _File:
    """One raw file ready to convert."""

    source: str  # URL or local path
    path: Path
    sha256: str
    size: int
    download: Transfer | None = None
    # A local file whose hash is still being computed (``sha256`` holds a stand-in meanwhile).
    hashing: Future[tuple[str, int]] | None = None


def parse_types(specs: Sequence[str]) -> dict[str, str]:
    """``["zip=VARCHAR", ...]`` from repeated ``--type COLUMN=TYPE`` options."""
    types: dict[str, str] = {}
    for spec in specs:
        # The name is everything before the last "=" (no type holds one): most HHS headers have
        # spaces ("Zip Code=VARCHAR"), and a published name is matched as well as its snake_case.
        name, equals, type_name = spec.rpartition("=")
        if not equals:
            raise UsageError(f"invalid --type {spec!r}: use COLUMN=TYPE, e.g. --type zip=VARCHAR")
        if not name.strip():
            raise UsageError(f"invalid --type {spec!r}: no column name before =; use COLUMN=TYPE")
        if not type_name.strip():
            raise UsageError(f"invalid --type {spec!r}: no type after =; use COLUMN=TYPE, e.g. {name.strip()}=VARCHAR")
        before = types.setdefault(name.strip(), type_name.strip())
        if before.upper() != type_name.strip().upper():  # the first would be dropped without a word
            raise UsageError(
                f"--type names column {name.strip()!r} twice ({before}, {type_name.strip()}): give each column once"
            )
    return types


def fetch(
    refs: Sequence[str],
    home: Home | Path,
    options: FetchOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    client: HttpClient | None = None,
) -> list[FetchResult]:
    """Fetch every REF into the lake under ``home`` and say what happened to each.

    A failed REF does not stop the others: its result has status "failed" and an error, and the
    lake keeps that table's previous snapshot. Usage errors raise before anything runs.
    ``on_result`` is given each result as ``fetch_recipes`` says.
    """
    options = options or FetchOptions()
    if not refs:
        raise UsageError("nothing to fetch: give at least one REF (catalog/dataset, URL or file)")
    if options.table is not None and len(set(refs)) > 1:
        raise UsageError(f"{option('as_table', '--as')} names one table: give exactly one REF with it")
    if options.raw and options.types:  # --raw would load the --type columns as text all the same
        raw, types = option("raw"), option("types", "--type")
        raise UsageError(
            f"{raw} and {types} cannot be combined: {raw} loads every column as text; give {types} alone"
            " to type those columns and infer the others"
        )
    recipes = [options.recipe(ref) for ref in dict.fromkeys(refs)]
    return fetch_recipes(recipes, home, options, progress=progress, on_result=on_result, client=client)


def fetch_recipes(
    recipes: Sequence[Recipe],
    home: Home | Path,
    options: FetchOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    client: HttpClient | None = None,
) -> list[FetchResult]:
    """Fetch what each recipe says (``refresh`` hands back the recipes snapshots recorded).

    Of ``options`` only how to run is used (jobs, force, wait, catalog paths, before_publish);
    what to fetch and how to convert it comes from each recipe. ``on_result`` is given each result
    in the order of ``recipes``, as soon as it and those before it are done; a run that is stopped
    (Ctrl-C) gives it those done before the stop, then raises: a stopped ``fetch --json`` has
    printed what it published. An exception it raises stops the run as one ``progress`` raises.
    """
    options = options or FetchOptions()
    _validate(recipes, options)
    home = home if isinstance(home, Home) else Home(Path(home))
    home.check_writable()
    _refuse_shared_tables(recipes, home, options.catalog_paths)
    keep_default()  # a bad LIBERACION_KEEP is said now, not after the first table is published
    check_limits()  # and the size limits each dataset's download and conversion read
    orphan_hours()  # and how long a shared lake's unnamed uploads are spared
    client = client or HttpClient()
    job = _Job(open_lake(home), client, options, _CallbackFailed.guard(progress or (lambda _event: None)))
    datasets = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="fetch")
    files = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="download")
    futures: list[Future[FetchResult]] = []
    retries = reporting_store_retries(_store_retries(job.report))  # a shared lake's store that stops answering
    run = Run()
    done = _InOrder(on_result)

    def one(position: int, recipe: Recipe) -> FetchResult:
        result = job.run(recipe, files)
        # A failure while the run stops may be the stop's doing (a transfer or a query cut short);
        # a table published (or found unchanged) before it noticed the stop is done all the same.
        if result.status != "failed" or not client.cancel.is_set():
            done.add(position, result)
        return result

    try:
        with stopped_at_once(client, [datasets, files], futures, run), retries:
            if options.housekeeping:
                tidy(job.lake)
            futures += [datasets.submit(run.call, one, position, recipe) for position, recipe in enumerate(recipes)]
            results = [future.result() for future in futures]
            if options.housekeeping:
                update_views(job.lake, said=[r.error for r in results if r.error])
    except _CallbackFailed as failed:
        raise failed.error from None  # the caller's own exception, as its callback raised it
    except BaseException:
        # What was done before the stop (Ctrl-C, SIGTERM), held back by one still running; the stop
        # is what the caller gets, even if its callback fails now.
        with contextlib.suppress(_CallbackFailed):
            done.rest()
        raise
    return results


class _InOrder:
    """Hands each result to ``on_result`` in the order of the recipes, as soon as it and those
    before it are done (from the worker that finished it), so a caller printing them prints them
    in the order the returned list has."""

    def __init__(self, on_result: ResultCallback | None) -> None:
        self.on_result = _CallbackFailed.guard(on_result) if on_result else None
        self.held: dict[int, FetchResult] = {}
        self.next = 0
        self.lock = threading.Lock()
        self.ended = False  # the run has stopped and its caller moved on: a straggler is not said

    def add(self, position: int, result: FetchResult) -> None:
        if self.on_result is None:
            return
        with self.lock:
            if self.ended:
                return
            self.held[position] = result
            while self.next in self.held:
                self.on_result(self.held.pop(self.next))
                self.next += 1

    def rest(self) -> None:
        """The results held back by one before them that never finished, in their order."""
        if self.on_result is None:
            return
        with self.lock:
            self.ended = True
            for position in sorted(self.held):
                self.on_result(self.held.pop(position))


class _CallbackFailed(BaseException):
    """The caller's ``progress`` (or ``on_result``) callback raised. A ``BaseException``, so that no dataset's
    ``except Exception`` takes it for that dataset's failure (an "internal error" whose traceback
    went to the home's log): it stops the run as Ctrl-C does, and ``fetch`` raises the original."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error

    @staticmethod
    def guard(report: Callable[[_Given], None]) -> Callable[[_Given], None]:
        def guarded(event: _Given) -> None:
            try:
                report(event)
            except Exception as err:
                raise _CallbackFailed(err) from err

        return guarded


def _store_retries(report: ProgressCallback) -> StoreRetry:
    """A shared lake's store that stopped answering mid-run, retried: said as a download's retries
    are (``retry 3/8 in 2 s: connection refused``), on a line of its own, where progress is shown."""
    from liberacion.download.session import retry_message

    def on_retry(where: str, attempt: int, attempts: int, delay: float, reason: str) -> None:
        message = retry_message(attempt, attempts, delay, reason)
        report(ProgressEvent("retry", f"store {where}", f"S3 store at {where}", message=message))

    return on_retry


@contextlib.contextmanager
def stopped_at_once(
    client: HttpClient, pools: Sequence[ThreadPoolExecutor], futures: Sequence[Future[Any]], run: Run
) -> Iterator[None]:
    """Shut ``pools`` down when the block ends; on Ctrl-C (or any error) stop their work first:
    the queries of ``run`` (the work given to the pools through ``run.call``), not those other
    threads of the process are running.

    Transfers stop at the next chunk (partial files stay, to resume), conversions stop at once, and
    a table not yet switched is never published. Workers (``futures``, filled in the block) get a
    moment to tidy up; one still stopping is left behind (the CLI exits without waiting for it,
    and whatever it staged is invisible and removed by the next run). One that had begun switching
    a table (``engine.switching``) is waited for: the table is published, and its result is said.
    """
    stopping = False
    try:
        yield
    except BaseException:
        stopping = True
        client.cancel.set()
        run.interrupt()
        wait_futures(futures, timeout=STOP_GRACE)
        run.wait_for_switches()  # a table switching when the stop came is published: its result is said
        raise
    finally:
        for pool in pools:
            pool.shutdown(wait=not stopping, cancel_futures=True)


def tidy(lake: Lake) -> None:
    """Finish what killed runs left (half-switched sets, staging directories); a home that cannot
    be written, or a lake busy switching, is left for the next run."""
    with contextlib.suppress(OSError, Busy):
        lake.tidy()
    from liberacion.download.files import remove_dead_holds

    with contextlib.suppress(OSError):
        _remove_old_extractions(lake.home.downloads)
        remove_dead_holds(lake.home.downloads)  # a killed run's


# What earlier versions unpacked beside a download (members, gunzipped copies, sheets as CSV)
# and could leave behind: gigabytes that downloads/ must not keep.
_OLD_EXTRACTION = re.compile(r".+\.(members|gunzip|sheet\d+\.csv)")


def _remove_old_extractions(downloads: Path) -> None:
    if not downloads.is_dir():
        return
    for leftover in downloads.glob("*/*"):
        if _OLD_EXTRACTION.fullmatch(leftover.name):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def update_views(lake: Lake, *, said: Sequence[str] = ()) -> None:
    """Rebuild ``lake.duckdb`` once for the run if any table switched (or it is stale or damaged).
    A failure costs no dataset its result: a note says so, and the next run tries again; unless a
    dataset's error already said the same (``said``: a shared catalog that cannot be reached)."""
    import duckdb

    try:
        lake.update_views_db()
    except (OSError, LiberacionError, duckdb.Error) as err:
        why = one_line(err)
        if not any(why in error for error in said):
            msg = f"{lake.views_db} could not be rebuilt ({why}); the next run tries again"
            note(msg)


def _validate(recipes: Sequence[Recipe], options: FetchOptions) -> None:
    """Everything that can be checked before a byte is downloaded."""
    import liberacion.convert.typing_rules as rules

    if options.jobs < 1:
        raise UsageError(f"{option('jobs')} must be at least 1")
    if options.wait < 0:
        raise UsageError(f"{option('wait')} must be 0 or more seconds")
    for recipe in recipes:
        if _SCHEME.match(recipe.ref) and recipe.ref.split(":", 1)[0].lower() not in ("http", "https"):
            shown = redact_url(recipe.ref)
            raise UsageError(f"cannot fetch {shown!r}: give an http(s):// URL, or a local file as a plain path")
        if recipe.table is not None:
            _check_as_table(recipe.table)
            if recipe.table.lower().endswith(REJECTS_SUFFIX):  # the rejects view of another table
                owner = recipe.table[: -len(REJECTS_SUFFIX)]
                raise UsageError(
                    f"{option('as_table', '--as')} {recipe.table}: that is the name of {owner}'s bad rows;"
                    " choose another name"
                )
        if recipe.max_bad_rows is not None and recipe.max_bad_rows < 0:
            raise UsageError(f"{option('max_bad_rows')} must be 0 or more")
        for column, type_name in recipe.types.items():
            try:
                rules.override(type_name)  # an unknown type is a usage error now, not after the download
            except UsageError as err:  # named as typed: a fetch of several files says which --type
                raise UsageError(f"{option('types', '--type')} {column}={type_name}: {err}") from None


def _check_as_table(table: str) -> None:
    """``--as`` names a table SQL can read: its error says which option was wrong."""
    try:
        parse_table_name(table)
    except UsageError as err:
        raise UsageError(f"{option('as_table', '--as')} {table}: {err}") from None


def _refuse_shared_tables(recipes: Sequence[Recipe], home: Home, catalog_paths: Sequence[Path]) -> None:
    """Two REFs that would land in one table are refused before anything is fetched: run in turn,
    the first would be published and the second fail, leaving a table the user did not choose.
    A REF that does not resolve fails on its own later; a URL the server names is claimed then."""
    if len(recipes) < 2:
        return
    refs: dict[str, list[str]] = {}
    for recipe in recipes:
        try:
            landing = _landing(recipe, home, catalog_paths)
        except LiberacionError:
            continue
        if landing is not None:
            refs.setdefault(landing[0], []).append(landing[1])
    for table, shared in refs.items():
        if len(shared) > 1:
            raise UsageError(_shared_table(table, shared))


def _landing(recipe: Recipe, home: Home, catalog_paths: Sequence[Path]) -> tuple[str, str] | None:
    """(table, REF as shown) where a recipe lands, when that is known before fetching. A refresh
    names every table (``--as``): nothing is resolved twice. A catalog ref's table is its dataset's,
    found without the request a curated pointer makes (the run makes it, with its retries)."""
    ref = recipe.ref
    if recipe.table is not None:
        return _table_name(recipe.table), redact_url(ref)
    if not _SCHEME.match(ref) and not Path(ref).expanduser().exists() and _CATALOG_REF.fullmatch(ref):
        from liberacion.resolve import resolve_ref

        return _table_name(resolve_ref(ref, home, catalog_paths, follow=False).table), ref
    target = resolve_target(recipe, home, catalog_paths)
    return None if target.provisional else (target.table, target.ref)


def _shared_table(table: str, refs: Sequence[str]) -> str:
    listed, every = ", ".join(refs[:-1]) + " and " + refs[-1], "both" if len(refs) == 2 else "all"
    return (
        f"{listed} {every} fetch into {table}; give each its own table:"
        f" fetch them one at a time, each with {option('as_table', '--as')} CATALOG.TABLE"
    )


def resolve_target(recipe: Recipe, home: Home, catalog_paths: Sequence[Path] = ()) -> Target:
    """Turn a recipe's REF (catalog/dataset, http(s) URL or local file) into what to fetch and where.

    The conversion settings are the user's overrides over the catalog's: the recipe's ``types``
    win over the manifest's ``[dataset.columns]``, which are read from the manifest now.
    """
    from liberacion.convert import ConvertOptions

    ref = recipe.ref
    forced = _table_name(recipe.table) if recipe.table else None
    convert = ConvertOptions(
        columns=dict(recipe.types), raw=recipe.raw, member=recipe.member, max_bad_rows=recipe.max_bad_rows
    )
    if _SCHEME.match(ref):
        scheme = ref.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise UsageError(f"cannot fetch {ref!r}: give an http(s):// URL, or a local file as a plain path")
        check_url(ref)
        # A secret in the URL (api_key=...) is used for the download and stored or shown nowhere.
        shown = redact_url(ref)
        name = forced or _kept_name(home, shown, url_name(ref), _legacy_name(file_name_from_url(ref)))
        target = Target(shown, name, replace(recipe, ref=shown), urls=[ref], options=convert)
        if forced is None and name == url_name(ref) and _nameless(_url_stem(ref)):
            return _endpoint_target(target, home)
        return target
    if not ref.strip():
        raise UsageError("an empty ref: give a CATALOG/DATASET ref, an http(s):// URL or a file's path")
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_file():
            raise UsageError(_not_a_file(ref, path))
        name = forced or _kept_name(home, ref, derived_name(path.name), _legacy_name(path.name))
        return Target(ref, name, recipe, path=path.absolute(), options=convert)
    if not _CATALOG_REF.fullmatch(ref):
        if not path.is_absolute() and cwd_gone():  # no file is found from a removed directory
            raise StorageError(CWD_GONE)  # the failure line names the ref
        raise NotFound(f"{ref}: no such file, and not a CATALOG/DATASET ref or an http(s) URL")
    from liberacion.resolve import choose_distributions, resolve_ref

    dataset = resolve_ref(ref, home, catalog_paths)
    distributions, reason = choose_distributions(dataset)
    for distribution in distributions:
        check_url(distribution.url)  # a listing may never point liberacion at local files
    convert.format = dataset.format or distributions[0].format
    convert.columns = {**dataset.columns, **recipe.types}
    where = f"the {dataset.catalog} catalog's manifest, [dataset.columns] of {dataset.id}"
    convert.declared_in = {name: where for name in dataset.columns if name not in recipe.types}
    for key in ("field_names", "descriptions"):
        value = dataset.extra.get(key)
        if isinstance(value, dict):
            setattr(convert, key, dict(value))
    return Target(
        ref,
        forced or _table_name(dataset.table),
        recipe,
        urls=[d.url for d in distributions],
        dataset=dataset,
        reason=reason,
        options=convert,
    )


def unchanged(current: Snapshot | None, settings: dict[str, Any], sha256: str | None, *, force: bool = False) -> bool:
    """The one rule for "nothing to publish": the current snapshot was made from the same bytes,
    converted with the same settings. ``force`` always converts again."""
    if force or current is None or sha256 is None:
        return False
    return current.provenance.settings == settings and current.provenance.sha256 == sha256


def _table_name(name: str) -> str:
    catalog, table = parse_table_name(name)
    return f"{catalog}.{table}"


def derived_name(file_name: str) -> str:
    """``local.<name>`` from a file name without its format extensions: ``Hospital_General_Information.csv``
    → local.hospital_general_information, ``deaths.2023.csv`` → local.deaths_2023."""
    return f"{LOCAL_CATALOG}.{sanitize_identifier(_file_stem(file_name))}"


def _file_stem(file_name: str) -> str:
    """A file name without the format extensions liberacion knows (``.csv``, ``.csv.gz``, ``.json``,
    ``.zip``, ``.XPT``...). Only those: the rest of the name, dots and all, tells files apart
    (``deaths.2023.csv``, ``harmonized.small.json``, ``TABLE_1O._Hansen_s_disease.csv``)."""
    from liberacion.formats import extension_format

    stem = file_name
    while "." in stem.lstrip("."):
        cut = stem.rfind(".")
        if extension_format("x" + stem[cut:]) is None:
            break
        stem = stem[:cut]
    return stem


# File names that name no dataset: an API gives them to every file (Socrata's
# ``/api/views/<id>/rows.csv``, CMS's ``/datastore/query/<id>/0/download``); and, besides them,
# the path segments around the id.
_GENERIC_FILES = frozenset({"rows", "download", "export"})
_GENERIC_SEGMENTS = _GENERIC_FILES | {"api", "views", "datastore", "query", "files", "data"}
_VERSION_SEGMENT = re.compile(r"v?[0-9]+(\.[0-9]+)*", re.I)
# What an endpoint is called when its URL says nothing of the dataset (``/download``,
# ``/file?id=7``, ``/api/files/12345``): its first fetch takes the name the server gives the file.
_NAMELESS = _GENERIC_SEGMENTS | {"file", "csv", "json", "get", "content", "attachment", "resource"}
_BARE_ID = re.compile(r"[0-9]+|[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}|[0-9a-f]{24,}", re.I)


def url_name(url: str) -> str:
    """``local.<name>`` for a URL: its file name's (see ``derived_name``); when that is a word an
    API gives every file (``rows.csv``, ``download``), the dataset id before it in the path
    (``/api/views/abcd-1234/rows.csv`` → local.abcd_1234). When even that names nothing
    (``/download?format=csv``), the first fetch takes the server's file name (``_endpoint_target``)."""
    return f"{LOCAL_CATALOG}.{sanitize_identifier(_url_stem(url))}"


def _url_stem(url: str) -> str:
    """The part of a URL that ``url_name`` names its table by."""
    from urllib.parse import unquote, urlsplit

    stem = _file_stem(file_name_from_url(url))
    if stem.lower() not in _GENERIC_FILES:
        return stem
    segments = [unquote(s) for s in urlsplit(url).path.split("/") if s][:-1]
    for segment in reversed(segments):
        if segment.lower() not in _GENERIC_SEGMENTS and not _VERSION_SEGMENT.fullmatch(segment):
            return _file_stem(segment)
    return stem


def _nameless(stem: str) -> bool:
    """Whether a name tells no dataset apart: an endpoint's word or a bare number or hash."""
    return stem.lower() in _NAMELESS or bool(_BARE_ID.fullmatch(stem))


def table_of_ref(ref: str) -> str:
    """The table a ref lands in by default, by fetch's own rules: ``cms/hospital-general-information``
    → ``cms.hospital_general_information``; a URL or a file → ``local.<file name>`` (``deaths.2023.csv``
    → ``local.deaths_2023``)."""
    if "://" in ref:
        return url_name(ref)
    if ref.count("/") == 1 and not looks_like_path(ref):
        catalog, dataset_id = ref.split("/")
        return f"{sanitize_identifier(catalog, fallback='c')}.{sanitize_identifier(dataset_id)}"
    return derived_name(Path(ref).expanduser().name or ref)


def looks_like_path(ref: str) -> bool:
    """Whether a ``A/B`` ref means a file rather than the dataset B of catalog A: the path exists,
    or is written as one (``./``, ``~/``, a trailing ``/``), or B has a data file's extension
    (``loc/f.csv``: a mistyped path, since catalog ids have no extensions)."""
    from liberacion.formats import extension_format

    if ref.startswith((".", "/", "~")) or ref.endswith("/") or Path(ref).expanduser().exists():
        return True
    return extension_format(ref) is not None


def nameless_url(url: str) -> bool:
    """Whether a URL's own name tells no dataset (``…/download?format=csv``): its table is named by
    the server's file name on its first fetch, so nothing can be told of it before."""
    return _nameless(_url_stem(url))


def _legacy_name(file_name: str) -> str:
    """The name a file got before names kept what follows the first dot (``deaths.2023.csv`` →
    local.deaths), and before a URL's generic file name gave way to its dataset id."""
    stem = file_name.split(".", 1)[0] if not file_name.startswith(".") else file_name
    return f"{LOCAL_CATALOG}.{sanitize_identifier(stem)}"


def _kept_name(home: Home, ref: str, derived: str, legacy: str) -> str:
    """``derived``, unless the table this ref made under the older naming (``legacy``) is in the
    lake: a refresh replays the recipe, which records ``--as`` only, so a table named from its
    file keeps its name rather than reappear under a new one beside its old self."""
    if legacy != derived and _made_by(home, legacy, ref):
        return legacy
    return derived


def _made_by(home: Home, table: str, ref: str) -> bool:
    """Whether ``table`` is in the lake and its current snapshot came from ``ref``."""
    try:
        lake = open_lake(home)
        return lake.exists(table) and lake.current(table).provenance.ref == ref
    except LiberacionError:  # a damaged table: as good as none, its publish replaces it
        return False


def _endpoint_target(target: Target, home: Home) -> Target:
    """A URL whose own name tells nothing (``…/download?format=csv``): the table its first fetch
    named from the server's file name, which the URL's state keeps (a refresh replays the recipe,
    which records ``--as`` only); a table it made under its URL's name keeps that name; otherwise
    the name waits for the download (``provisional``)."""
    chosen = _named_before(home, target.urls[0])
    if chosen is not None:
        return replace(target, table=chosen, named=True)
    if _made_by(home, target.table, target.ref):
        return target
    return replace(target, provisional=True)


def _named_before(home: Home, url: str) -> str | None:
    """The table an earlier first fetch of ``url`` named from the server's file name, if any."""
    chosen = (load_url_state(home, url) or {}).get("named")
    if not isinstance(chosen, str):
        return None
    try:
        return _table_name(chosen)
    except UsageError:  # a state file edited by hand: the server's file name decides again
        return None


def _server_name(target: Target, files: list[_File]) -> str:
    """The table a provisional target lands in: named by the file name the server gave its file
    (its Content-Disposition, else the last URL of its redirects), unless that names nothing
    either (``rows.csv``, ``12345.csv``): then the URL's own name."""
    given = files[0].path.name
    if _nameless(_file_stem(given)):
        return target.table
    name = derived_name(given)
    if name != target.table:
        note(
            f"{name}: named from the server's file name {given}, as the URL names no dataset;"
            " later fetches and refreshes of the URL keep it (--as chooses another)"
        )
    return name


def _not_a_file(ref: str, path: Path) -> str:
    """Why a path that exists cannot be fetched, truly: a directory, or a stream (a pipe, ``<(...)``,
    ``/dev/stdin``) that can be read once only, while a fetch hashes the file, converts it, and
    reads it again on every refresh."""
    import stat

    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return f"{ref} is a directory, not a file: give the path of a file in it"
    kinds = {stat.S_ISFIFO: "a pipe", stat.S_ISCHR: "a device", stat.S_ISSOCK: "a socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "not a regular file")
    return f"{ref} is {kind}, not a file: save what it sends to a file first, then fetch that file"


def _gone_hint(err: LiberacionError, target: Target | None) -> str:
    """What to run when a discovered dataset's file is gone: publishers move files (CMS with every
    release), and only a new ``discover`` reads where the catalog lists it now."""
    dataset = target.dataset if target is not None else None
    if type(err).__name__ != "Gone" or dataset is None:
        return ""
    if dataset.source_kind == "manifest" or "source_id" in dataset.extra:  # looked up afresh already
        return ""
    return f"; if its catalog lists a new file, run: liberacion discover {dataset.catalog}, then this command again"


# -- one job ----------------------------------------------------------------------------------


class _Job:
    def __init__(self, lake: Lake, client: HttpClient, options: FetchOptions, report: ProgressCallback) -> None:
        self.lake = lake
        lake.commit_wait = options.wait  # a lake whose catalog commits can lose a race redoes them this long
        self.client = client
        self.options = options
        self.report = report
        self._claimed: dict[str, str] = {}
        self._claim_lock = threading.Lock()

    def run(self, recipe: Recipe, files: ThreadPoolExecutor) -> FetchResult:
        start = time.monotonic()
        ref = redact_url(recipe.ref)
        table: str | None = recipe.table
        clock = _Stages()
        target: Target | None = None
        received = _Received()
        try:
            with contextlib.ExitStack() as held:  # a provisional name's URL lock, until the publish
                with clock.stage("resolve"):
                    target = resolve_target(recipe, self.lake.home, self.options.catalog_paths)
                    # A provisional name is no table yet: the server names it (a failure says the URL).
                    table = None if target.provisional else target.table
                    if not target.provisional:
                        self._check_identity(target)
                        self._claim(target)
                first: list[_File] | None = None
                if target.provisional:
                    with clock.stage("download"):
                        target, first = self._name_from_server(held, target, files, received)
                    table = target.table
                result = self._fetch(target, files, clock, received, first)
        except LiberacionError as err:
            full = self._no_room(err)
            message = full or str(err) + _gone_hint(err, target)
            code = int(ExitCode.FAILED) if full else int(err.exit_code)
            result = self._failure(ref, table, err, clock, message, code, received)
        except OSError as err:  # the disk: full, read-only, permissions
            message = self._no_room(err) or _said(err)
            result = self._failure(ref, table, err, clock, message, int(ExitCode.FAILED), received)
        except Note as err:  # the caller's filter (``-W error``, pytest's ``error``) raised it: no bug
            message = f"{err} (a warnings filter made this note an error; filter liberacion.Note as 'default' to go on)"
            result = self._failure(ref, table, err, clock, message, int(ExitCode.FAILED), received)
        except Exception as err:  # a bug, or a file that breaks a library: this dataset fails, not the run
            message = internal_error(self.lake.home, err, f"fetch {ref}")
            result = self._failure(ref, table, err, clock, message, int(ExitCode.FAILED), received)
        clock.leave()
        result.seconds = time.monotonic() - start
        result.stages = dict(clock.seconds)
        self.report(ProgressEvent("phase", ref, table or ref, message=result.status))
        return result

    def _no_room(self, err: BaseException) -> str | None:
        """The line for a full disk: the ``--lake`` directory's when that is what filled up (its
        path is in the error), else the home's, where downloads and conversions are written."""
        location = getattr(self.lake, "location", None)
        if location is not None and location.is_local:
            said = f"{getattr(err, 'filename', None) or ''} {err}"
            if location.root in said:
                return no_room(err, location.uri, elsewhere=f"name another lake with {option('lake')}")
        return no_room(err, self.lake.home.root)

    @staticmethod
    def _failure(
        ref: str, table: str | None, err: BaseException, clock: _Stages, message: str, code: int, received: _Received
    ) -> FetchResult:
        return FetchResult(
            ref,
            table,
            "failed",
            error=message,
            error_code=code,
            stage=clock.current,
            error_type=type(err).__name__,
            bytes=received.bytes,  # what this run downloaded, though the fetch failed after (or during) it
        )

    def _claim(self, target: Target) -> None:
        with self._claim_lock:
            other = self._claimed.setdefault(target.table, target.ref)
        if other != target.ref:
            raise UsageError(_shared_table(target.table, [target.ref, other]))

    def _name_from_server(
        self, held: contextlib.ExitStack, target: Target, files: ThreadPoolExecutor, received: _Received
    ) -> tuple[Target, list[_File] | None]:
        """The first fetch of a URL that names no dataset: download it, then name the table from
        the server's file name (``_server_name``), and claim that name; the files downloaded, or
        None when another process named the table meanwhile (then this one fetches as usual).

        Downloading before the table's lock is safe because nothing is compared yet: no
        validators are sent, and the table's snapshot is read only under its lock (``_fetch``).
        The URL's lock, held until the publish has recorded the name, makes a second process
        fetching the URL wait and then find the name, so one URL never publishes to two tables.
        """
        url = target.urls[0]
        lock = self.lake.home.locks / "urls" / f"{url_key(url)}.lock"
        what = f"{target.ref} is being fetched for the first time"
        self._hold(held, partial(file_lock, lock, what=what), what)
        chosen = _named_before(self.lake.home, url)
        obtained: list[_File] | None = None
        if chosen is None:
            obtained = self._obtain(target, None, files, received)
            assert obtained is not None  # without validators every answer is a file
            chosen = _server_name(target, obtained)
        target = replace(target, table=chosen, provisional=False, named=True)
        try:
            self._claim(target)
        except UsageError:
            self._discard(obtained)  # refused: the file is of no use (the next run downloads it again)
            raise
        return target, obtained

    def _fetch(
        self,
        target: Target,
        files: ThreadPoolExecutor,
        clock: _Stages,
        received: _Received,
        first: list[_File] | None = None,
    ) -> FetchResult:
        """Fetch ``target`` under its table's lock; ``first``: its files, downloaded already."""
        with contextlib.ExitStack() as stack:
            stack.callback(_release, first)  # whatever happens next (``_discard`` may come first)
            with clock.stage("download"):
                staging = self._stage(stack, target.table)
                try:
                    self._check_owner(target)
                except UsageError:
                    self._discard(first)
                    raise
                current = self._current(target)
                settings = _settings(target)
                comparable = current if current and current.provenance.settings == settings else None
                obtained = first if first is not None else self._obtain(target, comparable, files, received)
                if first is None:
                    stack.callback(_release, obtained)
            transferred = received.bytes
            # None: the servers said "not modified" to validators, which are sent only without --force.
            if obtained is None or unchanged(comparable, settings, _combined_sha(obtained), force=self.options.force):
                assert comparable is not None
                with clock.stage("download"):  # the check's record: a failure names the stage
                    self._remember(target, obtained)
                self._discard(obtained)
                return self._unchanged(target, comparable, transferred)
            snapshots = self._publish(stack, staging, target, obtained, settings, clock)
            try:
                self._remember(target, obtained)
            except OSError as err:  # published: the table is new, only the next check costs more
                note(
                    f"{target.table}: published, but the download's validators could not be recorded"
                    f" ({_said(err)}); the next fetch of it downloads it again in full"
                )
            self._discard(obtained)
            clock.enter("publish")  # leaving the block prunes old snapshots and rebuilds the views
        clock.leave()
        first = snapshots[0]
        return FetchResult(
            target.ref,
            first.table,  # the table written, which for a zip of one table is not target.table
            "fetched",
            rows=sum(s.rows for s in snapshots),
            rejects=sum(s.rejects for s in snapshots),
            bytes=transferred,
            snapshot=first.id,
            tables=[s.table for s in snapshots],
            table_rows={s.table: s.rows for s in snapshots},
        )

    def _unchanged(self, target: Target, current: Snapshot, transferred: int) -> FetchResult:
        """The result of a download whose bytes the lake has: the same tables, rows and snapshot
        a fetch of them reported (every member of a zip or workbook, not the one compared)."""
        members = self._set_of(current)
        return FetchResult(
            target.ref,
            members[0].table,
            "unchanged",
            rows=sum(s.rows for s in members),
            rejects=sum(s.rejects for s in members),
            bytes=transferred,
            snapshot=members[0].id,
            tables=[s.table for s in members],
            table_rows={s.table: s.rows for s in members},
            change_token=target.dataset.change_token if target.dataset is not None else None,
        )

    def _set_of(self, snap: Snapshot) -> list[Snapshot]:
        """The current snapshots of the tables one download made with ``snap``'s, first table first."""
        listed = snap.provenance.extra.get("tables")
        head = snap.provenance.extra.get("set_of")
        if not listed and isinstance(head, str):  # the set is listed once, in its first table
            first = self._current_of(head)
            listed = first.provenance.extra.get("tables") if first is not None else None
        members = [self._current_of(name) for name in listed or []]
        return [m for m in members if m is not None] or [snap]

    def _stage(self, stack: contextlib.ExitStack, table: str) -> Staging:
        """The table's staging area, waiting for another writer up to ``--wait`` seconds."""
        return self._hold(stack, partial(self.lake.stage, table, wait=0), f"table {table} is being written")

    def _hold(
        self, stack: contextlib.ExitStack, lock: Callable[[], contextlib.AbstractContextManager[_Held]], busy: str
    ) -> _Held:
        """Enter ``lock`` (which raises Busy at once when taken) on ``stack``, trying again for up to
        ``--wait`` seconds; ``busy`` says what is taken, for the message when the wait runs out."""
        deadline = time.monotonic() + self.options.wait
        said = False
        while True:
            try:
                return stack.enter_context(lock())
            except Busy as err:
                if not said and self.options.wait:  # a terminal that says nothing for minutes looks hung
                    said = True
                    self._say_waiting(busy, err.holder)
                if time.monotonic() >= deadline:
                    msg = f"{busy} by another liberacion process"
                    if self.options.wait:
                        msg += f" (waited {self.options.wait:g} s, see --wait)"
                    raise Busy(msg + "; try again later") from None
            self.client.pause(0.2)  # wakes up at once on Ctrl-C

    def _say_waiting(self, busy: str, holder: str) -> None:
        from liberacion.download.session import ProgressEvent

        message = f"waiting up to {self.options.wait:g} s (--wait): {busy} by another liberacion process{holder}"
        self.report(ProgressEvent("waiting", key=busy, name=busy, message=message))

    def _check_identity(self, target: Target) -> None:
        """Refuse a ref that now names another record of its listing than the table was fetched from."""
        from liberacion.resolve import identity_conflict

        if target.dataset is None or not self.lake.exists(target.table):
            return
        try:
            recorded = self.lake.current(target.table).provenance
        except (DamagedSnapshot, NoTable):  # nothing to compare with (fetch --force mends a damaged one)
            return
        conflict = identity_conflict(target.dataset, recorded, target.table)
        if conflict:
            raise SourceError(conflict)

    def _check_owner(self, target: Target) -> None:
        """A table belongs to the ref that made it: another ref lands elsewhere unless ``--as`` says so."""
        current = self._current_of(target.table) if target.recipe.table is None else None
        if current is None:
            return
        owner = current.provenance.ref
        if owner and owner != target.ref:
            raise UsageError(
                f"table {target.table} holds {owner}, not {target.ref}; "
                f"to replace it give --as {target.table}, or choose another table with --as CATALOG.TABLE"
            )

    def _current(self, target: Target) -> Snapshot | None:
        """The snapshot this REF produced last time (of its table, or of its first member table).

        None when any table that publish made is missing or from other bytes (a run killed between
        the tables of one zip): then every table is published again, which completes the set.
        """
        snap = self._current_of(target.table, replacing=True)
        if snap is None:
            prefix = f"{target.table}__"
            owned = (self._current_of(n) for n in self.lake.names() if n.startswith(prefix))
            snap = next((s for s in owned if s is not None and s.provenance.ref == target.ref), None)
        if snap is None:
            return None
        listed = snap.provenance.extra.get("tables")
        head = snap.provenance.extra.get("set_of")
        if not listed and isinstance(head, str):  # the set is listed once, in its first table
            first = self._current_of(head)
            if first is None or first.provenance.sha256 != snap.provenance.sha256:
                return None
            listed = first.provenance.extra.get("tables")
        for name in listed or []:
            member = self._current_of(name)
            if member is None or member.provenance.sha256 != snap.provenance.sha256:
                return None
        return snap

    def _current_of(self, table: str, *, replacing: bool = False) -> Snapshot | None:
        """The table's current snapshot; None when it has none, or when it is damaged (its folder
        or record removed or broken): this publish replaces it, and with ``replacing`` a note says so."""
        if not self.lake.exists(table):
            return None
        try:
            return self.lake.current(table)
        except NoTable:  # a shared lake's table created by a run killed before its first commit
            return None
        except DamagedSnapshot as err:
            if replacing:
                note(f"{table} is damaged ({err.problem or err}): publishing a new snapshot")
            return None

    # -- getting the bytes ---------------------------------------------------------------------

    def _obtain(
        self, target: Target, current: Snapshot | None, files: ThreadPoolExecutor, received: _Received
    ) -> list[_File] | None:
        """The raw files, or None when the server says none changed since ``current``."""
        if target.path is not None:
            return [self._local(target.path, current, files)]
        expected = _expected_bytes(target.urls, current)
        validators = [self._validators(url, sha) for url, sha in zip(target.urls, expected)]
        results = self._download_all(target, validators, files, received)
        if all(r.not_modified for r in results):
            return None
        if any(r.not_modified for r in results):
            # Some files changed and others not: the table is rebuilt from all of them, so the
            # unchanged ones are needed too (raw files are not kept after a publish).
            again = [None if r.not_modified else r for r in results]
            redo = self._download_all(target, [None] * len(results), files, received, [r is None for r in again])
            results = [r if r is not None else redo[i] for i, r in enumerate(again)]
        return [_File(r.url, r.path, r.sha256 or "", r.size, r) for r in results if r.path is not None]

    def _local(self, path: Path, current: Snapshot | None, pool: ThreadPoolExecutor) -> _File:
        """A local file, hashed first only when it may be the one ``current`` was built from.

        Otherwise (a first fetch, ``--force``, another size) the hash runs beside the conversion,
        which writes a stand-in in its place (see ``_settle_hash``): a gigabyte's hash is 0.6 s.
        """
        size = path.stat().st_size
        if current is not None and not self.options.force and current.provenance.raw_bytes == size:
            sha, size = hash_file(path)
            return _File(str(path), path, sha, size)
        return _File(str(path), path, secrets.token_hex(32), size, hashing=pool.submit(hash_file, path))

    def _validators(self, url: str, expected: str | None) -> Validators | None:
        """Validators to send, only when the URL's last download held ``expected``: the bytes the
        current snapshot took for that file (a "not modified" then means the same bytes again)."""
        if self.options.force or expected is None:
            return None
        state = load_url_state(self.lake.home, url)
        if not state or state.get("sha256") != expected:
            return None
        validators = Validators(state.get("etag"), state.get("last_modified"))
        return validators or None

    def _download_all(
        self,
        target: Target,
        validators: list[Validators | None],
        files: ThreadPoolExecutor,
        received: _Received,
        only: list[bool] | None = None,
    ) -> list[Transfer]:
        """Download the target's URLs at once (those ``only`` says); every byte received, of the
        files that arrived and of those that failed, is counted in ``received``."""
        several = len(target.urls) > 1
        futures: list[Future[Transfer] | None] = []
        for i, (url, valid) in enumerate(zip(target.urls, validators)):
            if only is not None and not only[i]:
                futures.append(None)
                continue
            # A provisional name is no table yet: its download is shown by its URL.
            table = target.ref if target.provisional else target.table
            name = f"{table} {file_name_from_url(url)}" if several else table
            futures.append(
                files.submit(
                    self.client.download,
                    url,
                    self.lake.home.downloads,
                    validators=valid,
                    progress=self.report,
                    name=name,
                    wait=self.options.wait,
                )
            )
        results: list[Transfer] = []
        errors: list[BaseException] = []
        for future in futures:
            if future is None:
                results.append(None)  # type: ignore[arg-type]
                continue
            try:
                results.append(future.result())
                received.bytes += results[-1].transferred
            except BaseException as err:
                # The table needs every file: start no more of them, but let running transfers
                # reach a clean stop (their partial files resume next time).
                received.bytes += getattr(err, "transferred", 0)  # set by HttpClient.download
                errors.append(err)
                for other in futures:
                    if other is not None:
                        other.cancel()
        if errors:
            for done in results:
                if done is not None:
                    done.release()  # the URL's own name stays, for the next run to resume or replace
            raise errors[0]
        return results

    # -- conversion and publishing -------------------------------------------------------------

    def _publish(
        self,
        stack: contextlib.ExitStack,
        staging: Staging,
        target: Target,
        files: list[_File],
        settings: dict[str, Any],
        clock: _Stages,
    ) -> list[Snapshot]:
        from liberacion.convert import inspect

        assert target.options is not None
        provenance = self._provenance(target, files, settings)
        self.report(ProgressEvent("phase", target.ref, target.table, message="converting"))
        clock.enter("convert")
        with _CONVERSIONS:
            tables: dict[str | None, _Converted] = {}
            # Unpacked members, gunzipped files and sheets: in the home, removed when the stack closes.
            work = stack.enter_context(self.lake.home.work_area())
            for raw in files:
                # One file at a time, its unpacked copies removed once converted: a dataset of many
                # zips (openFDA's partitions) needs room for one of them unpacked, not for all.
                parts = _kept(raw, partial(inspect, raw.path, target.options, work=work))
                new = {part.suffix for part in parts} - tables.keys()
                if new:
                    _room_for_tables(len(tables) + len(new))
                for part in parts:
                    part.of_several = len(files) > 1
                    converted = tables.get(part.suffix)
                    if converted is None:
                        table = target.table if part.suffix is None else _member_table(target.table, part.suffix)
                        area = staging if table == target.table else self._stage(stack, table)
                        converted = tables[part.suffix] = _Converted(
                            area, replace(provenance, extra=dict(provenance.extra))
                        )
                    deferred = part.pending is not None
                    self._convert(converted, raw, part, target)
                    if deferred:  # unpacked for its conversion alone: gone before the next is unpacked
                        part.path.unlink(missing_ok=True)
                for path in {part.path for part in parts if part.path.is_relative_to(work)}:
                    path.unlink(missing_ok=True)
            stagings: list[tuple[Staging, Provenance]] = []
            empty: list[list[Part]] = []  # the parts of each table without rows, by table
            for converted in tables.values():
                rows = self._finish(converted, target, work)
                _check_keys(target, converted.area.table, converted.provenance)
                stagings.append((converted.area, converted.provenance))
                empty.append(converted.parts if rows == 0 else [])
            stagings = _without_empty_members(stagings, empty)
            _check_types_matched([prov for _area, prov in stagings], len(files))
            _note_skipped(target.table, stagings)
            _settle_hash(files, stagings)
        clock.enter("publish")
        if self.options.before_publish is not None:
            for area, prov in stagings:
                self.options.before_publish(area.table, area, prov)
        # Every table is converted before any is published: a failure publishes none of them.
        self.client.check_cancel()  # nor does Ctrl-C
        tables = [area.table for area, _prov in stagings]
        for i, (_area, prov) in enumerate(stagings):
            prov.stages = dict(clock.seconds)
            if len(tables) > 1:
                # The set one download makes, checked by the next run: listed in its first table
                # only, which the others name (a list in each would make N members cost N²).
                if i == 0:
                    prov.extra["tables"] = tables
                else:
                    prov.extra["set_of"] = tables[0]
        before = {area.table: self._current_of(area.table) for area, _prov in stagings}
        try:
            if len(stagings) == 1:
                area, prov = stagings[0]
                return [area.commit(prov)]
            return self.lake.commit_tables(stagings)  # all of them current together, or none
        except (OSError, LiberacionError) as err:
            published = self._published_anyway(stagings, before)
            if published is None:
                raise
            # Past the commit point (a pointer switched, a set's record written), then a write
            # failed (a full disk): the new snapshots are what every reader sees, so saying "the
            # table is as it was" would be false. The next run clears what this one left.
            note(
                f"{', '.join(s.table for s in published)}: published, but then: {_said(err)};"
                " the next run finishes what this one left"
            )
            return published

    def _published_anyway(
        self, stagings: Sequence[tuple[Staging, Provenance]], before: dict[str, Snapshot | None]
    ) -> list[Snapshot] | None:
        """The current snapshots, when a commit that raised made every staged table current all
        the same (this fetch's download, not another writer's); None when it did not."""
        found = []
        for area, prov in stagings:
            now = self._current_of(area.table)
            if now is None or (now.provenance.fetched_at, now.provenance.sha256) != (prov.fetched_at, prov.sha256):
                return None
            old = before.get(area.table)
            if old is not None and now.id == old.id:
                return None
            found.append(now)
        return found

    def _provenance(self, target: Target, files: list[_File], settings: dict[str, Any]) -> Provenance:
        first = files[0]
        single = first.download if len(files) == 1 else None
        extra: dict[str, Any] = {}
        if target.dataset is not None:
            extra["change_token"] = target.dataset.change_token
            extra["title"] = target.dataset.title
            if identifier := target.dataset.extra.get("identifier"):  # what a later fetch checks the ref against
                extra["identifier"] = identifier
            if target.dataset.extra.get("keys"):
                extra["keys"] = list(target.dataset.extra["keys"])  # diff's default key columns
        if target.reason:
            extra["choice"] = target.reason
        return Provenance(
            source_url=first.download.final_url if first.download else first.source,
            dataset_id=target.dataset.id if target.dataset else None,
            ref=target.ref,
            fetched_at=utc_now(),
            sha256=_combined_sha(files),
            etag=single.etag if single else None,
            last_modified=single.last_modified if single else None,
            raw_bytes=sum(f.size for f in files),
            format=target.options.format if target.options else None,
            recipe=target.recipe,
            downloads=[f.download.record() for f in files if f.download],
            target=target.table,
            settings=settings,
            extra=extra,
        )

    def _convert(self, table: _Converted, raw: _File, part: Part, target: Target) -> None:
        """Convert one part of ``table`` into its staging directory (data-0000, -0001... in the
        order the parts come), setting its bad rows aside for ``_finish``."""
        from liberacion.convert import convert_part

        assert target.options is not None
        area, i = table.area, len(table.reports)
        scratch = area.dir / f".part-{i:04d}"
        scratch.mkdir()
        kv = area.kv_metadata(table.provenance)
        options = {"kv_metadata": kv, "options": target.options, "allow_empty": self.options.allow_empty}
        table.reports.append(_kept(raw, partial(convert_part, part, scratch, **options)))
        table.parts.append(part)
        table.raws.append(raw)
        table.data.append([])
        for data in sorted(scratch.glob("data-*.parquet")):
            table.data[-1].append(area.data_file(table.files))
            os.replace(data, table.data[-1][-1])
            table.files += 1
        if (scratch / REJECTS_FILE).exists():
            kept = area.dir / f".rejects-{i:04d}.parquet"
            os.replace(scratch / REJECTS_FILE, kept)
            table.rejects.append(_PartRejects(kept, _shown_file(raw), part.label))
        shutil.rmtree(scratch)

    def _finish(self, table: _Converted, target: Target, work: Path) -> int:
        """A table's parts all converted: its bad rows in one file, its provenance; the rows it holds."""
        retyped = self._markers_as_text(table, target, work)
        area, prov, reports = table.area, table.provenance, table.reports
        _merge_rejects(table.rejects, area.rejects_file, area.kv_metadata(prov))
        rows = sum(r.rows for r in reports)
        self._refuse_empty(area.table, rows)
        prov.columns = _merged_columns(reports)
        _unify_parts(area, prov, retyped)
        prov.extra["conversion"] = reports[0].notes if len(reports) == 1 else [r.notes for r in reports]
        prov.extra["rejects"] = sum(r.rejects for r in reports)
        _note_losses(area.table, reports)
        return rows

    def _markers_as_text(self, table: _Converted, target: Target, work: Path) -> dict[str, str]:
        """Convert again, with those columns as text, each part that typed a column another part
        makes text: the column holds every file's values as published (``Y``, ``1,234``, ``$5.00``,
        its markers' text), as when the rows come in one file; a typed value written as text is
        only its type's spelling (``true``, ``1234``, ``5.00``). A part whose column held no value
        but markers is converted again only for them. Returns {column: "VARCHAR"} of the columns so made."""
        from liberacion.convert.parts import made_text

        files = [path for paths in table.data for path in paths]
        if len(files) < 2:
            return {}
        texts = dict(zip(files, made_text(files)))
        retyped: dict[str, str] = {}
        for i, (report, paths) in enumerate(zip(table.reports, table.data)):
            typed = {n: t for path in paths for n, t in texts[path].items()}
            # A column without a value changes only if its markers became NULL.
            markers = {n for n in typed if (report.columns.get(n) or {}).get("markers")}
            names = sorted(n for n, t in typed.items() if t != "VARCHAR" or n in markers)
            if names:
                self._convert_again(table, i, names, target, work)
                retyped |= dict.fromkeys(names, "VARCHAR")
        return retyped

    def _convert_again(self, table: _Converted, i: int, names: list[str], target: Target, work: Path) -> None:
        """Part ``i`` of ``table`` converted again with the columns ``names`` as text, in place of its
        data file; a part unpacked from its download (and removed once converted) is unpacked again."""
        from liberacion.convert import convert_part, inspect
        from liberacion.convert.typed_copy import snake_name

        assert target.options is not None
        part, raw = table.parts[i], table.raws[i]
        unpacked: list[Part] = []
        if not part.path.exists():
            unpacked = _kept(raw, partial(inspect, raw.path, target.options, work=work))
            part = next(p for p in unpacked if (p.suffix, p.label) == (part.suffix, part.label))
            part.of_several = True
        # The other files' choice replaces any --type of those columns, however it spells them.
        before = table.reports[i].columns
        spelled = {n.lower() for n in names} | {str(before[n].get("original", n)).lower() for n in names if n in before}
        kept = {
            k: v for k, v in target.options.columns.items() if k.lower() not in spelled and snake_name(k) not in names
        }
        options = replace(target.options, columns={**kept, **dict.fromkeys(names, "VARCHAR")})
        scratch = table.area.dir / f".again-{i:04d}"
        scratch.mkdir()
        try:
            kv = table.area.kv_metadata(table.provenance)
            convert = partial(
                convert_part, part, scratch, kv_metadata=kv, options=options, allow_empty=self.options.allow_empty
            )
            report = _kept(raw, convert)
            written = sorted(scratch.glob("data-*.parquet"))
            assert len(written) == len(table.data[i]), (written, table.data[i])
            for data, path in zip(written, table.data[i]):
                os.replace(data, path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            for path in {p.path for p in unpacked if p.path.is_relative_to(work)}:
                path.unlink(missing_ok=True)
        for name in names:  # its type is the other files' choice, not this run's --type
            report.columns[name]["rule"] = "text in another file of the table"
        table.reports[i] = report

    def _refuse_empty(self, table: str, rows: int) -> None:
        """A file without data rows does not replace a table that has rows: a server that sends a
        header alone, or nothing, would empty the table in the next cron run."""
        if rows or self.options.allow_empty:
            return
        current = self._current_of(table)
        if current is not None and current.rows:
            raise ConversionError(
                f"the new file has no data rows, and {table} has {current.rows:,}: the table was kept as it was"
                " (to publish an empty table, fetch with --allow-empty)"
            )

    # -- bookkeeping ---------------------------------------------------------------------------

    def _remember(self, target: Target, files: list[_File] | None) -> None:
        """Keep each URL's validators and sha256 in the home's state, for the next conditional GET.
        All "not modified": nothing to keep (the table's refresh record says when it was checked),
        and no write, each of which costs two fsyncs: a refresh of many unchanged tables writes none."""
        if files is None:
            return
        now = utc_now()
        for item in files:
            if item.download is None:
                continue
            record = {k: v for k, v in asdict(item.download.record()).items() if k != "url"}
            record.update(table=target.table, checked_at=now)
            # The table the URL's first fetch named from the server's file name outlives a fetch
            # of the URL with --as: a fetch without it lands there again.
            named = target.table if target.named else (load_url_state(self.lake.home, item.source) or {}).get("named")
            if named:
                record["named"] = named
            save_url_state(self.lake.home, item.source, record)

    def _discard(self, files: list[_File] | None) -> None:
        """Raw downloads are not kept once published (or found unchanged): the lake has the data."""
        for item in files or []:
            if item.download is not None:
                item.download.discard()


def _merged_columns(reports: list[ConversionReport]) -> dict[str, dict[str, Any]]:
    """Each column's report over a table's files: the last file's, with the missing-value markers
    of every file counted (a later file's report replaced an earlier one's, and its markers went
    unsaid), and the published name of the first file that has the column (the table's names and
    order are the first file's: ``Measure Value``, not a later file's ``measure_value``)."""
    merged: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, info in report.columns.items():
            before = merged.get(name) or {}
            if isinstance(info, dict) and before.get("original") is not None:
                info = {**info, "original": before["original"]}
            merged[name] = info
            if before.get("markers") and isinstance(info, dict):
                counts = dict(before["markers"])
                for marker, count in (info.get("markers") or {}).items():
                    counts[marker] = counts.get(marker, 0) + count
                merged[name] = {**info, "markers": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
    return merged


def _unify_parts(area: Staging, prov: Provenance, retyped: dict[str, str]) -> None:
    """One schema for the files of a table converted from several (``unify_files``), said in a note
    with the columns already made text (``retyped``)."""
    from liberacion.convert.parts import unify_files

    changed = retyped | unify_files(sorted(area.dir.glob("data-*.parquet")))
    for name, type_ in changed.items():
        prov.columns.setdefault(name, {"original": name})["type"] = type_
    if changed:
        listed = ", ".join(f"{n} {t}" for n, t in changed.items())
        note(f"{area.table}: its files were typed differently; each column holds every file's values as: {listed}")


def _note_losses(table: str, reports: list[ConversionReport]) -> None:
    """Say what the table does not hold: bad rows set aside (skipped members: ``_note_skipped``)."""
    rejects = sum(r.rejects for r in reports)
    if rejects:
        spanned = sum(r.notes.get("rejected_lines", r.rejects) for r in reports)
        lines = f" (spanning {spanned:,} lines)" if spanned > rejects else ""
        bad = f"{rejects:,} bad row{'' if rejects == 1 else 's'}{lines}"
        note(f"{table}: {bad} set aside in {table}{REJECTS_SUFFIX}")


def _without_empty_members(
    stagings: list[tuple[Staging, Provenance]], empty: list[list[Part]]
) -> list[tuple[Staging, Provenance]]:
    """Leave out the tables of zip members without a data row when other members have rows: a
    one-line description (``notes.txt``) or a SAS input program (``layout.sas``) reads as a header
    alone, and is no table. Their names join the members skipped, and their staging is discarded."""
    from liberacion.convert.model import note_skipped

    if all(empty) or not any(empty):
        return stagings
    members = [part for parts in empty for part in parts]
    if not all("member" in part.notes and "sheet" not in part.notes for part in members):
        return stagings  # a sheet or a whole file without rows is a table, as it was published
    dropped = {part.notes["member"]: NO_ROWS for part in members}
    kept = [(area, prov) for (area, prov), parts in zip(stagings, empty) if not parts]
    for _area, prov in kept:
        notes = prov.extra.get("conversion")
        for record in notes if isinstance(notes, list) else [notes]:
            if isinstance(record, dict):
                note_skipped(record, dropped)
    return kept


def _note_skipped(table: str, stagings: list[tuple[Staging, Provenance]]) -> None:
    """Say once for the whole file (not once per table) which members or sheets were left out, and
    why, from the notes the published tables carry."""
    from liberacion.convert.model import NOT_A_TABLE

    why: dict[str, str] = {}
    for _area, prov in stagings:
        notes = prov.extra.get("conversion")
        for record in notes if isinstance(notes, list) else [notes]:
            if isinstance(record, dict):
                names = record.get("skipped_members") or ()
                reasons = record.get("skipped_why") or {}
                why.update({name: reasons.get(name, NOT_A_TABLE) for name in names})
    by_reason: dict[str, list[str]] = {}
    for name in sorted(why):
        by_reason.setdefault(why[name], []).append(name)
    for reason, names in by_reason.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        note(f"{table}: skipped {shown}: {reason}")


def _release(files: list[_File] | None) -> None:
    for item in files or []:
        if item.download is not None:
            item.download.release()


@dataclass(frozen=True)
class _PartRejects:
    """One part's bad rows (a Parquet file) and where that part came from."""

    path: Path
    file: str  # the URL as published (redacted), or the local file's path
    member: str | None  # the zip member (or sheet) as the file spells it; None: the file itself


def _shown_file(raw: _File) -> str:
    """The file a part came from as its bad rows name it: the URL as published (not where it
    redirected), without credentials or secret query values; a local file's path as given."""
    return redact_url(raw.source) if raw.download is not None else raw.source


@dataclass
class _Converted:
    """One table of a download as its parts are converted, file by file."""

    area: Staging
    provenance: Provenance
    reports: list[ConversionReport] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    rejects: list[_PartRejects] = field(default_factory=list)  # each part's bad rows, merged by _finish
    raws: list[_File] = field(default_factory=list)  # the download each part came from
    data: list[list[Path]] = field(default_factory=list)  # the data files each part made
    files: int = 0  # data files moved into the area so far


def _kept(raw: _File, convert: Any) -> Any:
    """Run a conversion step; on failure say where the raw download is, to look at it."""
    try:
        return convert()
    except ConversionError as err:
        if raw.download is not None:
            kept = raw.download.shared or raw.path  # the URL's own name: this run's goes with it
            raise ConversionError(f"{err} (the downloaded file is kept at {kept})") from None
        raise


def _member_table(table: str, suffix: str) -> str:
    """``<table>__<member>``; a name too long is cut with a hash, so two members stay two tables."""
    catalog, name = table.split(".", 1)
    full = f"{name}__{sanitize_identifier(suffix)}"
    return f"{catalog}.{bounded(full, full)}"


def internal_error(home: Home, err: BaseException, what: str) -> str:
    """An unexpected exception of one ref as one line, so the other refs of the run still go on."""
    try:
        return home.report_internal(err, what)
    except OSError:
        return f"internal error ({type(err).__name__}: {one_line(err, lines=1, limit=300)})"


def _room_for_tables(tables: int) -> None:
    """The tables of one file are published together, each holding its writer lock (an open file)
    until the switch: raise the soft limit on open files if it is too low, or say what to do."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    need, roomy = tables + FILES_BESIDE_LOCKS, tables + ROOMY_BESIDE_LOCKS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= roomy:
        return
    wanted = roomy if hard == resource.RLIM_INFINITY else min(roomy, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        held = f"{tables:,} tables, published together," if tables > 1 else "1 table,"
        raise ConversionError(
            f"the file holds {held} which needs at least {need:,} open files; the limit is {soft:,}:"
            f" raise it (ulimit -n {roomy}) and run again"
        )


def _check_types_matched(provenances: list[Provenance], files: int) -> None:
    """A ``--type`` (or manifest column) may miss some tables of a zip, or some of a dataset's
    ``files``, but not every one of them."""
    if len(provenances) < 2 and files < 2:
        return  # one table of one file: the conversion itself refused an unknown name, with near matches
    missed: list[set[str]] = []
    for prov in provenances:
        notes = prov.extra.get("conversion")
        for conversion in notes if isinstance(notes, list) else [notes or {}]:
            missed.append(set(conversion.get("unmatched_types") or ()))
    nowhere = set.intersection(*missed) if missed else set()
    if nowhere:
        names = ", ".join(sorted(nowhere))
        shown = f"{option('types', '--type')} {names}"
        where = f"{len(provenances)} tables of the file" if len(provenances) > 1 else f"{files} files of the dataset"
        raise ConversionError(f"{shown}: no such column in any of the {where}")


def _check_keys(target: Target, table: str, provenance: Provenance) -> None:
    """The manifest's ``keys`` must name columns the table has (by the published header or the
    converted name); they are recorded by their converted names, for ``diff``."""
    keys = provenance.extra.get("keys")
    if not keys:
        return
    by_name = {name.lower(): name for name in provenance.columns}
    for name, info in provenance.columns.items():
        if info.get("original"):
            by_name.setdefault(str(info["original"]).strip().lower(), name)
    resolved, missing = [], []
    for key in [keys] if isinstance(keys, str) else keys:
        found = by_name.get(str(key).strip().lower())
        if found is None:
            missing.append(str(key))
        else:
            resolved.append(found)
    if missing:
        import difflib

        near = sorted({m for key in missing for m in difflib.get_close_matches(key.lower(), list(by_name), n=3)})
        hint = f" (did you mean: {', '.join(by_name[m] for m in near)}?)" if near else ""
        where = target.dataset.ref if target.dataset else target.ref
        raise ConfigError(
            f"{where}: the manifest's keys name {', '.join(repr(m) for m in missing)}, which {table} does not have"
            f"{hint}; fix `keys` in the catalog manifest"
        )
    provenance.extra["keys"] = resolved


def _settings(target: Target) -> dict[str, Any]:
    """What, besides the bytes, decides the table's contents (the user's and the catalog's
    conversion settings): a change here means convert again. The source URLs are not part of it:
    the same bytes from a new URL make the same table."""
    if target.options is None:
        return {}
    settings = asdict(target.options)
    del settings["declared_in"]  # where an override was declared, for messages: not what it converts to
    return settings


def _said(err: BaseException) -> str:
    """An error as one line; a file system's error as its words and the file (no ``[Errno N]``)."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror} ({err.filename})" if err.filename else err.strerror
    return one_line(err)


class _Stages:
    """Which stage of a fetch is running, and the seconds each one took."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self._since = 0.0

    def enter(self, name: str) -> None:
        """End the running stage (if any) and start ``name``."""
        self.leave()
        self.current, self._since = name, time.monotonic()

    def leave(self) -> None:
        """Count the running stage's time so far (``current`` keeps its name until the next one)."""
        if self.current is not None:
            now = time.monotonic()
            self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self._since
            self._since = now

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run a block as stage ``name``; after an exception ``current`` still names it."""
        self.enter(name)
        try:
            yield
        finally:
            self.leave()
        self.current = None


def _settle_hash(files: list[_File], stagings: list[tuple[Staging, Provenance]]) -> None:
    """Put a local file's hash, computed beside its conversion, where its stand-in was written:
    in the provenance and in the key-value metadata of every Parquet file staged."""
    for raw in files:
        if raw.hashing is None:
            continue
        sha, _size = raw.hashing.result()
        for area, prov in stagings:
            if prov.sha256 == raw.sha256:
                prov.sha256 = sha
            for path in area.dir.glob("*.parquet"):
                _replace_in_footer(path, raw.sha256.encode(), sha.encode())
        raw.sha256, raw.hashing = sha, None


def _replace_in_footer(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (as long) in a Parquet file's footer, in place: the footer's
    strings are stored as they are, so no length or offset changes."""
    assert len(old) == len(new)
    with open(path, "r+b") as fh:
        fh.seek(-8, os.SEEK_END)
        tail = fh.read(8)
        if tail[4:] != b"PAR1":
            raise ConversionError(f"{path.name} is not a Parquet file")
        start = fh.seek(-8 - int.from_bytes(tail[:4], "little"), os.SEEK_END)
        footer = fh.read(int.from_bytes(tail[:4], "little"))
        if old not in footer:
            raise ConversionError(f"{path.name} does not carry its provenance")
        fh.seek(start)
        fh.write(footer.replace(old, new))


def _combined_sha(files: list[_File]) -> str:
    if len(files) == 1:
        return files[0].sha256
    digest = hashlib.sha256()
    for item in files:
        digest.update(f"{item.sha256}\n".encode())
    return digest.hexdigest()


def _expected_bytes(urls: Sequence[str], snapshot: Snapshot | None) -> list[str | None]:
    """For each of ``urls``, the sha256 of the file ``snapshot`` took in its stead (None: none).

    The snapshot's own URLs stand for themselves. A catalog that moved its files (data.cms.gov with
    each release, the bytes unchanged) names URLs the snapshot never read: each stands for the file
    in its place, so once a download found the snapshot's bytes there (``unchanged``, which
    publishes nothing), its validators are sent and a "not modified" costs one small request, not
    a full download every night. A file more or fewer makes another table: none stands for any."""
    downloads = snapshot.provenance.downloads if snapshot is not None else []
    if len(downloads) != len(urls):
        return [None] * len(urls)
    by_url = {d.url: d.sha256 for d in downloads if d.sha256}
    if all(redact_url(url) in by_url for url in urls):
        return [by_url[redact_url(url)] for url in urls]
    return [d.sha256 or None for d in downloads]


def hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _merge_rejects(parts: list[_PartRejects], target: Path, kv: dict[str, str]) -> None:
    """Every part's bad rows in ``target``, in the parts' order, each naming the file it came from
    (``line_number`` alone is ambiguous in a table of several files); the parts' files are removed.
    In DuckDB, under the memory limit (spilling beside ``target``): a publish imports no Arrow."""
    if not parts:
        return
    from liberacion.engine import new_connection, set_memory_limit

    scans = " UNION ALL ".join(
        f"SELECT {i} AS part, line_number::BIGINT AS line_number, raw_text::VARCHAR AS raw_text,"
        f" reason::VARCHAR AS reason, {quote_literal(p.file)}::VARCHAR AS file,"
        f" {'NULL' if p.member is None else quote_literal(p.member)}::VARCHAR AS member"
        f" FROM read_parquet({quote_literal(str(p.path))})"
        for i, p in enumerate(parts)
    )
    metadata = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in kv.items())
    spill = target.with_name(".rejects-tmp")
    with new_connection() as con:
        set_memory_limit(con)
        con.execute(f"SET temp_directory = {quote_literal(str(spill))}")
        con.execute(
            f"COPY (SELECT * EXCLUDE (part) FROM ({scans}) ORDER BY part, line_number) TO {quote_literal(str(target))}"
            f" (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{metadata}}})"
        )
    shutil.rmtree(spill, ignore_errors=True)
    for part in parts:
        part.path.unlink()
