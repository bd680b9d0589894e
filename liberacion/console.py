"""What people see: progress on stderr, and the printers of each command's results.

Nothing here parses options or decides exit codes (that is ``cli``); nothing here does the work
(that is the API). stdout is data, stderr is people. Colour only on a terminal (``render.color_enabled``).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from liberacion.errors import output_error
from liberacion.files import is_stdout
from liberacion.render import (
    DEFAULT_MAX_ROWS,
    STATUS_STYLES,
    Format,
    OutputClosed,
    Rows,
    choose_format,
    color_enabled,
    inert,
    make_console,
    one_line,
    render,
    silence_stdout,
    size_text,
    when_text,
)

__all__ = ["size_text"]

_RED, _RESET = "\x1b[31m", "\x1b[0m"

# A command named in advice (``see: liberacion tables``), not ``liberacion.snapshot(...)`` or ``--help``.
_ADVICE = re.compile(
    r"\bliberacion (?=(?:catalogs|discover|search|show|fetch|refresh|sql|tables|info|history|diff|prune)\b)"
)
_advice_options = ""  # one CLI command runs per process; its worker threads' notes advise too


@contextmanager
def advising(options: list[str]) -> Iterator[None]:
    """While the block runs, a command that messages advise is named with ``options`` (the global
    options typed, ``--home DIR``...): advice copied as printed works on the same home and lake."""
    global _advice_options
    before, _advice_options = _advice_options, " ".join(shlex.quote(o) for o in options)
    try:
        yield
    finally:
        _advice_options = before


def with_options(message: str) -> str:
    """``message`` with the global options typed put into each ``liberacion COMMAND`` it advises."""
    if not _advice_options:
        return message
    return _ADVICE.sub(lambda found: f"liberacion {_advice_options} ", message)


def note(message: str) -> None:
    """A message for people: stderr, so stdout stays data. One write, line and newline together:
    threads that note at once never run their lines into each other. Said inert: notes quote
    listings, servers and files."""
    sys.stderr.write(inert(with_options(message)) + "\n")
    sys.stderr.flush()


def error_line(message: str, *, stream: IO[str] | None = None) -> None:
    """``error: ...`` on stderr, red on a terminal. Inert: errors quote a server's reason phrase, a
    listing's URL, a file's member or sheet name."""
    stream = stream or sys.stderr
    text = f"error: {inert(with_options(message))}"
    print(f"{_RED}{text}{_RESET}" if color_enabled(stream) else text, file=stream)


def styled(text: str, style: str | None, stream: IO[str]) -> str:
    """``text`` with a status colour (``STATUS_STYLES``) when ``stream`` is a terminal that takes colour."""
    codes = {"red": "31", "green": "32", "yellow": "33", "dim": "2"}
    if not style or style not in codes or not color_enabled(stream):
        return text
    return f"\x1b[{codes[style]}m{text}{_RESET}"


@contextmanager
def stdout_guard() -> Iterator[None]:
    """A closed stdout (``| head``) ends the command quietly: BrokenPipeError becomes OutputClosed.
    Any other failed write (a full disk under ``> out.json``) names the standard output, not the home."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        raise OutputClosed() from None
    except OSError as err:
        if err.filename:
            raise
        raise output_error(err, "the standard output") from None


def emit(
    rows: Rows,
    fmt: Format | None,
    output: Path | None,
    max_rows: int = DEFAULT_MAX_ROWS,
    title: str | None = None,
    *,
    expanded: bool = False,
    expand_option: str | None = None,
) -> None:
    """Rows in the chosen format to stdout or a file: ``--format`` when given, else the extension of
    ``--output``, else a table on a terminal and CSV elsewhere."""
    if output is not None and is_stdout(output):
        output = None  # -o /dev/stdout: stdout as it is (a file it appends to stays appended to)
    chosen = choose_format(fmt, output, sys.stdout)
    render(rows, chosen, output=output, max_rows=max_rows, title=title, expanded=expanded, expand_option=expand_option)


def print_json(document: Any) -> None:
    """One JSON document on stdout, indented for people who read it."""
    with stdout_guard():
        _write_utf8(json.dumps(advised(document), indent=2, ensure_ascii=False, default=str) + "\n")


def print_json_lines(records: Iterable[dict[str, Any]]) -> None:
    """One compact JSON object per line on stdout (for jq and log collectors)."""
    with stdout_guard():
        for record in records:
            _write_utf8(json.dumps(advised(record), ensure_ascii=False, default=str) + "\n")


# The keys of machine output whose text is a message to a person, which may advise a command.
_MESSAGE_KEYS = frozenset({"error", "reason", "note", "notes", "status"})


def advised(value: Any, key: str | None = None) -> Any:
    """``value`` with the global options typed put into the commands its messages advise, as
    ``with_options`` does on stderr: a monitor that shows a JSON line's error shows advice that runs."""
    if not _advice_options:
        return value
    if isinstance(value, str):
        return with_options(value) if key in _MESSAGE_KEYS else value
    if isinstance(value, dict):
        return {k: advised(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [advised(v, key) for v in value]
    return value


def _write_utf8(text: str) -> None:
    """JSON is UTF-8 whatever the locale's encoding (a latin-1 one could not encode an em dash)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None or (sys.stdout.encoding or "").lower().replace("-", "") == "utf8":
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def table_of_ref(ref: str) -> str:
    """The table a ref lands in by default (``fetching.table_of_ref``), shown for a ref that failed
    before its table was known."""
    from liberacion.fetching import table_of_ref as of_ref

    return of_ref(ref)


def named_table(ref: str) -> str | None:
    """The table of a ref that failed before its table was known, when fetch's rules tell it from
    the ref alone (``table_of_ref``); None when they cannot: a URL whose own name says nothing
    (``…/download?format=csv``: the server names its table), or ``A/B.ext`` with an extension that
    is no data format (``loc/f.dat``: a mistyped path or a catalog's dataset, not a mix of both)."""
    from liberacion.fetching import looks_like_path, nameless_url

    if "://" in ref:
        return None if nameless_url(ref) else table_of_ref(ref)
    if ref.count("/") == 1 and "." in ref.split("/")[1] and not looks_like_path(ref):
        return None
    return table_of_ref(ref)


def _details(console: Any, pairs: list[tuple[str, Any]], label_width: int, *, wrap: tuple[str, ...] = ()) -> None:
    """``label  value`` lines, each cut to the screen (a value never wraps under its label); the
    labels in ``wrap`` hold sentences to read whole, continued on lines of their own."""
    from rich.text import Text

    from liberacion.render import cut, one_line, wrapped

    room = max(console.width, 40) - label_width - 3
    for label, value in pairs:
        if value:
            lines = wrapped(one_line(str(value)), room) if label in wrap else [cut(one_line(str(value)), room)]
            for i, text in enumerate(lines):
                line = Text(f"  {label if i == 0 else '':<{label_width}} ", style="dim")
                line.append(text)
                console.print(line, no_wrap=True, crop=False, overflow="ignore")


def print_info(current: Any, snaps: list[Any], storage: dict[str, Any] | None = None) -> None:
    from rich.markup import escape

    with stdout_guard():
        console = make_console(sys.stdout)
        prov = current.provenance
        console.print(
            f"[bold]{escape(current.table)}[/bold]  {current.rows:,} rows, {size_text(current.bytes)}, "
            f"snapshot {current.id}"
        )
        _details(
            console,
            [
                ("source", prov.source_url),
                ("dataset", prov.ref or prov.dataset_id),
                ("fetched", _when_and_stamp(prov.fetched_at)),
                ("published", _when_and_stamp(current.published_at)),
                ("sha256", prov.sha256),
                ("etag", prov.etag),
                ("last-modified", prov.last_modified),
                ("rejected rows", f"{current.rejects:,}" if current.rejects else None),
                ("iceberg", (storage or {}).get("metadata_location")),
            ],
            14,
        )
        _conversion_notes(console, prov.extra.get("conversion"))
        notes = prov.columns
        schema = Rows(
            ["column", "type", "original", "nulls", "missing markers", "description"],
            [
                [
                    (c.name, c.type, c.original, c.null_count, markers_text(notes.get(c.name, {})), c.description)
                    for c in current.schema
                ]
            ],
            kinds={"column": "name"},  # a type may be cut: a nested one is hundreds of characters
            keep_last=False,  # what a column holds before what it says about itself
            all_hint="--format json",
        )
        render(schema, Format.table, stdout=sys.stdout, max_rows=10_000, title="schema")
        history = Rows(
            ["snapshot", "published_at", "rows", "bytes", "sha256"],
            [[(s.id, s.published_at, s.rows, s.bytes, (s.provenance.sha256 or "")[:12]) for s in reversed(snaps)]],
            kinds={"snapshot": "name", "published_at": "time", "bytes": "size"},
            all_hint="--format json",
        )
        render(history, Format.table, stdout=sys.stdout, title="snapshots")


def _conversion_notes(console: Any, conversion: Any) -> None:
    """What conversion noticed about the file: its real format, skipped members, value labels, and
    a notes block cut from the end of the file (CDC WONDER's query parameters and caveats)."""
    if not isinstance(conversion, dict):
        return  # several files as one table: --format json shows each part's notes
    labels = conversion.get("value_labels") or {}
    skipped = conversion.get("skipped_members") or []
    _details(
        console,
        [
            ("format", conversion.get("format_mismatch") or None),
            ("member", conversion.get("member")),
            ("skipped", ", ".join(skipped) if skipped else None),
            ("value labels", f"{len(labels)} column(s); see --format json" if labels else None),
        ],
        14,
    )
    block = conversion.get("wonder_notes") or conversion.get("trailing_notes")
    if block:
        from rich.text import Text

        console.print(Text("  notes kept from the end of the file:", style="dim"))
        import textwrap

        width = max(console.width, 40) - 4
        for line in inert(str(block)).strip().splitlines():
            for part in textwrap.wrap(line, width) or [""]:  # words kept whole: this is prose to read
                console.print(Text(f"    {part}"), no_wrap=True, crop=True)


def _when_and_stamp(value: Any) -> str | None:
    """``3 h ago (2026-12-02T13:31:05.123456Z)``: for people, and the exact stamp for --as-of."""
    if not value:
        return None
    human = when_text(value)
    return f"{human} ({value})" if human != str(value) else str(value)


def report_fetch(results: list[Any], *, json_lines: bool, quiet: bool) -> None:
    for result in results:
        if result.status == "failed":
            error = str(result.error)
            # Download errors already start with the URL: do not say it twice.
            error_line(error if error.startswith(result.ref) else f"{result.ref}: {error}")
    if json_lines:
        # Every record names its table; one that failed before it was resolved, the table its ref
        # names (null when the ref names none: the record's "ref" says what was given).
        print_json_lines({**r.to_dict(), "table": r.table or named_table(r.ref)} for r in results)
        return
    if quiet:
        return
    records = [
        {
            # Every row names its table; one that failed before it was resolved shows the table its
            # ref names, else the ref as it was given (never a name made up from it).
            "table": ", ".join(r.tables) if len(r.tables) > 1 else r.table or named_table(r.ref) or r.ref,
            "status": r.status,
            "rows": r.rows,
            "downloaded": r.bytes,
            "time": f"{r.seconds:.1f} s",
        }
        for r in results
    ]
    columns = ["table", "status", "rows", "downloaded", "time"]
    with stdout_guard():
        if sys.stdout.isatty():
            rows = Rows.from_dicts(columns, records)
            rows.cramped = "blocks"  # a long table name never hides the status: a block per dataset
            render(rows, Format.table)
            return
        for record in records:
            count = f"{record['rows']:,} rows" if record["rows"] is not None else "-"
            status = styled(record["status"], STATUS_STYLES.get(record["status"]), sys.stdout)
            print(f"{record['table']}\t{status}\t{count}\t{size_text(record['downloaded'])}\t{record['time']}")


@contextmanager
def no_view() -> Iterator[None]:
    yield


def progress_bars(console: Any) -> Any:
    """The Rich progress display of a fetch: name, bar, bytes done of total, speed, time left.

    Sizes in decimal units (1 MB = 10^6 bytes), as ``size_text`` writes them everywhere else.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Column

    # Each column on one line; a narrow screen drops the time left, then the speed, before the
    # name is cut (with "…"), rather than wrap the cells onto a second line.
    no_wrap = {"table_column": Column(no_wrap=True)}
    columns: list[Any] = [
        TextColumn(
            "{task.description}",
            markup=False,
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(12, console.width // 3)),
        ),
        BarColumn(bar_width=None if console.width >= 60 else 10),
        DownloadColumn(binary_units=False, **no_wrap),
    ]
    if console.width >= 70:
        columns.append(TransferSpeedColumn(**no_wrap))
    if console.width >= 90:
        columns.append(TimeRemainingColumn(**no_wrap))
    return _bars_class()(*columns, console=console, transient=True)


def _bars_class() -> Any:
    from rich.progress import Progress

    class Bars(Progress):
        def get_renderable(self) -> Any:
            return _ShortOfTheEdge(super().get_renderable())

    return Bars


class _ShortOfTheEdge:
    """A renderable kept two cells short of the screen's right edge. A line that fills the last
    column leaves the cursor waiting to wrap: the ``^C`` a terminal echoes on Ctrl-C then wraps
    onto a new line, and the progress display's clean-up, which erases as many lines as it drew,
    leaves one stale bar behind."""

    ROOM = 2  # the cells of "^C"

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from console.render(self.renderable, options.update_width(max(options.max_width - self.ROOM, 1)))


class FetchProgress:
    """Progress of a fetch on stderr: rich bars on a terminal, a few plain lines otherwise."""

    def __init__(self, *, live: bool, console: Any = None) -> None:
        self.live = live
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int | None]] = {}
        self._tasks: dict[str, Any] = {}
        self._reported: dict[str, int] = {}
        self._bars: Any = None
        self._overall: Any = None
        self._console = console

    def __enter__(self) -> FetchProgress:
        if self.live:
            self._bars = progress_bars(self._console or make_console(sys.stderr))
            self._bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.__exit__(None, None, None)

    def event(self, event: Any) -> None:
        event = _inert_event(event)
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
        if event.kind == "start" and self._overall is None:  # the first download: a local file has none
            self._overall = bars.add_task("all downloads", total=None)
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
            bars.console.print(f"converting {event.name}", highlight=False, markup=False)
        if event.kind == "retry" and task is None:  # no bar to show it on (a shared lake's store): a line
            bars.console.print(f"{event.name}: {event.message}", highlight=False, markup=False)
        if event.kind == "waiting":
            bars.console.print(event.message, highlight=False, markup=False)
        if self._overall is None:
            return
        done = sum(d for d, _ in self._files.values())
        totals = [t for _, t in self._files.values()]
        bars.update(self._overall, completed=done, total=sum(totals) if totals and None not in totals else None)  # type: ignore[arg-type]

    def _print_line(self, event: Any) -> None:
        def say(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        if event.kind == "start":
            size = f" {size_text(event.total)}" if event.total else ""
            resumed = f", resuming at {size_text(event.done)}" if event.done else ""
            say(f"{event.name}: downloading{size}{resumed}")
            self._reported[event.key] = 0
        elif event.kind == "advance" and event.total:
            tenth = event.done * 10 // event.total
            if tenth > self._reported.get(event.key, 0) and tenth < 10:
                self._reported[event.key] = tenth
                say(f"{event.name}: {tenth * 10}% ({size_text(event.done)} of {size_text(event.total)})")
        elif event.kind == "retry":
            say(f"{event.name}: {event.message}")
        elif event.kind == "done":
            say(f"{event.name}: downloaded {size_text(event.done)}")
        elif event.kind == "unchanged":
            say(f"{event.name}: not modified on the server")
        elif event.kind == "phase" and event.message == "converting":
            say(f"{event.name}: converting")
        elif event.kind == "waiting":
            say(event.message)


def _inert_event(event: Any) -> Any:
    """A progress event whose name and message (a server's reason phrase in a retry) are one inert
    line each; the event itself when they already are."""
    from dataclasses import replace

    name = one_line(event.name)
    message = one_line(event.message) if event.message else event.message
    if name == event.name and message == event.message:
        return event
    return replace(event, name=name, message=message)


def report_refresh(report: Any, *, quiet: bool) -> None:
    broken = {str(problem) for problem in report.problems}  # each said once, on the error line last
    for event in report.events:
        if event.error and event.event in ("failed", "gone", "retired"):
            label = styled(f"{event.event}:", STATUS_STYLES.get(event.event), sys.stderr)
            detail = "its catalog's manifest is broken (below)" if event.error in broken else _refresh_detail(event)
            print(f"{label} {event.table}: {inert(detail)}", file=sys.stderr)
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
            "detail": _refresh_detail(e),
        }
        for e in report.events
    ]
    rows = Rows.from_dicts(columns, records)
    rows.cramped = "blocks"  # a long table name never hides the event: a block per table
    emit(rows, None, None)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items()) if n) or "nothing to refresh"
    print(f"refresh: {counts} in {report.seconds:.1f} s", file=sys.stderr)


def _refresh_detail(event: Any) -> str:
    """Why a table was skipped, failed or is gone (its name said once, not twice); what a schema
    change was."""
    if event.error or event.reason:  # advice that runs: with the global options typed, as --json's
        return with_options(str(event.error or event.reason).removeprefix(f"{event.table}: "))
    change = event.schema_change
    if not change:
        return ""
    parts = [f"{kind}: " + ", ".join(map(_changed_column, cols)) for kind, cols in change.items() if cols]
    return "schema changed (" + "; ".join(parts) + ")" if parts else "schema changed"


def _changed_column(column: dict[str, Any]) -> str:
    """A column of a schema change as ``history`` writes it: a renamed one ``old→new``."""
    if "new" in column:
        return f"{column.get('old')}→{column['new']}"
    return str(column.get("name", ""))


def report_discover(report: Any) -> None:
    """One line per catalog on stderr: datasets indexed, how each listing went, the listed records
    it left out by reason, and errors; then one line per catalog saying how many of its datasets
    fetch can download, and why not the rest."""
    for catalog in report.catalogs:
        parts = [
            f"{s.kind} {s.status}" + (f" ({s.datasets:,})" if s.status != "failed" else "") for s in catalog.sources
        ]
        detail = f" [{'; '.join(parts)}]" if parts else ""
        note(f"{catalog.name}: {_count(catalog.datasets, 'dataset')} indexed{detail} in {catalog.seconds:.1f} s")
        if left_out := catalog.left_out:  # why its listings hold more records than that
            reasons = ", ".join(f"{n:,} {reason}" for reason, n in left_out.items())
            note(f"{catalog.name}: {_count(sum(left_out.values()), 'listed record')} left out ({reasons})")
        for source in catalog.sources:
            for message in source.notes:
                note(f"{catalog.name}: note: {message}")
            if source.status == "failed":
                kept = "keeping the previous index" if source.datasets else "no earlier listing to keep"
                note(f"error: {catalog.name}: {source.kind} listing: {source.error} ({kept})")
    if not report.rebuilt:
        note("every listing was unchanged: the index was kept as it was")
    for catalog in report.catalogs:
        if catalog.fetchable is None:
            continue
        reasons = sorted(catalog.why_not.items(), key=lambda kv: -kv[1])
        rest = f" (not: {', '.join(f'{n:,} {reason}' for reason, n in reasons)})" if reasons else ""
        note(f"{catalog.name}: {_count(catalog.datasets, 'dataset')}, {catalog.fetchable:,} fetchable{rest}")


def _count(n: int, noun: str) -> str:
    """``1 dataset``, ``1,786 datasets``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def print_description(description: Any) -> None:
    from rich.markup import escape

    with stdout_guard():
        console = make_console(sys.stdout)
        dataset = description.dataset
        console.print(f"[bold]{escape(dataset.ref)}[/bold]  {escape(one_line(dataset.title))}", overflow="fold")
        lake = description.lake
        in_lake = (
            f"{lake['table']}: {lake['rows']:,} rows, snapshot {lake['snapshot']} ({lake['published_at']})"
            if lake["present"]
            else f"{lake['table']}: not fetched yet"
        )
        _details(
            console,
            [
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
            ],
            17,
            wrap=("because", "lake", "fetch would take"),  # what to copy is never cut
        )
        if dataset.description:
            console.print()
            console.print(escape(inert(dataset.description)))
        if not dataset.distributions:
            return  # an empty table says nothing "because" has not said
        chosen = {d.url for d in description.chosen}
        # Titles tell files apart where URLs look alike (openFDA's partitions); the URL whole, cut
        # in the middle, so the part that differs stays on screen.
        titled = any(d.title for d in dataset.distributions)
        files = Rows(
            ["", *(["title"] if titled else []), "kind", "format", "media type", "modified", "url"],
            [
                [
                    (
                        "*" if d.url in chosen else "",
                        *([d.title] if titled else []),
                        d.kind,
                        d.format,
                        d.media_type,
                        d.modified,
                        d.url,
                    )
                    for d in dataset.distributions
                ]
            ],
            kinds={"modified": "date", "url": "link"},
            all_hint="--format json",  # show has no csv
        )
        render(files, Format.table, stdout=sys.stdout, title="distributions (* = fetch would take)")


def markers_text(note: dict[str, Any]) -> str:
    """``Not Available ×2,509`` for the markers a column had (and a percent note)."""
    found = ", ".join(f"{marker} ×{count:,}" for marker, count in (note.get("markers") or {}).items())
    return f"{found}{'; ' if found and note.get('percent') else ''}{'was a percent' if note.get('percent') else ''}"
