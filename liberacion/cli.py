"""The command line: thin Typer commands over the liberacion API.

This is the only module that prints or exits. Errors raised by the core become one line on
stderr and an exit code here, in ``_Group.invoke``; unexpected bugs keep their traceback.
"""

from __future__ import annotations

import sys
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
) -> None:
    """Run DuckDB SQL over the lake. Tables are CATALOG.TABLE.

    \b
    Examples:
      liberacion sql "select * from cms.hospital_general_information limit 5"
      echo "select count(*) from cdc.places_county" | liberacion sql - --format json
      liberacion sql --file report.sql --format parquet --output report.parquet
    """
    from liberacion.query import run

    text = _read_query(query, file)
    reader = run(_settings(ctx).lake(), text)
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
    schema = Rows(
        ["column", "type", "original", "nulls", "description"],
        [[(c.name, c.type, c.original, c.null_count, c.description) for c in current.schema]],
    )
    render(schema, Format.table, stdout=console.file, max_rows=10_000, title="schema")
    history = Rows(
        ["snapshot", "published_at", "rows", "bytes", "sha256"],
        [[(s.id, s.published_at, s.rows, s.bytes, (s.provenance.sha256 or "")[:12]) for s in reversed(snaps)]],
    )
    render(history, Format.table, stdout=console.file, title="snapshots")


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
