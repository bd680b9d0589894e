"""Time zones and clocks that move: the lake's times are UTC whatever the machine's zone or clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_process

FUTURE_ID = "20301231T235959000000Z"
FUTURE_AT = "2030-12-31T23:59:59.000000Z"


def _fetch(cli: object, path: Path, *extra: str) -> None:
    result = cli("fetch", str(path), *extra)  # type: ignore[operator]
    assert result.exit_code == 0, result.output


def _fetch_visits(cli: object, tmp_path: Path, text: str) -> Path:
    """``visits.csv`` holding ``text``, fetched as local.visits."""
    data = tmp_path / "visits.csv"
    data.write_text(text, encoding="utf-8")
    _fetch(cli, data)
    return data


def _move_current_to_the_future(home: Path, table: str) -> None:
    """As a run on a machine whose clock was ahead leaves it: the snapshot id and time in 2030."""
    catalog, name = table.split(".")
    folder = home / "lake" / catalog / name
    (old,) = (folder / "snapshots").iterdir()
    moved = old.rename(old.with_name(FUTURE_ID))
    record = json.loads((moved / "snapshot.json").read_text(encoding="utf-8"))
    record["published_at"] = FUTURE_AT
    (moved / "snapshot.json").write_text(json.dumps(record), encoding="utf-8")
    (folder / "current").write_text(FUTURE_ID + "\n", encoding="utf-8")


def test_a_publish_after_the_clock_was_set_back_keeps_the_snapshot_before_it(
    cli: object, home: Path, tmp_path: Path
) -> None:
    data = _fetch_visits(cli, tmp_path, "id,n\n1,10\n2,20\n")
    _move_current_to_the_future(home, "local.visits")
    data.write_text("id,n\n1,10\n2,25\n3,30\n", encoding="utf-8")
    _fetch(cli, data)

    history = json.loads(cli("history", "local.visits", "--format", "json").stdout)  # type: ignore[operator]
    assert [h["rows"] for h in history] == [2, 3]  # the earlier snapshot was deleted as a leftover
    assert history[0]["snapshot"] == FUTURE_ID
    assert [h["current"] for h in history] == [False, True]
    assert history[1]["snapshot"] > FUTURE_ID and history[1]["published_at"] > FUTURE_AT
    diff = cli("diff", "local.visits", "--key", "id", "--format", "json")  # type: ignore[operator]
    assert diff.exit_code == 0, diff.output
    changes = {r["change"]: r["count"] for r in json.loads(diff.stdout)}
    assert changes["rows_added"] == 1 and changes["rows_changed"] == 1


def test_refresh_older_than_checks_a_table_whose_last_check_is_in_the_future(
    cli: object, home: Path, tmp_path: Path
) -> None:
    _fetch_visits(cli, tmp_path, "id,n\n1,10\n")
    state = home / "state" / "refresh.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    ahead = time.time() + 365 * 86400  # checked by a clock a year ahead, set right since
    state.write_text(json.dumps({"local.visits": {"checked": ahead, "last_event": "unchanged"}}), encoding="utf-8")

    result = cli("refresh", "--older-than", "12h", "--json")  # type: ignore[operator]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events if e.get("table") == "local.visits"] == ["unchanged"]  # was: skipped
    assert json.loads(state.read_text(encoding="utf-8"))["local.visits"]["checked"] < ahead


ZONES = ["Pacific/Kiritimati", "America/New_York", "America/St_Johns"]


@pytest.mark.parametrize("zone", ZONES)
def test_sql_reads_the_lake_s_utc_times_as_utc_in_any_zone(cli: object, tmp_path: Path, zone: str) -> None:
    data = tmp_path / "events.csv"
    data.write_text("id,at\n1,2024-01-15T10:30:00Z\n", encoding="utf-8")
    _fetch(cli, data)
    query = (
        "select date_diff('minute', s.published_at, now()) between 0 and 60 as published_lately, "
        "e.at::timestamptz = TIMESTAMPTZ '2024-01-15 10:30:00+00' as same_instant "
        "from liberacion.snapshots s, local.events e"
    )
    result = run_process("sql", query, "--format", "json", env={"TZ": zone})
    assert result.returncode == 0, result.stderr
    # In New York published_at was 300 minutes in the future, in Kiritimati 840 minutes old.
    assert json.loads(result.stdout) == [{"published_lately": True, "same_instant": True}]


def _events(path: Path, *, zone: str | None, hour: int) -> None:
    at = pa.array([datetime(2024, 1, 15, hour, 30), datetime(2024, 1, 16, hour)], pa.timestamp("us", tz=zone))
    pq.write_table(pa.table({"k": ["a", "b"], "at": at}), path)


def test_diff_shows_zone_aware_times_in_utc_in_any_zone(cli: object, tmp_path: Path) -> None:
    data = tmp_path / "events.parquet"
    _events(data, zone="UTC", hour=10)
    _fetch(cli, data)
    _events(data, zone="UTC", hour=11)
    _fetch(cli, data)
    result = run_process("diff", "local.events", "--key", "k", "--format", "json", env={"TZ": "Asia/Kolkata"})
    assert result.returncode == 0, result.stderr
    changed = [r for r in json.loads(result.stdout) if r["change"] == "row_changed"]
    # Was 2024-01-15 16:00:00+05:30: the machine's zone, where sql writes +00:00.
    assert [(r["old"], r["new"]) for r in changed] == [
        ("2024-01-15 10:30:00+00", "2024-01-15 11:30:00+00"),
        ("2024-01-16 10:00:00+00", "2024-01-16 11:00:00+00"),
    ]


def test_diff_of_times_that_gained_a_zone_finds_no_change(cli: object, tmp_path: Path) -> None:
    data = tmp_path / "events.parquet"
    _events(data, zone=None, hour=10)
    _fetch(cli, data)
    _events(data, zone="UTC", hour=10)  # the same instants, now written with their zone
    _fetch(cli, data)
    result = cli("diff", "local.events", "--key", "k", "--format", "json")  # type: ignore[operator]
    changes = {r["change"]: r["count"] for r in json.loads(result.stdout)}
    assert changes["rows_changed"] == 0  # was 2: compared as text, '10:30:00' vs '10:30:00+00'


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process in New York, for code that reads the local zone through the C library."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("zone")
def test_retry_after_in_asctime_form_is_gmt() -> None:
    from liberacion.download.session import _retry_after

    when = datetime.now(UTC) + timedelta(seconds=60)
    for form in ("%a, %d %b %Y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"):  # IMF-fixdate and asctime
        wait = _retry_after(when.strftime(form))
        assert wait is not None and 50 <= wait <= 61, form  # asctime waited 5 h more in New York


def test_a_timestamp_finer_than_a_microsecond_keeps_its_text(cli: object, tmp_path: Path) -> None:
    data = tmp_path / "events.csv"
    data.write_text("id,at\n1,2024-01-15T10:30:00.1234567Z\n2,2024-01-15T10:30:00.1Z\n", encoding="utf-8")
    _fetch(cli, data)
    result = cli("sql", 'select "at" from local.events order by id', "--format", "json")  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    # Was 2024-01-15T10:30:00.123456: a TIMESTAMP, its 7th digit gone without a word.
    assert json.loads(result.stdout) == [{"at": "2024-01-15T10:30:00.1234567Z"}, {"at": "2024-01-15T10:30:00.1Z"}]
