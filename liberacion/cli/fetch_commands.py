"""Commands that bring data in: fetch and refresh."""

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from liberacion import api
from liberacion.cli.app import (
    Terminated,
    app,
    exit_now,
    fail_on_problems,
    ref_argument,
    settings,
    sigterm_as_interrupt,
)
from liberacion.cli.completion import complete_ref, complete_table
from liberacion.console import (
    FetchProgress,
    OutputClosed,
    error_line,
    no_view,
    note,
    print_json_lines,
    report_fetch,
    report_refresh,
)
from liberacion.errors import ExitCode, LiberacionError, Note, UsageError, batch_exit_code

# What a stopped run (Ctrl-C, SIGTERM) says of the tables it had not published yet.
NOT_PUBLISHED = "tables not yet published keep their previous snapshot"


@app.command()
def fetch(
    ctx: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="REF",
            help="catalog/dataset ref, http(s) URL or local file path.",
            show_default=False,
            autocompletion=complete_ref,
        ),
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
    jobs: Annotated[int, typer.Option("--jobs", "-j", metavar="N", help="Downloads at once (at most 2 per host).")] = 4,
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
    ] = 300,  # shown as 300, not 300.0
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
        typer.Option(
            "--max-bad-rows",
            metavar="N",
            min=0,
            help="Fail when more rows than N cannot be loaded (a quote never closed counts every line it"
            " takes) [default: 1% of the rows, at least 1].",
        ),
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty", help="Publish a file without data rows even over a table that has rows."),
    ] = False,
) -> None:
    """Download datasets into the lake: resumable, verified, in parallel.

    A dataset the server says is unchanged (or whose bytes are the same) publishes nothing. A
    failed dataset leaves its table as it was; the others are still published (exit code 1).
    An interrupted download resumes where it stopped on the next run.

    \b
    Examples:
      liberacion fetch cms/hospital-general-information
      liberacion fetch cdc/places-county cms/hospital-general-information --jobs 2
      liberacion fetch https://example.org/files/deaths.csv --as cdc.deaths
      liberacion fetch ./deaths.csv --type fips=VARCHAR
      liberacion fetch ./DEMO_I.XPT --as nhanes.demo_i
      liberacion fetch cms/hospital-general-information --json --quiet  # cron
    """
    from liberacion.catalogs.index import manifest_problems
    from liberacion.fetching import parse_types

    options = settings(ctx)
    if quiet and progress:  # --quiet won, and --progress was dropped without a word
        raise UsageError("--quiet and --progress cannot be combined: --quiet prints only errors; drop one")
    if quiet:
        warnings.simplefilter("ignore", Note)  # the snapshot keeps them (info), --json counts the rejects
    refs = [ref_argument(ctx, ref, "fetch") for ref in refs]  # a table name: say which ref it is
    # A broken manifest fails every catalog ref (no other manifest may stand in for it); files and
    # URLs are still fetched, and the command ends with each manifest's error and exit code 5.
    problems = manifest_problems(options.home, options.catalog_paths)
    show = not quiet and not json_lines and (progress or sys.stderr.isatty())
    view = FetchProgress(live=sys.stderr.isatty()) if show or (progress and not quiet) else None
    lines = _JsonLines(json_lines)  # with --json each dataset's line goes out as it is done
    try:
        with sigterm_as_interrupt(), view or no_view():
            results = api.fetch(
                refs,
                home=options.home,
                as_table=as_table,
                jobs=jobs,
                force=force,
                wait=wait,
                types=parse_types(types or []),
                raw=raw,
                member=member,
                max_bad_rows=max_bad_rows,
                allow_empty=allow_empty,
                catalog_paths=options.catalog_paths,
                progress=view.event if view else None,
                on_result=lines,
            )
    except LiberacionError as err:  # the run could not start (the lake's store, a setting): every ref failed
        # A mistake in the command line is not a dataset's.
        if json_lines and not lines.results and not isinstance(err, UsageError):
            _failed_lines(refs, as_table, err)
        raise
    except KeyboardInterrupt as err:
        # What was published before the stop (or while it came) is said as a finished run says it;
        # with --json those lines are out already: their errors too.
        report_fetch(lines.results, json_lines=False, quiet=quiet or json_lines)
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        # An error line like every other (``error:``, red on a terminal): a log reader or a script
        # that looks for "error:" finds the run that was stopped too.
        error_line(f"{what}: {NOT_PUBLISHED}; run the same command to resume")
        if isinstance(err, Terminated):
            exit_now(ExitCode.TERMINATED)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    # With --json each line went out as its dataset was done: quiet, the report says only the errors.
    report_fetch(results, json_lines=False, quiet=quiet or json_lines)
    fail_on_problems(problems)
    raise typer.Exit(batch_exit_code(r.error_code for r in results if r.status == "failed"))


def _schema_policies(incomplete: str) -> list[str]:
    """TAB after --on-schema-change offers what its help lists, as TAB after --format does."""
    from liberacion.refreshing import POLICIES

    return [policy for policy in POLICIES if policy.startswith(incomplete)]


@app.command()
def refresh(
    ctx: typer.Context,
    tables: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="TABLE",
            help="Tables to refresh [default: every fetched table].",
            show_default=False,
            autocompletion=complete_table,
        ),
    ] = None,
    older_than: Annotated[
        Optional[str],
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Skip tables checked less than DURATION ago (30m, 12h, 2d; a number alone is seconds).",
            show_default=False,
        ),
    ] = None,
    # At least 1, checked by refresh itself: a bad value still writes the --json/--log summary.
    jobs: Annotated[int, typer.Option("--jobs", "-j", metavar="N", help="Tables refreshed at a time.")] = 4,
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
            autocompletion=_schema_policies,
        ),
    ] = "evolve",
    wait: Annotated[
        float,
        typer.Option("--wait", metavar="SECONDS", help="Wait this long for another refresh to finish (else exit 75)."),
    ] = 0,  # shown as 0, not 0.0
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
    fetched, unchanged or retired, 1 some failed or gone (with --check too), 5 a catalog manifest
    is broken, 10 --check found updates, 75 another refresh is running.

    \b
    Examples:
      liberacion refresh
      liberacion refresh cms.hospital_general_information --check
      liberacion refresh --older-than 12h --quiet --log ~/liberacion-refresh.log
    """
    import time

    from liberacion.refreshing import RunLog, check_log, report_records
    from liberacion.timestamps import utc_now

    if quiet:
        warnings.simplefilter("ignore", Note)  # the events (--log, --json) carry what a note would say

    options = settings(ctx)
    run_log = RunLog(None)
    started, clock = utc_now(), time.monotonic()
    try:
        if log is not None:
            check_log(log)  # before anything runs: not after the tables were published
            run_log = RunLog(log)
        with sigterm_as_interrupt():
            report = api.refresh(
                tables or [],
                home=options.home,
                older_than=older_than,
                jobs=jobs,
                check=check,
                force=force,
                on_schema_change=on_schema_change,
                wait=wait,
                catalog_paths=options.catalog_paths,
                on_event=_streamed(run_log, stdout=json_lines),
                on_waiting=note if sys.stderr.isatty() and not quiet else None,  # cron: silence
            )
    except (KeyboardInterrupt, LiberacionError) as err:  # the run stopped or never started: the log says so
        _stopped(err, started, time.monotonic() - clock, run_log, json_lines)
        raise
    records = report_records(report)
    run_log.write(records[-1:])  # each table's line went in as the table finished
    if json_lines:
        print_json_lines(records[-1:])  # and on stdout too
    else:
        report_refresh(report, quiet=quiet)
    for problem in [*report.problems, *report.errors]:
        error_line(problem)
    if run_log.error is not None:
        error_line(run_log.error)
        worse = report.exit_code not in (ExitCode.OK, ExitCode.UPDATES)  # a lost log is a failure
        raise typer.Exit(report.exit_code if worse else int(ExitCode.FAILED))
    raise typer.Exit(report.exit_code)


class _JsonLines:
    """``fetch``'s ``on_result``: with ``--json`` each dataset's line as soon as it and those before
    it are done, so a run stopped by Ctrl-C, ``timeout`` or a scheduler has printed what it
    published (it printed nothing: every line came at the end); without, the results kept for the
    report of a stopped run. A reader of stdout that went away (``| head``) ends the printing, not
    the run."""

    def __init__(self, printing: bool) -> None:
        self.results: list[Any] = []
        self.closed = not printing  # without --json it only keeps them, for a stopped run's report

    def __call__(self, result: Any) -> None:
        from liberacion.console import named_table

        self.results.append(result)
        if self.closed:
            return
        # Every record names its table; one that failed before it was resolved, the table its ref
        # names (null when the ref names none: the record's "ref" says what was given).
        record = {**result.to_dict(), "table": result.table or named_table(result.ref)}
        try:
            print_json_lines([record])
            sys.stdout.flush()
        except (OutputClosed, BrokenPipeError):
            self.closed = True


def _failed_lines(refs: list[str], as_table: str | None, err: LiberacionError) -> None:
    """``--json``: one object per dataset, also when the run could not start (a lake whose store
    cannot be reached, a bucket that is gone): each failed, at the stage of publishing."""
    from liberacion.console import named_table
    from liberacion.fetching import FetchResult

    print_json_lines(
        FetchResult(
            ref, as_table or named_table(ref), "failed", error=str(err), stage="publish", error_type=type(err).__name__
        ).to_dict()
        for ref in dict.fromkeys(refs)
    )


def _streamed(run_log: Any, *, stdout: bool) -> Any:
    """The refresh's ``on_event``: each table's line to ``--log`` and, with ``--json``, to stdout, as
    the table finishes (from the run's threads), so a run stopped by ``timeout`` or systemd has
    printed what it published. A reader of stdout that went away (``| head``) ends the printing,
    not the run."""
    import threading

    lock, closed = threading.Lock(), threading.Event()

    def on_event(event: Any) -> None:
        run_log.event(event)
        if not stdout or closed.is_set():
            return
        with lock:
            try:
                print_json_lines([event.to_dict()])
                sys.stdout.flush()
            except (OutputClosed, BrokenPipeError):
                closed.set()

    return on_event


def _stopped(err: BaseException, started: str, seconds: float, run_log: Any, json_lines: bool) -> None:
    """The summary line of a run that stopped (Ctrl-C, SIGTERM) or could not start (busy, a bad
    setting, an unknown table), on --log and --json; a stopped run ends here, saying so on one
    ``error:`` line as ``fetch`` does (a run that could not start is left to the caller)."""
    from liberacion.refreshing import stopped_summary

    if isinstance(err, Terminated):
        code, message = int(ExitCode.TERMINATED), "terminated (SIGTERM)"
    elif isinstance(err, KeyboardInterrupt):
        code, message = int(ExitCode.INTERRUPTED), "interrupted"
    else:
        code, message = int(getattr(err, "exit_code", ExitCode.FAILED)), str(err)
    summary = stopped_summary(started, seconds, code, message)
    run_log.write([summary])
    if json_lines:
        print_json_lines([summary])
    if isinstance(err, KeyboardInterrupt):
        error_line(f"{message}: {NOT_PUBLISHED}")
        if run_log.error is not None:
            error_line(run_log.error)
        if isinstance(err, Terminated):
            exit_now(ExitCode.TERMINATED)
        raise typer.Exit(code)
