"""The command line: thin Typer commands over the liberacion API.

This is the only module that prints or exits. Errors raised by the core become one line on
stderr and an exit code here, in ``_Group.invoke``; unexpected bugs keep their traceback.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from liberacion import __version__
from liberacion.errors import ConfigError, ExitCode, LiberacionError, UsageError
from liberacion.home import Home, resolve_home
from liberacion.render import DEFAULT_MAX_ROWS, Format, Rows, default_format, render


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LiberacionError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(int(err.exit_code)) from None


app = typer.Typer(
    cls=_Group,
    name="liberacion",
    help=(
        "Discover, fetch, convert and query HHS open health data.\n\n"
        "Fetched datasets land as Parquet in a local lake that DuckDB SQL can query.\n\n"
        "\b\nExamples:\n"
        "  liberacion fetch cms/hospital-general-information\n"
        '  liberacion sql "select state, count(*) from cms.hospital_general_information group by 1"'
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold API tokens
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Settings:
    """Global options, shared by every command through the Typer context."""

    home_option: Path | None = None
    catalog_paths: list[Path] = field(default_factory=list)

    @property
    def home(self) -> Home:
        return Home(resolve_home(self.home_option))

    def lake(self) -> Any:
        from liberacion.lake import Lake

        return Lake(self.home)


def _version(value: bool) -> None:
    if value:
        print(f"liberacion {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: Annotated[
        Optional[Path],
        typer.Option(
            "--home",
            metavar="DIR",
            help="Directory for everything liberacion writes [env: LIBERACION_HOME].",
            show_default=False,
        ),
    ] = None,
    catalogs: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--catalogs",
            metavar="PATH",
            help="Extra catalog manifest file or directory (repeatable) [env: LIBERACION_CATALOGS].",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Settings(home_option=home, catalog_paths=list(catalogs or []))


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


FormatOption = Annotated[
    Optional[Format],
    typer.Option(
        "--format", "-f", help="Output format [default: table on a terminal, csv otherwise].", show_default=False
    ),
]
OutputOption = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write to FILE (atomically) instead of stdout.", show_default=False),
]
MaxRowsOption = Annotated[int, typer.Option("--max-rows", help="Rows shown in a terminal table.")]


def _emit(
    rows: Rows, fmt: Format | None, output: Path | None, max_rows: int = DEFAULT_MAX_ROWS, title: str | None = None
) -> None:
    chosen = fmt or (Format.csv if output is not None else default_format(sys.stdout))
    render(rows, chosen, output=output, max_rows=max_rows, title=title)


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[
        Optional[str], typer.Argument(help="SQL to run; '-' reads it from stdin.", show_default=False)
    ] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the SQL from FILE.", show_default=False)] = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    max_rows: MaxRowsOption = DEFAULT_MAX_ROWS,
    as_of: Annotated[
        Optional[str],
        typer.Option(
            "--as-of",
            metavar="WHEN",
            help=(
                "Query every table as it was at WHEN: a date (the end of that day, UTC) or a UTC timestamp "
                "such as 2026-11-01T06:30:00. Tables that did not exist then are absent."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run DuckDB SQL over the lake. Tables are CATALOG.TABLE.

    \b
    Examples:
      liberacion sql "select * from cms.hospital_general_information limit 5"
      echo "select count(*) from cdc.places_county" | liberacion sql - --format json
      liberacion sql --file report.sql --format parquet --output report.parquet
      liberacion sql --as-of 2026-11-01 "select count(*) from cms.hospital_general_information"
    """
    from liberacion.query import run

    when = None
    if as_of is not None:
        from liberacion.timestamps import parse_as_of

        when = parse_as_of(as_of)
    text = _read_query(query, file)
    reader = run(_settings(ctx).lake(), text, as_of=when)
    _emit(Rows.from_arrow(reader), fmt, output, max_rows)


def _read_query(query: str | None, file: Path | None) -> str:
    if file is not None and query is not None:
        raise UsageError("give the SQL either as an argument or with --file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot read {file}: {err.strerror}") from None
    elif query == "-":
        text = sys.stdin.read()
    elif query is not None:
        text = query
    else:
        raise UsageError("no SQL given: pass a query, '-' to read stdin, or --file FILE")
    if not text.strip():
        raise UsageError("the SQL is empty")
    return text


@app.command()
def tables(ctx: typer.Context, fmt: FormatOption = None, output: OutputOption = None) -> None:
    """List every table in the lake with its size, freshness and source.

    \b
    Example:
      liberacion tables --format json
    """
    lake = _settings(ctx).lake()
    columns = ["catalog", "table", "rows", "bytes", "fetched_at", "source_url", "snapshots"]
    records = [
        {
            "catalog": info.current.catalog,
            "table": info.name.split(".", 1)[1],
            "rows": info.current.rows,
            "bytes": info.size_on_disk,
            "fetched_at": info.current.provenance.fetched_at or info.current.published_at,
            "source_url": info.current.provenance.source_url,
            "snapshots": info.snapshot_count,
        }
        for info in lake.tables()
    ]
    _emit(Rows.from_dicts(columns, records), fmt, output)


@app.command()
def info(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="CATALOG.TABLE", show_default=False)],
    fmt: Annotated[
        Optional[Format],
        typer.Option(
            "--format", "-f", help="table or json [default: table on a terminal, json otherwise].", show_default=False
        ),
    ] = None,
) -> None:
    """Show a table's schema, provenance and snapshots.

    \b
    Example:
      liberacion info cms.hospital_general_information
    """
    lake = _settings(ctx).lake()
    current = lake.current(table)
    snaps = lake.snapshots(table)
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.json)
    if chosen is Format.json:
        import json

        document = {"current": current.to_dict(), "snapshots": [s.to_dict() for s in snaps]}
        print(json.dumps(document, indent=2, default=str))
        return
    if chosen is not Format.table:
        raise UsageError("info supports --format table or json")
    _print_info(current, snaps)


def _print_info(current: Any, snaps: list[Any]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    prov = current.provenance
    console.print(f"[bold]{current.table}[/bold]  {current.rows:,} rows, {_size(current.bytes)}, snapshot {current.id}")
    for label, value in [
        ("source", prov.source_url),
        ("dataset", prov.ref or prov.dataset_id),
        ("fetched", prov.fetched_at),
        ("published", current.published_at),
        ("sha256", prov.sha256),
        ("etag", prov.etag),
        ("last-modified", prov.last_modified),
        ("rejected rows", current.rejects or None),
    ]:
        if value:
            console.print(f"  {label:<14} {value}")
    notes = prov.columns
    schema = Rows(
        ["column", "type", "original", "nulls", "missing markers", "description"],
        [
            [
                (c.name, c.type, c.original, c.null_count, _markers(notes.get(c.name, {})), c.description)
                for c in current.schema
            ]
        ],
    )
    render(schema, Format.table, stdout=console.file, max_rows=10_000, title="schema")
    history = Rows(
        ["snapshot", "published_at", "rows", "bytes", "sha256"],
        [[(s.id, s.published_at, s.rows, s.bytes, (s.provenance.sha256 or "")[:12]) for s in reversed(snaps)]],
    )
    render(history, Format.table, stdout=console.file, title="snapshots")


@app.command()
def fetch(
    ctx: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(metavar="REF", help="catalog/dataset ref, http(s) URL or local file path.", show_default=False),
    ],
    as_table: Annotated[
        Optional[str],
        typer.Option(
            "--as",
            metavar="CATALOG.TABLE",
            help="Table to write (one REF only) [default: the dataset's table, or local.<file name>].",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Downloads at once (at most 2 per host).")] = 4,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even when the server says the file has not changed.")
    ] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="Print one JSON object per dataset on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    progress: Annotated[
        bool, typer.Option("--progress", help="Show progress even when stderr is not a terminal.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option("--wait", metavar="SECONDS", help="How long to wait for another process writing the same table."),
    ] = 300.0,
    types: Annotated[
        Optional[list[str]],
        typer.Option("--type", metavar="COLUMN=TYPE", help="Type of a column (repeatable), e.g. --type zip=VARCHAR."),
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Load every column as text, without type inference.")] = False,
    member: Annotated[
        Optional[str],
        typer.Option("--member", metavar="NAME", help="Load only this member of a zip (or sheet of a workbook)."),
    ] = None,
    max_bad_rows: Annotated[
        Optional[int],
        typer.Option("--max-bad-rows", metavar="N", help="Fail when more rows than N cannot be loaded."),
    ] = None,
) -> None:
    """Download datasets into the lake: resumable, verified, in parallel.

    A dataset the server says is unchanged (or whose bytes are the same) publishes nothing. A
    failed dataset leaves its table as it was; the others are still published (exit code 1).
    An interrupted download resumes where it stopped on the next run.

    \b
    Examples:
      liberacion fetch cms/hospital-general-information
      liberacion fetch cdc/places-county cms/hospital-general-information --jobs 2
      liberacion fetch https://example.org/files/deaths.csv --as cdc.deaths --type fips=VARCHAR
      liberacion fetch ./DEMO_I.XPT --as nhanes.demo_i
      liberacion fetch cms/hospital-general-information --json --quiet   # for cron
    """
    from liberacion.fetch import FetchOptions, parse_types
    from liberacion.fetch import fetch as fetch_datasets

    settings = _settings(ctx)
    options = FetchOptions(
        table=as_table,
        jobs=jobs,
        force=force,
        wait=wait,
        types=parse_types(types or []),
        raw=raw,
        member=member,
        max_bad_rows=max_bad_rows,
        catalog_paths=settings.catalog_paths,
    )
    show = not quiet and not json_lines and (progress or sys.stderr.isatty())
    view = _FetchProgress(live=sys.stderr.isatty()) if show or (progress and not quiet) else None
    try:
        with view or _no_view():
            results = fetch_datasets(refs, settings.home, options, progress=view.event if view else None)
    except KeyboardInterrupt:
        print(
            "interrupted: tables not yet published keep their previous snapshot; run the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    _report_fetch(results, json_lines=json_lines, quiet=quiet)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        busy = all(r.error_code == int(ExitCode.BUSY) for r in failed)
        raise typer.Exit(int(ExitCode.BUSY if busy else ExitCode.FAILED))


@contextmanager
def _no_view() -> Iterator[None]:
    yield


def _report_fetch(results: list[Any], *, json_lines: bool, quiet: bool) -> None:
    import json

    for result in results:
        if result.status == "failed":
            error = str(result.error)
            # Download errors already start with the URL: do not say it twice.
            print(f"error: {error if error.startswith(result.ref) else f'{result.ref}: {error}'}", file=sys.stderr)
    if json_lines:
        for result in results:
            print(json.dumps(result.to_dict()))
        return
    if quiet:
        return
    rows = [
        (
            ", ".join(r.tables) if len(r.tables) > 1 else r.table or r.ref,
            r.status,
            f"{r.rows:,}" if r.rows is not None else "-",
            _size(r.bytes),
            f"{r.seconds:.1f} s",
        )
        for r in results
    ]
    if sys.stdout.isatty():
        render(Rows(["table", "status", "rows", "downloaded", "time"], [rows]), Format.table)
        return
    for table, status, count, size, seconds in rows:
        counted = f"{count} rows" if count != "-" else count
        print(f"{table}\t{status}\t{counted}\t{size}\t{seconds}")


class _FetchProgress:
    """Progress of a fetch on stderr: rich bars on a terminal, a few plain lines otherwise."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int | None]] = {}
        self._tasks: dict[str, Any] = {}
        self._reported: dict[str, int] = {}
        self._bars: Any = None
        self._overall: Any = None

    def __enter__(self) -> _FetchProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bars = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bars.__enter__()
            self._overall = self._bars.add_task("all downloads", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(None, None, None)

    def event(self, event: Any) -> None:
        with self._lock:
            if event.kind in ("start", "advance", "done", "unchanged"):
                self._files[event.key] = (event.done, event.total)
            if self.live:
                self._update_bars(event)
            else:
                self._print_line(event)

    def _update_bars(self, event: Any) -> None:
        bars = self._bars
        task = self._tasks.get(event.key)
        if event.kind == "start" and task is None:
            task = self._tasks[event.key] = bars.add_task(event.name, total=event.total, completed=event.done)
        if task is not None:
            if event.kind in ("start", "advance"):
                bars.update(task, completed=event.done, total=event.total, description=event.name)
            elif event.kind == "retry":
                bars.update(task, description=f"{event.name} ({event.message})")
            elif event.kind in ("done", "failed", "unchanged"):
                bars.remove_task(task)
                del self._tasks[event.key]
        if event.kind == "phase" and event.message == "converting":
            bars.console.print(f"converting {event.name}", highlight=False)
        done = sum(d for d, _ in self._files.values())
        totals = [t for _, t in self._files.values()]
        bars.update(self._overall, completed=done, total=sum(totals) if totals and None not in totals else None)  # type: ignore[arg-type]

    def _print_line(self, event: Any) -> None:
        def say(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        if event.kind == "start":
            total = f" of {_size(event.total)}" if event.total else ""
            resumed = f", resuming at {_size(event.done)}" if event.done else ""
            say(f"{event.name}: downloading{total}{resumed}")
            self._reported[event.key] = 0
        elif event.kind == "advance" and event.total:
            tenth = event.done * 10 // event.total
            if tenth > self._reported.get(event.key, 0) and tenth < 10:
                self._reported[event.key] = tenth
                say(f"{event.name}: {tenth * 10}% ({_size(event.done)})")
        elif event.kind == "retry":
            say(f"{event.name}: {event.message}")
        elif event.kind == "done":
            say(f"{event.name}: downloaded {_size(event.done)}")
        elif event.kind == "unchanged":
            say(f"{event.name}: not modified on the server")
        elif event.kind == "phase" and event.message == "converting":
            say(f"{event.name}: converting")


@app.command()
def history(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="CATALOG.TABLE", show_default=False)],
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """List a table's kept snapshots, oldest first, and what changed in each.

    Each row is one snapshot: when it was published, its rows and bytes, the sha256 of the raw
    download, and how its rows and columns differ from the snapshot before it.

    \b
    Examples:
      liberacion history cms.hospital_general_information
      liberacion history cdc.leading_causes_of_death --format json
    """
    from liberacion.history import HISTORY_COLUMNS, history

    records = [entry.record() for entry in history(_settings(ctx).lake(), table)]
    chosen = fmt or (Format.csv if output is not None else default_format(sys.stdout))
    if chosen is Format.table:  # the full digest does not fit a terminal column
        for record in records:
            record["sha256"] = (record["sha256"] or "")[:12] or None
    _emit(Rows.from_dicts(HISTORY_COLUMNS, records), chosen, output, title=f"history of {table}")


@app.command()
def diff(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="CATALOG.TABLE", show_default=False)],
    from_ref: Annotated[
        Optional[str],
        typer.Option(
            "--from",
            metavar="SNAP",
            help="Older snapshot: an id or unique id prefix, 'previous', or a date/time [default: previous].",
            show_default=False,
        ),
    ] = None,
    to_ref: Annotated[
        Optional[str],
        typer.Option(
            "--to",
            metavar="SNAP",
            help="Newer snapshot, in the same forms [default: current].",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        Optional[list[str]],
        typer.Option(
            "--key",
            "-k",
            metavar="COL",
            help="Key column matching rows across snapshots (repeatable, or comma-separated) "
            "[default: the dataset's declared keys].",
            show_default=False,
        ),
    ] = None,
    show: Annotated[int, typer.Option("--show", metavar="N", help="Examples of each kind of row change.")] = 5,
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """Compare two snapshots of a table: columns, row counts and (with keys) rows.

    Reports added, removed, retyped and renamed-looking columns and the row counts. With key
    columns it counts rows added, removed and changed (in columns both snapshots have, NULL-safe;
    a retyped column's values are compared as text) and shows --show N examples of each. Without
    keys, added and removed count rows with no identical row in the other snapshot. Output is one
    record per change: change, column, key, old, new, count.

    \b
    Examples:
      liberacion diff cdc.leading_causes_of_death --key year,cause_name,state
      liberacion diff cms.hospital_general_information --from 20261101 --to current -k facility_id
    """
    from liberacion.diff import TableDiff, diff, keys_from_provenance
    from liberacion.history import previous_snapshot, resolve_snapshot

    lake = _settings(ctx).lake()
    if show < 0:
        raise UsageError("--show must be 0 or more")
    new = resolve_snapshot(lake, table, to_ref or "current")
    old = resolve_snapshot(lake, table, from_ref) if from_ref else previous_snapshot(lake, table, new)
    keys = key or keys_from_provenance(new, old)
    result = diff(old, new, keys=keys, show=show)
    title = f"{table}: {old.id} → {new.id}"
    _emit(Rows.from_dicts(list(TableDiff.RECORD_COLUMNS), result.records()), fmt, output, title=title)


@app.command()
def prune(
    ctx: typer.Context,
    tables: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="TABLE", help="Tables to prune [default: every table].", show_default=False),
    ] = None,
    keep: Annotated[
        Optional[int],
        typer.Option(
            "--keep",
            metavar="N",
            help="Snapshots to keep per table, the current one included [default: LIBERACION_KEEP or 3].",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """Delete old snapshots, keeping the newest N of each table.

    Prints one row per snapshot removed. The current snapshot is always kept, and retention
    already applies after every publish; use this to keep fewer snapshots or after lowering
    LIBERACION_KEEP. A table being published is skipped (exit 75).

    \b
    Examples:
      liberacion prune --keep 1
      liberacion prune cms.hospital_general_information --keep 2
    """
    from liberacion.errors import Busy
    from liberacion.history import prune as prune_table

    lake = _settings(ctx).lake()
    names = tables or lake.names()
    records = []
    busy = []
    for name in names:
        try:
            removed = prune_table(lake, name, keep=keep)
        except Busy as err:  # the others can still be pruned
            print(f"warning: skipped {name}: {err}", file=sys.stderr)
            busy.append(name)
            continue
        records += [
            {"table": name, "snapshot": s.id, "published_at": s.published_at, "rows": s.rows, "bytes": s.bytes}
            for s in removed
        ]
    _emit(Rows.from_dicts(["table", "snapshot", "published_at", "rows", "bytes"], records), fmt, output)
    if busy:
        raise Busy(f"{len(busy)} table(s) in use and not pruned: {', '.join(busy)}")


@app.command()
def refresh(
    ctx: typer.Context,
    tables: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="TABLE", help="Tables to refresh [default: every fetched table].", show_default=False),
    ] = None,
    older_than: Annotated[
        Optional[str],
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Skip tables checked less than DURATION ago (30m, 12h, 2d).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Tables refreshed at a time.")] = 4,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only report what would change (exit 10 if anything would); download nothing."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Download even when the server says nothing changed.")] = False,
    on_schema_change: Annotated[
        str,
        typer.Option(
            "--on-schema-change",
            metavar="evolve|fail",
            help="evolve: publish and report new columns; fail: keep the old snapshot.",
        ),
    ] = "evolve",
    wait: Annotated[
        float,
        typer.Option("--wait", metavar="SECONDS", help="Wait this long for another refresh to finish (else exit 75)."),
    ] = 0.0,
    log: Annotated[
        Optional[Path],
        typer.Option(
            "--log", metavar="FILE", help="Append a JSON line per table and a summary line to FILE.", show_default=False
        ),
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per table, then a summary, on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures.")] = False,
) -> None:
    """Re-check fetched tables and re-fetch what changed upstream (made for cron).

    An unchanged table costs one small request and gets no new snapshot. Exit codes: 0 all
    fetched or unchanged, 1 some failed, 10 --check found updates, 75 another refresh is running.

    \b
    Examples:
      liberacion refresh
      liberacion refresh cms.hospital_general_information --check
      liberacion refresh --older-than 12h --quiet --log ~/liberacion-refresh.log
    """
    import json

    from liberacion.refresh import RefreshOptions, append_log, parse_duration
    from liberacion.refresh import refresh as run_refresh

    settings = _settings(ctx)
    options = RefreshOptions(
        tables=tables or [],
        older_than=parse_duration(older_than) if older_than else None,
        jobs=jobs,
        check=check,
        force=force,
        on_schema_change=on_schema_change,
        wait=wait,
        catalog_paths=settings.catalog_paths,
    )
    report = run_refresh(settings.home, options)
    if log is not None:
        append_log(log, report)
    if json_lines:
        for event in report.events:
            print(json.dumps(event.to_dict(), default=str))
        print(json.dumps(report.summary()))
    else:
        _report_refresh(report, quiet=quiet)
    raise typer.Exit(report.exit_code)


def _report_refresh(report: Any, *, quiet: bool) -> None:
    for event in report.events:
        if event.error and event.event in ("failed", "retired"):
            print(f"{event.event}: {event.table}: {event.error}", file=sys.stderr)
    if quiet:
        return
    columns = ["table", "event", "rows", "bytes", "seconds", "detail"]
    records = [
        {
            "table": e.table,
            "event": e.event,
            "rows": e.rows,
            "bytes": e.bytes,
            "seconds": round(e.seconds, 2),
            "detail": e.error if e.event == "skipped" else (e.schema_change and "schema changed") or "",
        }
        for e in report.events
    ]
    _emit(Rows.from_dicts(columns, records), None, None)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())) or "nothing to refresh"
    print(f"refresh: {counts} in {report.seconds:.1f} s", file=sys.stderr)


@app.command()
def catalogs(ctx: typer.Context, fmt: FormatOption = None, output: OutputOption = None) -> None:
    """List the catalogs: name, title, kinds of listing, datasets indexed, last discover.

    Shipped manifests come first; LIBERACION_CATALOGS and --catalogs add or replace them.

    \b
    Examples:
      liberacion catalogs
      liberacion --catalogs ./my-catalogs catalogs --format json
    """
    from liberacion.index import catalog_status

    settings = _settings(ctx)
    problems: list[ConfigError] = []
    found = catalog_status(settings.home, settings.catalog_paths, problems=problems)
    columns = ["name", "title", "kinds", "datasets", "last_discovered", "status"]
    records = [{**vars(c), "kinds": ",".join(c.kinds)} for c in found]
    _emit(Rows.from_dicts(columns, records), fmt, output)
    _fail_on_problems(problems)


@app.command()
def discover(
    ctx: typer.Context,
    names: Annotated[
        Optional[list[str]], typer.Argument(metavar="[NAME]...", help="Catalogs to discover [default: all].")
    ] = None,
) -> None:
    """Download the catalogs' listings and build the local dataset index.

    An unchanged listing costs one conditional request. A listing that fails keeps the previous
    index of that catalog and makes the exit code 1; the other catalogs are still updated. The
    index is queryable as liberacion.datasets.

    \b
    Examples:
      liberacion discover
      liberacion discover cms cdc
      liberacion sql "select ref, title from liberacion.datasets where 'csv' in formats"
    """
    from liberacion.index import discover as discover_catalogs

    settings = _settings(ctx)
    report = discover_catalogs(settings.home, names or [], settings.catalog_paths, progress=_note)
    for catalog in report.catalogs:
        parts = [
            f"{s.kind} {s.status}" + (f" ({s.datasets:,})" if s.status != "failed" else "") for s in catalog.sources
        ]
        detail = f" [{'; '.join(parts)}]" if parts else ""
        _note(f"{catalog.name}: {catalog.datasets:,} datasets indexed{detail} in {catalog.seconds:.1f} s")
        for source in catalog.sources:
            for note in source.notes:
                _note(f"{catalog.name}: note: {note}")
            if source.status == "failed":
                kept = "keeping the previous index" if source.datasets else "nothing indexed yet"
                print(f"error: {catalog.name}: {source.error} ({kept})", file=sys.stderr)
    _fail_on_problems(report.problems)
    if report.failed:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command()
def search(
    ctx: typer.Context,
    terms: Annotated[Optional[list[str]], typer.Argument(metavar="[TERMS]...", help="Words to look for.")] = None,
    catalog: Annotated[Optional[str], typer.Option("--catalog", help="Only this catalog.", show_default=False)] = None,
    publisher: Annotated[
        Optional[str], typer.Option("--publisher", help="Only publishers containing this text.", show_default=False)
    ] = None,
    format_of_data: Annotated[
        Optional[str],
        typer.Option(
            "--format-of-data",
            help="Only datasets offering files of this format (csv, zip, xpt...).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most N results; 0 for all.")] = 20,
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """Search the dataset index: exact title matches first, then titles, keywords, descriptions.

    Curated datasets are searchable at once; run discover to search whole catalogs.

    \b
    Examples:
      liberacion search hospital general information
      liberacion search "leading causes" --catalog cdc --format-of-data csv
      liberacion search opioid --publisher medicare --limit 5 --format json
    """
    from liberacion.index import search as search_index

    settings = _settings(ctx)
    problems: list[ConfigError] = []
    hits = search_index(
        settings.home,
        terms or [],
        catalog=catalog,
        publisher=publisher,
        data_format=format_of_data,
        limit=limit,
        extra_paths=settings.catalog_paths,
        problems=problems,
    )
    columns = ["ref", "title", "publisher", "modified", "formats"]
    records = [{**vars(h), "formats": ",".join(h.formats)} for h in hits]
    _emit(Rows.from_dicts(columns, records), fmt, output)
    if not hits:
        _note("no datasets match; try fewer words, or run: liberacion discover")
    _fail_on_problems(problems)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="CATALOG/ID, e.g. cms/hospital-general-information.")],
    fmt: Annotated[
        Optional[Format],
        typer.Option(
            "--format", "-f", help="table or json [default: table on a terminal, json otherwise].", show_default=False
        ),
    ] = None,
) -> None:
    """Show a dataset: its metadata, every file, the one fetch would choose and why, and its
    table in the lake.

    \b
    Examples:
      liberacion show cms/hospital-general-information
      liberacion show cdc/bi63-dtpu --format json
    """
    from liberacion.catalogs import describe

    settings = _settings(ctx)
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.json)
    if chosen not in (Format.table, Format.json):
        raise UsageError("show supports --format table or json")
    description = describe(settings.home, ref, settings.catalog_paths)
    if chosen is Format.json:
        import json

        print(json.dumps(description.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_description(description)


def _print_description(description: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    dataset = description.dataset
    console.print(f"[bold]{escape(dataset.ref)}[/bold]  {escape(dataset.title)}")
    lake = description.lake
    in_lake = (
        f"{lake['table']}: {lake['rows']:,} rows, snapshot {lake['snapshot']} ({lake['published_at']})"
        if lake["present"]
        else f"{lake['table']}: not fetched yet"
    )
    for label, value in [
        ("publisher", dataset.publisher),
        ("modified", dataset.modified),
        ("change token", dataset.change_token),
        ("source", dataset.source_kind),
        ("landing page", dataset.landing_page),
        ("keywords", ", ".join(dataset.keywords)),
        ("lake", in_lake),
        (
            "fetch would take",
            ", ".join(d.url for d in description.chosen[:3]) + (" ..." if len(description.chosen) > 3 else ""),
        ),
        ("because", description.reason),
    ]:
        if value:
            console.print(f"  {label:<17} {escape(str(value))}")
    if dataset.description:
        console.print()
        console.print(escape(dataset.description))
    chosen = {d.url for d in description.chosen}
    files = Rows(
        ["", "kind", "format", "media type", "modified", "url"],
        [
            [
                ("*" if d.url in chosen else "", d.kind, d.format, d.media_type, d.modified, d.url)
                for d in dataset.distributions
            ]
        ],
    )
    render(files, Format.table, stdout=console.file, title="distributions (* = fetch would take)")


def _note(message: str) -> None:
    """A message for people: stderr, so stdout stays data."""
    print(message, file=sys.stderr)


def _fail_on_problems(problems: list[ConfigError]) -> None:
    """Manifests that could not be read: one line each, then exit 5 (the others were used)."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        raise typer.Exit(int(ExitCode.CONFIG))


def _markers(note: dict[str, Any]) -> str:
    """``Not Available ×2,509`` for the markers a column had (and a percent note)."""
    found = ", ".join(f"{marker} ×{count:,}" for marker, count in (note.get("markers") or {}).items())
    return f"{found}{'; ' if found and note.get('percent') else ''}{'was a percent' if note.get('percent') else ''}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def main() -> None:
    """Entry point of the ``liberacion`` console script."""
    try:
        app(prog_name="liberacion")
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        sys.exit(int(ExitCode.INTERRUPTED))
