"""The object-store lake's parts: lake URIs, Iceberg commits of Parquet files already written (one
snapshot per publish, provenance in its summary, schema following the files), snapshot expiry,
racing writers, and one-line errors for a missing bucket or an unreachable store. Against a real
S3 HTTP server on loopback (moto in server mode), started by the tests."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from liberacion.errors import ConfigError, Unreachable, UsageError
from liberacion.storage import LakeLocation, duckdb_filesystem, parse_lake, resolve_lake

pytest.importorskip("moto.server")
pytest.importorskip("pyiceberg")


def _write(location: LakeLocation, key: str, columns: dict[str, list[object]]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    filesystem = location.filesystem()
    path = location.path_of(key)
    if location.is_local:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(pa.table(columns), path, filesystem=filesystem)
    return location.uri_of(key)


def _catalog(home: Path, location: LakeLocation) -> Any:
    from liberacion.iceberg import open_catalog

    return open_catalog(home, location)


# -- where the lake lives --------------------------------------------------------------------------


def test_lake_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIBERACION_LAKE", raising=False)
    assert resolve_lake(None, tmp_path / "lake").uri == str(tmp_path / "lake")
    monkeypatch.setenv("LIBERACION_LAKE", "s3://team-bucket/health/lake/")
    location = resolve_lake(None, tmp_path / "lake")
    assert (location.scheme, location.root, location.uri) == (
        "s3",
        "team-bucket/health/lake",
        "s3://team-bucket/health/lake",
    )
    assert location.uri_of("cms", "t") == "s3://team-bucket/health/lake/cms/t"
    assert resolve_lake(str(tmp_path / "mine"), tmp_path / "lake").is_local  # the option wins
    for bad, message in [("ftp://x/y", "give a directory or an s3://"), ("s3:///nobucket", "name the bucket")]:
        with pytest.raises(UsageError, match=message):
            parse_lake(bad)


def test_duckdb_reads_the_store_without_an_extension(bucket: str) -> None:
    import duckdb

    location = parse_lake(f"s3://{bucket}/lake")
    _write(location, "cms/t/a.parquet", {"zip": ["02134", "10001"], "n": [1, 2]})
    con = duckdb.connect()
    con.register_filesystem(duckdb_filesystem(location))
    rows = con.sql(f"select zip, n from read_parquet('{location.uri_of('cms/t/a.parquet')}') order by n").fetchall()
    assert rows == [("02134", 1), ("10001", 2)]


# -- Iceberg commits -------------------------------------------------------------------------------


def test_each_publish_is_one_snapshot_that_pyiceberg_reads_back(tmp_path: Path, bucket: str) -> None:
    from pyiceberg.table import StaticTable

    from liberacion.iceberg import commit_files, snapshots

    location = parse_lake(f"s3://{bucket}/lake")
    catalog = _catalog(tmp_path / "home", location)
    table_uri = location.uri_of("cms/hospitals")
    first = _write(
        location, "cms/hospitals/snapshots/1/data-0000.parquet", {"ccn": ["010001", "01014F"], "beds": [10, None]}
    )
    one = commit_files(
        catalog,
        location,
        "cms.hospitals",
        table_uri,
        [first],
        {"sha256": "aaa", "rows": "2"},
        {"ccn": "CMS Certification Number"},
    )
    second = _write(location, "cms/hospitals/snapshots/2/data-0000.parquet", {"ccn": ["010001"], "beds": [12]})
    two = commit_files(catalog, location, "cms.hospitals", table_uri, [second], {"sha256": "bbb", "rows": "1"})

    table = catalog.load_table("cms.hospitals")
    assert [s.snapshot_id for s in table.snapshots()] == [one.snapshot_id, two.snapshot_id]  # no empty one between
    assert [s.properties["sha256"] for s in snapshots(table)] == ["aaa", "bbb"]
    assert [s.files for s in snapshots(table)] == [[first], [second]]
    assert table.schema().find_field("ccn").doc == "CMS Certification Number"

    # Any Iceberg reader, from the metadata file alone, sees the same rows at each snapshot.
    static = StaticTable.from_metadata(table.metadata_location, properties={"s3.endpoint": location_endpoint()})
    assert static.scan(snapshot_id=one.snapshot_id).to_arrow().to_pydict() == {
        "ccn": ["010001", "01014F"],
        "beds": [10, None],
    }
    assert static.scan().to_arrow().to_pydict() == {"ccn": ["010001"], "beds": [12]}


def location_endpoint() -> str:
    import os

    return os.environ["AWS_ENDPOINT_URL"]


def test_the_schema_follows_the_files(tmp_path: Path, bucket: str) -> None:
    from liberacion.iceberg import commit_files

    location = parse_lake(f"s3://{bucket}/lake")
    catalog = _catalog(tmp_path / "home", location)
    table_uri = location.uri_of("cdc/places")
    old = _write(location, "cdc/places/1.parquet", {"fips": ["01001"], "score": ["n/a"], "gone": [1]})
    commit_files(catalog, location, "cdc.places", table_uri, [old], {"sha256": "a"})
    new = _write(location, "cdc/places/2.parquet", {"fips": ["01001"], "score": [3], "added": [True]})
    snap = commit_files(catalog, location, "cdc.places", table_uri, [new], {"sha256": "b"})
    table = catalog.load_table("cdc.places")
    assert [f.name for f in table.schema().fields] == ["fips", "score", "added"]
    assert str(table.schema().find_field("score").field_type) == "long"
    assert table.scan(snapshot_id=snap.snapshot_id).to_arrow().to_pydict() == {
        "fips": ["01001"],
        "score": [3],
        "added": [True],
    }


def test_expiry_returns_the_files_no_kept_snapshot_needs(tmp_path: Path, bucket: str) -> None:
    from liberacion.iceberg import commit_files, expire, snapshots

    location = parse_lake(f"s3://{bucket}/lake")
    catalog = _catalog(tmp_path / "home", location)
    files = [_write(location, f"fda/recalls/{i}.parquet", {"n": [i]}) for i in range(3)]
    for i, path in enumerate(files):
        commit_files(catalog, location, "fda.recalls", location.uri_of("fda/recalls"), [path], {"sha256": str(i)})
    table = catalog.load_table("fda.recalls")
    newest = snapshots(table)[-1].snapshot_id
    assert expire(table, [newest]) == files[:2]
    assert [s.properties["sha256"] for s in snapshots(catalog.load_table("fda.recalls"))] == ["2"]


def test_the_embedded_catalog_is_read_without_pyiceberg(tmp_path: Path, bucket: str) -> None:
    from liberacion.iceberg import commit_files, metadata_locations

    location = parse_lake(f"s3://{bucket}/lake")
    home = tmp_path / "home"
    assert metadata_locations(home, location) is None
    catalog = _catalog(home, location)
    path = _write(location, "cms/t/1.parquet", {"n": [1]})
    commit_files(catalog, location, "cms.t", location.uri_of("cms/t"), [path], {"sha256": "a"})
    assert metadata_locations(home, location) == {"cms.t": catalog.load_table("cms.t").metadata_location}


def test_racing_writers_both_commit_one_after_the_other(tmp_path: Path, bucket: str) -> None:
    from liberacion.iceberg import commit_files, snapshots

    location = parse_lake(f"s3://{bucket}/lake")
    home = tmp_path / "home"
    _catalog(home, location)
    paths = [_write(location, f"cms/race/{i}.parquet", {"n": [i]}) for i in range(4)]
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:  # each writer with its own catalog client, as two processes would have
            commit_files(
                _catalog(home, location),
                location,
                "cms.race",
                location.uri_of("cms/race"),
                [paths[i]],
                {"sha256": str(i)},
            )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    table = _catalog(home, location).load_table("cms.race")
    published = snapshots(table)
    assert sorted(s.properties["sha256"] for s in published) == ["0", "1", "2", "3"]
    assert all(len(s.files) == 1 for s in published)  # never a mixed snapshot
    assert table.scan().to_arrow().num_rows == 1


def test_store_failures_are_one_clear_line(tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from liberacion.iceberg import commit_files

    location = parse_lake("s3://no-such-bucket/lake")
    with pytest.raises(
        ConfigError, match="the bucket no-such-bucket of the lake s3://no-such-bucket/lake does not exist"
    ):
        _write_or_raise(location)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    location = parse_lake(f"s3://{bucket}/lake")
    with pytest.raises(Unreachable, match=re.escape("cannot reach the store http://127.0.0.1:9")):
        commit_files(
            _catalog(tmp_path / "home", location),
            location,
            "cms.t",
            location.uri_of("cms/t"),
            [location.uri_of("cms/t/x.parquet")],
            {},
        )


def _write_or_raise(location: LakeLocation) -> None:
    from liberacion.storage import storage_error

    try:
        _write(location, "x.parquet", {"n": [1]})
    except OSError as err:
        raise storage_error(err, location, "writing") from None


def test_old_metadata_files_do_not_pile_up(tmp_path: Path) -> None:
    """A table refreshed by cron for months keeps a bounded metadata folder."""
    from liberacion.iceberg import commit_files

    location = parse_lake(str(tmp_path / "lake"))
    catalog = _catalog(tmp_path / "home", location)
    for i in range(26):
        path = _write(location, f"cms/t/{i}/data-0000.parquet", {"n": [i]})
        commit_files(catalog, location, "cms.t", location.uri_of("cms/t"), [path], {"sha256": str(i)})
    kept = list((tmp_path / "lake" / "cms" / "t" / "metadata").glob("*.metadata.json"))
    assert len(kept) <= 21
    assert catalog.load_table("cms.t").scan().to_arrow().column("n").to_pylist() == [25]
