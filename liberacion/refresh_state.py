"""What this home's refreshes last found of each table (``<home>/state/refresh.json``): when it was
last checked, the last event, whether it failed or was retired, and the catalog's change token a
refresh found to name the current snapshot's bytes. Kept apart from ``refreshing`` so
that ``tables`` reads it without importing the catalogs' code (``benchmarks/startup.py``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from liberacion.files import atomic_write
from liberacion.home import Home
from liberacion.timestamps import stamp, utc_now

FAILED_EVENTS = ("failed", "gone")  # a run that ends with one of these exits 1
STATE_FILE = "refresh.json"


# Marks a retirement decided by the catalog's listing. Versions up to 2026-12-02 also marked a file
# that answered 404 and a local file that was gone as retired, and skipped them from then on.
RETIRED_BY_CATALOG = "catalog"


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A table's record as this version reads it. Older versions stamped as a check what was not
    one: up to 2026-12-06 17:57 a failed or gone table (so ``--older-than`` skipped it until the
    period was over), and up to 2026-12-06 12:35 ``refresh --check``, which marked the tables it
    found changed as checked (so the next ``refresh --older-than`` skipped the very tables that
    had changed). Such a stamp is no check: a failure keeps its time as ``failed_at``, and the
    table is due at the next run."""
    event = record.get("last_event")
    old_failure = event in FAILED_EVENTS and "failed_at" not in record
    if not old_failure and event != "changed":  # today's code never records a --check's "changed"
        return record
    upgraded = {k: v for k, v in record.items() if k not in ("checked", "checked_at")}
    if old_failure and record.get("checked_at"):
        upgraded["failed_at"] = record["checked_at"]
    return upgraded


def last_checks(home: Home) -> dict[str, dict[str, Any]]:
    """What this home's refreshes last found of each table: ``checked_at`` (the last check that got
    an answer), ``last_refresh`` (the last run's event for it) and ``failed_at`` (when it failed
    since), so a person can tell that cron still works, not only when the data last changed."""
    return {
        table: {
            "checked_at": _stamped(r.get("checked_at")),
            "last_refresh": r.get("last_event"),
            "failed_at": _stamped(r.get("failed_at")),
        }
        for table, r in State(home).tables.items()
    }


def _stamped(when: Any) -> Any:
    """A time this file holds in the format of every other time liberacion writes (``fetched_at``
    beside it in ``tables``, a refresh's ``at``): versions up to 2026-12-07 wrote ``+00:00`` and
    whole seconds. Anything that is not a time is left as it is."""
    try:
        parsed = datetime.fromisoformat(when)
    except (TypeError, ValueError):
        return when
    return stamp(parsed.astimezone(UTC) if parsed.tzinfo else parsed)


class State:
    """Per-table refresh state: when it was last checked, the last event, whether it is retired."""

    def __init__(self, home: Home) -> None:
        self.path = home.state / STATE_FILE
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        # Damaged records (edited by hand, cut short) are dropped: that table is checked as a new one.
        records = stored.items() if isinstance(stored, dict) else ()
        self.tables: dict[str, dict[str, Any]] = {
            str(table): _upgraded(record) for table, record in records if isinstance(record, dict)
        }

    def get(self, table: str) -> dict[str, Any]:
        return self.tables.get(table, {})

    def update(self, table: str, event: str, at: str | None = None) -> None:
        """Record that the refresh of ``table`` ended in ``event`` at ``at`` (the event's own time,
        so ``tables``' ``checked_at`` is the ``at`` of the run report's line; retired: decided then)."""
        record = dict(self.tables.get(table, {}))
        now = at or utc_now()  # the format of every time liberacion writes
        if event in FAILED_EVENTS:
            # Not a check for --older-than: an hourly `refresh --older-than 1d` tries a failed table
            # again next hour, not tomorrow.
            record["failed_at"] = now
        else:
            record["checked"] = time.time()
            record["checked_at"] = now
            record.pop("failed_at", None)
        record["last_event"] = event
        if event == "retired":
            record["retired"] = record.get("retired") or at
            record["retired_by"] = RETIRED_BY_CATALOG
        elif event in ("fetched", "unchanged", "schema-changed", "changed"):
            record.pop("retired", None)
            record.pop("retired_by", None)
        if event in ("fetched", "schema-changed"):  # a new snapshot records the token it was fetched under
            record.pop("verified", None)
        self.tables[table] = record

    def verify(self, table: str, sha256: str, change_token: str) -> None:
        """Record that a refresh found the listing of ``change_token`` still holds ``sha256``, the
        bytes of the table's current snapshot. Such a refresh publishes nothing, so the snapshot
        keeps the token it was fetched under; ``--check`` takes this one as well, or it would say
        ``changed`` for ever after a listing dated anew (or a file moved) with the same bytes."""
        record = dict(self.tables.get(table, {}))
        record["verified"] = {"sha256": sha256, "change_token": change_token}
        self.tables[table] = record

    def verified_token(self, table: str, sha256: str | None) -> str | None:
        """The change token a refresh found to name ``sha256`` (``verify``), or None."""
        verified = self.get(table).get("verified")
        if not isinstance(verified, dict) or sha256 is None or verified.get("sha256") != sha256:
            return None
        token = verified.get("change_token")
        return token if isinstance(token, str) else None

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.tables, indent=1, sort_keys=True))
