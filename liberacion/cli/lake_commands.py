"""Commands over the lake: sql, tables, info, history, diff, prune."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from liberacion import api
from liberacion.cli.app import DocumentFormatOption, FormatOption, MaxRowsOption, OutputOption, app, settings
from liberacion.cli.completion import complete_sql, complete_table
from liberacion.console import emit, print_info, print_json, with_options
from liberacion.errors import Busy, DamagedSnapshot, ExitCode, NoSnapshot, NoTable, UsageError
from liberacion.files import is_stdout
from liberacion.render import DEFAULT_MAX_ROWS, PARQUET_ON_A_TERMINAL, Format, Rows, choose_format, listing_kinds
from liberacion.timestamps import parse_as_of

TableArgument = Annotated[
    str, typer.Argument(metavar="TABLE", help="CATALOG.TABLE", show_default=False, autocompletion=complete_table)
]


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[
        Optional[str],
        typer.Argument(
            metavar="QUERY",
            help="SQL to run; '-' reads it from stdin.",
            show_default=False,
            autocompletion=complete_sql,
        ),
    ] = None,
    file: Annotated[
        Optional[Path], typer.Option("--file", metavar="FILE", help="Read the SQL from FILE.", show_default=False)
    ] = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    max_rows: MaxRowsOption = DEFAULT_MAX_ROWS,
    expanded: Annotated[
        bool,
        typer.Option("--expanded", "-x", help="Terminal table with one block per record, one line per column."),
    ] = False,
    as_of: Annotated[
        Optional[str],
        typer.Option(
            "--as-of",
            metavar="WHEN",
            help=(
                "Query every table as it was at WHEN: a date (the end of that day, UTC) or a timestamp "
                "such as 2026-11-01T06:30:00 (UTC unless it carries an offset). Tables that did not exist "
                "then are absent."
            ),
            show_default=False,
        ),
    ] = None,
    safe: Annotated[
        bool,
        typer.Option(
            "--safe",
            help=(
                "Sandbox: the SQL may read the lake and nothing else (no COPY, ATTACH, INSTALL, other files "
                "or URLs). Also LIBERACION_SQL_SAFE=1."
            ),
        ),
    ] = False,
    param: Annotated[
        Optional[list[str]],
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help=(
                "Give the SQL's $NAME the text VALUE, as data, never as SQL (repeatable). Compared with a "
                "number or a date, the text is read as one; elsewhere cast it: $NAME::INTEGER."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run DuckDB SQL over the lake. Tables are CATALOG.TABLE.

    \b
    Examples:
      liberacion sql "select * from cms.hospital_general_information limit 5"
      liberacion sql -x "select * from cms.hospital_general_information limit 2"
      echo "select count(*) from cdc.places_county" | liberacion sql - -f json
      liberacion sql --file report.sql --format parquet --output report.parquet
      liberacion sql --as-of 2026-11-01 "select count(*) from cdc.places_county"
      liberacion sql --safe "select count(*) from cdc.places_county"
      liberacion sql --param state=CA \\
        'select * from cms.hospital_general_information where state = $state'
    """
    from liberacion.engine import interruptible
    from liberacion.query import explain_damaged, explain_missing, explain_unkept, export, safe_default

    text = _read_query(query, file)
    values = _params(param)
    safe = safe or safe_default()
    if output is not None and is_stdout(output):
        output = None  # -o /dev/stdout: stdout as it is (a file it appends to stays appended to)
    chosen = choose_format(fmt, output)
    if expanded and (fmt or output) and chosen is not Format.table:
        named = f"--format {fmt.value}" if fmt else f"--output {output}"
        raise UsageError(f"-x/--expanded is a terminal table view; it does not go with {named}")
    when = parse_as_of(as_of, "--as-of") if as_of is not None else None
    chosen = Format.table if expanded else chosen
    if chosen is Format.parquet and output is None and sys.stdout.isatty():
        raise UsageError(PARQUET_ON_A_TERMINAL)
    if chosen is not Format.table and getattr(ctx.get_parameter_source("max_rows"), "name", None) == "COMMANDLINE":
        raise UsageError(f"--max-rows limits a terminal table; for {chosen.value}, put LIMIT N in the SQL")
    table_rows = max_rows if chosen is Format.table and output is None else None
    options = settings(ctx)
    lake = options.lake()

    def run() -> None:
        result = export(
            lake,
            text,
            chosen.value,
            output=output,
            as_of=when,
            safe=safe,
            table_rows=table_rows,
            catalog_paths=options.catalog_paths,
            params=values,
        )
        if result is not None:  # written by DuckDB unless the format or the statement needs render
            rows = result if isinstance(result, Rows) else Rows.from_arrow(result)
            _emit_whole(rows, chosen, output, max_rows, expanded=expanded)

    try:
        # From before the tables are resolved until the last row is out, no snapshot is pruned. The
        # lock is waited for here, in the main thread: a query's worker thread never sees Ctrl-C,
        # so one waiting there for a prune would stop only when the grace of ``interruptible`` ran out.
        with lake.reading_snapshots():
            interruptible(run)  # Ctrl-C stops the query at once, not when it ends
    except NoTable as err:
        raise explain_missing(lake, err, when) from None
    except NoSnapshot as err:
        raise explain_unkept(lake, err) from None
    except DamagedSnapshot as err:
        raise explain_damaged(lake, err) from None


def _emit_whole(rows: Rows, chosen: Format, output: Path | None, max_rows: int, *, expanded: bool) -> None:
    """The result into ``--output`` (written whole or not at all), or stdout. A stdout redirected to
    a regular file gets it only once it is complete, through a temporary file, as DuckDB's own
    COPY does: a query failing midway left a Parquet file that read as whole. A failure that
    wrote nothing says so, not that the output is incomplete."""
    import tempfile

    from liberacion.errors import SQLError
    from liberacion.files import is_special
    from liberacion.query import send_result, stdout_is_a_file

    whole = output is None and chosen is not Format.table and stdout_is_a_file()
    try:
        if not whole:
            emit(rows, chosen, output, max_rows, expanded=expanded, expand_option="-x")
            return
        with tempfile.TemporaryDirectory(prefix="liberacion-") as directory:
            result = Path(directory) / "result"
            emit(rows, chosen, result, max_rows, expanded=expanded, expand_option="-x")
            send_result(result)
    except SQLError as err:
        if whole or (output is not None and not is_special(output)):
            where = "the standard output" if whole else str(output)
            raise SQLError(f"{err.query_error}; nothing was written to {where}") from None
        raise


def _params(given: list[str] | None) -> dict[str, str]:
    """``--param NAME=VALUE`` options as ``{NAME: VALUE}``; the names are checked with the SQL."""
    values: dict[str, str] = {}
    for item in given or []:
        name, equals, value = item.partition("=")
        if not equals:
            raise UsageError(f"--param {item}: give NAME=VALUE, e.g. --param {item or 'state'}=CA")
        if not name:
            raise UsageError(f"--param {item}: no name before =; give NAME=VALUE, e.g. --param state{item}")
        if name in values:
            raise UsageError(f"--param {name} is given twice; give each parameter once")
        values[name] = value
    from liberacion.query import check_params

    return check_params(values)


def _read_query(query: str | None, file: Path | None) -> str:
    if file is not None and query is not None:
        raise UsageError("give the SQL either as an argument or with --file, not both")
    if file is not None and file != Path("-"):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except OSError as err:
            raise UsageError(f"--file {file}: cannot read it: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise UsageError(f"--file {file}: it is not UTF-8 text (byte {err.start})") from None
    elif query == "-" or file == Path("-"):
        text = _read_stdin()
    elif query is not None:
        text = query
    else:
        raise UsageError("no SQL given: pass a query, '-' to read stdin, or --file FILE")
    if not text.strip():
        raise UsageError("the SQL is empty")
    return text


def _read_stdin() -> str:
    """SQL from stdin, read as bytes: text that is not UTF-8 is a usage error, as in ``--file``."""
    if sys.stdin.isatty():  # else it would wait in silence, looking hung
        print("reading SQL from stdin; end it with Ctrl-D", file=sys.stderr, flush=True)
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # pragma: no cover - a text-only stream (an embedding host): already text
        return sys.stdin.read()
    try:
        return buffer.read().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UsageError(f"cannot read the SQL from stdin: it is not UTF-8 text (byte {err.start})") from None


@app.command()
def tables(ctx: typer.Context, fmt: FormatOption = None, output: OutputOption = None) -> None:
    """List every table in the lake with its size, freshness and source.

    \b
    Example:
      liberacion tables --format json
    """
    columns = ["catalog", "table", "rows", "bytes", "fetched_at", "source_url", "snapshots", "error"]
    columns += ["checked_at", "last_refresh"]
    records = [_table_record(info) for info in api.tables(home=settings(ctx).home)]
    if choose_format(fmt, output) is Format.table:  # for people: the name SQL takes, sizes, times, short sources
        _note_failed_refreshes(records)
        columns = ["table", "rows", "size", "fetched", "snapshots", "source"]
        records = [
            {
                "table": f"{r['catalog']}.{r['table']}",
                "rows": r["rows"],
                "size": r["bytes"],
                "fetched": r["fetched_at"],
                # A damaged table's note (stderr) says what is wrong and what to run.
                "source": r["source_url"] if r["error"] is None else "damaged: see the note",
                "snapshots": r["snapshots"],
            }
            for r in records
        ]
    rows = Rows.from_dicts(columns, records)
    rows.empty_text = with_options("no tables yet: fetch one, e.g. liberacion fetch cms/hospital-general-information")
    rows.cramped = "blocks_for_names"  # a name too long to leave room for others: a block per table
    emit(rows, fmt, output)


def _table_record(info: Any) -> dict[str, Any]:
    """One row of ``tables``: a damaged table has no current snapshot, only its ``error``; the
    last refresh's check and event come from this home's refresh state."""
    current = info.current
    return {
        "catalog": info.name.split(".", 1)[0],
        "table": info.name.split(".", 1)[1],
        "rows": current.rows if current else None,
        "bytes": info.size_on_disk,
        "fetched_at": (current.provenance.fetched_at or current.published_at) if current else None,
        "source_url": current.provenance.source_url if current else None,
        "snapshots": info.snapshot_count,
        "error": info.damaged,
        "checked_at": info.checked_at,
        "last_refresh": info.last_refresh,
    }


def _note_failed_refreshes(records: list[dict[str, Any]]) -> None:
    """At a glance, which tables cron no longer keeps fresh: their last refresh failed or found
    the file gone (the table still holds its last good snapshot)."""
    from liberacion.console import note
    from liberacion.refresh_state import FAILED_EVENTS

    failed = [f"{r['catalog']}.{r['table']}" for r in records if r["last_refresh"] in FAILED_EVENTS]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        note(f"note: the last refresh of {shown} failed; the data is the last good snapshot's: run liberacion refresh")


def _table_argument(ctx: typer.Context, name: str, command: str) -> str:
    """A table name, or the error ``api.checked_table`` says, with the command line that takes it."""
    options = settings(ctx)
    return api.checked_table(options.lake(), name, command=command, catalog_paths=options.catalog_paths)


@app.command()
def info(
    ctx: typer.Context,
    table: TableArgument,
    fmt: DocumentFormatOption = None,
) -> None:
    """Show a table's schema, provenance and snapshots.

    \b
    Example:
      liberacion info cms.hospital_general_information
    """
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.json)
    if chosen not in (Format.table, Format.json):
        raise UsageError("info supports --format table or json")
    details = api.info(_table_argument(ctx, table, "info"), home=settings(ctx).home)
    if chosen is Format.json:
        print_json(details.to_dict())
        return
    print_info(details.current, details.snapshots, details.storage)


@app.command()
def history(
    ctx: typer.Context,
    table: TableArgument,
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
    from liberacion.timeline import HISTORY_COLUMNS  # history, diff and lake: not loaded for every command

    name = _table_argument(ctx, table, "history")
    records = [entry.record() for entry in api.history(name, home=settings(ctx).home)]
    chosen = choose_format(fmt, output)
    if chosen is Format.table:  # the full digest does not fit a terminal column
        for record in records:
            record["sha256"] = (record["sha256"] or "")[:12] or None
    rows = Rows.from_dicts(HISTORY_COLUMNS, records)
    rows.terminal_order = ("snapshot", "published_at", "current", "rows", "rows_change", "schema_changes")
    rows.never_hide = frozenset({"schema_changes"})  # what changed matters most, and is the widest column
    emit(rows, chosen, output, title=f"history of {table}")


@app.command()
def diff(
    ctx: typer.Context,
    table: TableArgument,
    from_ref: Annotated[
        Optional[str],
        typer.Option(
            "--from",
            metavar="SNAP",
            help="Older snapshot: an id or unique id prefix (20261101T06), 'previous', 'current', or a "
            "date or time, the snapshot current then (2026-11-01) [default: previous].",
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
    show: Annotated[int, typer.Option("--show", metavar="N", min=0, help="Examples of each kind of row change.")] = 5,
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """Compare two snapshots of a table: columns, row counts and (with keys) rows.

    Reports added, removed, retyped and renamed-looking columns and the row counts. With key
    columns it counts rows added, removed and changed (in columns both snapshots have, NULL-safe;
    a retyped column's values are compared as numbers between number types, as timestamps between
    dates and timestamps, else as text) and shows --show N examples of each. Without
    keys, added and removed count rows with no identical row in the other snapshot. Output is one
    record per change: change, column, key, old, new, count.

    \b
    Examples:
      liberacion diff cdc.leading_causes_of_death --key year,cause_name,state
      liberacion diff cms.hospital_general_information -k facility_id \\
        --from 2026-11-01 --to current
    """
    from liberacion.compare import TableDiff

    name = _table_argument(ctx, table, "diff")
    result = api.diff(
        name, home=settings(ctx).home, from_snapshot=from_ref, to_snapshot=to_ref, keys=key or [], show=show
    )
    title = f"{table}: {result.old.id} → {result.new.id}"
    columns = list(TableDiff.RECORD_COLUMNS)
    kinds = {**listing_kinds(columns), "key": "key"}  # on a terminal: facility_id=010001, cut last
    records = result.records()
    if choose_format(fmt, output) is Format.table:
        records = [_spaces_shown(r) for r in records]
    rows = Rows.from_dicts(columns, records, kinds=kinds)
    rows.terminal_order = ("change", "column", "count", "old", "new")  # the key last: it is the widest
    emit(rows, fmt, output, title=title)


def _spaces_shown(record: dict[str, Any]) -> dict[str, Any]:
    """A terminal table's ``old`` and ``new`` quoted when they begin or end with white space: a
    change of spaces alone (``b `` to ``b``) looked like no change. CSV and JSON are exact as they are."""
    import json

    for side in ("old", "new"):
        value = record.get(side)
        if isinstance(value, str) and value != value.strip():
            record = {**record, side: json.dumps(value, ensure_ascii=False)}
    return record


@app.command()
def prune(
    ctx: typer.Context,
    tables: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="TABLE",
            help="Tables to prune [default: every table].",
            show_default=False,
            autocompletion=complete_table,
        ),
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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Delete nothing: print the snapshots that would be deleted.",
        ),
    ] = False,
    fmt: FormatOption = None,
    output: OutputOption = None,
) -> None:
    """Delete old snapshots, keeping the newest N of each table.

    Prints one row per snapshot removed. The current snapshot is always kept, and retention
    already applies after every publish; use this to keep fewer snapshots or after lowering
    LIBERACION_KEEP. A table being published is skipped (exit 75). --dry-run shows what
    would go, so a snapshot an analysis still needs can be exported first.

    \b
    Examples:
      liberacion prune --keep 1 --dry-run
      liberacion prune cms.hospital_general_information --keep 2
    """
    from liberacion.iceberg_lake import require_lake

    named = [_table_argument(ctx, t, "prune") for t in tables or []]
    require_lake(settings(ctx).lake())  # a --lake naming no lake (a typo) is said (exit 3), never "nothing to prune"
    report = api.prune(named, home=settings(ctx).home, keep=keep, dry_run=dry_run)
    records = [
        {"table": name, "snapshot": s.id, "published_at": s.published_at, "rows": s.rows, "bytes": s.bytes}
        for name, s in report.removed
    ]
    rows = Rows.from_dicts(["table", "snapshot", "published_at", "rows", "bytes"], records)
    rows.empty_text = "nothing to prune: every table keeps no more snapshots than asked"
    emit(rows, fmt, output)
    if dry_run and report.removed:  # the rows look like a prune's: say that nothing went
        count = len(report.removed)
        print(f"dry run: nothing deleted; without --dry-run these {count} snapshot(s) go", file=sys.stderr)
    for name in report.busy:
        doing = "a query is reading the lake" if name in report.reading else "it is being written"
        print(f"warning: skipped {name}: {doing} (another liberacion process)", file=sys.stderr)
    for name, damage in report.damaged.items():
        print(f"warning: skipped {name}: {damage}", file=sys.stderr)
    if report.busy:
        why = "; a query is reading the lake: try again when it ends" if report.reading else ""
        raise Busy(f"{len(report.busy)} table(s) in use and not pruned: {', '.join(report.busy)}{why}")
    if report.damaged:
        raise typer.Exit(int(ExitCode.FAILED))
