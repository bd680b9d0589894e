"""Keep fetched tables fresh, unattended: check each cheaply, re-fetch what changed, report it all.

A refresh hands ``fetch`` the recipe each table's snapshot recorded (the ref and the user's own
options), unchanged; the catalog's current URL, column types and keys apply as ``fetch`` resolves
the ref again. ``fetch`` asks the server with the stored validators first (one small request; a 304
publishes nothing) and compares the sha256 of a download with the current snapshot's, so an
unchanged table never gets a new snapshot. ``--check`` only asks (catalog change tokens, then a
conditional request without a body) and downloads nothing.

One refresh runs at a time per home (an OS lock, released if the holder dies); ``fetch`` and
``sql`` keep working meanwhile. Per-table state (last checked, retired) lives in
``<home>/state/refresh.json``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.catalogs.index import manifest_problems
from liberacion.errors import (
    Busy,
    DamagedSnapshot,
    ExitCode,
    LiberacionError,
    NoTable,
    SchemaChanged,
    SourceError,
    UsageError,
    batch_exit_code,
    option,
    storage_error,
)
from liberacion.home import Home, file_lock
from liberacion.iceberg_lake import check_store, open_lake, orphan_hours, require_lake
from liberacion.lake import Lake, Staging, keep_default
from liberacion.limits import check_limits
from liberacion.refresh_state import FAILED_EVENTS, RETIRED_BY_CATALOG, State
from liberacion.snapshots import Download, Provenance, Recipe, Snapshot
from liberacion.timestamps import utc_now

if TYPE_CHECKING:
    from liberacion.catalogs.model import Catalog
    from liberacion.download import HttpClient

LOCK_FILE = "refresh.lock"
POLICIES = ("evolve", "fail")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class RefreshOptions:
    tables: Sequence[str] = ()  # none: every fetched table
    older_than: float | None = None  # seconds: skip tables checked more recently
    jobs: int = 4
    check: bool = False  # only say what would change
    force: bool = False  # re-download even when the server says "not modified"
    on_schema_change: str = "evolve"  # evolve | fail
    wait: float = 0.0  # seconds to wait for another refresh
    table_wait: float = 300.0  # seconds to wait for a fetch holding one table
    catalog_paths: Sequence[Path] = ()


@dataclass
class RefreshEvent:
    """What happened to one table (one JSON line of the run report)."""

    table: str
    # unchanged | fetched | schema-changed | changed (--check) | skipped, or a failure:
    # failed, gone (the file answered 404/410) or retired (the catalog no longer lists the dataset)
    event: str
    ref: str | None = None
    snapshot: str | None = None
    rows: int | None = None
    rejects: int | None = None  # the bad rows set aside, as fetch's line says
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None  # a failure's only: a monitor alerting on it must not hear of skips
    reason: str | None = None  # why a table was skipped: checked recently, retired
    stage: str | None = None  # where a failure happened: resolve, download, convert or publish
    error_type: str | None = None  # the class of the error
    stages: dict[str, float] = field(default_factory=dict)  # seconds each stage took
    schema_change: dict[str, Any] | None = None
    at: str = field(default_factory=utc_now)
    # The tables the download made (several for a zip's members or a workbook's sheets, whose
    # ``table`` is the name they were fetched as); None when nothing was fetched or compared.
    tables: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every key on every line (null when it does not apply), as ``fetch --json`` writes them."""
        record = {k: v for k, v in asdict(self).items() if k != "stages"}
        record["seconds"] = round(self.seconds, 3)
        record["stages"] = {name: round(seconds, 3) for name, seconds in self.stages.items()}
        return record


# Every event a refresh reports: the summary counts each, zero included.
EVENTS = ("unchanged", "fetched", "schema-changed", "changed", "skipped", "retired", "failed", "gone")


@dataclass
class RefreshReport:
    events: list[RefreshEvent]
    started_at: str
    seconds: float
    check: bool
    # Manifests that could not be read, one line each: catalog tables were not refreshed (another
    # manifest of the same name must never stand in for a broken one), and the run exits 5.
    problems: list[str] = field(default_factory=list)
    # What failed after the tables were done (the state could not be saved: a full disk): exit 1.
    errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {event: 0 for event in EVENTS} | dict(Counter(e.event for e in self.events))

    @property
    def exit_code(self) -> int:
        """5 when a manifest could not be read; 1 when a table failed or its file is gone; 10 when
        ``--check`` found updates; else 0. A retired dataset is not a failure: the table keeps its
        last snapshot and is skipped."""
        if self.problems:
            return int(ExitCode.CONFIG)
        failures = [ExitCode.FAILED for e in self.events if e.event in FAILED_EVENTS]
        failures += [ExitCode.FAILED for _ in self.errors]
        updates = self.check and any(e.event == "changed" for e in self.events)
        return int(batch_exit_code(failures, updates=updates))

    def summary(self) -> dict[str, Any]:
        return {
            "event": "summary",
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "tables": len(self.events),
            **self.counts,
            "exit_code": self.exit_code,
            "error": "; ".join([*self.problems, *self.errors]) or None,
        }


def _run_all(runner: _Runner, targets: list[_Target], client: HttpClient, jobs: int) -> list[RefreshEvent]:
    """Each target on the pool; Ctrl-C stops the transfers and conversions under way at once, so
    no table is published after it (a table already switched stays switched)."""
    from liberacion.engine import Run
    from liberacion.fetching import stopped_at_once

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="refresh")
    futures: list[Future[RefreshEvent]] = []
    run = Run()
    with stopped_at_once(client, [pool], futures, run):
        futures += [pool.submit(run.call, runner.run, target) for target in targets]
        events = [future.result() for future in futures]
    return events


def _check_only_asks(options: RefreshOptions) -> None:
    """``--check`` downloads nothing, publishes nothing and takes no lock: an option that acts on
    those would be ignored without a word (``--check --force`` read as "check while forcing")."""
    check = option("check")
    if options.force:
        raise UsageError(f"{check} and {option('force')} cannot be combined: {check} downloads nothing; drop one")
    if options.on_schema_change != "evolve":
        name, value = option("on_schema_change"), options.on_schema_change
        flag = f"{name} {value}" if name.startswith("--") else f"{name}={value!r}"
        raise UsageError(f"{check} and {flag} cannot be combined: {check} publishes nothing; drop one")
    if options.wait > 0:
        raise UsageError(
            f"{check} and {option('wait')} cannot be combined: {check} runs beside another refresh and never"
            " waits for it; drop one"
        )


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``12h``, ``2d``, ``1w`` as seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(
            f"{option('older_than')}: invalid duration {text!r}: use a number with s, m, h, d or w, e.g. 12h"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def refresh(
    home: Home | Path,
    options: RefreshOptions | None = None,
    *,
    on_event: Callable[[RefreshEvent], None] | None = None,
    client: HttpClient | None = None,
    on_waiting: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Refresh the named tables (or every fetched table) and report what happened to each.

    ``on_waiting`` hears, once, that the run waits up to ``--wait`` for another refresh."""
    from liberacion.download import HttpClient

    options = options or RefreshOptions()
    if options.on_schema_change not in POLICIES:
        raise UsageError(f"{option('on_schema_change')} must be one of: {', '.join(POLICIES)}")
    if options.jobs < 1:
        raise UsageError(f"{option('jobs')} must be at least 1")
    if options.wait < 0:
        raise UsageError(f"{option('wait')} must be 0 or more seconds")
    if options.check:
        _check_only_asks(options)
    home = home if isinstance(home, Home) else Home(Path(home))
    client = client or HttpClient()  # the download settings (LIBERACION_TIMEOUT...) before anything runs
    keep_default()  # and LIBERACION_KEEP, which every publish reads
    check_limits()  # and the size limits each table's download and conversion read
    orphan_hours()
    lake = open_lake(home)
    require_lake(lake)  # a --lake naming no lake (a typo) is said (exit 3), never "nothing to refresh"
    started, clock = utc_now(), time.monotonic()
    problems = [str(p) for p in manifest_problems(home, options.catalog_paths)]
    if not home.root.exists() and not lake.names():  # nothing fetched: finding nothing makes no home
        _targets(lake, options, State(home))  # a table named here is still not found (exit 3)
        return RefreshReport([], started, time.monotonic() - clock, options.check, problems)
    # --check only reads (the lake, the index, the servers' answers) and records nothing: it runs
    # beside a refresh rather than make a cron refresh starting meanwhile exit 75.
    with nullcontext() if options.check else _refresh_lock(home, options.wait, on_waiting):
        from liberacion.fetching import tidy

        if options.check:  # nothing to tidy, but a store gone fails the run as it fails a refresh
            check_store(lake)
        else:
            tidy(lake)
        state = State(home)
        targets = _targets(lake, options, state)
        runner = _Runner(lake, options, state, client, on_event or (lambda _e: None))
        events = _run_all(runner, targets, client, options.jobs)
        errors = [] if options.check else _finish(lake, state)
    return RefreshReport(events, started, time.monotonic() - clock, options.check, problems, errors)


def _finish(lake: Lake, state: State) -> list[str]:
    """Save the tables' state and rebuild the views, once for the whole run; what fails (a full
    disk) is one line each for the report, which still goes out: the tables' lines and the summary
    are the run's record, and the tables published stay published."""
    from liberacion.fetching import update_views

    errors = []
    for finish in (state.save, lambda: update_views(lake)):
        try:
            finish()
        except OSError as err:
            errors.append(str(storage_error(err)))
    return errors


@contextmanager
def _refresh_lock(home: Home, wait: float, on_waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """The one-refresh-per-home lock, with a message that says what to do."""
    with ExitStack() as stack:
        try:
            _take_lock(stack, home, wait, on_waiting)
        except Busy:
            msg = f"another refresh is running on {home.root}; try again later or use --wait SECONDS"
            if wait:
                msg = f"another refresh is running on {home.root} (waited {wait:g} s); try again later or wait longer"
            raise Busy(msg) from None
        except OSError as err:  # a full disk or a read-only home: one line, not a traceback
            where = err.filename or str(home.locks / LOCK_FILE)
            raise storage_error(OSError(err.errno, err.strerror, where)) from None
        yield


def _take_lock(stack: ExitStack, home: Home, wait: float, on_waiting: Callable[[str], None] | None) -> None:
    path = home.locks / LOCK_FILE
    try:
        stack.enter_context(file_lock(path, what="refresh"))
    except Busy as busy:
        if not wait:
            raise
        if on_waiting:  # a terminal that says nothing for minutes looks hung
            on_waiting(f"waiting up to {wait:g} s (--wait): another refresh is running on {home.root}{busy.holder}")
        stack.enter_context(file_lock(path, wait=wait, what="refresh"))


@dataclass
class _Target:
    table: str
    snapshot: Snapshot | None
    skip: str | None = None  # why it is not checked this run
    damaged: DamagedSnapshot | None = None  # its current snapshot cannot be read: it fails alone


def _targets(lake: Lake, options: RefreshOptions, state: State) -> list[_Target]:
    named = list(dict.fromkeys(options.tables))
    names = named or lake.names()
    targets: dict[str, _Target] = {}
    now = time.time()
    listings = _Listings(lake.home, options.catalog_paths)
    for name in names:
        try:
            snap = lake.current(name)
        except NoTable:
            if named:
                raise
            continue
        except DamagedSnapshot as err:  # reported as that table's failure; the others go on
            targets[name] = _Target(name, None, damaged=err)
            continue
        table = snap.provenance.target or snap.table  # the members of a zip refresh as one
        if table in targets or snap.provenance.recipe is None:
            continue  # published by the API, not fetched: nothing to refresh from
        record = state.get(table)
        skip = None
        if _retired(record) and not named and not listings.lists(snap.provenance):
            skip = "retired"
        elif options.older_than is not None and _checked_within(record, now, options.older_than):
            skip = "checked recently"
        targets[table] = _Target(table, snap, skip)
    # A damaged member of a zip set is republished by its set's refresh: not a failure of its own
    sets = [t.table for t in targets.values() if t.snapshot is not None and t.skip is None]
    return [t for t in targets.values() if t.damaged is None or not any(t.table.startswith(f"{s}__") for s in sets)]


class _Runner:
    def __init__(
        self,
        lake: Lake,
        options: RefreshOptions,
        state: State,
        client: HttpClient,
        on_event: Callable[[RefreshEvent], None],
    ) -> None:
        self.lake = lake
        self.options = options
        self.state = state
        self.client = client
        self.on_event = on_event

    def run(self, target: _Target) -> RefreshEvent:
        start = time.monotonic()
        ref = target.snapshot.provenance.ref if target.snapshot is not None else None
        try:
            if target.damaged is not None:
                err = target.damaged
                event = RefreshEvent(
                    target.table, "failed", error=str(err), stage="resolve", error_type=type(err).__name__
                )
            elif target.skip:
                current = target.snapshot
                event = RefreshEvent(
                    target.table, "skipped", ref=ref, snapshot=current.id, rows=current.rows, reason=target.skip
                )
            elif self.options.check:
                event = self._check(target)
            else:
                event = self._refresh(target)
        except Exception as err:  # one table's trouble never costs the others, the log or the state
            from liberacion.fetching import internal_error

            message = internal_error(self.lake.home, err, f"refresh {target.table}")
            event = RefreshEvent(target.table, "failed", ref=ref, error=message, error_type=type(err).__name__)
        event.seconds = time.monotonic() - start
        # --check only asks: were it recorded as a check, the next refresh --older-than would skip
        # the very tables it found changed.
        if event.event != "skipped" and not self.options.check:
            self.state.update(target.table, event.event, event.at)
        self.on_event(event)
        return event

    # -- --check: ask, never download --------------------------------------------------------

    def _check(self, target: _Target) -> RefreshEvent:
        assert target.snapshot is not None
        prov = target.snapshot.provenance
        verified = self.state.verified_token(target.table, prov.sha256)
        try:
            changed = _would_change(self.lake.home, prov, self.client, self.options.catalog_paths, verified)
        except LiberacionError as err:
            return RefreshEvent(
                target.table,
                failure_event(type(err).__name__),
                ref=prov.ref,
                error=str(err),
                error_type=type(err).__name__,
            )
        if changed:
            return RefreshEvent(target.table, "changed", ref=prov.ref)
        current = target.snapshot  # what a refresh's unchanged line names too
        return RefreshEvent(target.table, "unchanged", ref=prov.ref, snapshot=current.id, rows=current.rows)

    # -- refresh: fetch again with the same recipe ---------------------------------------------

    def _refresh(self, target: _Target) -> RefreshEvent:
        from liberacion.fetching import FetchOptions, fetch_recipes

        assert target.snapshot is not None
        prov = target.snapshot.provenance
        assert prov.recipe is not None
        identifier, conflict = self._identity(target.table, prov)
        if conflict is not None:  # never load another dataset's rows into the table
            return RefreshEvent(
                target.table, "failed", ref=prov.ref, error=conflict, stage="resolve", error_type="SourceError"
            )
        changes: dict[str, dict[str, Any]] = {}
        run = FetchOptions(
            jobs=1,
            force=self.options.force,
            wait=self.options.table_wait,
            catalog_paths=self.options.catalog_paths,
            before_publish=self._schema_guard(changes, identifier),
            housekeeping=False,  # the run does it once
        )
        [result] = fetch_recipes([_replayed(prov, target.table)], self.lake.home, run, client=self.client)
        event = RefreshEvent(
            target.table,
            result.status,
            ref=prov.ref,
            snapshot=result.snapshot,
            rows=result.rows,
            rejects=result.rejects,
            bytes=result.bytes,
            stages=result.stages,
            tables=result.tables or None,
        )
        change = next(iter(changes.values()), None)
        if result.status == "failed":
            event.event = failure_event(result.error_type)
            event.error, event.stage, event.error_type = result.error, result.stage, result.error_type
            event.error = _limit_raised_by_fetch(event.error, prov.recipe)
            if result.error_type == SchemaChanged.__name__:  # --on-schema-change fail: what it refused
                event.schema_change = change
            return event
        if change and result.status == "fetched":
            event.event, event.schema_change = "schema-changed", change
        token = result.change_token
        # The listing changed, the bytes did not: what --check compares the listing with from now
        # on, when the bytes compared were this snapshot's (not another member's of a zip set).
        if (
            result.status == "unchanged"
            and token is not None
            and token != prov.extra.get("change_token")
            and result.snapshot == target.snapshot.id
            and prov.sha256 is not None
        ):
            self.state.verify(target.table, prov.sha256, token)
        return event

    def _identity(self, table: str, prov: Provenance) -> tuple[str | None, str | None]:
        """The listing identifier of the dataset the table's ref names now, and why that is not the
        table's dataset (None when it is, or when the ref is not a discovered dataset's)."""
        from liberacion.resolve import identity_conflict, indexed_dataset, listed_identifier

        if prov.recipe is None or "://" in prov.recipe.ref:
            return None, None
        dataset = indexed_dataset(prov.recipe.ref, self.lake.home, self.options.catalog_paths)
        if dataset is None:
            return None, None
        return listed_identifier(dataset), identity_conflict(dataset, prov, table)

    def _schema_guard(
        self, changes: dict[str, dict[str, Any]], identifier: str | None = None
    ) -> Callable[[str, Staging, Provenance], None]:
        from liberacion.compare import schema_changes

        def guard(table: str, staging: Staging, provenance: Provenance) -> None:
            if identifier is not None:  # what the next refresh checks the ref against
                provenance.extra["identifier"] = identifier
            try:
                current = self.lake.current(table)
            except (NoTable, DamagedSnapshot):  # nothing to compare with; publishing mends a damaged one
                return
            change = schema_changes(current.schema, staging.schema())
            if not change:
                return
            changes[table] = change.to_dict()
            provenance.extra["schema_change"] = change.to_dict()
            if self.options.on_schema_change == "fail":
                raise SchemaChanged(
                    f"{table}: the columns changed upstream ({change.summary()}); kept the current snapshot"
                    " (--on-schema-change fail; use evolve to accept the new columns)"
                )

        return guard


def failure_event(error_type: str | None) -> str:
    """How a refresh names a failure: ``retired`` when the catalog no longer lists the dataset,
    ``gone`` when its file answers 404 or 410, ``failed`` otherwise. A home that has not read the
    catalog's listing (``NotDiscovered``) cannot tell that the catalog dropped it: ``failed``."""
    return {"NoDataset": "retired", "Gone": "gone"}.get(error_type or "", "failed")


def _limit_raised_by_fetch(error: str | None, recipe: Recipe) -> str | None:
    """Too many bad rows say "raise the limit with --max-bad-rows", which refresh does not take:
    the limit is the recipe's, so the advice is the fetch that records a higher one (with the
    recipe's other options, which a fetch without them would drop), replayed by later refreshes."""
    said = f"raise the limit with {option('max_bad_rows')}"
    if error is None or said not in error:
        return error
    import shlex

    if option("max_bad_rows") == "max_bad_rows":  # from Python
        given = [repr(recipe.ref)]
        given += [f"as_table={recipe.table!r}"] if recipe.table else []
        given += [f"types={recipe.types!r}"] if recipe.types else []
        given += ["raw=True"] if recipe.raw else []
        given += [f"member={recipe.member!r}"] if recipe.member is not None else []
        return error.replace(said, f"raise the limit with liberacion.fetch({', '.join(given)}, max_bad_rows=N)")
    words = ["liberacion", "fetch", recipe.ref, *(["--as", recipe.table] if recipe.table else [])]
    for column, sql_type in recipe.types.items():
        words += ["--type", f"{column}={sql_type}"]
    words += ["--raw"] if recipe.raw else []
    words += ["--member", recipe.member] if recipe.member is not None else []
    return error.replace(said, f"raise the limit with: {shlex.join(words)} --max-bad-rows N")


def _replayed(prov: Provenance, table: str) -> Recipe:
    """The snapshot's recipe, publishing into the table it refreshes. Without a table, a URL that
    names no dataset would be named again from the server's file name in a home that never fetched
    it (another home of a shared lake), and a new name would publish beside the refreshed table."""
    assert prov.recipe is not None
    return replace(prov.recipe, table=prov.recipe.table or table)


def _would_change(
    home: Home, prov: Provenance, client: HttpClient, catalog_paths: Sequence[Path], verified: str | None = None
) -> bool:
    """The cheapest reliable answer to "has the source changed since this snapshot?". ``verified``:
    a later change token a refresh found to name the snapshot's bytes (``State.verify``)."""
    from liberacion.fetching import hash_file, resolve_target

    # Resolved as the refresh would (a missing file, an unknown dataset fail with its words).
    target = resolve_target(prov.recipe or Recipe(str(prov.ref)), home, catalog_paths)
    if target.path is not None:
        return hash_file(target.path)[0] != prov.sha256
    if target.dataset is not None:  # a catalog ref: its metadata first, then the file itself
        from liberacion.resolve import identity_conflict

        if conflict := identity_conflict(target.dataset, prov, prov.target or str(prov.ref)):
            raise SourceError(conflict)
        token, listed = prov.extra.get("change_token"), target.dataset.change_token
        if token and listed is not None and listed not in (token, verified):
            return True
        if sorted(target.urls) != sorted(d.url for d in prov.downloads):
            moved = _moved_unchanged(home, target.urls, prov)
            if moved is None:
                return True  # the catalog points at another file now
            # A refresh already found the moved file's bytes the snapshot's: its server decides.
            return _any_changed(home, moved, client)
        # Same metadata and the same URL: a file replaced in place only its server can tell.
    downloads = prov.downloads or ([Download(prov.source_url)] if prov.source_url else [])
    return _any_changed(home, downloads, client)


def _moved_unchanged(home: Home, urls: Sequence[str], prov: Provenance) -> list[Download] | None:
    """The files the catalog now names, when a refresh since the snapshot downloaded every one and
    found the snapshot's very bytes (the publisher moved them, as data.cms.gov does with releases):
    that refresh said ``unchanged`` and published nothing, so the snapshot still names the old URLs.
    None when any of them is new to this home or held other bytes."""
    from liberacion.download.state import load_url_state

    states = [load_url_state(home, url) or {} for url in urls]
    # File by file in the listing's order, as a refresh sends their validators (``fetching``'s
    # ``_expected_bytes``): the same files in another order make another table.
    known = [str(state.get("sha256")) for state in states]
    if any(not state.get("sha256") for state in states) or known != [str(d.sha256) for d in prov.downloads]:
        return None
    return [Download(url, sha256=state["sha256"], etag=state.get("etag")) for url, state in zip(urls, states)]


def _any_changed(home: Home, downloads: Sequence[Download], client: HttpClient) -> bool:
    """Whether any of the files answers other than ``304 Not Modified`` to its stored validators."""
    from liberacion.download import Validators
    from liberacion.download.state import load_url_state

    if not downloads:
        return True
    for download in downloads:
        known = load_url_state(home, download.url) or {}
        validators = Validators(known.get("etag") or download.etag, known.get("last_modified"))
        if not validators:
            return True  # nothing to compare with: only a download can tell
        if client.probe(download.url, validators).status != 304:
            return True
    return False


def _checked_within(record: dict[str, Any], now: float, seconds: float) -> bool:
    """Whether the table's last check that got an answer is less than ``seconds`` old, and no
    refresh failed since (``failed_at``): a failure is tried again on the next run, however
    recent the check before it. A check in the future (the clock set back since) is not recent."""
    if record.get("failed_at"):
        return False
    return 0 <= now - record.get("checked", 0) < seconds


def _retired(record: dict[str, Any]) -> bool:
    """Whether refresh skips the table: only a retirement its catalog decided. An older mark (no
    ``retired_by``) may stand for a moved or missing file, so the table is checked once more, and
    that check marks it again if its catalog no longer lists it."""
    return bool(record.get("retired")) and record.get("retired_by") == RETIRED_BY_CATALOG


class _Listings:
    """Whether the catalog lists a retired table's dataset again, read from the manifests and the
    index alone (no request). A listing that dropped a dataset for a day (or a listing cut short)
    must not stop a cron refresh from ever checking it again; once it is listed again, the refresh
    fetches it. Each catalog's manifest and index part are read once per run, however many of its
    tables are retired."""

    def __init__(self, home: Home, catalog_paths: Sequence[Path]) -> None:
        self.home = home
        self.catalog_paths = catalog_paths
        self._catalogs: dict[str, tuple[Catalog, set[str]] | None] = {}

    def lists(self, prov: Provenance) -> bool:
        """Whether the dataset of the snapshot's ref is listed now (a URL or a file never is)."""
        from liberacion.naming import safe_id
        from liberacion.resolve import split_ref

        ref = prov.recipe.ref if prov.recipe is not None else prov.ref
        if not ref or "://" in ref:
            return False
        try:
            catalog_name, dataset_id = split_ref(ref)
        except LiberacionError:
            return False
        found = self._catalog(catalog_name)
        if found is None:  # a catalog gone, or a manifest broken: the run says so elsewhere
            return False
        catalog, listed = found
        curated = catalog.curated(dataset_id)
        if curated is not None and "source_id" not in curated.extra:
            return True  # the manifest names its file again
        if curated is not None:  # a pointer into a source: listed when the source's index holds it
            dataset_id = safe_id(str(curated.extra["source_id"]))
        return dataset_id in listed

    def _catalog(self, name: str) -> tuple[Catalog, set[str]] | None:
        from liberacion.catalogs import index
        from liberacion.catalogs.manifests import find_catalog

        if name not in self._catalogs:
            try:
                catalog = find_catalog(name, self.catalog_paths)
            except LiberacionError:
                self._catalogs[name] = None
            else:
                parts = index.read_part(self.home, catalog.name).values()
                self._catalogs[name] = (catalog, {str(r.get("id")) for records in parts for r in records})
        return self._catalogs[name]


def check_log(path: Path) -> None:
    """``--log FILE`` must be a file that can be appended to, in a directory that exists: said
    before anything runs, not after the tables were published. No directory is made (a typo in a
    crontab would scatter logs where nobody looks)."""
    if path.is_dir():
        raise UsageError(f"--log: {path} is a directory; give the path of a file")
    if not path.parent.is_dir():
        raise UsageError(f"--log: directory {path.parent} does not exist; create it, or check the path")
    if path.is_fifo() or path.is_char_device():
        # Opening a FIFO to try it would end its reader's input (a `cat` sees EOF and leaves).
        if not os.access(path, os.W_OK):
            raise UsageError(f"--log: cannot write to {path}")
        return
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as err:
        raise UsageError(f"--log: cannot append to {path}: {err.strerror or err}") from None


class RunLog:
    """``--log FILE``: each table's line as soon as the table is done (a killed run keeps what it
    did), then the summary. A write that fails is remembered, not raised: the run's other output
    still goes out, and the command reports the log's error last."""

    def __init__(self, path: Path | None) -> None:
        import threading

        self.path = path
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stream: Any = None  # a FIFO or a device, held open for the whole run

    def event(self, event: RefreshEvent) -> None:
        self.write([event.to_dict()])

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if self.path is None or self.error is not None:
            return
        with self._lock:
            try:
                if self._stream is None and (self.path.is_fifo() or self.path.is_char_device()):
                    # Closed after each line, a FIFO's reader (a `cat`) would stop at the first.
                    self._stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                if self._stream is not None:
                    self._stream.write(_json_lines(records))
                    self._stream.flush()
                else:
                    append_log(self.path, records)
            except OSError as err:
                self.error = f"--log: cannot write {self.path}: {err.strerror or err}; the run's lines are not in it"


def append_log(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append records (``report_records``) to ``path`` as JSON lines; its directory must exist."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(_json_lines(records))


def _json_lines(records: Sequence[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(r, default=str) for r in records) + "\n"


def report_records(report: RefreshReport) -> list[dict[str, Any]]:
    """The run report as JSON records: one per table, then the summary."""
    return [*(e.to_dict() for e in report.events), report.summary()]


def stopped_summary(started_at: str, seconds: float, exit_code: int, error: str) -> dict[str, Any]:
    """The summary of a run that stopped before its report (Ctrl-C, another refresh running), so a
    cron log shows it happened: no table counts, its exit code and why."""
    return {
        "event": "summary",
        "started_at": started_at,
        "seconds": round(seconds, 3),
        "tables": None,
        "exit_code": exit_code,
        "error": error,
    }
