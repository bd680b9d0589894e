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


def _column(cli: object, tmp_path: Path, text: str, *extra: str) -> tuple[str, list[object]]:
    """``text`` as ``times.csv`` fetched; column ``at``'s type and its values in row order."""
    data = tmp_path / "times.csv"
    data.write_text(text, encoding="utf-8")
    _fetch(cli, data, "--as", "t.times", *extra)
    query = 'select typeof("at") as type, "at" from t.times order by n'
    result = cli("sql", query, "--format", "json")  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    return rows[0]["type"], [row["at"] for row in rows]


def test_times_with_their_offset_from_utc_are_instants(cli: object, tmp_path: Path) -> None:
    # They stayed text, while the same times in JSON became TIMESTAMPTZ.
    values = [
        "2024-01-02T03:04:05-05:00",
        "2024-01-02 03:04:05+0530",
        "2024-01-02T03:04-05",
        "2024-01-02T03:04:05.25+01:00",
        "2024-01-02T03:04:05Z",
        "Not Available",
        "0999-12-31T23:00:00-02:00",  # a year below 1000: the exact path
    ]
    text = "n,at\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    kind, got = _column(cli, tmp_path, text)
    assert kind == "TIMESTAMP WITH TIME ZONE"
    assert got == [
        "2024-01-02T08:04:05+00:00",
        "2024-01-01T21:34:05+00:00",
        "2024-01-02T08:04:00+00:00",
        "2024-01-02T02:04:05.250000+00:00",
        "2024-01-02T03:04:05+00:00",
        None,
        "1000-01-01T01:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["2024-01-02T03:04:05Z", "2024-01-03T03:04:05Z"], "TIMESTAMP"),  # Z alone: the time as it says
        (["2024-01-02T03:04:05", "2024-01-02T03:04:05-05:00"], "VARCHAR"),  # a time of no known zone
        (["2024-01-02T03:04:05.1234567+00:00", "2024-01-02T03:04:05+00:00"], "VARCHAR"),  # finer than 1 µs
    ],
)
def test_times_of_unknown_zone_or_finer_than_a_microsecond_are_not_instants(
    cli: object, tmp_path: Path, values: list[str], kind: str
) -> None:
    text = "n,at\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    got_kind, got = _column(cli, tmp_path, text)
    assert got_kind == kind
    if kind == "VARCHAR":
        assert got == values


def test_a_time_of_no_zone_past_the_sample_keeps_the_column_as_published(cli: object, tmp_path: Path) -> None:
    rows = [f"{i},2024-01-02T03:04:05-05:00\n" for i in range(60_000)]
    text = "n,at\n" + "".join(rows) + "60000,2024-01-02T03:04:05\n"
    kind, got = _column(cli, tmp_path, text)
    assert kind == "VARCHAR" and got[0] == "2024-01-02T03:04:05-05:00" and got[-1] == "2024-01-02T03:04:05"


def test_a_timestamptz_override_reads_utc_times_as_instants(cli: object, tmp_path: Path) -> None:
    text = "n,at\n0,2024-01-02T03:04:05Z\n1,2024-01-02 03:04:05-05:00\n"
    assert _column(cli, tmp_path, text, "--type", "at=timestamptz") == (
        "TIMESTAMP WITH TIME ZONE",
        ["2024-01-02T03:04:05+00:00", "2024-01-02T08:04:05+00:00"],
    )
