"""What people see: progress on stderr, and the printers of each command's results.

Nothing here parses options or decides exit codes (that is ``cli``); nothing here does the work
(that is the API). stdout is data, stderr is people.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from liberacion.render import DEFAULT_MAX_ROWS, Format, Rows, default_format, render


def note(message: str) -> None:
    """A message for people: stderr, so stdout stays data."""
    print(message, file=sys.stderr)


def emit(
    rows: Rows, fmt: Format | None, output: Path | None, max_rows: int = DEFAULT_MAX_ROWS, title: str | None = None
) -> None:
    """Rows in the chosen format (by default a table on a terminal, CSV otherwise) to stdout or a file."""
    chosen = fmt or (Format.csv if output is not None else default_format(sys.stdout))
    render(rows, chosen, output=output, max_rows=max_rows, title=title)


def print_json(document: Any) -> None:
    """One JSON document on stdout, indented for people who read it."""
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def print_json_lines(records: Iterable[dict[str, Any]]) -> None:
    """One compact JSON object per line on stdout (for jq and log collectors)."""
    for record in records:
        print(json.dumps(record, ensure_ascii=False, default=str))


def print_info(current: Any, snaps: list[Any]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    prov = current.provenance
    console.print(
        f"[bold]{current.table}[/bold]  {current.rows:,} rows, {size_text(current.bytes)}, snapshot {current.id}"
    )
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
                (c.name, c.type, c.original, c.null_count, markers_text(notes.get(c.name, {})), c.description)
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


def report_fetch(results: list[Any], *, json_lines: bool, quiet: bool) -> None:
    for result in results:
        if result.status == "failed":
            error = str(result.error)
            # Download errors already start with the URL: do not say it twice.
            print(f"error: {error if error.startswith(result.ref) else f'{result.ref}: {error}'}", file=sys.stderr)
    if json_lines:
        print_json_lines(r.to_dict() for r in results)
        return
    if quiet:
        return
    rows = [
        (
            ", ".join(r.tables) if len(r.tables) > 1 else r.table or r.ref,
            r.status,
            f"{r.rows:,}" if r.rows is not None else "-",
            size_text(r.bytes),
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


@contextmanager
def no_view() -> Iterator[None]:
    yield


class FetchProgress:
    """Progress of a fetch on stderr: rich bars on a terminal, a few plain lines otherwise."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int | None]] = {}
        self._tasks: dict[str, Any] = {}
        self._reported: dict[str, int] = {}
        self._bars: Any = None
        self._overall: Any = None

    def __enter__(self) -> FetchProgress:
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
            total = f" of {size_text(event.total)}" if event.total else ""
            resumed = f", resuming at {size_text(event.done)}" if event.done else ""
            say(f"{event.name}: downloading{total}{resumed}")
            self._reported[event.key] = 0
        elif event.kind == "advance" and event.total:
            tenth = event.done * 10 // event.total
            if tenth > self._reported.get(event.key, 0) and tenth < 10:
                self._reported[event.key] = tenth
                say(f"{event.name}: {tenth * 10}% ({size_text(event.done)})")
        elif event.kind == "retry":
            say(f"{event.name}: {event.message}")
        elif event.kind == "done":
            say(f"{event.name}: downloaded {size_text(event.done)}")
        elif event.kind == "unchanged":
            say(f"{event.name}: not modified on the server")
        elif event.kind == "phase" and event.message == "converting":
            say(f"{event.name}: converting")


def report_refresh(report: Any, *, quiet: bool) -> None:
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
    emit(Rows.from_dicts(columns, records), None, None)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())) or "nothing to refresh"
    print(f"refresh: {counts} in {report.seconds:.1f} s", file=sys.stderr)


def report_discover(report: Any) -> None:
    """One line per catalog on stderr: datasets indexed, how each listing went, and errors."""
    for catalog in report.catalogs:
        parts = [
            f"{s.kind} {s.status}" + (f" ({s.datasets:,})" if s.status != "failed" else "") for s in catalog.sources
        ]
        detail = f" [{'; '.join(parts)}]" if parts else ""
        note(f"{catalog.name}: {catalog.datasets:,} datasets indexed{detail} in {catalog.seconds:.1f} s")
        for source in catalog.sources:
            for message in source.notes:
                note(f"{catalog.name}: note: {message}")
            if source.status == "failed":
                kept = "keeping the previous index" if source.datasets else "nothing indexed yet"
                print(f"error: {catalog.name}: {source.error} ({kept})", file=sys.stderr)


def print_description(description: Any) -> None:
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


def markers_text(note: dict[str, Any]) -> str:
    """``Not Available ×2,509`` for the markers a column had (and a percent note)."""
    found = ", ".join(f"{marker} ×{count:,}" for marker, count in (note.get("markers") or {}).items())
    return f"{found}{'; ' if found and note.get('percent') else ''}{'was a percent' if note.get('percent') else ''}"


def size_text(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
