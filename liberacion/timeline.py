"""A table's kept snapshots over time: listing them, naming one, time travel, and pruning.

Times are UTC. ``published_at`` is stored as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, a fixed-width string,
so comparing normalised strings compares instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from liberacion.compare import SchemaChange, schema_changes
from liberacion.errors import NotFound, UsageError, option
from liberacion.lake import MIN_PREFIX, Lake, keep_default, pruned_snapshot
from liberacion.snapshots import Snapshot
from liberacion.timestamps import parse_as_of

_SNAPSHOT_ID = re.compile(r"\d{8}(T\d{0,12})?Z?")  # an id or a prefix of one: 20261101T06


def resolve_snapshot(lake: Lake, name: str, ref: str, setting: str = "") -> Snapshot:
    """Find one kept snapshot of a table from what a user typed.

    ``ref`` is a snapshot id (``20261101T063000123456Z``) or an unambiguous prefix of one
    (``20261101T0630``), ``current``, ``previous`` (the one before current), or a date or timestamp
    (the snapshot that was current then, as with ``--as-of``). ``setting``: the option or
    parameter that gave ``ref``, as an error about it begins.
    """
    snaps = published_snapshots(lake, name)
    wanted = ref.strip()
    if wanted == "current":
        return lake.current(name)
    if wanted == "previous":
        return previous_snapshot(lake, name, lake.current(name))
    if _SNAPSHOT_ID.fullmatch(wanted):
        return _by_id(lake, name, snaps, wanted)
    if wanted.isdigit():  # a prefix shorter than a day: too many snapshots would match
        raise UsageError(
            f"snapshot {wanted!r} of {name}: give at least the day of an id ({MIN_PREFIX} digits, e.g. "
            f"{snaps[-1].id[:MIN_PREFIX] if snaps else '20261101'}), a date such as 2026-11-01, current or previous"
        )
    try:
        moment = parse_as_of(wanted)
    except UsageError:
        said = f"{setting}: " if setting else ""
        raise UsageError(
            f"{said}{wanted!r} is not a snapshot of {name}: give a snapshot id (or the start of one), current,"
            " previous, a date (2026-11-01, the end of that day UTC) or a UTC timestamp (2026-11-01T06:30:00)"
        ) from None
    chosen = lake.as_of(name, moment)
    if chosen is None:
        # As `sql --as-of` says it: after a prune, "no snapshot" alone reads as "no such data then".
        oldest = f": {lake.not_kept_then(name, moment, snaps[0].published_at)}" if snaps else ""
        raise NotFound(f"table {name} has no kept snapshot as of {wanted}{oldest}; see: liberacion history {name}")
    return chosen


def _by_id(lake: Lake, name: str, snaps: list[Snapshot], wanted: str) -> Snapshot:
    exact = [s for s in snaps if s.id == wanted]
    if exact:
        return exact[0]
    matches = [s for s in snaps if s.id.startswith(wanted)] if len(wanted) >= MIN_PREFIX else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(s.id for s in matches)
        raise UsageError(f"snapshot {wanted!r} of {name} is ambiguous: {ids}")
    raise pruned_snapshot(lake, name, wanted) or NotFound(
        f"table {name} has no snapshot {wanted!r}; see: liberacion history {name}"
    )


def published_snapshots(lake: Lake, name: str) -> list[Snapshot]:
    """The kept snapshots that were ever current, oldest first (see ``Lake.published``)."""
    return lake.published(name)


def previous_snapshot(lake: Lake, name: str, snap: Snapshot) -> Snapshot:
    """The kept snapshot published just before ``snap``, or ``NotFound``."""
    earlier = [s for s in published_snapshots(lake, name) if (s.published_at, s.id) < (snap.published_at, snap.id)]
    if not earlier:
        raise NotFound(f"table {name} has no snapshot kept before {snap.id}; see: liberacion history {name}")
    return earlier[-1]


@dataclass
class HistoryEntry:
    """One kept snapshot and how it differs from the kept snapshot before it."""

    snapshot: Snapshot
    current: bool
    rows_change: int | None  # None for the oldest kept snapshot
    schema_change: SchemaChange | None  # None for the oldest kept snapshot

    def changes(self) -> str:
        if self.schema_change is None:
            return "oldest kept snapshot"
        return self.schema_change.summary()

    def record(self) -> dict[str, object]:
        snap = self.snapshot
        return {
            "snapshot": snap.id,
            "published_at": snap.published_at,
            "current": self.current,
            "rows": snap.rows,
            "rows_change": self.rows_change,
            "bytes": snap.bytes,
            "sha256": snap.provenance.sha256,
            "schema_changes": self.changes(),
            "stages": " ".join(f"{name} {seconds:.2f}s" for name, seconds in snap.provenance.stages.items()) or None,
        }


HISTORY_COLUMNS = [
    *("snapshot", "published_at", "current", "rows", "rows_change", "bytes", "sha256", "schema_changes"),
    "stages",  # seconds each stage of the fetch took
]


def history(lake: Lake, name: str) -> list[HistoryEntry]:
    """Every kept snapshot of a table, oldest first, each compared with the one before it.

    Snapshots newer than ``current`` (left by a publish killed before its switch) are not history.
    """
    current = lake.current(name)
    snaps = published_snapshots(lake, name)
    entries = []
    previous: Snapshot | None = None
    for snap in snaps:
        entries.append(
            HistoryEntry(
                snapshot=snap,
                current=snap.id == current.id,
                rows_change=None if previous is None else snap.rows - previous.rows,
                schema_change=None if previous is None else schema_changes(previous.schema, snap.schema),
            )
        )
        previous = snap
    return entries


def checked_keep(keep: int | None) -> int:
    """How many snapshots a prune keeps: ``keep``, else ``LIBERACION_KEEP``; at least 1."""
    keep = keep_default() if keep is None else keep
    if keep < 1:
        raise UsageError(f"{option('keep')} must be at least 1: the current snapshot is always kept")
    return keep


def prune(
    lake: Lake,
    name: str,
    *,
    keep: int | None = None,
    wait: float = 0.0,
    readers_wait: float = 0.0,
    dry_run: bool = False,
) -> list[Snapshot]:
    """Delete all but the newest ``keep`` snapshots of a table; return the snapshots removed.

    Holds the table's writer lock, so it never races a publish (which could otherwise see its
    freshly renamed snapshot taken for a leftover and deleted before its switch). Waits up to
    ``readers_wait`` seconds for the queries reading the lake to end, then ``Busy``. With
    ``dry_run`` nothing is deleted: the published snapshots it would delete are returned.
    """
    keep = checked_keep(keep)
    if dry_run:
        return prunable(lake, name, keep)
    with lake.lock(name, wait=wait):
        before = {s.id: s for s in lake.snapshots(name)}
        removed = lake.prune(name, keep=keep, wait=readers_wait)
    return [before[i] for i in removed if i in before]


def prunable(lake: Lake, name: str, keep: int) -> list[Snapshot]:
    """The published snapshots a prune keeping ``keep`` would delete, oldest first.

    Known before anything goes, so an analysis that still reads one can be kept from losing it:
    only the oldest are deleted, never the current one. (A leftover of a publish killed before its
    switch goes too, but it was never part of the table's history.)
    """
    current = lake.current(name)
    return [s for s in published_snapshots(lake, name)[:-keep] if s.id != current.id]
