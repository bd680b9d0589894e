"""The Typer application: global options, shared option types, and the one place where errors
become an ``error:`` line on stderr and an exit code (``_Group.invoke``). Unexpected bugs keep
their traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from liberacion import __version__
from liberacion.errors import ConfigError, ExitCode, LiberacionError
from liberacion.home import Home, resolve_home
from liberacion.render import Format


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
        from liberacion.api import open_lake

        return open_lake(self.home)


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


def settings(ctx: typer.Context) -> Settings:
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
# For commands that describe one thing (info, show): a terminal view or one JSON document.
DocumentFormatOption = Annotated[
    Optional[Format],
    typer.Option(
        "--format", "-f", help="table or json [default: table on a terminal, json otherwise].", show_default=False
    ),
]
MaxRowsOption = Annotated[int, typer.Option("--max-rows", help="Rows shown in a terminal table.")]


def fail_on_problems(problems: list[ConfigError]) -> None:
    """Manifests that could not be read: one line each, then exit 5 (the others were used)."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        raise typer.Exit(int(ExitCode.CONFIG))


def main() -> None:
    """Entry point of the ``liberacion`` console script."""
    try:
        app(prog_name="liberacion")
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        sys.exit(int(ExitCode.INTERRUPTED))
