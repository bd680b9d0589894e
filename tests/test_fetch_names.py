"""Table names that could collide stay apart, a table belongs to its ref, a zip set that was
published partly is completed, and a bug in one ref does not end the run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake, Staging
from tests.conftest import Cli

CSV = "Facility ID,State,Score\n010001,AL,3\n220071,MA,5\n"


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_members_whose_names_agree_in_their_first_63_characters_are_two_tables(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    stem = "provider_of_services_file_hospital_and_non_hospital_facilities_quarter"
    archive = _zip(tmp_path / "pos.zip", {f"{stem}_1.csv": CSV, f"{stem}_2.csv": CSV + "330101,NY,4\n"})
    result = cli("fetch", str(archive), "--as", "cms.pos", "--json")
    (record,) = _records(result.stdout)
    assert record["status"] == "fetched", result.stderr
    tables = record["tables"]
    assert len(tables) == 2 and len(set(tables)) == 2
    assert all(len(t.split(".")[1]) <= 63 for t in tables)
    counts = sorted(
        json.loads(cli("sql", "--format", "json", f"select count(*) as n from {t}").stdout)[0]["n"] for t in tables
    )
    assert counts == [2, 3]


def test_a_long_as_name_with_several_members_does_not_wait_on_itself(cli: Cli, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "abc.zip", {"abc1.csv": CSV, "abc2.csv": CSV + "330101,NY,4\n"})
    name = "cms." + "a" * 58
    result = cli("fetch", str(archive), "--as", name, "--wait", "0", "--json")
    (record,) = _records(result.stdout)
    assert result.exit_code == 0 and record["status"] == "fetched", result.stderr
    assert len(set(record["tables"])) == 2


def test_two_refs_that_map_to_one_table_do_not_overwrite_each_other(cli: Cli, tmp_path: Path, home: Path) -> None:
    first = tmp_path / "covid-19-cases.csv"
    second = tmp_path / "covid_19_cases.csv"
    first.write_text(CSV, encoding="utf-8")
    second.write_text(CSV + "330101,NY,4\n", encoding="utf-8")
    assert cli("fetch", str(first)).exit_code == 0
    result = cli("fetch", str(second))
    assert result.exit_code == 1, result.stderr
    assert "local.covid_19_cases holds" in result.stderr and "--as" in result.stderr
    assert Lake(home).current("local.covid_19_cases").rows == 2
    # Saying so replaces it.
    assert cli("fetch", str(second), "--as", "local.covid_19_cases").exit_code == 0
    assert Lake(home).current("local.covid_19_cases").rows == 3


@pytest.mark.parametrize("name", ["lake", "memory", "main"])
def test_a_catalog_may_not_take_a_reserved_schema_name(cli: Cli, tmp_path: Path, name: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(CSV, encoding="utf-8")
    result = cli("fetch", str(path), "--as", f"{name}.x")
    assert result.exit_code == 2 and "reserved" in result.stderr, result.stderr


def test_a_zip_set_published_partly_is_completed_by_the_next_run(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {name: CSV + f"{i}30101,NY,4\n" for i, name in enumerate(["a.csv", "b.csv", "c.csv"])}
    archive = _zip(tmp_path / "set.zip", members)
    real_prepare = Lake._prepare
    prepared: list[str] = []

    def prepare_then_fail(self: Lake, staging: Staging, *args: Any, **kwargs: Any) -> Any:
        prepared.append(staging.table)
        if len(prepared) == 2:
            raise RuntimeError("something nobody expected")
        return real_prepare(self, staging, *args, **kwargs)

    monkeypatch.setattr(Lake, "_prepare", prepare_then_fail)
    result = cli("fetch", str(archive), "--json")
    (record,) = _records(result.stdout)
    assert result.exit_code == 1 and record["status"] == "failed"
    assert "internal error (RuntimeError: something nobody expected)" in record["error"]
    assert (home / "logs" / "last-error.txt").exists()
    assert "Traceback" not in result.stderr
    assert Lake(home).names() == []  # one table of the set was ready, none became current

    monkeypatch.setattr(Lake, "_prepare", real_prepare)
    (record,) = _records(cli("fetch", str(archive), "--json").stdout)
    assert record["status"] == "fetched"
    assert Lake(home).names() == ["local.set__a", "local.set__b", "local.set__c"]
    (record,) = _records(cli("fetch", str(archive), "--json").stdout)
    assert record["status"] == "unchanged"


def test_a_bug_in_one_ref_does_not_end_the_run(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.csv"
    good = tmp_path / "good.csv"
    bad.write_text(CSV, encoding="utf-8")
    good.write_text(CSV, encoding="utf-8")
    real_commit = Staging.commit

    def commit(self: Staging, provenance: Any) -> Any:
        if self.table == "local.bad":
            raise RuntimeError("boom")
        return real_commit(self, provenance)

    monkeypatch.setattr(Staging, "commit", commit)
    result = cli("fetch", str(bad), str(good), "--json")
    records = {r["table"]: r for r in _records(result.stdout)}
    assert result.exit_code == 1
    assert records["local.bad"]["status"] == "failed" and "RuntimeError: boom" in records["local.bad"]["error"]
    assert records["local.good"]["status"] == "fetched"
    assert Lake(home).names() == ["local.good"]


def test_a_type_override_must_match_a_column_in_some_table_of_a_zip(cli: Cli, tmp_path: Path, home: Path) -> None:
    archive = _zip(tmp_path / "two.zip", {"scores.csv": CSV, "places.csv": "Place,Zip\nBoston,02134\n"})
    result = cli("fetch", str(archive), "--type", "Scroe=VARCHAR", "--json")
    (record,) = _records(result.stdout)
    assert result.exit_code == 1 and record["status"] == "failed"
    assert "--type Scroe: no such column in any of the 2 tables" in record["error"]
    assert Lake(home).names() == []
    # A name one member has is fine: the other member just does not have it.
    result = cli("fetch", str(archive), "--type", "Score=VARCHAR", "--json")
    assert _records(result.stdout)[0]["status"] == "fetched", result.stderr
    info = Lake(home).current("local.two__scores").provenance.columns["score"]
    assert info["type"] == "VARCHAR"


@pytest.mark.parametrize("reserved", ["memory", "lake"])
def test_a_manifest_with_a_reserved_name_is_refused_and_the_others_still_load(
    cli: Cli, manifests: Path, http_server: Any, home: Path, reserved: str
) -> None:
    url = http_server.add("/beds.csv", CSV, content_type="text/csv")
    (manifests / f"{reserved}.toml").write_text(
        f'name = "{reserved}"\n[[dataset]]\nid = "x"\nurl = "{url}"\n', encoding="utf-8"
    )
    (manifests / "good.toml").write_text(f'name = "good"\n[[dataset]]\nid = "beds"\nurl = "{url}"\n', encoding="utf-8")
    listing = cli("catalogs", "--format", "json")
    assert listing.exit_code == 5
    assert f"{reserved}.toml: the catalog name '{reserved}' is reserved" in listing.stderr
    names = [c["name"] for c in json.loads(listing.stdout)]
    assert "good" in names and reserved not in names
    fetched = cli("fetch", "good/beds", "--json")  # fetched, and the broken manifest reported
    assert fetched.exit_code == 5 and f"{reserved}.toml" in fetched.stderr, fetched.stderr
    assert _records(fetched.stdout)[0]["status"] == "fetched"
    assert "internal error" not in fetched.stderr
    shown = cli("show", f"{reserved}/x")
    assert shown.exit_code == 5 and "reserved" in shown.stderr
    assert cli("sql", "select count(*) from good.beds").exit_code == 0


def test_many_small_members_convert_on_one_shared_database(cli: Cli, tmp_path: Path, home: Path) -> None:
    from liberacion import engine

    # Every typed column registers a Python function (the exact slow path) on the connection.
    members = {f"m{i:02d}.csv": f"zip,score\n0{i}134,{i}\n0{i}135,Not Available\n0{i}136,7\n" for i in range(30)}
    archive = _zip(tmp_path / "many.zip", members)
    result = cli("fetch", str(archive), "--json")
    (record,) = _records(result.stdout)
    assert record["status"] == "fetched", result.stderr
    lake = Lake(home)
    for i in (0, 17, 29):
        table = f"local.many__m{i:02d}"
        assert lake.current(table).provenance.columns["score"]["type"] == "BIGINT"
        got = json.loads(cli("sql", "--format", "json", f"select zip, score from {table} order by zip").stdout)
        assert got == [
            {"zip": f"0{i}134", "score": i},
            {"zip": f"0{i}135", "score": None},
            {"zip": f"0{i}136", "score": 7},
        ]
    leftovers = engine._SHARED[0].sql(
        "select function_name from duckdb_functions() where function_name like 'liberacion_slow_%'"
    )
    assert leftovers.fetchall() == []


@pytest.mark.parametrize(("hard", "fetched"), [(200, False), (4096, True)])
def test_a_zip_of_many_tables_raises_the_open_file_limit_or_says_what_to_do(
    tmp_path: Path, home: Path, hard: int, fetched: bool
) -> None:
    import os
    import subprocess
    import sys

    resource = pytest.importorskip("resource")
    from tests.conftest import ROOT

    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < hard:
        pytest.skip("the hard limit on open files is lower than this test needs")
    members = {f"m{i:03d}.csv": f"zip,n\n0{i:04d},{i}\n" for i in range(250)}
    archive = _zip(tmp_path / "wide.zip", members)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}

    def low_soft_limit() -> None:  # as a default `ulimit -n` of 200 would leave it
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))

    result = subprocess.run(
        [sys.executable, "-m", "liberacion", "fetch", str(archive), "--json"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=low_soft_limit,
    )
    (record,) = _records(result.stdout)
    if fetched:
        assert result.returncode == 0 and record["status"] == "fetched", result.stderr
        assert len(Lake(home).names()) == 250  # more tables than the soft limit of 200: it was raised
    else:
        assert result.returncode == 1 and record["status"] == "failed"
        assert "the file holds 250 tables" in record["error"] and "ulimit -n 506" in record["error"]
        assert Lake(home).names() == []


def test_what_earlier_versions_unpacked_into_downloads_is_removed(cli: Cli, tmp_path: Path, home: Path) -> None:
    key = home / "downloads" / "data.cms.gov-abc123"
    (key / "pos.zip.members" / "000-pos_csv").parent.mkdir(parents=True)
    (key / "pos.zip.members" / "000-pos_csv").write_text(CSV)
    (key / "nppes.gz.gunzip").write_text(CSV)
    (key / "beds.xlsx.sheet1.csv").write_text(CSV)
    (key / "download.part").write_text("half a file, to resume")
    source = tmp_path / "beds.csv"
    source.write_text(CSV, encoding="utf-8")
    assert cli("fetch", str(source)).exit_code == 0
    assert sorted(p.name for p in key.iterdir()) == ["download.part"]
