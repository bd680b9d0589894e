"""Commands over the catalogs: catalogs, discover, search, show."""

import sys
from typing import Annotated, Optional

import typer

from liberacion import api
from liberacion.cli.app import (
    DocumentFormatOption,
    FormatOption,
    OutputOption,
    app,
    fail_on_problems,
    ref_argument,
    settings,
)
from liberacion.cli.completion import complete_ref
from liberacion.console import advised, emit, error_line, note, print_description, print_json, report_discover
from liberacion.errors import ConfigError, ExitCode, UsageError, batch_exit_code
from liberacion.render import Format, Rows, choose_format, listing_kinds


@app.command()
def catalogs(ctx: typer.Context, fmt: FormatOption = None, output: OutputOption = None) -> None:
    """List the catalogs: name, title, kinds of listing, datasets indexed, last discover, status.

    Status: ok, not discovered, curated (a catalog without listings), listings changed (the
    manifest's [[source]] edited since the last discover: run discover again; curated datasets
    edited since need none, they count at once), listing read but the index not rebuilt (a
    discover that failed writing it: run discover again), or failed with the reason.
    Shipped manifests are read first; LIBERACION_CATALOGS and --catalogs add or replace them.

    \b
    Examples:
      liberacion catalogs
      liberacion --catalogs ./my-catalogs catalogs --format json
    """
    options = settings(ctx)
    problems: list[ConfigError] = []
    found = api.catalogs(home=options.home, catalog_paths=options.catalog_paths, problems=problems)
    columns = ["name", "title", "kinds", "datasets", "last_discovered", "status"]
    # A status may advise a command (run discover again): with the --home typed, as errors do.
    records = [advised({**vars(c), "kinds": ",".join(c.kinds)}) for c in found]
    emit(Rows.from_dicts(columns, records), fmt, output)
    fail_on_problems(problems)


@app.command()
def discover(
    ctx: typer.Context,
    names: Annotated[
        Optional[list[str]], typer.Argument(metavar="NAME", help="Catalogs to discover [default: all].")
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
      liberacion sql "select ref from liberacion.datasets where 'csv' in formats"
    """
    options = settings(ctx)
    report = api.discover(names or [], home=options.home, catalog_paths=options.catalog_paths, progress=note)
    report_discover(report)
    fail_on_problems(report.problems)
    raise typer.Exit(batch_exit_code([ExitCode.FAILED] if report.failed else []))


@app.command()
def search(
    ctx: typer.Context,
    terms: Annotated[Optional[list[str]], typer.Argument(metavar="TERMS", help="Words to look for.")] = None,
    catalog: Annotated[
        Optional[str], typer.Option("--catalog", metavar="NAME", help="Only this catalog.", show_default=False)
    ] = None,
    publisher: Annotated[
        Optional[str],
        typer.Option("--publisher", metavar="TEXT", help="Only publishers containing this text.", show_default=False),
    ] = None,
    format_of_data: Annotated[
        Optional[str],
        typer.Option(
            "--format-of-data",
            metavar="FORMAT",
            help="Only datasets offering files of this format (csv, zip, xpt...).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=0, help="At most N results; 0 for all.")] = 20,
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
    options = settings(ctx)
    problems: list[ConfigError] = []
    hits = api.search(
        terms or [],
        home=options.home,
        catalog=catalog,
        publisher=publisher,
        data_format=format_of_data,
        limit=limit,
        catalog_paths=options.catalog_paths,
        problems=problems,
    )
    columns = ["ref", "title", "publisher", "modified", "formats"]
    records = [{**vars(h), "formats": ",".join(h.formats)} for h in hits]
    # On a terminal: titles over up to 3 lines, start and end kept (many differ only in a year at
    # the end); refs whole, as blocks on a screen too narrow for them.
    rows = Rows.from_dicts(columns, records, kinds={**listing_kinds(columns), "title": "title"})
    rows.cramped = "blocks_for_names"
    # No hits at a terminal: the note alone, not an empty box above it; pipes still get a header or [].
    if hits or output is not None or choose_format(fmt, output, sys.stdout) is not Format.table:
        emit(rows, fmt, output)
    if not hits:
        note("no datasets match; try fewer words, or run: liberacion discover")
    fail_on_problems(problems)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="CATALOG/ID, e.g. cms/hospital-general-information.", autocompletion=complete_ref
        ),
    ],
    fmt: DocumentFormatOption = None,
) -> None:
    """Show a dataset: its metadata, every file, the one fetch would choose and why, and its
    table in the lake.

    \b
    Examples:
      liberacion show cms/hospital-general-information
      liberacion show cdc/bi63-dtpu --format json
    """
    from liberacion.catalogs.index import manifest_problems

    options = settings(ctx)
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.json)
    if chosen not in (Format.table, Format.json):
        raise UsageError("show supports --format table or json")
    # Every ref is a catalog's: with a broken manifest another one might stand in for it.
    fail_on_problems(manifest_problems(options.home, options.catalog_paths))
    description = api.show(ref_argument(ctx, ref, "show"), home=options.home, catalog_paths=options.catalog_paths)
    if chosen is Format.json:
        print_json(description.to_dict())
    else:
        print_description(description)
    if description.error is not None:  # shown what the manifest says; the lookup still failed
        error_line(str(description.error))  # stdout may be a JSON document: the failure is said on stderr too
        raise typer.Exit(int(description.error.exit_code))
