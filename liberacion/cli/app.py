"""The Typer application: global options, shared option types, and the one place where errors
become an ``error:`` line on stderr and an exit code (``_Group``). An unexpected bug is one line
too; its traceback goes to ``<home>/logs/last-error.txt``.
"""

import contextlib
import errno
import functools
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

from liberacion import __version__
from liberacion.console import advising, error_line, stdout_guard
from liberacion.errors import (
    CWD_GONE,
    STORAGE_ERRNOS,
    ConfigError,
    ExitCode,
    LiberacionError,
    Note,
    command_line,
    cwd_gone,
    one_line,
    storage_error,
)
from liberacion.home import Home, check_home, resolve_home
from liberacion.naming import utf8_text
from liberacion.render import DocumentFormat, Format, OutputClosed, inert, set_color


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, systemd, a cron supervisor): stopped exactly as Ctrl-C stops a run."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` in the main thread, so the Ctrl-C path
    (stop the queries, transfers and conversions, remove temporary files, publish nothing more)
    handles it too; Python's default would end the process at once, leaving them behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # pragma: no cover - handlers need it
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Group(TyperGroup):
    """The one place where failures become one ``error:`` line on stderr and an exit code.

    Whatever goes wrong (a usage error, a ``LiberacionError``, a home that cannot be written, a
    bug, Ctrl-C), the user sees one line and the documented exit code, never a traceback: an
    unexpected exception's traceback goes to ``<home>/logs/last-error.txt``.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        _plain_coercion(self)
        _narrow_help(self)
        _given_once(self)
        with command_line():  # the core's messages name options, not the API's parameters
            return self._make_context(info_name, args, parent=parent, **extra)

    def _make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as err:  # bad global options, before any command runs
            _fail_usage(err)
        except OutputClosed:  # --help or --version read by a pipe that closed (| head -1)
            raise typer.Exit(int(ExitCode.OK)) from None
        except LiberacionError as err:  # --help or --version into a full disk
            _fail(str(err), err.exit_code)

    def invoke(self, ctx: Any) -> Any:
        with command_line(), advising(_typed_options(ctx.params)):
            return self._invoke(ctx)

    def _invoke(self, ctx: Any) -> Any:
        try:
            with warnings.catch_warnings(), sigterm_as_interrupt():  # SIGTERM cleans up as Ctrl-C does
                warnings.simplefilter("always", Note)
                warnings.showwarning = _show_note
                check_home(resolve_home(ctx.params.get("home")))
                _check_catalog_paths(ctx)
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except OutputClosed:  # the reader of stdout went away (| head): end quietly
            raise typer.Exit(int(ExitCode.OK)) from None
        except LiberacionError as err:
            _fail(str(err), err.exit_code)
        except typer.TyperException as err:
            _fail_usage(err)
        except Terminated:
            _fail("terminated (SIGTERM)", ExitCode.TERMINATED)
        except KeyboardInterrupt:
            _fail("interrupted", ExitCode.INTERRUPTED)
        except OSError as err:
            if err.errno == errno.EPIPE:
                raise  # a closed pipe (| head): Typer ends quietly
            if err.errno in STORAGE_ERRNOS:
                _fail(str(storage_error(err)), ExitCode.FAILED)
            _fail_internal(ctx, err)
        except Exception as err:
            _fail_internal(ctx, err)


def _given_once(group: Any) -> None:
    """An option that takes one value, given twice with different values, is said in a note: the
    parser kept the last and dropped the other without a word (``-f json ... -f csv``, two
    ``--member``s read as "load both"). The last still wins, as in most commands: advice such as
    Parquet's "or use --format csv --output x.csv" is appended to the command as typed."""
    for command in [group, *getattr(group, "commands", {}).values()]:
        if "make_parser" not in vars(command):
            command.make_parser = _once_parser(command.make_parser)
            command.invoke = _saying_format_wins(command.invoke)


def _saying_format_wins(invoke: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``--format`` wins over the extension of ``--output`` (README), said in a note: ``-f csv -o
    x.json`` wrote CSV into x.json without a word."""

    def invoked(ctx: Any) -> Any:
        from liberacion.render import COMPRESSED, EXTENSIONS, not_compressed

        fmt, output = ctx.params.get("fmt"), ctx.params.get("output")
        named = EXTENSIONS.get(output.suffix.lower()) if isinstance(output, Path) else None
        if fmt is not None and named is not None and named is not fmt:
            said = f"--format {fmt.value} wins: {output} is written as {fmt.value}"
            said += f", not the {named.value} its extension says"
            print(f"note: {inert(said)}", file=sys.stderr)
        elif fmt is not None and isinstance(output, Path) and output.suffix.lower() in COMPRESSED:
            said = f"{output} is written as plain {fmt.value}, not compressed: {not_compressed(output)}"
            print(f"note: {inert(said)}", file=sys.stderr)
        return invoke(ctx)

    return invoked


def _once_parser(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def make_parser(ctx: Any) -> Any:
        parser = make(ctx)
        # Click's parser internals: a Click without them parses as before, without the note.
        options = {*getattr(parser, "_long_opt", {}).values(), *getattr(parser, "_short_opt", {}).values()}
        for option in options:
            if getattr(option, "action", None) == "store" and hasattr(option, "process"):
                option.process = _stored_once(option, option.process, ctx)
        return parser

    return make_parser


def _stored_once(option: Any, process: Callable[[Any, Any], None], ctx: Any) -> Callable[[Any, Any], None]:
    def stored(value: Any, state: Any) -> None:
        before = state.opts.get(option.dest, value)
        # TAB completion (resilient parsing) parses what is typed so far: no note there.
        if not _same_value(option.obj, before, value) and not ctx.resilient_parsing:
            name = next((o for o in option.obj.opts if o.startswith("--")), option.obj.opts[0])
            said = f"{name} given twice: the last, {value}, is used (not {before})"
            print(f"note: {inert(said)}", file=sys.stderr)
        process(value, state)

    return stored


def _same_value(param: Any, before: Any, value: Any) -> bool:
    """``-f csv --format CSV`` or ``--home h --home h/`` name one value twice: no note. Compared as
    the plain converters read them (no side effect); as typed where the parameter has none. A value
    the parameter refuses gets its error alone, not a note that it "is used" first."""
    if before == value:
        return True
    runtime = getattr(param, "_runtime_param", None)
    if _PlainParam is None or not isinstance(runtime, _PlainParam):
        return False
    try:
        converted = runtime.convert(value)
    except ValueError:
        return True
    try:
        return bool(runtime.convert(before) == converted)
    except ValueError:
        return False


def _narrow_help(group: Any) -> None:
    """Every command's --help laid out by ``_narrow_formatter`` (once: the classes are kept)."""
    for command in [group, *getattr(group, "commands", {}).values()]:
        command.context_class = _narrow_context(command.context_class)


@functools.cache
def _narrow_context(base: type) -> type:
    """``base`` (Typer's Context) with ``_narrow_formatter``'s layout; itself when it has it."""
    if getattr(base, "narrow_help", False):
        return base
    return type("Context", (base,), {"formatter_class": _narrow_formatter(base.formatter_class), "narrow_help": True})


def _narrow_formatter(base: type) -> type:
    class HelpFormatter(base):  # type: ignore[valid-type, misc]
        """Help as wide as the screen, even below 52 columns, and on a screen narrower than 80
        columns the options' names take less than half of it.

        Click gives them up to 30 columns whatever the width: on a 40-column screen the help of
        every option of a command with ``-f, --format <table|csv|...>`` was cut to 10 columns,
        a word a line. From 80 columns the layout is Click's (README holds it).
        """

        def __init__(self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None) -> None:
            super().__init__(indent_increment, width, max_width)
            if width is None:  # Click wraps at 50 columns at least: a 40-column screen cut every line again
                import shutil

                self.width = min(self.width, max(shutil.get_terminal_size().columns - 2, 30))

        def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
            if self.width < 78:  # Click's width: the screen's, 2 columns less, 80 at most
                col_max = min(col_max, max(12, self.width // 2 - 3))
            super().write_dl(rows, col_max=col_max, col_spacing=col_spacing)

    return HelpFormatter


def _plain_coercion(group: Any) -> None:
    """Convert option values (text, paths, whole numbers, a format name) with plain Python.

    Typer converts every value through a pydantic ``TypeAdapter``, and importing pydantic and
    building the adapters costs about 60 ms on each run, a quarter of ``liberacion sql "select 42"``.
    The parameters here need nothing pydantic does, so each gets a converter of its own, with the
    same plain-words messages; a parameter of another kind (or another Typer) keeps Typer's.
    """
    if _PlainParam is None:  # pragma: no cover - a Typer without runtime coercion
        return
    for command in [group, *getattr(group, "commands", {}).values()]:
        for param in command.params:
            _plain_param(param)
            if param.param_type_name == "argument":  # its name says what it takes: no "<list[str]>"
                param.display_type_rich = _no_type
                param._usage_display_name = _usage_name(param)
            elif getattr(param, "min", None) == 0 and getattr(param, "max", None) is None:
                param._get_number_range_help_str = _no_type  # a count: "[x>=0]" says nothing
        if "get_help_option" not in vars(command):  # --help is made on demand, and is a flag too

            def get_help_option(ctx: Any, _make: Any = command.get_help_option) -> Any:
                option = _make(ctx)
                _plain_param(option)
                if option is not None and option.callback is not None:
                    option.callback = _printing(option.callback)
                return option

            command.get_help_option = get_help_option


def _no_type(ctx: Any = None) -> None:
    return None


def _usage_name(param: Any) -> Any:
    """An argument in the usage line as Click writes it: ``TABLE``, ``REF...``, ``[QUERY]``;
    Typer would write a required one in braces (``{TABLE}``), which reads like a placeholder."""

    def name() -> str:
        shown = param.metavar or param.name.upper()
        shown = shown if param.required else f"[{shown}]"
        return shown if param.nargs == 1 else f"{shown}..."

    return name


def _plain_param(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
        return
    convert = _converter(descriptor.annotation, descriptor.parameter_info)
    if convert is None:
        return
    try:
        param._runtime_param = _PlainParam(descriptor.parameter_info, descriptor.annotation, convert)
    except TypeError:  # pragma: no cover - another Typer's RuntimeParam: its own coercion stays
        return


def _converter(annotation: Any, info: Any) -> Any:
    """A function from the command-line text to the value, or None when Typer's own is needed."""
    from enum import Enum

    if getattr(info, "parser", None) is not None or getattr(info, "max", None) is not None:
        return None
    if getattr(annotation, "__origin__", None) is list and len(annotation.__args__) == 1:
        annotation = annotation.__args__[0]
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation is Path:
        return _path
    if annotation is int:
        return _whole_number(getattr(info, "min", None))
    if annotation is float and getattr(info, "min", None) is None:
        return _number
    if isinstance(annotation, type) and issubclass(annotation, Enum) and getattr(info, "case_sensitive", True):
        return _choice(annotation)
    return None


def _plain_param_class() -> Any:
    try:
        from typer._coercion import RuntimeParam
        from typer._coercion import dataclass as _dataclass
    except ImportError:  # pragma: no cover - another Typer: its own coercion stays
        return None

    @_dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        convert: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                if isinstance(value, (list, tuple)):
                    return [self.convert(item) for item in value]
                return self.convert(value)
            except ValueError as err:
                raise typer.BadParameter(str(err), ctx=ctx, param=param) from None

    return PlainParam


_PlainParam = _plain_param_class()


def _text(value: Any) -> str:
    return value if not isinstance(value, str) else utf8_text(value)


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not str(value).strip():  # Path("") is the current directory: a home or an output by accident
        raise ValueError("must not be empty: give a path")
    path = Path(utf8_text(str(value), path=True))
    if not path.expanduser().is_absolute() and cwd_gone():  # else DuckDB's "Could not get working directory!"
        raise ValueError(CWD_GONE)
    return path


def _whole_number(minimum: int | None) -> Any:
    def convert(value: Any) -> int:
        try:
            number = value if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise ValueError("not a whole number") from None
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return convert


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y", "t"):
        return True
    if text in ("0", "false", "no", "off", "n", "f"):
        return False
    raise ValueError("not true or false")


def _number(value: Any) -> float:
    try:
        return value if isinstance(value, float) else float(str(value).strip())
    except ValueError:
        raise ValueError("not a number") from None


def _choice(enum: Any) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        try:
            return enum(value.lower() if isinstance(value, str) else value)  # JSON as json, as .JSON is
        except ValueError:
            names = ", ".join(str(member.value) for member in enum)
            raise ValueError(f"{value!r} is not one of {names}") from None

    return convert


_show_warning = warnings.showwarning


def _show_note(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A ``Note`` from the core as one ``note:`` line on stderr; other warnings as Python shows them.
    Inert: notes name a file's members and sheets."""
    if issubclass(category, Note):
        print(f"note: {inert(str(message))}", file=sys.stderr)
    else:
        _show_warning(message, category, *args, **kwargs)


def _printing(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` (``--help``, ``--version``) printing to stdout as the commands do: a pipe that
    closed ends quietly, a full disk is one line naming the standard output (``stdout_guard``)."""

    @functools.wraps(callback)  # Typer passes the parameters the callback's signature names
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with stdout_guard():
            try:
                return callback(*args, **kwargs)
            finally:  # also when it ends with typer.Exit, so a failed write shows here
                sys.stdout.flush()

    return guarded


def _fail(message: str, code: int) -> NoReturn:
    error_line(message)  # red on a terminal, plain in a pipe or a log
    raise typer.Exit(int(code))


def _fail_usage(err: Any) -> NoReturn:
    """Click's usage errors in plain words, on one line: ``error: --format: 'xml' is not one of ...``."""
    if type(err).__name__ == "NoArgsIsHelpError" or not hasattr(err, "format_message"):
        raise err  # ``liberacion`` alone shows the help
    message = usage_message(err).rstrip(".")  # "Missing command." reads "Missing command; see: ..."
    command = getattr(getattr(err, "ctx", None), "command_path", None)
    option = getattr(err, "option_name", None)
    if type(err).__name__ == "NoSuchOption" and option in _GLOBAL_OPTIONS and command and " " in command:
        here = command.split(" ", 1)[1]
        where = f"put it before the command, e.g. liberacion {option} ... {here}"
        _fail(f"{option} is an option of liberacion itself: {where}", ExitCode.USAGE)
    # Typer's "No such command 'tabels'. Did you mean 'tables'?" reads as liberacion's other hints do.
    message = re.sub(r"\. Did you mean (.*)\?$", r" (did you mean \1?)", message)
    hint = f"; see: {command} --help" if command else ""
    _fail(f"{message}{hint}", getattr(err, "exit_code", ExitCode.USAGE))


_GLOBAL_OPTIONS = ("--home", "--lake", "--catalogs", "--no-color")


def _typed_options(params: dict[str, Any]) -> list[str]:
    """The global options given on the command line that choose where a command works: advice
    that names a command names them too (without them it would look in the default home)."""
    typed: list[str] = ["--home", str(params["home"])] if params.get("home") else []
    typed += ["--lake", str(params["lake"])] if params.get("lake") else []
    for path in params.get("catalogs") or []:
        typed += ["--catalogs", str(path)]
    return typed


def usage_message(err: Any) -> str:
    """The message of a Click usage error without Click's and the validator's boilerplate."""
    param = getattr(err, "param", None)
    text = str(getattr(err, "message", "") or "")
    if param is None or type(err).__name__ == "MissingParameter" or not text:
        return " ".join(err.format_message().split())
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")] or [_name_of(param)]
    text = re.sub(r"^Value error, ", "", " ".join(text.split()))
    text = re.sub(r"is not one of (.*?)\.?$", lambda m: "is not one of " + m.group(1).replace("'", ""), text)
    for wordy, plain in _PLAIN_WORDS:
        text = text.replace(wordy, plain)
    return f"{opts[0]}: {text}"


def _name_of(param: Any) -> str:
    """An option's or an argument's name as its help shows it (``QUERY``, ``REF``)."""
    return str(getattr(param, "metavar", None) or getattr(param, "human_readable_name", None) or param.name).upper()


_PLAIN_WORDS = (
    ("Input should be a valid integer, unable to parse string as an integer", "not a whole number"),
    ("Input should be a valid number, unable to parse string as a number", "not a number"),
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be less than or equal to", "must be at most"),
    ("Input should be greater than", "must be more than"),
    ("Input should be less than", "must be less than"),
    ("Input should be", "should be"),
)


def _check_catalog_paths(ctx: Any) -> None:
    """A manifest path named by --catalogs or LIBERACION_CATALOGS that does not exist is an error."""
    import os

    if not ctx.params.get("catalogs") and not os.environ.get("LIBERACION_CATALOGS", "").strip():
        return  # nothing named: the manifests module (and its imports) is not needed to say so
    from liberacion.catalogs.manifests import check_manifest_paths

    check_manifest_paths(ctx.params.get("catalogs") or [])


def _fail_internal(ctx: Any, err: BaseException) -> NoReturn:
    """A bug: one line naming it, the traceback kept in the home's logs (or stderr without a home)."""
    try:
        home = ctx.obj.home if isinstance(ctx.obj, Settings) else Home(resolve_home(ctx.params.get("home")))
        line = _report_internal(home, err)
    except Exception:
        import traceback

        summary = inert(one_line(err, lines=1, limit=300))
        print(f"error: internal error ({type(err).__name__}: {summary}); the traceback follows", file=sys.stderr)
        print("".join(traceback.format_exception(err)), file=sys.stderr, end="")
        raise typer.Exit(int(ExitCode.FAILED)) from None
    _fail(line, ExitCode.FAILED)


def _report_internal(home: Home, err: BaseException) -> str:
    """``home.report_internal`` with the command line as typed. Bytes that are not UTF-8 (in the
    arguments, or quoted by the error) are written escaped: saving the traceback must not fail."""
    command = " ".join(os.fsencode(arg).decode("utf-8", "backslashreplace") for arg in sys.argv)
    try:
        return home.report_internal(err, command)
    except UnicodeEncodeError:
        import traceback

        from liberacion.files import atomic_write

        text = f"{command}\n\n" + "".join(traceback.format_exception(err))
        atomic_write(home.last_error, text.encode("utf-8", "backslashreplace"))
        summary = one_line(err, lines=1, limit=300).encode("utf-8", "backslashreplace").decode("utf-8")
        return f"internal error ({type(err).__name__}: {summary}); the traceback is in {home.last_error}"


app = typer.Typer(
    cls=_Group,
    name="liberacion",
    help=(
        "Discover, fetch, convert and query HHS open health data.\n\n"
        "Fetched datasets land as Parquet in a local lake that DuckDB SQL can query.\n\n"
        "\b\nExamples:\n"
        "  liberacion fetch cms/hospital-general-information\n"
        '  liberacion sql "select count(*) from cms.hospital_general_information"'
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,  # locals can hold API tokens
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Settings:
    """Global options, shared by every command through the Typer context."""

    home_option: Path | None = None
    catalog_paths: list[Path] = field(default_factory=list)
    lake_option: str | None = None

    @property
    def home(self) -> Home:
        return Home(resolve_home(self.home_option), lake_uri=self.lake_option)

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
    lake: Annotated[
        Optional[str],
        typer.Option(
            "--lake",
            metavar="URI",
            help="Where the tables live, as Iceberg tables: a directory or s3://BUCKET/PREFIX "
            "[env: LIBERACION_LAKE; default: the home's own lake].",
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
        bool, typer.Option("--version", callback=_printing(_version), is_eager=True, help="Show the version and exit.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour, even on a terminal [env: NO_COLOR].")
    ] = False,
) -> None:
    set_color(not no_color)
    if lake is not None and not lake.strip():  # else the default lake, as if --lake were not given
        param = next(p for p in ctx.command.params if p.name == "lake")
        raise typer.BadParameter("must not be empty: give a directory or s3://BUCKET/PREFIX", ctx=ctx, param=param)
    ctx.obj = Settings(home_option=home, catalog_paths=list(catalogs or []), lake_option=lake)


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


def ref_argument(ctx: typer.Context, value: str, command: str) -> str:
    """A dataset ref as given, or the error ``api.checked_ref`` says, with the command line that takes it."""
    from liberacion.api import checked_ref

    options = settings(ctx)
    return checked_ref(options.home, value, command=command, catalog_paths=options.catalog_paths)


FormatOption = Annotated[
    Optional[Format],
    typer.Option(
        "--format",
        "-f",
        help="Output format [default: from the --output extension, else table on a terminal, csv otherwise].",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write to FILE (atomically) instead of stdout; .csv .tsv .json .jsonl .ndjson .md .parquet "
        "choose the format.",
        show_default=False,
    ),
]


def _document_format(value: Optional[DocumentFormat]) -> Optional[Format]:
    return None if value is None else Format(value.value)


# For commands that describe one thing (info, show): a terminal view or one JSON document.
DocumentFormatOption = Annotated[
    Optional[DocumentFormat],
    typer.Option(
        "--format",
        "-f",
        help="Output format [default: table on a terminal, json otherwise].",
        show_default=False,
        callback=_document_format,
    ),
]
MaxRowsOption = Annotated[int, typer.Option("--max-rows", metavar="N", min=0, help="Rows shown in a terminal table.")]


def fail_on_problems(problems: list[ConfigError]) -> None:
    """Manifests that could not be read: one line each, then exit 5 (the others were used)."""
    for problem in problems:
        error_line(str(problem))
    if problems:
        raise typer.Exit(int(ExitCode.CONFIG))


# numpy is loaded only because DuckDB's Python functions (a conversion's exact slow path) need it:
# liberacion does no linear algebra. OpenBLAS's thread pool, started with numpy, spun for about
# 0.15 s of CPU beside DuckDB's COPY on 2 cores (benchmarks/fixed_costs.py). A value already set wins.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "1")


def help_from_source(group: typer.Typer) -> None:
    """Under ``python -OO`` (``PYTHONOPTIMIZE=2``) docstrings are stripped, and Typer takes each
    command's help from its docstring: ``--help`` listed bare names and a command's ``--help``
    said nothing of what it does. The docstrings are read back from the source files instead."""
    if sys.flags.optimize < 2:
        return
    import ast
    import inspect

    trees: dict[str, ast.Module] = {}
    for info in group.registered_commands:
        callback = info.callback
        if info.help is not None or callback is None or callback.__doc__:
            continue
        try:
            file = inspect.getsourcefile(callback) or ""
            tree = trees.get(file) or trees.setdefault(file, ast.parse(Path(file).read_bytes()))
        except (OSError, TypeError, SyntaxError, ValueError):  # no source beside the bytecode: bare names
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == callback.__name__:
                info.help = ast.get_docstring(node)
                break


def main() -> None:
    """The command line, from ``sys.argv``: ends with SystemExit and the exit code."""
    os.environ.setdefault(*BLAS_THREADS)
    try:
        app(prog_name="liberacion")
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a command
        error_line("interrupted")
        exit_now(ExitCode.INTERRUPTED)
    except SystemExit as done:
        if done.code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            exit_now(int(done.code))
        raise


def run() -> NoReturn:
    """Entry point of the ``liberacion`` console script and of ``python -m liberacion``: ``main``,
    then the process ends (``leave``). A program calling ``main`` itself gets its SystemExit."""
    try:
        main()
    except SystemExit as done:
        leave(done)
    raise AssertionError("main() ends with SystemExit")  # pragma: no cover


def leave(done: SystemExit) -> NoReturn:
    """End the process without the interpreter's teardown, which frees every module and object one
    by one: 27-52 ms of a short command such as ``sql "select 42"`` (``benchmarks/startup.py``),
    spent on memory the system takes back anyway. What the teardown would do that matters is done
    here: the ``atexit`` handlers run and stdout is flushed. (Every DuckDB database that may spill
    is closed by the code that opened it, which removes its spill files.) When a thread is still
    running, or the last flush fails, Python ends the process as usual: the thread is waited for,
    the failure reported."""
    import atexit
    import threading

    code = 0 if done.code is None else done.code
    main_thread = threading.main_thread()
    if not isinstance(code, int) or any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        raise done
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except Exception:
        raise done from None
    os._exit(code)


def exit_now(code: int) -> NoReturn:
    """Leave at once after Ctrl-C: a worker thread still stopping a conversion is not waited for
    (nothing it staged is visible, and the next run removes it). A temporary file it was writing
    is removed here: it would never be renamed into place."""
    from liberacion.files import discard_temporaries

    discard_temporaries()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(int(code))
