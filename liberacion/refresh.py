"""Keep fetched tables fresh, unattended: check each cheaply, re-fetch what changed, report it all.

A refresh re-runs ``fetch`` for the ref each table was fetched from, with the same conversion
recipe. ``fetch`` asks the server with the stored validators first (one small request; a 304
publishes nothing) and compares the sha256 of a download with the current snapshot's, so an
unchanged table never gets a new snapshot. ``--check`` only asks (catalog change tokens, then a
conditional request without a body) and downloads nothing.

One refresh runs at a time per home (an OS lock, released if the holder dies); ``fetch`` and
``sql`` keep working meanwhile. Per-table state (last checked, retired) lives in
``<home>/state/refresh.json``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.errors import Busy, ExitCode, LiberacionError, NoTable, UsageError
from liberacion.files import atomic_write
from liberacion.home import Home, file_lock
from liberacion.lake import Lake, Staging
from liberacion.snapshots import Provenance, Snapshot
from liberacion.timestamps import utc_now

if TYPE_CHECKING:
    from liberacion.download import HttpClient

LOCK_FILE = "refresh.lock"
STATE_FILE = "refresh.json"
POLICIES = ("evolve", "fail")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SchemaChanged(LiberacionError):
    """A new release changed the table's columns and the policy is ``fail``."""


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
    event: str  # unchanged | fetched | schema-changed | failed | retired | skipped | changed (--check)
    ref: str | None = None
    snapshot: str | None = None
    rows: int | None = None
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    schema_change: dict[str, Any] | None = None
    at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        record = {k: v for k, v in asdict(self).items() if v is not None}
        record["seconds"] = round(self.seconds, 3)
        return record


@dataclass
class RefreshReport:
    events: list[RefreshEvent]
    started_at: str
    seconds: float
    check: bool

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(e.event for e in self.events))

    @property
    def exit_code(self) -> int:
        if any(e.event == "failed" for e in self.events):
            return int(ExitCode.FAILED)
        if self.check and any(e.event == "changed" for e in self.events):
            return int(ExitCode.UPDATES)
        return int(ExitCode.OK)

    def summary(self) -> dict[str, Any]:
        return {
            "event": "summary",
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "tables": len(self.events),
            **self.counts,
            "exit_code": self.exit_code,
        }


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``12h``, ``2d``, ``1w`` as seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"invalid duration {text!r}: use a number with s, m, h, d or w, e.g. 12h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def refresh(
    home: Home | Path,
    options: RefreshOptions | None = None,
    *,
    on_event: Callable[[RefreshEvent], None] | None = None,
    client: HttpClient | None = None,
) -> RefreshReport:
    """Refresh the named tables (or every fetched table) and report what happened to each."""
    from liberacion.download import HttpClient

    options = options or RefreshOptions()
    if options.on_schema_change not in POLICIES:
        raise UsageError(f"--on-schema-change must be one of: {', '.join(POLICIES)}")
    home = home if isinstance(home, Home) else Home(Path(home))
    lake = Lake(home)
    started, clock = utc_now(), time.monotonic()
    with _refresh_lock(home, options.wait):
        state = _State(home)
        targets = _targets(lake, options, state)
        runner = _Runner(lake, options, state, client or HttpClient(), on_event or (lambda _e: None))
        with ThreadPoolExecutor(max_workers=max(1, options.jobs), thread_name_prefix="refresh") as pool:
            events = list(pool.map(runner.run, targets))
        state.save()
    return RefreshReport(events, started, time.monotonic() - clock, options.check)


@contextmanager
def _refresh_lock(home: Home, wait: float) -> Iterator[None]:
    """The one-refresh-per-home lock, with a message that says what to do."""
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(home.locks / LOCK_FILE, wait=wait, what="refresh"))
        except Busy:
            waited = f" (waited {wait:g} s)" if wait else ""
            msg = f"another refresh is running on {home.root}{waited}; try again later or use --wait SECONDS"
            raise Busy(msg) from None
        yield


@dataclass
class _Target:
    table: str
    snapshot: Snapshot | None
    skip: str | None = None  # why it is not checked this run


def _targets(lake: Lake, options: RefreshOptions, state: _State) -> list[_Target]:
    named = list(dict.fromkeys(options.tables))
    names = named or lake.names()
    targets: dict[str, _Target] = {}
    now = time.time()
    for name in names:
        try:
            snap = lake.current(name)
        except NoTable:
            if named:
                raise
            continue
        table = snap.provenance.extra.get("target") or snap.table  # the members of a zip refresh as one
        if table in targets or not snap.provenance.ref:
            continue  # published by the API, not fetched: nothing to refresh from
        record = state.get(table)
        skip = None
        if record.get("retired") and not named:
            skip = "retired"
        elif options.older_than is not None and now - record.get("checked", 0) < options.older_than:
            skip = "checked recently"
        targets[table] = _Target(table, snap, skip)
    return list(targets.values())


class _Runner:
    def __init__(
        self,
        lake: Lake,
        options: RefreshOptions,
        state: _State,
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
        assert target.snapshot is not None
        ref = target.snapshot.provenance.ref
        if target.skip:
            event = RefreshEvent(target.table, "skipped", ref=ref, error=target.skip)
        elif self.options.check:
            event = self._check(target)
        else:
            event = self._refresh(target)
        event.seconds = time.monotonic() - start
        if event.event != "skipped":
            self.state.update(target.table, event)
        self.on_event(event)
        return event

    # -- --check: ask, never download --------------------------------------------------------

    def _check(self, target: _Target) -> RefreshEvent:
        assert target.snapshot is not None
        prov = target.snapshot.provenance
        try:
            changed = _would_change(self.lake.home, prov, self.client, self.options.catalog_paths)
        except LiberacionError as err:
            return self._failure(target, err)
        return RefreshEvent(target.table, "changed" if changed else "unchanged", ref=prov.ref)

    # -- refresh: fetch again with the same recipe ---------------------------------------------

    def _refresh(self, target: _Target) -> RefreshEvent:
        from liberacion.fetch import FetchOptions, fetch

        assert target.snapshot is not None
        prov = target.snapshot.provenance
        recipe = prov.extra.get("recipe") or {}
        changes: dict[str, dict[str, Any]] = {}
        fetch_options = FetchOptions(
            table=target.table,
            jobs=1,
            force=self.options.force,
            wait=self.options.table_wait,
            types=dict(recipe.get("columns") or {}),
            raw=bool(recipe.get("raw")),
            member=recipe.get("member"),
            max_bad_rows=recipe.get("max_bad_rows"),
            catalog_paths=self.options.catalog_paths,
            before_publish=self._schema_guard(changes),
        )
        [result] = fetch([str(prov.ref)], self.lake.home, fetch_options, client=self.client)
        if result.status == "failed":
            if result.error_code == int(ExitCode.NOT_FOUND):
                return RefreshEvent(target.table, "retired", ref=prov.ref, error=result.error)
            return RefreshEvent(target.table, "failed", ref=prov.ref, error=result.error)
        change = next(iter(changes.values()), None)
        return RefreshEvent(
            target.table,
            "schema-changed" if change and result.status == "fetched" else result.status,
            ref=prov.ref,
            snapshot=result.snapshot,
            rows=result.rows,
            bytes=result.bytes,
            schema_change=change,
        )

    def _schema_guard(self, changes: dict[str, dict[str, Any]]) -> Callable[[str, Staging, Provenance], None]:
        from liberacion.diff import schema_changes

        def guard(table: str, staging: Staging, provenance: Provenance) -> None:
            try:
                current = self.lake.current(table)
            except NoTable:
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

    def _failure(self, target: _Target, err: LiberacionError) -> RefreshEvent:
        ref = target.snapshot.provenance.ref if target.snapshot else None
        kind = "retired" if err.exit_code == ExitCode.NOT_FOUND else "failed"
        return RefreshEvent(target.table, kind, ref=ref, error=str(err))


def _would_change(home: Home, prov: Provenance, client: HttpClient, catalog_paths: Sequence[Path]) -> bool:
    """The cheapest reliable answer to "has the source changed since this snapshot?"."""
    from liberacion.download import Validators
    from liberacion.fetch import load_url_state

    ref = str(prov.ref)
    local = Path(ref).expanduser()
    if "://" not in ref and local.is_file():
        from liberacion.fetch import hash_file

        return hash_file(local)[0] != prov.sha256
    token = prov.extra.get("change_token")
    if token and "://" not in ref:
        from liberacion.catalogs import resolve_ref

        dataset = resolve_ref(ref, home, catalog_paths)
        if dataset.change_token is not None:
            return bool(dataset.change_token != token)
    downloads = prov.extra.get("downloads") or [{"url": prov.source_url}]
    for download in downloads:
        url = download.get("url")
        if not url:
            return True
        known = load_url_state(home, url) or {}
        validators = Validators(known.get("etag") or download.get("etag"), known.get("last_modified"))
        if not validators:
            return True  # nothing to compare with: only a download can tell
        if client.probe(url, validators).status != 304:
            return True
    return False


class _State:
    """Per-table refresh state: when it was last checked, the last event, whether it is retired."""

    def __init__(self, home: Home) -> None:
        self.path = home.state / STATE_FILE
        try:
            self.tables: dict[str, dict[str, Any]] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.tables = {}

    def get(self, table: str) -> dict[str, Any]:
        return self.tables.get(table, {})

    def update(self, table: str, event: RefreshEvent) -> None:
        record = dict(self.tables.get(table, {}))
        record["checked"] = time.time()
        record["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["last_event"] = event.event
        if event.event == "retired":
            record["retired"] = record.get("retired") or event.at
        elif event.event in ("fetched", "unchanged", "schema-changed", "changed"):
            record.pop("retired", None)
        self.tables[table] = record

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.tables, indent=1, sort_keys=True))


def append_log(path: Path, report: RefreshReport) -> None:
    """Append the run report to ``path`` as JSON lines: one per table, then a summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(e.to_dict(), default=str) for e in report.events]
    lines.append(json.dumps(report.summary()))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
