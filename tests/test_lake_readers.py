"""The lake's Parquet files read by the other tools a research team uses: pandas, pyarrow, Spark,
pyiceberg. A table's current files must read in each of them with the values ``liberacion sql``
shows, whatever types a reader handed liberacion (DuckDB's JSON reader types UUIDs and times of
day; a Parquet download may hold intervals and nanosecond timestamps; a SAS time variable).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, local_spark
from tests.server import LocalServer
from tests.test_fetch import manifest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SPL = "6e5d5b1c-0b0a-4a3e-9c2f-1234567890ab"
SET_ID = "123E4567-E89B-12D3-A456-426614174000"  # kept as published, never lower-cased

# openFDA's drug event answers hold UUIDs (``openfda.spl_id``) in lists inside lists of structs.
EVENTS = {
    "meta": {"results": {"total": 2}},
    "results": [
        {
            "safetyreportid": "10003300",
            "set_id": SET_ID,
            "seen_at": "13:45:00",
            "patient": {"drug": [{"medicinalproduct": "A", "openfda": {"spl_id": [SPL]}}], "tags": []},
        },
        {
            "safetyreportid": "10003301",
            "set_id": None,
            "seen_at": "08:00:01",
            "patient": {"drug": [], "tags": []},
        },
    ],
}


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _current_files(home: Path, table: str) -> list[Path]:
    folder = home / "lake" / Path(*table.split("."))
    snapshot = folder / "snapshots" / (folder / "current").read_text().strip()
    return sorted(snapshot.glob("data-*.parquet"))


def _fetch_events(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "event.json"
    source.write_text(json.dumps(EVENTS))
    _ok(cli("fetch", str(source), "--as", "fda.event"))


def test_reader_typed_uuids_and_times_are_stored_as_text_every_reader_reads(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    """pandas refused the whole file over a list of UUIDs (``Not implemented type for Arrow list to
    pandas: extension<arrow.uuid>``); the UUIDs and times of day are now text exactly as published,
    as in a CSV, with the same values ``liberacion sql`` shows."""
    pd = pytest.importorskip("pandas")
    _fetch_events(cli, tmp_path)
    shown = json.loads(_ok(cli("sql", "--format", "json", "select * from fda.event order by safetyreportid")).stdout)
    assert shown[0]["set_id"] == SET_ID and shown[0]["seen_at"] == "13:45:00"
    assert shown[0]["patient"]["drug"][0]["openfda"]["spl_id"] == [SPL]

    [data] = _current_files(home, "fda.event")
    frame = pd.read_parquet(data).sort_values("safetyreportid")
    first = frame.iloc[0]
    assert first["set_id"] == SET_ID and first["seen_at"] == "13:45:00"
    assert list(first["patient"]["drug"][0]["openfda"]["spl_id"]) == [SPL]
    schema = pq.read_schema(data)
    assert schema.field("set_id").type == pa.string()
    assert schema.field("seen_at").type == pa.string()


def test_a_parquet_download_of_types_other_readers_refuse_is_stored_readable(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    """A Parquet file holding an INTERVAL, a TIME, nanosecond timestamps and unsigned 64-bit
    numbers (which Spark refuses, and pyiceberg: ``internal error (error: argument out of range)``
    publishing into a named lake): the interval and the time become their text, nanoseconds that
    are all whole microseconds a TIMESTAMP and true nanoseconds their text, never cut; unsigned
    numbers that fit a BIGINT are one, others their text."""
    import duckdb

    source = tmp_path / "odd.parquet"
    duckdb.sql(
        "COPY (SELECT INTERVAL 1 DAY AS gap, TIME '13:45:00' AS at,"
        " TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS precise, TIMESTAMP_NS '2024-01-01 00:00:00.5' AS plain,"
        " 18446744073709551615::UBIGINT AS huge, 5::UBIGINT AS small)"
        f" TO '{source}' (FORMAT parquet)"
    )
    types = ["gap,VARCHAR", "at,VARCHAR", "precise,VARCHAR", "plain,TIMESTAMP", "huge,VARCHAR", "small,BIGINT"]
    values = {
        "gap": "1 day",
        "at": "13:45:00",
        "precise": "2024-01-01 00:00:00.123456789",
        "plain": "2024-01-01T00:00:00.500000",
        "huge": "18446744073709551615",
        "small": 5,
    }
    for lake in ([], ["--lake", str(tmp_path / "lake")]):
        _ok(cli(*lake, "fetch", str(source), "--as", "x.odd"))
        described = _ok(cli(*lake, "sql", "--format", "csv", "select column_name, column_type from (describe x.odd)"))
        assert described.stdout.splitlines()[1:] == types
        assert json.loads(_ok(cli(*lake, "sql", "--format", "json", "select * from x.odd")).stdout) == [values]


def test_spark_reads_a_nested_json_table_like_liberacion_sql(
    cli: Cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark refused the whole table (``Illegal Parquet type: FIXED_LEN_BYTE_ARRAY (UUID)``), and
    a TIME (``The data type TIME is not supported``): every column now reads, nested field names
    with spaces and dots too, times with an offset as the instant liberacion shows."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")

    _fetch_events(cli, tmp_path)
    odd = tmp_path / "odd.jsonl"
    odd.write_text(
        json.dumps({"n": 1, "at": "2024-01-02T03:04:05-05:00", "s": {"w s": 1, "x.y": [1, None]}, "u": SET_ID}) + "\n"
    )
    _ok(cli("fetch", str(odd), "--as", "x.odd"))
    spark = local_spark(monkeypatch, **{"spark.sql.session.timeZone": "UTC"})
    try:
        events = spark.read.parquet(*[f"file://{f}" for f in _current_files(home, "fda.event")])
        rows = sorted(events.collect(), key=lambda r: r["safetyreportid"])
        first = rows[0].asDict(recursive=True)
        odd_row = spark.read.parquet(*[f"file://{f}" for f in _current_files(home, "x.odd")]).collect()[0]
        at = odd_row["at"]
        nested = odd_row["s"].asDict()
    finally:
        spark.stop()
    assert first["set_id"] == SET_ID and first["seen_at"] == "13:45:00"
    assert first["patient"]["drug"][0]["openfda"]["spl_id"] == [SPL]
    assert at.strftime("%Y-%m-%d %H:%M:%S") == "2024-01-02 08:04:05"  # UTC, as liberacion shows it
    assert nested == {"w s": 1, "x.y": [1, None]}


def _iceberg_snapshots(cli: Cli, lake: Path, table: str) -> list[list[dict[str, Any]]]:
    """Every snapshot's rows as pyiceberg reads them (oldest first), sorted by ``id``."""
    pytest.importorskip("pyiceberg")
    from pyiceberg.table import StaticTable

    info = json.loads(_ok(cli("--lake", str(lake), "info", table, "--format", "json")).stdout)
    iceberg = StaticTable.from_metadata(info["storage"]["metadata_location"])
    return [
        sorted(iceberg.scan(snapshot_id=s.snapshot_id).to_arrow().to_pylist(), key=lambda r: r["id"])
        for s in iceberg.snapshots()
    ]


def test_nested_json_publishes_into_an_iceberg_lake_and_evolves(cli: Cli, home: Path, tmp_path: Path) -> None:
    """Any JSON with an object or a list (every openFDA endpoint) failed to publish into a named
    lake, with an internal error (``Could not find field with name: a.b``): the schema's name
    mapping named top-level columns only. A nested field added, retyped or gone on the next fetch
    keeps the older snapshot readable by pyiceberg with its own values."""
    pytest.importorskip("pyiceberg")
    lake = tmp_path / "lake"
    source = tmp_path / "events.json"
    source.write_text(
        json.dumps([{"id": "a", "p": {"b": 1, "gone": "x"}, "l": [{"k": 1}]}, {"id": "b", "p": None, "l": []}])
    )
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "fda.events"))
    source.write_text(json.dumps([{"id": "a", "p": {"b": 1.5, "new": "n"}, "l": [{"k": 1, "k2": "v"}]}]))
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "fda.events"))
    shown = json.loads(_ok(cli("--lake", str(lake), "sql", "--format", "json", "select * from fda.events")).stdout)
    assert shown == [{"id": "a", "p": {"b": 1.5, "new": "n"}, "l": [{"k": 1, "k2": "v"}]}]
    older, current = _iceberg_snapshots(cli, lake, "fda.events")
    assert older == [{"id": "a", "p": {"b": 1, "gone": "x"}, "l": [{"k": 1}]}, {"id": "b", "p": None, "l": []}]
    assert current == shown


def test_an_older_snapshot_reads_in_pyiceberg_after_a_column_is_dropped(cli: Cli, home: Path, tmp_path: Path) -> None:
    """A column gone from the file's next version made every older snapshot unreadable by
    pyiceberg (``Could not find field with name: b``): the name mapping now keeps the names of
    every schema the table had."""
    pytest.importorskip("pyiceberg")
    lake = tmp_path / "lake"
    source = tmp_path / "d.csv"
    source.write_text("id,a,b\nx,1,2\n")
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.d"))
    source.write_text("id,a\nx,1\ny,3\n")
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.d"))
    assert _iceberg_snapshots(cli, lake, "x.d") == [
        [{"id": "x", "a": 1, "b": 2}],
        [{"id": "x", "a": 1}, {"id": "y", "a": 3}],
    ]


def test_keys_that_are_always_empty_lists_or_objects_publish_into_an_iceberg_lake(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    """A key holding ``[]`` or ``{}`` in every record (DuckDB types it JSON) failed to publish into a
    named lake with an internal error (``unsupported type: list<element: extension<arrow.json>>``)."""
    pytest.importorskip("pyiceberg")
    lake = tmp_path / "lake"
    source = tmp_path / "empty.json"
    source.write_text(json.dumps([{"id": "a", "tags": [], "extra": {}}, {"id": "b", "tags": [], "extra": {}}]))
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.empty"))
    shown = json.loads(_ok(cli("--lake", str(lake), "sql", "--format", "json", "select * from x.empty")).stdout)
    assert shown == [{"id": "a", "tags": [], "extra": {}}, {"id": "b", "tags": [], "extra": {}}]
    [current] = _iceberg_snapshots(cli, lake, "x.empty")
    assert [(r["id"], r["tags"]) for r in current] == [("a", []), ("b", [])]


def test_the_files_of_a_dataset_of_several_share_one_schema(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """openFDA's partitions are converted one by one, each typed on its own: a column BIGINT in one
    and text in another made ``sql`` fail (``failed to cast column "value" from type VARCHAR to
    BIGINT``) while the fetch said ``fetched``, a column only a later part had was missing, pandas
    and pyarrow failed, and a named lake's publish was an internal error. Every file now has the
    schema that holds every part's values, said in a note."""
    pd = pytest.importorskip("pandas")
    first = {"meta": {"results": {}}, "results": [{"id": "1", "value": 10, "when": "2024-01-01", "patient": {"a": 1}}]}
    second = {
        "meta": {"results": {}},
        "results": [{"id": "2", "value": "0x", "when": "not yet", "patient": {"a": 2, "b": "new"}, "extra": 1}],
    }
    urls = [http_server.add(f"/event-{i}.json", json.dumps(doc).encode()) for i, doc in enumerate((first, second))]
    catalogs = manifest(tmp_path, [{"id": "drug-event", "title": "Drug events", "urls": urls}], name="openfda")
    expected = [
        {"id": "1", "value": "10", "when": "2024-01-01", "patient": {"a": 1, "b": None}, "extra": None},
        {"id": "2", "value": "0x", "when": "not yet", "patient": {"a": 2, "b": "new"}, "extra": 1},
    ]
    query = "select * from openfda.drug_event order by id"
    for lake in ([], ["--lake", str(tmp_path / "lake")]):
        fetched = _ok(cli(*lake, "--catalogs", str(catalogs), "fetch", "openfda/drug-event"))
        assert json.loads(_ok(cli(*lake, "sql", "--format", "json", query)).stdout) == expected
        assert "its files were typed differently" in fetched.stderr
    files = _current_files(home, "openfda.drug_event")
    assert len(files) == 2
    assert len({pq.read_schema(f).remove_metadata() for f in files}) == 1
    assert pq.read_table(files).sort_by("id").to_pylist() == expected
    assert list(pd.read_parquet(files).sort_values("id")["value"]) == ["10", "0x"]


def test_a_release_with_a_missing_value_publishes_into_an_iceberg_lake(cli: Cli, home: Path, tmp_path: Path) -> None:
    """A SAS file without a missing value makes DuckDB write its columns as required, and the
    Iceberg table took that: the next release, with a missing value, failed with an internal error
    (``Mismatch in fields``). The table's columns are all optional now."""
    pytest.importorskip("pyiceberg")
    pyreadstat = pytest.importorskip("pyreadstat")
    pd = pytest.importorskip("pandas")
    lake = tmp_path / "lake"
    source = tmp_path / "demo.xpt"
    pyreadstat.write_xport(pd.DataFrame({"SEQN": [1.0, 2.0], "AGE": [30.0, 40.0]}), str(source))
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "nhanes.demo"))
    pyreadstat.write_xport(pd.DataFrame({"SEQN": [1.0, 2.0], "AGE": [30.0, float("nan")]}), str(source))
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "nhanes.demo"))
    shown = _ok(cli("--lake", str(lake), "sql", "--format", "csv", "select * from nhanes.demo order by seqn"))
    assert shown.stdout.splitlines() == ["seqn,age", "1,30", "2,"]
