"""A shared (Iceberg) lake records each pruned snapshot's citation as the home's own lake does, so
months later ``sql --as-of``, ``diff --from`` and ``history`` name the snapshot that was current
then, its sha256 and when it went, for every home sharing the lake."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

pytest.importorskip("pyiceberg")

VERSIONS = [
    "zip,n\n01234,1\n",
    "zip,n\n01234,1\n02345,2\n",
    "zip,n\n01234,1\n02345,2\n03456,3\n",
    "zip,n\n01234,1\n02345,2\n03456,3\n04567,4\n",
]


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _team_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog every home shares (SQL on one database file; a REST catalog for a real team)."""
    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{tmp_path / 'team.db'}")


def _record_objects(where: str, lake: str) -> list[str]:
    """The record objects of x.t's pruned snapshots in a shared lake."""
    if where == "directory":
        return sorted(p.name for p in (Path(lake) / "x" / "t" / "pruned").iterdir())
    import boto3

    bucket, prefix = lake.removeprefix("s3://").split("/", 1)
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/x/t/pruned/")
    names = (obj["Key"].rsplit("/", 1)[-1] for obj in listed.get("Contents", []))
    return sorted(name for name in names if name)  # "": the folder marker pyarrow leaves


@pytest.mark.parametrize("where", ["home", "directory", "s3"])
def test_a_pruned_snapshot_is_named_by_as_of_diff_and_history_in_every_lake(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, where: str
) -> None:
    # An Iceberg lake recorded nothing: --as-of then said "before it the table did not exist, or
    # its older snapshots were pruned", and history began at the oldest kept snapshot as if it were
    # the first. In every lake, diff --from a pruned snapshot's id said only "has no snapshot".
    from liberacion.iceberg_lake import PRUNED_FOLDER

    if where == "home":
        lake, place = [], str(home / "lake" / "x" / "t" / "pruned.jsonl")
    else:
        _team_catalog(tmp_path, monkeypatch)
        root = str(tmp_path / "lake") if where == "directory" else f"s3://{request.getfixturevalue('bucket')}/lake"
        lake, place = ["--lake", root], f"{root}/x/t/{PRUNED_FOLDER}/"
    monkeypatch.setenv("LIBERACION_KEEP", "10")  # nothing pruned until the prune below
    for i, text in enumerate(VERSIONS[:3]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli(*lake, "fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    first, second, third = json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)
    assert first["sha256"] and first["published_at"] < second["published_at"]

    _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    as_of = cli(*lake, "sql", "--as-of", first["published_at"], "select count(*) from x.t")
    assert as_of.exit_code == 3 and len(as_of.stderr.strip().splitlines()) == 1
    cited = f"{first['snapshot']} (published {first['published_at']}, sha256 {first['sha256']})"
    said = f"the snapshot current then, {cited}, was pruned at "
    assert said in as_of.stderr
    by_time = cli(*lake, "diff", "x.t", "--from", second["published_at"])
    assert by_time.exit_code == 3 and f"the snapshot current then, {second['snapshot']} (" in by_time.stderr
    by_id = cli(*lake, "diff", "x.t", "--from", first["snapshot"])
    assert by_id.exit_code == 3
    assert f"snapshot {cited} of x.t was pruned at " in by_id.stderr
    history = _ok(cli(*lake, "history", "x.t", "--format", "json"))
    assert len(json.loads(history.stdout)) == 1
    assert f"2 older snapshot(s) of x.t were pruned, the newest of them {second['snapshot']}" in history.stderr
    assert history.stderr.strip().endswith(f"is in {place}")
    if where == "home":
        return

    # Another home sharing the lake and its catalog reads the same record.
    other = ["--home", str(tmp_path / "other-home"), *lake]
    again = cli(*other, "sql", "--as-of", first["published_at"], "select count(*) from x.t")
    assert again.exit_code == 3 and said in again.stderr
    # The record lives beside the table's Iceberg folders, one object per prune; past
    # PRUNED_OBJECTS_MERGED objects they are merged into one, and nothing is lost.
    monkeypatch.setattr("liberacion.iceberg_lake.PRUNED_OBJECTS_MERGED", 1)
    (tmp_path / "v3.csv").write_text(VERSIONS[3])
    _ok(cli(*other, "fetch", str(tmp_path / "v3.csv"), "--as", "x.t"))
    _ok(cli(*other, "prune", "x.t", "--keep", "1"))
    (record,) = _record_objects(where, root)
    assert record.endswith(".jsonl")
    history = _ok(cli(*lake, "history", "x.t", "--format", "json"))
    assert f"3 older snapshot(s) of x.t were pruned, the newest of them {third['snapshot']}" in history.stderr
    # Iceberg readers are not disturbed by the folder: pyiceberg reads the current snapshot.
    from pyiceberg.table import StaticTable

    info = json.loads(_ok(cli(*lake, "info", "x.t", "--format", "json")).stdout)
    store = {"s3.endpoint": os.environ.get("AWS_ENDPOINT_URL", ""), "s3.region": "us-east-1"}
    properties = (
        {} if where == "directory" else {**store, "s3.access-key-id": "testing", "s3.secret-access-key": "testing"}
    )
    table = StaticTable.from_metadata(info["storage"]["metadata_location"], properties=properties)
    assert table.scan().to_arrow().num_rows == 4


def test_a_record_that_cannot_be_written_is_a_note_and_the_prune_goes_on(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A prune frees space (README): a store refusing the record must not keep the old snapshots.
    lake = ["--lake", str(tmp_path / "lake")]
    monkeypatch.setenv("LIBERACION_KEEP", "10")
    for i, text in enumerate(VERSIONS[:2]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli(*lake, "fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    (tmp_path / "lake" / "x" / "t" / "pruned").write_text("in the way")  # the folder cannot be made
    pruned = _ok(cli(*lake, "prune", "x.t", "--keep", "1"))
    assert f"x.t: the pruned snapshots' citations were not recorded in {tmp_path / 'lake'}/x/t/pruned/: " in (
        pruned.stderr
    )
    assert len(json.loads(_ok(cli(*lake, "history", "x.t", "--format", "json")).stdout)) == 1


def test_records_written_while_another_home_merges_them_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Homes share no lock: home B records a prune after home A has read the objects it merges and
    before it deletes them. Nothing is rewritten, so B's record stays."""
    from liberacion import iceberg_lake
    from liberacion.home import Home
    from liberacion.iceberg_lake import IcebergLake
    from liberacion.storage import parse_lake

    location = parse_lake(str(tmp_path / "lake"))
    a, b = (IcebergLake(Home(tmp_path / f"home-{m}"), location) for m in "ab")
    filesystem, folder = location.filesystem(), location.path_of("x", "t", "pruned")
    for snapshot in ("s1", "s2"):
        a._write_record(filesystem, folder, json.dumps({"snapshot": snapshot}).encode() + b"\n")
    read = IcebergLake._record_lines

    def b_records_meanwhile(self: IcebergLake, *args: Any) -> list[str] | None:
        lines = read(self, *args)
        if self is a:
            b._write_record(filesystem, folder, json.dumps({"snapshot": "s3"}).encode() + b"\n")
        return lines

    monkeypatch.setattr(iceberg_lake, "PRUNED_OBJECTS_MERGED", 1)
    monkeypatch.setattr(IcebergLake, "_record_lines", b_records_meanwhile)
    a._merge_records(filesystem, folder)
    monkeypatch.setattr(IcebergLake, "_record_lines", read)
    lines = a._record_lines(filesystem, folder) or []
    assert sorted(json.loads(line)["snapshot"] for line in lines) == ["s1", "s2", "s3"]
    assert len(list(Path(folder).iterdir())) == 2  # the merged object and B's


def test_a_lake_in_the_home_format_keeps_its_record_once_registered(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its pruned.jsonl stays in the table's folder: read through --lake, the lake named no record.
    for i, text in enumerate(VERSIONS[:2]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli("fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    first, _second = json.loads(_ok(cli("history", "x.t", "--format", "json")).stdout)
    _ok(cli("prune", "x.t", "--keep", "1"))
    lake = ["--home", str(tmp_path / "other-home"), "--lake", str(home / "lake")]  # another person's home
    as_of = cli(*lake, "sql", "--as-of", first["published_at"], "select count(*) from x.t")
    assert as_of.exit_code == 3 and f"the snapshot current then, {first['snapshot']} (" in as_of.stderr
    history = _ok(cli(*lake, "history", "x.t", "--format", "json"))
    assert history.stderr.strip().endswith(f"is in {home / 'lake' / 'x' / 't' / 'pruned.jsonl'}")


def test_snapshot_of_a_pruned_id_in_sql_names_it(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # liberacion.snapshot('x.t', id) of a pruned id said only "has no kept snapshot".
    monkeypatch.setenv("LIBERACION_KEEP", "10")
    for i, text in enumerate(VERSIONS[:3]):
        (tmp_path / f"v{i}.csv").write_text(text)
        _ok(cli("fetch", str(tmp_path / f"v{i}.csv"), "--as", "x.t"))
    first, _second, _third = json.loads(_ok(cli("history", "x.t", "--format", "json")).stdout)
    _ok(cli("prune", "x.t", "--keep", "1"))

    query = f"select count(*) from liberacion.snapshot('x.t', '{first['snapshot']}')"
    said = cli("sql", query)
    assert said.exit_code == 3 and len(said.stderr.strip().splitlines()) == 1, said.stderr
    cited = f"{first['snapshot']} (published {first['published_at']}, sha256 {first['sha256']})"
    assert f"snapshot {cited} of x.t was pruned at " in said.stderr
    import liberacion

    with pytest.raises(liberacion.NotFound, match="was pruned at"):
        liberacion.sql(query, arrow=True)


def test_a_prefix_of_several_pruned_snapshots_names_them() -> None:
    # It said "no snapshot", as for a typo.
    from liberacion.lake import pruned_snapshot

    class Pruned:
        def pruned(self, name: str) -> list[dict[str, str]]:
            return [{"snapshot": "20261101T063000000001Z"}, {"snapshot": "20261101T063000000002Z"}]

    said = str(pruned_snapshot(Pruned(), "x.t", "20261101T0630"))  # type: ignore[arg-type]
    assert said.startswith("snapshot '20261101T0630' of x.t names several pruned snapshots")
    assert "(20261101T063000000001Z, 20261101T063000000002Z)" in said
    assert pruned_snapshot(Pruned(), "x.t", "20261102") is None  # type: ignore[arg-type]
