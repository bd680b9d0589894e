"""A lake a team shares (``--lake`` / ``LIBERACION_LAKE``): Iceberg tables on an S3 server on loopback
(moto) or in a directory. Fetch, refresh, history, ``--as-of``, diff and prune through the CLI give
the answers of the home's own lake; pyiceberg and Spark read the same rows; kill -9 and two racing
machines never leave a lost or mixed snapshot."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Cli, local_spark, run_process
from tests.server import LocalServer

pytest.importorskip("pyiceberg")

V1 = "zip,name,amount\n01234,a,1\n02345,b,Not Available\n"
V2 = "zip,name,amount\n01234,a,1\n02345,b,5\n03456,c,7\n"


def _sql(cli: Cli, query: str, *, lake: str | None = None, as_of: str | None = None) -> list[dict[str, str]]:
    where = ["--lake", lake] if lake else []
    when = ["--as-of", as_of] if as_of else []
    result: Any = cli(*where, "sql", "--format", "csv", *when, query)
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _keys(bucket: str, prefix: str) -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _io_properties() -> dict[str, str]:
    return {
        "s3.endpoint": os.environ["AWS_ENDPOINT_URL"],
        "s3.region": "us-east-1",
        "s3.access-key-id": "testing",
        "s3.secret-access-key": "testing",
    }


def test_an_s3_lake_answers_like_the_home_lake_through_fetch_refresh_history_diff_and_prune(
    cli: Cli, http_server: LocalServer, bucket: str, home: Path
) -> None:
    from pyiceberg.table import StaticTable

    lake = f"s3://{bucket}/health"
    url = http_server.add("/t.csv", V1)
    _ok(cli("--lake", lake, "fetch", url, "--as", "x.t"))
    _ok(cli("fetch", url, "--as", "x.t"))  # the same file into the home's own lake
    query = "select zip, name, amount from x.t order by zip"
    assert (
        _sql(cli, lake=lake, query=query)
        == _sql(cli, query)
        == [
            {"zip": "01234", "name": "a", "amount": "1"},
            {"zip": "02345", "name": "b", "amount": ""},
        ]
    )
    time.sleep(1.2)

    http_server.add("/t.csv", V2)  # upstream changes
    refreshed = _ok(cli("--lake", lake, "refresh", "--json"))
    assert '"fetched"' in refreshed.stdout
    history = json.loads(_ok(cli("--lake", lake, "history", "x.t", "--format", "json")).stdout)
    assert [h["rows"] for h in history] == [2, 3] and [h["current"] for h in history] == [False, True]
    assert _sql(cli, lake=lake, query="select count(*) as n from x.t") == [{"n": "3"}]
    first = history[0]["published_at"]  # when the first snapshot became current: the table then
    assert _sql(cli, as_of=first, lake=lake, query="select count(*) as n from x.t") == [{"n": "2"}]
    old_id = history[0]["snapshot"]
    assert _sql(cli, lake=lake, query=f"select count(*) as n from liberacion.snapshot('x.t', '{old_id}')") == [
        {"n": "2"}
    ]
    diff = json.loads(_ok(cli("--lake", lake, "diff", "x.t", "--format", "json")).stdout)
    assert {"change": "rows_added", "count": 2} in [{"change": d["change"], "count": d["count"]} for d in diff]

    # Another engine reads each snapshot from the metadata location info shows.
    info = json.loads(_ok(cli("--lake", lake, "info", "x.t", "--format", "json")).stdout)
    storage = info["storage"]
    assert storage["format"] == "iceberg" and storage["metadata_location"].startswith(f"s3://{bucket}/health/x/t/")
    table = StaticTable.from_metadata(storage["metadata_location"], properties=_io_properties())
    for entry in history:
        snap = next(s for s in info["snapshots"] if s["id"] == entry["snapshot"])
        rows = table.scan(snapshot_id=snap["iceberg_id"]).to_arrow().sort_by("zip").to_pylist()
        each = f"select * from liberacion.snapshot('x.t', '{entry['snapshot']}') order by zip"
        ours = _sql(cli, lake=lake, query=each)
        assert [r["zip"] for r in rows] == [r["zip"] for r in ours] and len(rows) == entry["rows"]
        summary = table.metadata.snapshot_by_id(snap["iceberg_id"]).summary
        assert summary["liberacion.rows"] == str(entry["rows"])
        assert summary["liberacion.sha256"] == entry["sha256"]
        assert summary["liberacion.source-url"] == url
    first = table.metadata.snapshot_by_id(info["snapshots"][0]["iceberg_id"]).summary.additional_properties
    last = table.metadata.snapshot_by_id(info["current"]["iceberg_id"]).summary.additional_properties
    assert json.loads(first["liberacion.markers"]) == {"amount": {"Not Available": 1}}
    assert "liberacion.markers" not in last  # no cell was a marker

    pruned = _ok(cli("--lake", lake, "prune", "x.t", "--keep", "1"))
    assert old_id in pruned.stdout + pruned.stderr
    folders = {key.split("/")[4] for key in _keys(bucket, "health/x/t/snapshots/")} - {""}  # "" a folder marker
    assert folders == {history[1]["snapshot"]}
    assert len(json.loads(_ok(cli("--lake", lake, "history", "x.t", "--format", "json")).stdout)) == 1
    assert not (home / "lake" / "x" / "t" / "snapshots" / history[1]["snapshot"]).exists()  # nothing local


def test_markers_and_leading_zeros_reach_the_iceberg_summary_and_schema(cli: Cli, tmp_path: Path) -> None:
    from pyiceberg.table import StaticTable

    source = tmp_path / "beds.csv"
    source.write_text("ccn,beds\n010001,5\n010002,Not Available\n010003,*\n")
    lake = tmp_path / "lake"
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "cms.beds"))
    info = json.loads(_ok(cli("--lake", str(lake), "info", "cms.beds", "--format", "json")).stdout)
    table = StaticTable.from_metadata(info["storage"]["metadata_location"])
    summary = table.current_snapshot().summary
    assert json.loads(summary["liberacion.markers"]) == {"beds": {"*": 1, "Not Available": 1}}
    assert table.scan().to_arrow().column("ccn").to_pylist() == ["010001", "010002", "010003"]
    assert str(table.schema().find_field("ccn").field_type) == "string"


def test_sql_over_an_iceberg_lake_does_not_import_pyiceberg(cli: Cli, tmp_path: Path, home: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text(V1)
    lake = tmp_path / "lake"
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "x.t"))
    probe = (
        "import sys, liberacion.api as api; "
        "rows = api.sql('select count(*) from x.t', home=sys.argv[1]).fetchall(); "
        "print(rows[0][0], 'pyiceberg' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_LAKE": str(lake)}
    done = subprocess.run([sys.executable, "-c", probe, str(home)], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["2", "False"], done.stderr
    helped = run_process("--help", env={"LIBERACION_LAKE": str(lake)})
    assert helped.returncode == 0 and "--lake" in helped.stdout


def test_a_lake_written_in_the_home_format_is_registered_on_first_use(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "t.csv"
    source.write_text(V1)
    _ok(cli("fetch", str(source), "--as", "x.t"))
    source.write_text(V2)
    _ok(cli("fetch", str(source), "--as", "x.t"))
    before = json.loads(_ok(cli("history", "x.t", "--format", "json")).stdout)

    monkeypatch.setenv("LIBERACION_HOME", str(tmp_path / "other-home"))  # another person's home
    after = json.loads(_ok(cli("--lake", str(home / "lake"), "history", "x.t", "--format", "json")).stdout)
    assert [(h["snapshot"], h["rows"], h["sha256"]) for h in after] == [
        (h["snapshot"], h["rows"], h["sha256"]) for h in before
    ]
    assert _sql(cli, lake=str(home / "lake"), query="select count(*) as n from x.t") == [{"n": "3"}]
    assert (tmp_path / "other-home" / "iceberg.db").is_file()


def _big_csv(path: Path, version: int, rows: int = 200_000) -> None:
    with open(path, "w") as fh:
        fh.write("npi,state,amount\n")
        for i in range(rows):
            fh.write(f"{i:010d},{'CA' if i % 3 else 'NY'},{i * version}\n")


def test_kill_9_at_any_point_of_a_publish_to_s3_leaves_the_previous_snapshot(
    tmp_path: Path, bucket: str, home: Path
) -> None:
    lake = f"s3://{bucket}/lake"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_LAKE": lake}
    source = tmp_path / "big.csv"
    rng = random.Random(14)
    committed: int | None = None  # the version whose sum the table showed last
    for version in range(1, 7):
        _big_csv(source, version)
        proc = subprocess.Popen(
            [sys.executable, "-m", "liberacion", "fetch", str(source), "--as", "x.big", "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 3.5))  # start-up, conversion, upload or commit
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        shown = run_process("sql", "--format", "csv", "select sum(amount) / 19999900000 as v from x.big", env=env)
        # Nothing committed yet: no such table, or (the first publish killed) no lake at all.
        if any(said in shown.stderr for said in ("no table", "does not exist", "no lake at")):
            assert committed is None, f"version {committed} disappeared"
            continue
        assert shown.returncode == 0, shown.stderr
        value = float(shown.stdout.splitlines()[1])
        assert value.is_integer() and 1 <= value <= version, f"a mixed table after kill {version}: {value}"
        committed = int(value)

    _big_csv(source, 9)
    done = run_process("fetch", str(source), "--as", "x.big", env=env)
    assert done.returncode == 0, done.stderr
    shown = run_process("sql", "--format", "csv", "select sum(amount) / 19999900000 as v from x.big", env=env)
    assert shown.stdout.splitlines()[1] in ("9", "9.0")
    kept = {h["snapshot"] for h in json.loads(run_process("history", "x.big", "--format", "json", env=env).stdout)}
    folders = {key.split("/")[4] for key in _keys(bucket, "lake/x/big/snapshots/")} - {""}
    assert folders == kept, "folders of commits that never happened remain"


def test_two_machines_publishing_the_same_table_at_once_both_commit(
    tmp_path: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two homes (two machines) share the lake and a catalog (SQL on one database file here; a
    REST catalog or PostgreSQL for a real team) and publish the same table at the same moment."""
    team = tmp_path / "team-catalog.db"
    shared = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LIBERACION_LAKE": f"s3://{bucket}/lake",
        "LIBERACION_ICEBERG_CATALOG": "team",
        "PYICEBERG_CATALOG__TEAM__TYPE": "sql",
        "PYICEBERG_CATALOG__TEAM__URI": f"sqlite:///{team}",
    }
    sources = []
    for i in (1, 2):
        path = tmp_path / f"v{i}.csv"
        _big_csv(path, i, rows=50_000)
        sources.append(path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "liberacion", "fetch", str(src), "--as", "x.shared", "--json"],
            env={**shared, "LIBERACION_HOME": str(tmp_path / f"home{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, src in enumerate(sources)
    ]
    outcomes = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outcomes]
    reader = {**shared, "LIBERACION_HOME": str(tmp_path / "home3")}  # a third machine reads
    history = json.loads(run_process("history", "x.shared", "--format", "json", env=reader).stdout)
    assert len(history) == 2 and [h["current"] for h in history] == [False, True]
    fetched = {json.loads(out.splitlines()[-1])["snapshot"] for out, _ in outcomes}
    assert {h["snapshot"] for h in history} == fetched  # both, in the order they committed
    assert history[0]["published_at"] <= history[1]["published_at"]
    shown = run_process("sql", "--format", "csv", "select sum(amount) / 1249975000 as v from x.shared", env=reader)
    assert shown.stdout.splitlines()[1] in ("1", "2", "1.0", "2.0")  # one whole version, never a mix


def test_spark_reads_the_current_snapshot_like_liberacion_sql(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distributed engine reads a table fetched through the CLI: PySpark in local mode over the
    data files of the current snapshot's scan plan returns liberacion's row count and sum."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    from pyiceberg.table import StaticTable

    lake = tmp_path / "lake"
    source = tmp_path / "big.csv"
    _big_csv(source, 1, rows=20_000)
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "cms.payments"))
    _big_csv(source, 3, rows=30_000)
    _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "cms.payments"))
    expected = _sql(cli, lake=str(lake), query="select count(*) as n, sum(amount) as total from cms.payments")[0]
    info = json.loads(_ok(cli("--lake", str(lake), "info", "cms.payments", "--format", "json")).stdout)
    table = StaticTable.from_metadata(info["storage"]["metadata_location"])
    files = [task.file.file_path for task in table.scan().plan_files()]

    spark = local_spark(monkeypatch)
    try:
        got = spark.read.parquet(*[f"file://{f}" for f in files]).selectExpr("count(*) as n", "sum(amount) as t")
        row = got.collect()[0]
    finally:
        spark.stop()
    assert (str(row["n"]), str(row["t"])) == (expected["n"], expected["total"])
    assert expected == {"n": "30000", "total": str(3 * 29999 * 30000 // 2)}


def test_a_commit_that_keeps_losing_the_race_exits_75_after_wait(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another machine commits the table every time we try: ours is redone until --wait runs out,
    then the run exits 75 (busy), the table stays at its snapshot and the upload is removed at once."""
    from pyiceberg.exceptions import CommitFailedException

    import liberacion.iceberg

    source = tmp_path / "t.csv"
    source.write_text(V1)
    lake = str(tmp_path / "lake")
    _ok(cli("--lake", lake, "fetch", str(source), "--as", "x.t"))
    tries: list[float] = []

    def always_beaten(*args: Any, **kwargs: Any) -> Any:
        tries.append(time.monotonic())
        raise CommitFailedException("the table's metadata changed: another writer committed first")

    source.write_text(V2)
    with monkeypatch.context() as patched:
        patched.setattr(liberacion.iceberg, "_overwrite", always_beaten)
        started = time.monotonic()
        beaten: Any = cli("--lake", lake, "fetch", str(source), "--as", "x.t", "--wait", "1.5")
    assert beaten.exit_code == 75, beaten.stderr
    assert "another writer kept committing" in beaten.stderr and "Traceback" not in beaten.stderr
    assert len(tries) > 2 and 1.5 <= time.monotonic() - started < 20  # redone, then given up
    assert _sql(cli, lake=lake, query="select count(*) as n from x.t") == [{"n": "2"}]
    assert len(list((tmp_path / "lake" / "x" / "t" / "snapshots").iterdir())) == 1  # its upload was removed


def test_history_follows_the_commit_order_whatever_the_upload_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Machine B uploads first and commits last: its snapshot id (an upload time) is older than
    A's, yet it is the current one, and both are history in the order they became current."""
    import pyarrow as pa

    from liberacion.engine import new_connection
    from liberacion.home import Home
    from liberacion.iceberg_lake import IcebergLake
    from liberacion.snapshots import Provenance
    from liberacion.storage import parse_lake

    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{tmp_path / 'team.db'}")
    location = parse_lake(str(tmp_path / "lake"))
    a, b = (IcebergLake(Home(tmp_path / f"home-{m}"), location) for m in "ab")
    uploaded = {}
    with a.stage("x.t") as staging_a, b.stage("x.t") as staging_b, new_connection() as con:
        for machine, staging, rows in ((b, staging_b, [1, 2, 3]), (a, staging_a, [7])):
            staging.write_arrow(pa.table({"n": rows}), Provenance(sha256=str(len(rows))))
            uploaded[machine] = machine._upload(staging, Provenance(sha256=str(len(rows))), con)
            time.sleep(0.01)
        a._commit(uploaded[a], staging_a.dir)
        b._commit(uploaded[b], staging_b.dir)
    reader = IcebergLake(Home(tmp_path / "home-c"), location)
    assert uploaded[b].id < uploaded[a].id
    assert [s.id for s in reader.published("x.t")] == [uploaded[a].id, uploaded[b].id]
    assert reader.current("x.t").id == uploaded[b].id and reader.current("x.t").rows == 3
    history = [s.published_at for s in reader.published("x.t")]
    assert history == sorted(history)
    assert reader.as_of("x.t", history[0]).id == uploaded[a].id


def test_every_file_of_a_snapshot_reaches_the_store(bucket: str, home: Path) -> None:
    """A snapshot of several data files and a rejects file is uploaded file by file: each lands
    whole, and the table reads every row of every file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liberacion.home import Home
    from liberacion.iceberg_lake import open_lake
    from liberacion.snapshots import Provenance

    lake = open_lake(Home(home, lake_uri=f"s3://{bucket}/lake"))
    provenance = Provenance(source_url="file:///parts.csv", format="csv")
    with lake.stage("cms.parts") as staging:
        for part in range(3):
            ids = pa.array(range(part * 50_000, (part + 1) * 50_000), pa.int64())
            staging.write_arrow(pa.table({"id": ids, "zip": ids.cast(pa.string())}), provenance, part=part)
        staging.write_rejects(pa.table({"line_number": [7], "raw_text": ["x,,"], "reason": ["too few"]}), provenance)
        snap = staging.commit(provenance)
    folder = f"lake/cms/parts/snapshots/{snap.id}/"
    names = [key.removeprefix(folder) for key in _keys(bucket, folder)]
    assert {"data-0000.parquet", "data-0001.parquet", "data-0002.parquet", "rejects.parquet"} <= set(names)
    assert snap.rows == 150_000 and len(snap.data_paths) == 3
    filesystem = lake.location.filesystem()
    read = pa.concat_tables(pq.read_table(str(p).removeprefix("s3://"), filesystem=filesystem) for p in snap.data_paths)
    assert sorted(read.column("id").to_pylist()) == list(range(150_000))


def test_the_store_checks_every_part_of_an_uploaded_file(bucket: str, home: Path) -> None:
    """A data file larger than one part (8 MB) goes up in parts, each sent with its CRC32: the store
    keeps a checksum composed from its parts', which it has only when the upload declared one (an
    upload through pyarrow's client has none); the small files carry a CRC32 of their own."""
    import boto3
    import pyarrow as pa

    from liberacion.home import Home
    from liberacion.iceberg_lake import open_lake
    from liberacion.snapshots import Provenance

    lake = open_lake(Home(home, lake_uri=f"s3://{bucket}/lake"))
    provenance = Provenance(source_url="file:///blobs.csv", format="csv")
    blobs = pa.array([os.urandom(1024) for _ in range(20_000)], pa.binary())  # 20 MB zstd cannot shrink
    with lake.stage("cms.blobs") as staging:
        staging.write_arrow(pa.table({"id": pa.array(range(20_000), pa.int64()), "blob": blobs}), provenance)
        snap = staging.commit(provenance)
    client = boto3.client("s3")
    folder = f"lake/cms/blobs/snapshots/{snap.id}"
    attributes = ["Checksum", "ObjectSize"]
    big = client.get_object_attributes(Bucket=bucket, Key=f"{folder}/data-0000.parquet", ObjectAttributes=attributes)
    assert big["ObjectSize"] > 16 * 1024 * 1024  # more than two parts
    assert big["Checksum"].get("ChecksumType") == "COMPOSITE" and big["Checksum"].get("ChecksumCRC32"), big
    for name in ("snapshot.json", "_writer"):
        small = client.get_object_attributes(Bucket=bucket, Key=f"{folder}/{name}", ObjectAttributes=attributes)
        assert small["Checksum"].get("ChecksumCRC32"), small


def test_prune_aborts_the_unfinished_upload_of_a_killed_run(bucket: str, tmp_path: Path, home: Path) -> None:
    """A run killed mid-upload leaves its folder's `_writer` and a multipart upload whose parts the
    store keeps (and bills) though no object shows them: `prune` removes the folder and aborts the
    upload."""
    import boto3

    from liberacion.home import host_tag

    lake = f"s3://{bucket}/lake"
    source = tmp_path / "t.csv"
    source.write_text(V1, encoding="utf-8")
    assert run_process("--lake", lake, "fetch", str(source), "--as", "x.t").returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = boto3.client("s3")
    folder = "lake/x/t/snapshots/20260101T000000000000Z"
    client.put_object(Bucket=bucket, Key=f"{folder}/_writer", Body=f"{host_tag()} {dead.pid} {home}\n".encode())
    started = client.create_multipart_upload(Bucket=bucket, Key=f"{folder}/data-0000.parquet")
    part = {"Bucket": bucket, "Key": f"{folder}/data-0000.parquet", "UploadId": started["UploadId"]}
    client.upload_part(**part, PartNumber=1, Body=b"x" * (5 * 1024 * 1024))
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # really left unfinished

    pruned = run_process("--lake", lake, "prune", "x.t")
    assert pruned.returncode == 0, pruned.stderr
    assert not _keys(bucket, f"{folder}/")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert _sql_rows(lake) == 2
    # Another home's (another catalog's) folder is not this one's leftover, whatever its process became.
    client.put_object(Bucket=bucket, Key=f"{folder}/_writer", Body=f"{host_tag()} {dead.pid} /elsewhere\n".encode())
    assert run_process("--lake", lake, "prune", "x.t").returncode == 0
    assert _keys(bucket, f"{folder}/")


def _sql_rows(lake: str) -> int:
    shown = run_process("--lake", lake, "sql", "--format", "csv", "select count(*) as n from x.t")
    assert shown.returncode == 0, shown.stderr
    return int(shown.stdout.splitlines()[1])


@pytest.mark.parametrize("where", ["s3", "directory"])
def test_a_snapshot_id_another_machine_holds_is_never_shared(
    where: str, bucket: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot id is the time to the microsecond: two machines publishing the same table at once
    can draw the same one (it happened in this suite). The second takes another id instead of
    uploading into the folder the first holds, so neither snapshot is mixed with the other."""
    import pyarrow as pa

    from liberacion import iceberg_lake
    from liberacion.home import Home
    from liberacion.snapshots import Provenance

    lake = iceberg_lake.open_lake(
        Home(home, lake_uri=f"s3://{bucket}/lake" if where == "s3" else str(tmp_path / "lake"))
    )
    taken = "20261205T231958214050Z"
    ids = iter([taken, taken])  # the clock gives the held id twice, then moves on
    real = iceberg_lake._new_snapshot_id
    monkeypatch.setattr(iceberg_lake, "_new_snapshot_id", lambda: next(ids, None) or real())
    # The other machine's upload, in progress: its writer mark and a data file of its own.
    filesystem = lake.location.filesystem()
    theirs = lake._folder("cms.t", taken)
    if lake.location.is_local:
        filesystem.create_dir(theirs, recursive=True)
    for name, body in (("_writer", b"other-host 4242 /home/them\n"), ("data-0000.parquet", b"their bytes")):
        with filesystem.open_output_stream(f"{theirs}/{name}") as out:
            out.write(body)

    provenance = Provenance(source_url="file:///t.csv", format="csv")
    with lake.stage("cms.t") as staging:
        staging.write_arrow(pa.table({"zip": ["01234", "02345"]}), provenance)
        snap = staging.commit(provenance)
    assert snap.id != taken
    with filesystem.open_input_stream(f"{theirs}/data-0000.parquet") as fh:
        assert fh.read() == b"their bytes"  # the other machine's files are untouched
    with filesystem.open_input_stream(f"{theirs}/_writer") as fh:
        assert fh.read().startswith(b"other-host 4242")
    assert [s.id for s in lake.published("cms.t")] == [snap.id] and lake.current("cms.t").rows == 2


def test_two_homes_without_a_shared_catalog_never_delete_each_others_snapshots(cli: Cli, tmp_path: Path) -> None:
    """Each home's own catalog: the second one to write a table of the lake is refused, and
    neither its fetch nor its prune takes the first one's snapshot for a leftover."""
    (tmp_path / "v1.csv").write_text(V1)
    (tmp_path / "v2.csv").write_text(V2)
    lake = str(tmp_path / "lake")
    first, second = ["--home", str(tmp_path / "a"), "--lake", lake], ["--home", str(tmp_path / "b"), "--lake", lake]
    _ok(cli(*first, "fetch", str(tmp_path / "v1.csv"), "--as", "cms.t"))
    refused = cli(*second, "fetch", str(tmp_path / "v2.csv"), "--as", "cms.t")
    assert refused.exit_code == 1 and "another Iceberg catalog" in refused.stderr
    _ok(cli(*second, "prune", "--keep", "1"))
    assert _ok(cli(*first, "sql", "--format", "csv", "select count(*) as n from cms.t")).stdout == "n\n2\n"


def test_a_shared_catalog_keeps_each_lakes_tables_apart(cli: Cli, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{tmp_path / 'team.db'}")
    (tmp_path / "v1.csv").write_text(V1)
    (tmp_path / "v2.csv").write_text(V2)
    prod, scratch = str(tmp_path / "prod"), str(tmp_path / "scratch")
    _ok(cli("--lake", prod, "fetch", str(tmp_path / "v1.csv"), "--as", "cms.t"))
    refused = cli("--lake", scratch, "fetch", str(tmp_path / "v2.csv"), "--as", "cms.t")
    assert refused.exit_code == 1 and "not one of the lake" in refused.stderr
    assert _sql(cli, "select count(*) as n from cms.t", lake=prod) == [{"n": "2"}]


def test_a_table_created_by_a_run_that_died_before_its_first_commit_takes_the_next_fetch(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed between creating the Iceberg table and committing to it leaves a table with no
    liberacion snapshot: the next fetch publishes into it (it failed with 'no table x.t')."""
    import liberacion.iceberg as iceberg

    source = tmp_path / "t.csv"
    source.write_text("id,n\n01,1\n02,2\n")
    lake = str(tmp_path / "lake")
    overwrite = iceberg._overwrite

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(iceberg, "_overwrite", dies)
    assert cli("--lake", lake, "fetch", str(source), "--as", "x.t").exit_code == 1
    monkeypatch.setattr(iceberg, "_overwrite", overwrite)
    again = cli("--lake", lake, "fetch", str(source), "--as", "x.t")
    assert again.exit_code == 0, again.stderr
    assert _sql(cli, "select count(*) as n from x.t", lake=lake) == [{"n": "2"}]


def test_a_home_on_an_old_copy_of_the_catalog_never_prunes_the_current_snapshot(
    cli: Cli, tmp_path: Path, monkeypatch: Any
) -> None:
    # The old catalog knows only the first snapshot: the second one's folder, written by this home,
    # looked like a leftover of a dead run and was deleted; every reader then found the table damaged.
    import shutil

    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    team, old = tmp_path / "team.db", tmp_path / "team_old.db"
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{team}")
    (tmp_path / "v1.csv").write_text(V1)
    (tmp_path / "v2.csv").write_text(V2)
    lake = str(tmp_path / "lake")
    _ok(cli("--lake", lake, "fetch", str(tmp_path / "v1.csv"), "--as", "cms.t"))
    shutil.copyfile(team, old)
    _ok(cli("--lake", lake, "fetch", str(tmp_path / "v2.csv"), "--as", "cms.t"))
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{old}")
    pruned = _ok(cli("--lake", lake, "prune", "--keep", "1"))
    assert "cms.t: not pruned: the table's folder holds newer metadata" in pruned.stderr
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{team}")
    rows = len(V2.strip().splitlines()) - 1
    assert _sql(cli, "select count(*) as n from cms.t", lake=lake) == [{"n": str(rows)}]


def test_a_catalog_on_another_store_than_the_data_is_refused(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: Any
) -> None:
    # The catalog's s3.endpoint took the metadata to one store, AWS_ENDPOINT_URL the data files to
    # another: "fetched", then every reader found the table damaged.
    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{tmp_path / 'team.db'}")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__S3__ENDPOINT", "http://127.0.0.1:9")
    (tmp_path / "v1.csv").write_text(V1)
    result = cli("--lake", f"s3://{bucket}/split", "fetch", str(tmp_path / "v1.csv"), "--as", "cms.t")
    assert result.exit_code != 0
    assert "its s3.endpoint" in result.stderr and "set AWS_ENDPOINT_URL=http://127.0.0.1:9 too" in result.stderr
    assert _keys(bucket, "split/") == []
