"""The lake API: publishing, reading back, atomic switches, retention and provenance."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liberacion.errors import Busy, NoTable, UsageError
from liberacion.lake import Lake
from liberacion.naming import parse_table_name, sanitize_identifier
from liberacion.query import run
from liberacion.snapshots import PROVENANCE_KEY, Provenance


def _table(n: int, tag: str = "a") -> pa.Table:
    return pa.table({"facility_id": [f"{i:06d}" for i in range(n)], "tag": [tag] * n, "score": list(range(n))})


def test_publish_and_read_back(home: Path) -> None:
    lake = Lake(home)
    prov = Provenance(
        source_url="http://example.test/x.csv",
        sha256="ab" * 32,
        etag='"e1"',
        columns={"facility_id": {"original": "Facility ID"}},
    )
    snap = lake.publish("cms.hospitals", _table(5), prov)
    assert snap.rows == 5
    assert [c.name for c in snap.schema] == ["facility_id", "tag", "score"]
    assert snap.schema[0].type == "VARCHAR" and snap.schema[0].original == "Facility ID"
    assert snap.schema[0].null_count == 0
    rows = run(lake, "select facility_id from cms.hospitals order by 1").read_all().column(0).to_pylist()
    assert rows == ["000000", "000001", "000002", "000003", "000004"]
    # provenance in the JSON manifest and in the Parquet key-value metadata
    manifest = json.loads((snap.path / "snapshot.json").read_text())
    assert manifest["provenance"]["source_url"] == "http://example.test/x.csv"
    assert manifest["rows"] == 5 and manifest["liberacion_version"]
    kv = pq.ParquetFile(snap.data_paths[0]).schema_arrow.metadata
    assert json.loads(kv[PROVENANCE_KEY.encode()])["sha256"] == "ab" * 32


def test_missing_table_is_not_found(home: Path) -> None:
    with pytest.raises(NoTable, match=r"no table cms\.nothing"):
        Lake(home).current("cms.nothing")


def test_retention_keeps_three_and_the_current(home: Path) -> None:
    lake = Lake(home)
    ids = [lake.publish("cdc.deaths", _table(2, tag=str(i))).id for i in range(5)]
    kept = [s.id for s in lake.snapshots("cdc.deaths")]
    assert kept == ids[-3:]
    assert lake.current("cdc.deaths").id == ids[-1]
    assert lake.prune("cdc.deaths", keep=1) == ids[-3:-1]


def test_failed_publish_leaves_the_lake_as_it_was(home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", _table(3))
    with pytest.raises(RuntimeError), lake.stage("cms.t") as staging:
        staging.write_arrow(_table(10), Provenance())
        raise RuntimeError("killed mid-write")
    assert lake.current("cms.t").id == first.id
    assert [p.name for p in lake.table_dir("cms.t").iterdir() if p.name.startswith(".staging")] == []


def test_unpublished_snapshot_of_a_killed_run_is_never_current(home: Path) -> None:
    lake = Lake(home)
    first = lake.publish("cms.t", _table(3))
    # A run killed after renaming its snapshot into place but before switching "current".
    orphan = lake.table_dir("cms.t") / "snapshots" / "99991231T000000000000Z"
    orphan.mkdir()
    (orphan / "snapshot.json").write_text((first.path / "snapshot.json").read_text())
    assert lake.current("cms.t").id == first.id
    second = lake.publish("cms.t", _table(4))
    assert not orphan.exists() and lake.current("cms.t").id == second.id


def test_reader_during_publish_sees_old_or_new_never_a_mix(home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", _table(1000, tag="old"))
    errors: list[BaseException] = []
    seen: set[tuple] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                result = run(lake, "select count(*), min(tag), max(tag) from cms.t").read_all()
                seen.add(tuple(c[0].as_py() for c in result.columns))
            except BaseException as err:  # pragma: no cover - the assertion reports it
                errors.append(err)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(6):
        lake.publish("cms.t", _table(1000 + i, tag="old" if i % 2 else "new"))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    for count, low, high in seen:
        assert low == high  # never a mix of two snapshots
        assert count in range(1000, 1006)


def test_writer_lock_reports_busy(home: Path) -> None:
    lake = Lake(home)
    with lake.stage("cms.t"), pytest.raises(Busy, match="in use"), lake.stage("cms.t"):
        pass


def test_views_database_opens_in_duckdb_and_survives_a_holder(home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", _table(3))
    holder = duckdb.connect(str(lake.home.views_db), read_only=True)
    try:
        assert holder.execute("select count(*) from cms.t").fetchone() == (3,)
        lake.publish("cms.t", _table(7))  # must not fail or hang while the file is held open
    finally:
        holder.close()
    with duckdb.connect(str(lake.home.views_db), read_only=True) as con:
        assert con.execute("select count(*) from cms.t").fetchone() == (7,)


@pytest.mark.parametrize("bad", ["cms", "cms.t.x", "cms.t-1", "../etc.passwd", "cms.", "liberacion.datasets", "9x.t"])
def test_table_names_are_strict(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_table_name(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hospital General Information", "hospital_general_information"),
        ("../../etc", "etc"),
        ("2021 data", "t_2021_data"),
        ("é!", "e"),
        ("", "t"),
    ],
)
def test_sanitize_identifier(text: str, expected: str) -> None:
    assert sanitize_identifier(text) == expected


def test_provenance_written_by_the_first_version_is_read_typed() -> None:
    """0.1 kept the recipe, downloads and target in ``extra``; its recipe mixed --type with the
    manifest's columns, so for a catalog ref only the manifest's current columns apply now."""
    old_extra = {
        "recipe": {"format": "csv", "columns": {"zip": "VARCHAR"}, "raw": False, "member": None, "max_bad_rows": 3},
        "downloads": [{"url": "https://x.gov/a.csv", "final_url": "https://x.gov/a.csv", "sha256": "ab", "bytes": 9}],
        "target": "cms.a",
        "change_token": "t1",
    }
    by_url = Provenance.from_dict({"ref": "https://x.gov/a.csv", "extra": dict(old_extra)})
    assert by_url.recipe is not None and by_url.recipe.types == {"zip": "VARCHAR"}
    assert by_url.recipe.max_bad_rows == 3 and by_url.target == "cms.a" and by_url.recipe.table == "cms.a"
    assert by_url.downloads[0].url == "https://x.gov/a.csv" and by_url.downloads[0].sha256 == "ab"
    assert by_url.settings["columns"] == {"zip": "VARCHAR"} and by_url.extra == {"change_token": "t1"}
    by_ref = Provenance.from_dict({"ref": "cms/a", "extra": dict(old_extra)})
    assert by_ref.recipe is not None and by_ref.recipe.types == {}
    assert Provenance.from_dict(by_ref.to_dict()) == by_ref  # the typed form round-trips
