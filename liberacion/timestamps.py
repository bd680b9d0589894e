"""Points in time as liberacion stores them (UTC, fixed width) and as users type them.

``published_at`` and ``fetched_at`` are ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: comparing two of these
strings compares the instants.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from liberacion.errors import UsageError

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"  # a snapshot id: 20261101T063000123456Z
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SNAPSHOT_ID = re.compile(r"\d{8}T\d{6,12}Z?")  # 20261101T063000123456Z, as history lists them
_WHOLE_ID = re.compile(r"\d{8}T\d{12}Z")  # what liberacion.snapshot() takes (ID_FORMAT)


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return stamp(datetime.now(UTC))


def after(previous: datetime | None) -> datetime:
    """Now in UTC, or one microsecond after ``previous`` when the clock is not past it.

    A clock set back (or one that ran ahead when ``previous`` was taken) would otherwise give a new
    snapshot an id and a time before the current one's, and ids and times order the publishes.
    """
    now = datetime.now(UTC)
    return previous + timedelta(microseconds=1) if previous is not None and now <= previous else now


def parse_stamp(text: str) -> datetime | None:
    """A stored time (``published_at``) as a UTC datetime, or None when it is not one."""
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_id(snapshot_id: str) -> datetime | None:
    """The UTC time a snapshot id spells, or None when it is not one."""
    try:
        return datetime.strptime(snapshot_id, ID_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def stamp(when: datetime) -> str:
    """``when`` (UTC) in the stored format. The year is padded by hand: ``%Y`` writes year 1 as
    ``1`` on glibc, which would break the fixed width that string comparison relies on."""
    return f"{when.year:04d}-" + when.strftime(TIME_FORMAT.removeprefix("%Y-"))


def parse_as_of(text: str, setting: str = "") -> str:
    """Normalise a user's point in time to the stored format.

    A date (``2026-11-01``) means the end of that day in UTC, so ``--as-of`` today's date shows
    what was published today. A timestamp (``2026-11-01T06:30:00``, also with a space, ``Z``,
    fractional seconds or a UTC offset) means that instant; without an offset it is UTC.
    ``setting``: the option or parameter that gave it, as the error begins.
    """
    try:
        return _parse_as_of(text)
    except UsageError as err:
        if not setting:
            raise
        raise UsageError(f"{setting}: {err}") from None


def _parse_as_of(text: str) -> str:
    raw = text.strip()
    if _DATE.fullmatch(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise UsageError(_bad_time(text)) from None
        return stamp(datetime.combine(day, time.max, tzinfo=UTC))
    if len(raw) < 16 or raw[10] not in "Tt ":  # at least YYYY-MM-DDTHH:MM
        raise UsageError(_bad_time(text))
    try:
        when = datetime.fromisoformat(raw[:10] + "T" + raw[11:].upper())
    except ValueError:
        raise UsageError(_bad_time(text)) from None
    try:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # an offset that moves it before year 1 or after 9999
        raise UsageError(_bad_time(text)) from None
    return stamp(when)


def _bad_time(text: str) -> str:
    if _WHOLE_ID.fullmatch(text.strip()):
        # An id is when the snapshot was begun, not published: read as a time it would miss that very snapshot.
        return (
            f"invalid time {text!r}: that is a snapshot id, not a time; read that snapshot with "
            f"liberacion.snapshot('CATALOG.TABLE', '{text.strip()}'), or give --as-of a date or a UTC "
            "timestamp (2026-11-01T06:30:00)"
        )
    if _SNAPSHOT_ID.fullmatch(text.strip()):  # the start of one: liberacion.snapshot() takes whole ids
        return (
            f"invalid time {text!r}: that looks like the start of a snapshot id, not a time; "
            "liberacion history CATALOG.TABLE lists the whole ids (liberacion.snapshot('CATALOG.TABLE', ID) "
            "reads one), or give --as-of a date or a UTC timestamp (2026-11-01T06:30:00)"
        )
    return (
        f"invalid time {text!r}: use a date (2026-11-01, meaning the end of that day UTC) "
        "or a UTC timestamp (2026-11-01T06:30:00)"
    )
